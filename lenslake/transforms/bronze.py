"""Landing lines → validated bronze events and quarantine rows.

Valid lines never pass through per-row Python: fields are extracted and validated with engine expressions compiled
from the contracts, and PII is tokenized by a join against tokens computed once per distinct value. Only rejected
lines (a small minority) are shaped in Python, where each one's PII is tokenized field by field or, when the line
cannot be parsed, the whole line is sealed with AES-GCM beside a masked preview. Free text (``x-free-text`` fields:
search queries) is scrubbed in both outputs: PII in it becomes typed placeholders (``lenslake.privacy.scrub``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.contracts.reasons import check_reason
from lenslake.contracts.events import event_fields, token_column, violation_columns
from lenslake.privacy.keys import KeyStore
from lenslake.privacy.tokens import masked_preview, seal, token, tokenize_arrow
from lenslake.tables import RENAMES, table_spec

TYPED = {"int64": "bigint", "double": "double", "bool": "boolean", "string": "string"}
# Lineage of a line read from Kafka (instead of source_file/source_line): carried through when the lines have it.
KAFKA_LINEAGE = ("kafka_topic", "kafka_partition", "kafka_offset")
# The first broken rule of a row (null when valid). Not "reason": a return event's own field is named that, and
# the rule column replaced it, so every return reached bronze without its reason.
REJECT_REASON = "reject_reason"
# What quarantine_rows reads of a rejected row, besides its payload and its lineage.
REJECTED = ("source_file", "source_line", "ingest_date", REJECT_REASON, "violations", "schema", "schema_version", "event_id")


def parse_events(engine, lines):
    """Parse the JSON-object lines: one string column per contract field plus ``violations`` and ``reason``."""
    F = engine.F
    fields = {rule.column: rule.path for rule in event_fields()}
    return with_violations(engine, engine.json_fields(lines.where(F.col("is_json")), "line", fields))


def with_violations(engine, fields):
    """Rows holding one string column per contract field (the value's JSON text) → plus ``violations`` (every
    broken rule, ``;``-separated) and ``reject_reason`` (the first one; null when the row is valid)."""
    F = engine.F
    parsed = fields.withColumn("violations", F.concat_ws(";", *violation_columns(F)))
    first = F.split(F.col("violations"), ";").getItem(0)
    return parsed.withColumn(REJECT_REASON, F.when(F.col("violations") != F.lit(""), first))


def typed_events(engine, valid, keys: KeyStore, *, source: str) -> pa.Table:
    """Valid parsed events → bronze rows (Arrow): typed, renamed, PII tokenized, lineage added."""
    F = engine.F
    cols = []
    pii = {}
    for rule in event_fields():
        name = RENAMES.get(rule.column, rule.column)
        c = F.col(rule.column)
        if rule.pii:
            pii[rule.column] = token_column(rule.pii)
            continue
        if name == "event_time":
            c = F.to_timestamp(c)
        elif name == "schema_version":
            c = c.cast("int")
        else:
            c = c.cast(TYPED[rule.arrow_type])
        cols.append(c.alias(name))
    ip = next(r.column for r in event_fields() if r.pii == "ip")
    df = valid.select(
        *cols,
        *[F.col(src) for src in pii],
        F.regexp_replace(F.col(ip), r"\.[0-9]+$", ".0/24").alias("ip_prefix"),
        F.col("ingest_date"),
        F.lit(source).alias("source"),
        F.col("source_file"),
        F.col("source_line"),
        *[F.col(c) for c in KAFKA_LINEAGE if c in valid.columns],
    )
    return tokenize_arrow(engine.to_arrow(df), pii, keys.token)


def quarantine_rows(rejected: pa.Table, malformed: pa.Table, keys: KeyStore, *, source: str) -> pa.Table:
    """Shape rejected and malformed lines into quarantine rows (Python: the rejected path is small by nature)."""
    now = dt.datetime.now(dt.timezone.utc)
    pii_paths = {tuple(r.path.split(".")[1:]): r.pii for r in event_fields() if r.pii}
    text_paths = [tuple(r.path.split(".")[1:]) for r in event_fields() if r.free_text]
    rows = []
    payloads = [json.loads(r["line"]) for r in rejected.to_pylist()]
    _scrub_paths(payloads, text_paths)
    for r, payload in zip(rejected.to_pylist(), payloads):
        for path in pii_paths:
            _tokenize_path(payload, path, keys)
        reason, _, field_path = r[REJECT_REASON].partition("@")
        rows.append(
            {
                "reason_code": reason,
                "field_path": field_path,
                "violations": r["violations"],
                "event_type": r["schema"] if isinstance(r["schema"], str) else None,
                "schema_version": _int_or_none(r["schema_version"]),
                "event_id": r["event_id"],
                "payload": json.dumps(payload, sort_keys=True, separators=(",", ":")),
                "source_file": r["source_file"],
                "source_line": r["source_line"],
                "ingest_date": r["ingest_date"],
                **{c: r[c] for c in KAFKA_LINEAGE if c in r},
            }
        )
    for r in malformed.to_pylist():
        rows.append(sealed_row(r["line"].encode("utf-8"), r["line"], "malformed_json", r, keys))
    return finish_quarantine(rows, source, now)


def sealed_row(raw: bytes, text: str, reason: str, lineage: dict, keys: KeyStore) -> dict:
    """A quarantine row for bytes that cannot be read field by field (a malformed line, an undecodable Kafka
    message): sealed with AES-GCM, bound to its position, beside a masked preview. ``lineage`` holds the position
    (source_file/source_line or the Kafka columns) and ``ingest_date``."""
    row = {k: lineage.get(k) for k in ("source_file", "source_line", *KAFKA_LINEAGE, "ingest_date")}
    sealed, key_id = seal(raw, keys.encryption, associated_data=position(row).encode())
    return row | {
        "reason_code": check_reason(reason),
        "field_path": "$",
        "violations": f"{reason}@$",
        "payload_encrypted": sealed,
        "payload_key_id": key_id,
        "payload_preview": masked_preview(text),
    }


def position(row: dict) -> str:
    """Where a row came from, as sealed payloads bind it: ``file:line``, or ``kafka:topic:partition:offset``."""
    if row.get("kafka_topic") is not None:
        return f"kafka:{row['kafka_topic']}:{row['kafka_partition']}:{row['kafka_offset']}"
    return f"{row['source_file']}:{row['source_line']}"


def finish_quarantine(rows: list[dict], source: str, now=None) -> pa.Table:
    """Quarantine rows → Arrow: a quarantine id stable across reruns (sha256 of the source position), source, time."""
    now = now or dt.datetime.now(dt.timezone.utc)
    for row in rows:
        if row.get("kafka_topic") is not None:
            where = f"{source}|{row['kafka_topic']}|{row['kafka_partition']}|{row['kafka_offset']}"
        else:
            where = f"{source}|{row['source_file']}|{row['source_line']}"
        row["quarantine_id"] = hashlib.sha256(where.encode()).hexdigest()[:32]
        row["source"] = source
        row["quarantined_at"] = now
    schema = table_spec("bronze.events_quarantine").arrow_schema
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()


def _tokenize_path(doc, path: tuple[str, ...], keys: KeyStore) -> None:
    node = doc
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get(path[-1]) is not None:
        node[path[-1]] = token(str(node[path[-1]]), keys.token)


def _scrub_paths(docs: list, paths: list[tuple[str, ...]]) -> None:
    """Scrub the free text at ``paths`` of every document in place (one batch for all of them). A number where
    text belongs (a phone typed into a numeric field) is scrubbed as its text and kept as a number when clean."""
    found = []
    for doc in docs:
        for path in paths:
            node = doc
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            value = node.get(path[-1]) if isinstance(node, dict) else None
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                found.append((node, path[-1]))
    if found:
        from lenslake.privacy.scrub import get_scrubber

        for (node, key), s in zip(found, get_scrubber().scrub_many([str(n[k]) for n, k in found])):
            if s.changed:
                node[key] = s.scrubbed


def _int_or_none(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def bronze_from_lines(engine, lines: pa.Table, keys: KeyStore, *, source: str = "file"):
    """Split raw lines (with their ``ingest_date``) into (bronze events, quarantine rows), both Arrow.
    Every line lands in exactly one. Lines read from Kafka carry ``KAFKA_LINEAGE`` columns (topic, partition,
    offset) instead of a file and line; both outputs keep them."""
    F = engine.F
    df = engine.from_arrow(lines)
    parsed = engine.checkpoint(parse_events(engine, df))
    valid = parsed.where(F.col(REJECT_REASON).isNull())
    kafka = [c for c in KAFKA_LINEAGE if c in lines.column_names]
    rejected = engine.to_arrow(
        parsed.where(F.col(REJECT_REASON).isNotNull()).select("line", *REJECTED, *kafka)
    )
    malformed = lines.filter(pc.invert(lines.column("is_json"))).select(["line", "source_file", "source_line", "ingest_date", *kafka])
    return _scrubbed(typed_events(engine, valid, keys, source=source)), quarantine_rows(rejected, malformed, keys,
                                                                                       source=source)


def bronze_from_fields(engine, fields: pa.Table, keys: KeyStore, payload_of, *, source: str = "kafka"):
    """Split decoded records (one string column per contract field, as ``parse_events`` extracts them from a JSON
    line, plus lineage, ``ingest_date`` and ``record``: the record's index in its batch) into (bronze events,
    quarantine rows). Records that already arrive typed (Avro) skip JSON parsing but meet the same rules;
    ``payload_of(record index)`` gives a rejected record's JSON text for its quarantine row (the few, in Python)."""
    F = engine.F
    parsed = engine.checkpoint(with_violations(engine, engine.from_arrow(fields)))
    kafka = [c for c in KAFKA_LINEAGE if c in fields.column_names]
    rejected = engine.to_arrow(parsed.where(F.col(REJECT_REASON).isNotNull()).select("record", *REJECTED, *kafka))
    rejected = rejected.append_column("line", pa.array([payload_of(i) for i in rejected.column("record").to_pylist()],
                                                       pa.string()))
    malformed = pa.table({"line": pa.array([], pa.string())})
    events = _scrubbed(typed_events(engine, parsed.where(F.col(REJECT_REASON).isNull()), keys, source=source))
    return events, quarantine_rows(rejected, malformed, keys, source=source)


def _scrubbed(events: pa.Table) -> pa.Table:
    from lenslake.privacy.scrub import scrub_columns

    return scrub_columns(events, [c.name for c in table_spec("bronze.events").columns if c.free_text])
