"""Feed files → validated rows, quarantine rows and one golden record per key.

Five feeds land daily under ``landing/catalog/<kind>/<YYYY-MM-DD>/*.ndjson`` (``lenslake.synth.feeds`` writes them):
products, media, relations, prices, inventory. Each line is checked against its feed's contract, a JSON Schema
derived with ``lenslake.contracts.avro`` (the same derivation as every registered contract) from the latest version
of the feed's registered Avro record (``SUBJECTS``: ``lenslake.feeds.product``, ``.media``, ``.relation``,
``.price``, ``.stock``). Every feed row also carries ``updated_at``, the source's change time (an envelope field,
outside the record).

A line that breaks a rule becomes a quarantine row with the first broken rule's reason code from the one vocabulary
(``lenslake.contracts.reasons``), its field path, every broken rule, and the file and line it came from:

* not a JSON object: ``malformed_json``; the record's rules: ``missing_required_field``, ``wrong_type``,
  ``not_in_enum``, ``pattern_mismatch``, ``out_of_range`` (negative stock or prices), ``invalid_length``;
* a date or time that matches the pattern but is no calendar date (2024-02-30): ``pattern_mismatch``;
* rules across fields (a promotion ending before it starts, a promotion above the list price, a product related to
  itself): ``constraint_violation``;
* a SKU no product has (prices, stock, media and relations of an unknown product): ``referential_integrity``.

Survivorship (one golden record per key; a feed may carry several rows for one key, e.g. an older export):

1. the row with the latest ``updated_at`` wins, whole (no field is taken from a losing row: in a price or stock row
   a null is meaningful, an ended promotion);
2. rows with the same ``updated_at`` are ranked by completeness: more non-null fields wins;
3. then the later line (file order, then line number) wins;
4. against the table: a winner older than the row it would replace (its ``updated_at``, or the current price
   version's ``valid_from``) is stale and not applied; a winner equal to the stored row in every business column is
   unchanged and not applied.

The losing rows are valid and counted as superseded, so every feed reconciles: lines = quarantined + valid, valid =
winners + superseded, winners = new + changed + unchanged + stale.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lenslake.catalog.rules import availability
from lenslake.contracts.reasons import check_reason

KINDS = ("products", "media", "relations", "prices", "inventory")  # the order a day's feeds are applied in
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
# Each feed's record in the schema registry (``lenslake/contracts/registry/``): its latest version is the contract.
SUBJECTS = {"products": "lenslake.feeds.product", "media": "lenslake.feeds.media",
            "relations": "lenslake.feeds.relation", "prices": "lenslake.feeds.price", "inventory": "lenslake.feeds.stock"}

# JSON Schema keyword → reason code.
KEYWORD_REASONS = {
    "required": "missing_required_field", "type": "wrong_type", "enum": "not_in_enum", "const": "not_in_enum",
    "pattern": "pattern_mismatch", "minimum": "out_of_range", "maximum": "out_of_range",
    "exclusiveMinimum": "out_of_range", "exclusiveMaximum": "out_of_range", "minLength": "invalid_length",
    "maxLength": "invalid_length", "minItems": "invalid_length", "maxItems": "invalid_length",
}


@dataclass(frozen=True)
class FeedKind:
    name: str
    key: tuple[str, ...]
    references: tuple[str, ...]  # fields that must name an existing product
    dates: tuple[str, ...] = ()  # string fields holding a calendar date
    # What completeness measures: the fields a complete record fills (promotions, restock dates and tiers are
    # absent by design, so they are not measured).
    measured: tuple[str, ...] = ()


FEEDS = {
    "products": FeedKind("products", ("sku",), (), measured=(
        "description", "frame_material", "frame_shape", "colour", "lens_width_mm", "bridge_mm", "temple_mm",
        "lens_types", "rx_sph_min", "rx_sph_max", "progressive_compatible", "face_width_fit")),
    "media": FeedKind("media", ("sku", "media_type", "position"), ("sku",), measured=("uri", "checksum_sha256")),
    "relations": FeedKind("relations", ("sku", "related_sku", "relation"), ("sku", "related_sku"), measured=("score",)),
    "prices": FeedKind("prices", ("sku",), ("sku",), ("promo_from", "promo_to"), measured=("list_price", "currency")),
    "inventory": FeedKind("inventory", ("sku", "location"), ("sku",), ("restock_date",),
                          measured=("location", "on_hand", "reserved")),
}


@functools.cache
def _schema(kind: str, _registry_state) -> dict:
    from lenslake.contracts.avro import json_schema
    from lenslake.contracts.registry import registry_for

    doc = json_schema(registry_for().latest(SUBJECTS[kind]).parsed)
    doc["properties"]["updated_at"] = {"type": "string", "pattern": TIMESTAMP,
                                       "description": "the source's change time (feed envelope)"}
    doc["required"] = [*doc["required"], "updated_at"]
    return doc


def feed_schema(kind: str) -> dict:
    """The JSON Schema every line of a feed is checked against (derived from the registry's state now)."""
    from lenslake.contracts.events import registry_state

    return _schema(kind, registry_state())


@functools.cache
def _validator(kind: str, _registry_state):
    import jsonschema

    return jsonschema.Draft202012Validator(_schema(kind, _registry_state))


# --- reading -----------------------------------------------------------------------------------------------------


def feed_dir(data_root: Path, kind: str) -> Path:
    return Path(data_root) / "landing" / "catalog" / kind


def feed_days(data_root: Path) -> list[str]:
    """Every landing day that holds a feed folder of any kind, in order."""
    days = set()
    for kind in KINDS:
        folder = feed_dir(data_root, kind)
        if folder.is_dir():
            days |= {p.name for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name)}
    return sorted(days)


def feed_files(data_root: Path, kind: str, day: str) -> list[Path]:
    """A feed day's files, clear or kept encrypted once applied (``lenslake.privacy.landing``), by clear name."""
    from lenslake.privacy.landing import listing

    return listing(feed_dir(data_root, kind) / day)


@dataclass
class Line:
    file: str  # relative to the data root
    number: int  # 1-based
    text: str


def read_lines(data_root: Path, kind: str, day: str) -> list[Line]:
    """Every line of a feed day; an encrypted file is decrypted (authenticated whole) and named by its clear name."""
    from lenslake.privacy import landing

    lines = []
    for path in feed_files(data_root, kind, day):
        rel = landing.clear_path(path).relative_to(data_root).as_posix()
        raw = landing.read_bytes(path, data_root)
        for i, chunk in enumerate(raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n"), start=1):
            lines.append(Line(rel, i, chunk.decode("utf-8", errors="replace")))
    return lines


# --- validation --------------------------------------------------------------------------------------------------


@dataclass
class Validated:
    kind: str
    day: str
    lines: int = 0
    valid: list[dict] = field(default_factory=list)  # docs, each with "_file" and "_line"
    quarantine: list[dict] = field(default_factory=list)  # catalog.feed_quarantine rows
    completeness: float = 1.0  # share of the measured fields that parseable lines fill

    @property
    def files(self) -> list[str]:
        return sorted({d["_file"] for d in self.valid} | {q["source_file"] for q in self.quarantine})


def _calendar(value: str, timestamp: bool) -> bool:
    try:
        if timestamp:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            dt.date.fromisoformat(value)
        return True
    except ValueError:
        return False


def violations(kind: str, doc: dict, known_skus: set[str] | None) -> list[tuple[str, str]]:
    """Every broken rule of one parsed line as (reason code, JSON path), the first broken rule first: the record's
    rules in field order, then the rules across fields, then referential integrity."""
    from lenslake.contracts.events import registry_state

    state = registry_state()
    schema = _schema(kind, state)
    order = {name: i for i, name in enumerate(schema["properties"])}
    found = []
    for error in _validator(kind, state).iter_errors(doc):
        path = list(error.absolute_path)
        keyword = error.validator
        if keyword == "required":
            m = re.match(r"^'(.+)' is a required property$", error.message)
            path = [*path, m.group(1) if m else "?"]
        reason = KEYWORD_REASONS.get(keyword, "wrong_type")
        top = str(path[0]) if path else ""
        if keyword == "type" and error.instance is None and len(path) == 1:
            reason = "missing_required_field"  # a required field sent as null
        found.append((order.get(top, len(order)), "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path), reason))
    broken = {p for _, p, _ in found}
    spec = FEEDS[kind]
    for name, timestamp in [(d, False) for d in spec.dates] + [("updated_at", True)]:
        value = doc.get(name)
        if isinstance(value, str) and f"$.{name}" not in broken and not _calendar(value, timestamp):
            found.append((order[name], f"$.{name}", "pattern_mismatch"))
    found.sort(key=lambda x: x[0])
    out = [(reason, path) for _, path, reason in found]
    if not out:
        out += _cross_field(kind, doc)
    if not out and known_skus is not None:
        out += [("referential_integrity", f"$.{f}") for f in spec.references if doc.get(f) not in known_skus]
    return [(check_reason(r), p) for r, p in out]


def _cross_field(kind: str, doc: dict) -> list[tuple[str, str]]:
    out = []
    if kind == "prices":
        if doc.get("promo_from") and doc.get("promo_to") and doc["promo_to"] < doc["promo_from"]:
            out.append(("constraint_violation", "$.promo_to"))
        if doc.get("promo_price") is not None and doc["promo_price"] > doc["list_price"]:
            out.append(("constraint_violation", "$.promo_price"))
    elif kind == "products":
        lo, hi = doc.get("rx_sph_min"), doc.get("rx_sph_max")
        if lo is not None and hi is not None and lo > hi:
            out.append(("constraint_violation", "$.rx_sph_max"))
    elif kind == "relations" and doc.get("sku") == doc.get("related_sku"):
        out.append(("constraint_violation", "$.related_sku"))
    return out


def quarantine_id(source_file: str, source_line: int) -> str:
    return hashlib.sha256(f"catalog|{source_file}|{source_line}".encode()).hexdigest()[:32]


def validate(kind: str, day: str, lines: list[Line], known_skus: set[str] | None, now: dt.datetime | None = None) -> Validated:
    """Split a day's lines of one feed into valid docs and quarantine rows (every line lands in exactly one)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    out = Validated(kind, day, lines=len(lines), completeness=completeness(kind, lines))
    for line in lines:
        doc = _parse(line.text)
        if doc is None:
            out.quarantine.append(_quarantine(kind, day, line, [("malformed_json", "$")], None, now))
            continue
        broken = violations(kind, doc, known_skus)
        if broken:
            out.quarantine.append(_quarantine(kind, day, line, broken, doc.get("sku"), now))
        else:
            out.valid.append({**doc, "_file": line.file, "_line": line.number})
    return out


def _parse(text: str) -> dict | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def completeness(kind: str, lines: list[Line]) -> float:
    """The share of the feed's measured fields that its parseable lines fill (1.0 when none parses)."""
    measured = FEEDS[kind].measured
    docs = [d for d in map(_parse, (line.text for line in lines)) if d is not None]
    if not docs or not measured:
        return 1.0
    return sum(d.get(f) is not None for d in docs for f in measured) / (len(docs) * len(measured))


def _quarantine(kind, day, line: Line, broken, sku, now) -> dict:
    reason, path = broken[0]
    return {
        "quarantine_id": quarantine_id(line.file, line.number), "feed": kind, "feed_day": dt.date.fromisoformat(day),
        "source_file": line.file, "source_line": line.number, "reason_code": reason, "field_path": path,
        "violations": ";".join(f"{r}@{p}" for r, p in broken), "sku": sku if isinstance(sku, str) else None,
        "payload": line.text, "quarantined_at": now,
    }


# --- survivorship ------------------------------------------------------------------------------------------------


def survivors(kind: str, docs: list[dict]) -> tuple[list[dict], int]:
    """One golden row per key (rules 1-3 of the module docstring) and how many rows lost."""
    key = FEEDS[kind].key
    best: dict[tuple, dict] = {}

    def rank(d):
        return (d["updated_at"], sum(v is not None for k, v in d.items() if not k.startswith("_")), d["_file"], d["_line"])

    for d in docs:
        k = tuple(d[c] for c in key)
        if k not in best or rank(d) > rank(best[k]):
            best[k] = d
    winners = sorted(best.values(), key=lambda d: tuple(str(d[c]) for c in key))
    return winners, len(docs) - len(winners)


# --- feed rows → table rows --------------------------------------------------------------------------------------


def timestamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def _date(value):
    return dt.date.fromisoformat(value) if value else None


def product_rows(doc: dict) -> tuple[dict, dict]:
    """A product feed row → (catalog.products row, catalog.eyewear_attributes row)."""
    at, feed = timestamp(doc["updated_at"]), doc["_file"]
    product = {k: doc.get(k) for k in ("sku", "product_type", "name", "description", "category", "brand", "model_code",
                                        "status")}
    product |= {"source": "feed", "source_id": None, "updated_at": at, "feed": feed}
    attrs = {k: doc.get(k) for k in ("sku", "frame_material", "frame_shape", "colour", "lens_width_mm", "bridge_mm",
                                      "temple_mm", "rx_sph_min", "rx_sph_max", "rx_cyl_max", "progressive_compatible",
                                      "gender", "face_width_fit")}
    lens_types = doc.get("lens_types")
    attrs |= {"rim_type": None, "lens_types": ",".join(lens_types) if lens_types else None, "updated_at": at, "feed": feed}
    return product, attrs


def table_row(kind: str, doc: dict) -> dict:
    """A media, relations, prices or inventory feed row → its table's row."""
    at, feed = timestamp(doc["updated_at"]), doc["_file"]
    if kind == "prices":
        tiers = doc.get("tiers")
        return {"sku": doc["sku"], "currency": doc["currency"], "list_price": float(doc["list_price"]),
                "promo_price": None if doc.get("promo_price") is None else float(doc["promo_price"]),
                "promo_from": _date(doc.get("promo_from")), "promo_to": _date(doc.get("promo_to")),
                "tier_prices": json.dumps(tiers, sort_keys=True, separators=(",", ":")) if tiers else None,
                "valid_from": at, "valid_to": None, "is_current": True, "feed": feed}
    if kind == "inventory":
        restock = _date(doc.get("restock_date"))
        on_hand, reserved = int(doc["on_hand"]), int(doc["reserved"])
        return {"sku": doc["sku"], "location": doc["location"], "on_hand": on_hand, "reserved": reserved,
                "available": max(on_hand - reserved, 0), "availability": availability(on_hand, reserved, restock),
                "restock_date": restock, "updated_at": at, "feed": feed}
    if kind == "media":
        return {k: doc[k] for k in ("sku", "media_type", "position", "uri", "checksum_sha256")} | {"updated_at": at, "feed": feed}
    if kind == "relations":
        return {k: doc.get(k) for k in ("sku", "related_sku", "relation", "score")} | {"updated_at": at, "feed": feed}
    raise ValueError(f"unknown feed kind {kind!r}")
