"""The table catalogue: the single home of per-table facts.

Every Delta table the platform writes is declared here: name, layer, declared schema (both engines cast to it
before writing), partitioning, owner, retention, PII and token columns (kept out of Delta statistics, checked with
BOOLEAN_ONLY results), the user-key column erasure deletes by, and the purpose of each column. Contracts, checks,
retention, erasure and the access policy read this rather than keeping lists of their own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lenslake.contracts.events import event_fields, token_column

ARROW_TYPES = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    nullable: bool = True
    token: bool = False  # holds a keyed-HMAC token of a PII value
    pii: bool = False  # may hold PII (free text, raw payloads); never in statistics or check samples
    free_text: bool = False
    # What a row written before the column existed reads (Delta keeps its null); from the field's Avro default.
    default: Any = None


@dataclass(frozen=True)
class TableSpec:
    name: str  # "<layer>.<table>"
    description: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    owner: str = "data-platform"
    retention_days: int | None = None
    user_key: str | None = None  # the column right-to-erasure deletes by
    consumers: tuple[str, ...] = field(default_factory=tuple)
    # CHECK constraints (name, SQL expression), added by DeltaStore when it creates the table and by a migration
    # to tables created before. delta-rs stores them simplified and refuses a write that breaks one.
    constraints: tuple[tuple[str, str], ...] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns],
            metadata={"table": self.name},
        )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def token_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.token]

    @property
    def sensitive_columns(self) -> list[str]:
        """Columns whose values must never reach Delta statistics or check results (tokens and clear PII)."""
        return [c.name for c in self.columns if c.token or c.pii or c.free_text]

    @property
    def defaults(self) -> dict[str, Any]:
        """Column → the value its nulls read as (columns added by a schema version with a default)."""
        return {c.name: c.default for c in self.columns if c.default is not None}

    @property
    def stats_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.name not in self.sensitive_columns]


def C(name, type_, doc, **kw) -> Column:
    return Column(name, type_, doc, **kw)


# --- events -------------------------------------------------------------------------------------------------------

RENAMES = {"schema": "event_type", "session_id": "client_session_id"}


def event_columns(*, defaults: bool = False) -> tuple[Column, ...]:
    """The event fields of the contracts as typed columns, PII fields replaced by their tokens. With ``defaults``,
    a field that a later schema version added with a default carries it (silver: old rows read the default)."""
    cols = []
    for rule in event_fields():
        name = RENAMES.get(rule.column, rule.column)
        required = rule.required and not rule.nullable and rule.path.count(".") == 1
        doc = rule.description or f"`{rule.path}` of the raw event"
        if rule.pii:
            cols.append(C(token_column(rule.pii), "string", f"keyed HMAC token of `{rule.path}` ({rule.pii})", token=True, nullable=not required))
            if rule.pii == "ip":
                cols.append(C("ip_prefix", "string", "the IP address truncated to its /24 network, for analytics"))
            continue
        type_ = {"int64": "int64", "double": "double", "string": "string", "bool": "bool"}[rule.arrow_type]
        if name == "schema_version":
            type_ = "int32"
        if name == "event_time":
            type_ = "timestamp"
        default = rule.default if defaults and rule.has_default else None
        cols.append(C(name, type_, doc, nullable=not required, free_text=rule.free_text, default=default))
    return tuple(cols)


LINEAGE = (
    C("ingest_date", "date", "the day the event was ingested (landing day or Kafka ingest day)", nullable=False),
    C("source", "string", "where the row came from: 'file' (landing NDJSON) or 'kafka'", nullable=False),
    C("source_file", "string", "landing file path relative to the data root"),
    C("source_line", "int64", "1-based line number in the landing file"),
    C("kafka_topic", "string", "Kafka topic (Kafka source only)"),
    C("kafka_partition", "int32", "Kafka partition (Kafka source only)"),
    C("kafka_offset", "int64", "Kafka offset (Kafka source only)"),
)


def catalogue() -> dict[str, TableSpec]:
    """Every declared table. The event tables' columns follow the schema registry, so the catalogue is rebuilt
    when the registry changes (a newly registered version with a new field adds a column)."""
    from lenslake.contracts.events import registry_state

    return _catalogue(registry_state())


@functools.cache
def _catalogue(_registry_state) -> dict[str, TableSpec]:
    ev = event_columns()
    specs = [
        TableSpec(
            "bronze.events",
            "Every landed event that passed its contract, PII tokenized, one row per landed line (duplicates kept).",
            ev + LINEAGE,
            partition_by=("ingest_date", "source"),
            retention_days=400,
            user_key="user_token",
            consumers=("silver.events",),
        ),
        TableSpec(
            "bronze.events_quarantine",
            "Every landed event line that failed its contract, with the reason; PII tokenized, unparseable lines encrypted.",
            (
                C("quarantine_id", "string", "sha256 of source position: stable across reruns", nullable=False),
                C("reason_code", "string", "first broken rule (lenslake.contracts.reasons)", nullable=False),
                C("field_path", "string", "JSON path the reason concerns"),
                C("violations", "string", "every broken rule as reason@path, ';'-separated"),
                C("event_type", "string", "schema name claimed by the line, if readable"),
                C("schema_version", "int32", "schema version claimed by the line, if readable"),
                C("event_id", "string", "event id claimed by the line, if readable"),
                C("payload", "string", "the event as JSON with its PII fields tokenized (null for unparseable lines)", pii=True),
                C("payload_encrypted", "string", "AES-GCM ciphertext (base64) of an unparseable line", pii=True),
                C("payload_key_id", "string", "id of the key payload_encrypted is sealed with"),
                C("payload_preview", "string", "masked preview: letters→x, digits→9, so shape shows and content does not", pii=True),
                C("quarantined_at", "timestamp", "when the row was quarantined"),
            )
            + LINEAGE,
            partition_by=("ingest_date", "source"),
            retention_days=90,
        ),
        TableSpec(
            "silver.events",
            "Deduplicated human events (one row per event id), typed, dated by event time and sessionized (30-minute gap).",
            tuple(c for c in event_columns(defaults=True) if c.name != "ip_token")
            + (
                C("event_date", "date", "UTC date of event_time", nullable=False),
                C("session_id", "string", "derived session: sha256 of device token and session start", nullable=False),
                C("ingest_date", "date", "the day the event was first ingested", nullable=False),
                C("source", "string", "file or kafka", nullable=False),
            ),
            partition_by=("event_date",),
            key=("event_id",),
            retention_days=400,
            user_key="user_token",
            consumers=("silver.sessions", "gold.daily_kpis"),
        ),
        TableSpec(
            "silver.bot_events",
            "Events removed as bot traffic, with the reason, so bot filtering can be audited.",
            (
                C("event_id", "string", "event id", nullable=False),
                C("event_type", "string", "event type", nullable=False),
                C("event_time", "timestamp", "event time", nullable=False),
                C("device_token", "string", "device token", token=True),
                C("user_agent", "string", "user agent that was classified"),
                C("bot_reason", "string", "crawler_user_agent | headless_browser | inhuman_timing", nullable=False),
                C("ingest_date", "date", "ingest partition the event came in", nullable=False),
            ),
            partition_by=("ingest_date",),
            key=("event_id",),
            retention_days=90,
        ),
        TableSpec(
            "silver.sessions",
            "One row per derived session: start, end, activity counts and conversion.",
            (
                C("session_id", "string", "derived session id", nullable=False),
                C("session_date", "date", "UTC date of the session's first event", nullable=False),
                C("device_token", "string", "device token", token=True),
                C("user_token", "string", "user token of the first logged-in event, if any", token=True),
                C("client_session_id", "string", "the client's own session id at the first event"),
                C("session_start", "timestamp", "first event time", nullable=False),
                C("session_end", "timestamp", "last event time", nullable=False),
                C("duration_s", "double", "seconds from first to last event", nullable=False),
                C("event_count", "int64", "events in the session", nullable=False),
                C("page_views", "int64", "page_view events", nullable=False),
                C("product_views", "int64", "product_view events", nullable=False),
                C("searches", "int64", "search events", nullable=False),
                C("add_to_carts", "int64", "add_to_cart events", nullable=False),
                C("purchases", "int64", "purchase events", nullable=False),
                C("revenue", "double", "sum of purchase total_amount", nullable=False),
                C("channel", "string", "channel of the first event"),
                C("device", "string", "device class of the first event"),
                C("platform", "string", "platform of the first event"),
                C("converted", "bool", "the session has a purchase", nullable=False),
            ),
            partition_by=("session_date",),
            key=("session_id",),
            retention_days=400,
            user_key="user_token",
            consumers=("gold.daily_funnel",),
        ),
        *contract_specs(),
        TableSpec(
            "meta.schema_migrations",
            "Every table migration applied to this lake (lenslake/migrations/versions), one row each, append-only.",
            (
                C("id", "string", "the migration's 4-digit id (its file name is m<id>_<slug>.py)", nullable=False),
                C("description", "string", "the migration's one-line description", nullable=False),
                C("checksum", "string", "sha256 of the script's source when it was applied", nullable=False),
                C("applied_at", "timestamp", "when it finished", nullable=False),
                C("duration_ms", "int64", "how long it took", nullable=False),
                C("outcome", "string", "applied (it changed a table) | no-op (every table was already in shape or absent)", nullable=False),
                C("notes", "string", "what each operation did, one per line"),
            ),
            key=("id",),
        ),
    ]
    return {s.name: s for s in specs}


def contract_specs() -> list[TableSpec]:
    """Tables with a data contract (the gold tables services read) take their spec from it: one source."""
    from lenslake.contracts.table_contracts import table_contracts

    return [
        TableSpec(
            c.table,
            " ".join(c.description.split()),
            tuple(C(col.name, col.type, col.description, nullable=col.nullable) for col in c.columns),
            partition_by=c.partition_by,
            key=c.key,
            owner=c.owner,
            consumers=c.consumers,
            constraints=tuple((name, " ".join(sql.split())) for name, sql in c.constraints.items()),
        )
        for c in table_contracts().values()
    ]


def table_spec(name: str) -> TableSpec:
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"table {name!r} is not declared in lenslake.tables.catalogue()") from None
