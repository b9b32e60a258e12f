"""People feeds → validated docs and quarantine rows.

Four CRM feeds land as full snapshots under ``landing/customers/`` (``lenslake.synth.people`` writes them):
customers, prescriptions, service_history, consent. Each line is checked against its registered schema
(``lenslake.feeds.<record>``, latest version), turned into a JSON Schema by ``lenslake.contracts.avro`` (the same
derivation as events and the product feed), with the reason codes of ``lenslake.contracts.reasons``. A line that
breaks a rule is quarantined in ``profiles.feed_quarantine``: the line only AES-GCM-sealed (it holds PII), a masked
preview, the user's token where the user id is readable. Counts reconcile: lines = valid + quarantined.

Fields a line carries beyond its registered schema are never stored; they are counted (``undeclared``) and the
minimization check fails on them (lenslake.profiles.minimization).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lenslake.catalog.feeds import KEYWORD_REASONS
from lenslake.contracts.reasons import check_reason

FEEDS = {  # feed (file stem) → registered subject
    "customers": "lenslake.feeds.customer",
    "prescriptions": "lenslake.feeds.prescription",
    "service_history": "lenslake.feeds.service_history",
    "consent": "lenslake.feeds.consent",
}


def feed_path(data_root: Path, feed: str) -> Path:
    return Path(data_root) / "landing" / "customers" / f"{feed}.ndjson"


@functools.cache
def _schema(subject: str, _registry_state) -> dict:
    from lenslake.contracts.avro import json_schema
    from lenslake.contracts.registry import registry_for

    return json_schema(registry_for().latest(subject).parsed)


def feed_schema(feed: str) -> dict:
    """The JSON Schema a feed's lines are checked against (from the registry's state now)."""
    from lenslake.contracts.events import registry_state

    return _schema(FEEDS[feed], registry_state())


@functools.cache
def _validator(subject: str, _registry_state):
    import jsonschema

    return jsonschema.Draft202012Validator(_schema(subject, _registry_state), format_checker=None)


def declared_fields(feed: str) -> list[str]:
    return list(feed_schema(feed)["properties"])


@dataclass
class Validated:
    feed: str
    file: str | None
    sha256: str | None
    lines: int = 0
    valid: list[dict] = field(default_factory=list)  # docs, each with "_line"
    quarantine: list[dict] = field(default_factory=list)  # parked lines (raw), sealed by the ingest
    undeclared: dict[str, int] = field(default_factory=dict)  # field → lines carrying it


def violations(feed: str, doc: dict) -> list[tuple[str, str]]:
    """Every broken rule of a parsed line as (reason, JSON path), in field order."""
    from lenslake.contracts.events import registry_state

    state = registry_state()
    schema = _schema(FEEDS[feed], state)
    order = {name: i for i, name in enumerate(schema["properties"])}
    found = []
    for error in _validator(FEEDS[feed], state).iter_errors(doc):
        path = list(error.absolute_path)
        if error.validator == "required":
            m = re.match(r"^'(.+)' is a required property$", error.message)
            path = [*path, m.group(1) if m else "?"]
        reason = KEYWORD_REASONS.get(error.validator, "wrong_type")
        if error.validator == "type" and error.instance is None and len(path) == 1:
            reason = "missing_required_field"
        top = str(path[0]) if path else ""
        found.append((order.get(top, len(order)), "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path), reason))
    for name, spec in schema["properties"].items():  # a date that matches the pattern but is no calendar date
        value = doc.get(name)
        fmt = spec.get("format")
        if isinstance(value, str) and fmt in ("date", "date-time") and not any(p == f"$.{name}" for _, p, _ in found):
            try:
                (dt.date.fromisoformat if fmt == "date" else lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00")))(value)
            except ValueError:
                found.append((order[name], f"$.{name}", "pattern_mismatch"))
    found.sort(key=lambda x: x[0])
    return [(check_reason(r), p) for _, p, r in found]


def validate_lines(feed: str, lines: list[str], file: str | None = None) -> Validated:
    declared = set(declared_fields(feed))
    out = Validated(feed, file, None, lines=len(lines))
    for number, text in enumerate(lines, start=1):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            out.quarantine.append({"line": number, "text": text, "broken": [("malformed_json", "$")], "user_id": None})
            continue
        for extra in set(doc) - declared:
            out.undeclared[extra] = out.undeclared.get(extra, 0) + 1
        broken = violations(feed, doc)
        if broken:
            out.quarantine.append({"line": number, "text": text, "broken": broken, "user_id": doc.get("user_id")})
        else:
            out.valid.append({k: v for k, v in doc.items() if k in declared} | {"_line": number})
    return out


def landed_path(data_root: Path, feed: str) -> Path | None:
    """The feed's landed file: the clear snapshot when one is there (not ingested yet: it wins over an older one),
    else the encrypted one kept once ingested (``lenslake.privacy.landing``), else None."""
    from lenslake.privacy.landing import sealed_path

    path = feed_path(data_root, feed)
    return path if path.exists() else sealed_path(path) if sealed_path(path).exists() else None


def read_feed(data_root: Path, feed: str) -> Validated:
    """Validate a landed feed file (an absent file: nothing, zero lines); an encrypted one is decrypted and
    authenticated whole, and keeps its clear name and the digest of its clear bytes."""
    from lenslake.privacy import landing

    found = landed_path(data_root, feed)
    if found is None:
        return Validated(feed, None, None)
    path = feed_path(data_root, feed)
    raw = landing.read_bytes(found, data_root)
    chunks = raw.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks = chunks[:-1]
    v = validate_lines(feed, [c.decode("utf-8", errors="replace") for c in chunks],
                       path.relative_to(data_root).as_posix())
    v.file = path.relative_to(data_root).as_posix()
    v.sha256 = hashlib.sha256(raw).hexdigest()
    return v


def quarantine_id(source_file: str, line: int, sha256: str | None) -> str:
    return hashlib.sha256(f"profiles|{source_file}|{sha256}|{line}".encode()).hexdigest()[:32]
