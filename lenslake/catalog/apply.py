"""Apply the pending feed days to the catalog tables: each table changes in ONE Delta commit per feed and day.

Days are applied in order (a price history and stock levels depend on it), each day's feeds in the order of
``feeds.KINDS`` (products first, so that prices, stock, media and relations of a product new that day find it).
For one feed and day, every table it touches gets at most one commit, a MERGE of only the rows that change
(survivorship and the comparison with the stored rows happen first, in Python: feeds are thousands of rows), so a
price or stock change is applied whole or not at all. Each commit records, in the same commit:

* a Delta application transaction ``catalog.feed.<kind>`` = the day as YYYYMMDD: a rerun skips what a table already
  holds, and a run that died between two tables' commits resumes at the table that lacks the day;
* commit metadata ``lenslake.actor`` (``feed:<kind>``), ``lenslake.feed_kind``, ``lenslake.feed_day`` and
  ``lenslake.feed`` (the files): who changed it, read back by the audit trail with the row-level change data feed.

Products, attributes, prices and stock keep Delta's change data feed, so old → new of every change is in the table's
own log. Invalidations (``catalog.invalidations``) are derived from the change data feed of the very commit that
applied a price or stock feed, so a rerun after a crash between the two writes derives the same records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.catalog import feeds as F
from lenslake.delta import DeltaStore, cast_to_spec, refused_rows
from lenslake.privacy import landing
from lenslake.tables import table_spec

LINEAGE_COLUMNS = ("updated_at", "feed", "computed_at", "created_at")  # never compared: not a change
# The tables each feed writes (besides catalog.feed_quarantine), in commit order.
TABLES = {
    "products": ("catalog.products", "catalog.eyewear_attributes", "catalog.taxonomy_nodes", "catalog.product_relations"),
    "media": ("catalog.media",),
    "relations": ("catalog.product_relations",),
    "prices": ("catalog.prices", "catalog.invalidations"),
    "inventory": ("catalog.inventory", "catalog.invalidations"),
}
DEPARTMENT_NAMES = {"eyeglasses": "Eyeglasses", "sunglasses": "Sunglasses", "lenses": "Lenses",
                    "contact-lenses": "Contact Lenses", "accessories": "Accessories"}


def app_id(kind: str) -> str:
    return f"catalog.feed.{kind}"


def day_version(day: str) -> int:
    return int(day.replace("-", ""))


@dataclass
class Upsert:
    table: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    version: int = -1
    skipped: bool = False  # the table already held this feed day


@dataclass
class FeedDayReport:
    kind: str
    day: str
    lines: int = 0
    valid: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    superseded: int = 0
    winners: int = 0
    completeness: float = 1.0
    tables: dict[str, Upsert] = field(default_factory=dict)
    invalidations: int = 0
    skipped: bool = False  # every table already held this feed day: nothing was read

    @property
    def applied(self) -> int:
        main = self.tables.get(main_table(self.kind))
        return (main.new + main.changed) if main else 0

    def summary(self) -> dict:
        main = self.tables.get(main_table(self.kind)) or Upsert(main_table(self.kind))
        return {"lines": self.lines, "valid": self.valid, "quarantined": sum(self.quarantined.values()),
                "superseded": self.superseded, "winners": self.winners, "new": main.new, "changed": main.changed,
                "unchanged": main.unchanged, "stale": main.stale, "invalidations": self.invalidations}


def main_table(kind: str) -> str:
    return TABLES[kind][0]


# --- writing -----------------------------------------------------------------------------------------------------


def commit_properties(kind: str | None, day: str | None, *, actor: str, feed: str, app: str | None = None):
    from deltalake import CommitProperties, Transaction

    meta = {"lenslake.actor": actor, "lenslake.feed": feed}
    if kind:
        meta |= {"lenslake.feed_kind": kind, "lenslake.feed_day": day}
    txns = [Transaction(app, day_version(day))] if app and day else None
    return CommitProperties(custom_metadata=meta, app_transactions=txns)


def ensure_table(store: DeltaStore, name: str) -> None:
    """Create the table in its declared shape (schema, constraints, change data feed) when it does not exist."""
    if not store.exists(name):
        store.append(name, table_spec(name).arrow_schema.empty_table())


def _merge(store: DeltaStore, name: str, source: pa.Table, predicate: str, build, props) -> int:
    from deltalake import DeltaTable

    ensure_table(store, name)
    merger = DeltaTable(str(store.path(name))).merge(source, predicate=predicate, source_alias="s", target_alias="t",
                                                     commit_properties=props)
    try:
        build(merger).execute()
    except Exception as e:
        if (refused := refused_rows(e)) is None:
            raise
        raise ValueError(f"{name}: rows break the table's CHECK constraints ({refused} in the first batch delta-rs "
                         "checked); nothing was merged") from None
    return store.version(name)


def _record_day(store: DeltaStore, name: str, kind: str, day: str) -> int:
    """A day that changes nothing in a table still records that the table holds it (an empty commit)."""
    ensure_table(store, name)
    return store.append(name, table_spec(name).arrow_schema.empty_table(), app_versions={app_id(kind): day_version(day)}).version


def _business_columns(name: str) -> list[str]:
    spec = table_spec(name)
    skip = set(LINEAGE_COLUMNS) | ({"valid_from", "valid_to", "is_current"} if name == "catalog.prices" else set())
    return [c for c in spec.column_names if c not in skip and c not in spec.key]


def _stored(store: DeltaStore, name: str, filter=None) -> dict[tuple, dict]:
    spec = table_spec(name)
    key = list(spec.key) if name != "catalog.prices" else ["sku"]
    return {tuple(r[k] for k in key): r for r in store.read(name, filter=filter).to_pylist()}


def upsert(store: DeltaStore, name: str, rows: list[dict], *, kind: str | None, day: str | None, actor: str,
           feed: str) -> Upsert:
    """Insert new keys and update changed ones in one MERGE commit (with the feed day's application transaction
    when ``kind`` and ``day`` are given). Rows older than the stored row (``updated_at``) are stale; rows equal in
    every business column are unchanged; neither is written."""
    result = Upsert(name)
    if kind and (store.app_version(name, app_id(kind)) or 0) >= day_version(day):
        result.skipped, result.version = True, store.version(name)
        return result
    spec = table_spec(name)
    stored = _stored(store, name)
    business = _business_columns(name)
    source = []
    for row in rows:
        old = stored.get(tuple(row[k] for k in spec.key))
        if old is None:
            result.new += 1
        elif "updated_at" in row and row["updated_at"] < old["updated_at"]:
            result.stale += 1
            continue
        elif all(_same(row.get(c), old.get(c)) for c in business):
            result.unchanged += 1
            continue
        else:
            result.changed += 1
        source.append(row)
    app = app_id(kind) if kind else None
    if source:
        data = cast_to_spec(spec, pa.Table.from_pylist(source, schema=spec.arrow_schema))
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
        result.version = _merge(store, name, data, predicate,
                                lambda m: m.when_matched_update_all().when_not_matched_insert_all(),
                                commit_properties(kind, day, actor=actor, feed=feed, app=app))
    elif kind:
        result.version = _record_day(store, name, kind, day)
    else:
        result.version = store.version(name)
    return result


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) < 1e-9
    return a == b


def apply_prices(store: DeltaStore, rows: list[dict], *, day: str, feed: str) -> Upsert:
    """Type-2: a changed price closes the SKU's current version (valid_to = the new version's valid_from) and opens
    a new one, both in one MERGE commit. A row not newer than the current version is stale (or unchanged)."""
    name, kind = "catalog.prices", "prices"
    result = Upsert(name)
    if (store.app_version(name, app_id(kind)) or 0) >= day_version(day):
        result.skipped, result.version = True, store.version(name)
        return result
    spec = table_spec(name)
    current = _stored(store, name, filter=pc.field("is_current") == True)  # noqa: E712
    business = _business_columns(name)
    source = []
    for row in rows:
        old = current.get((row["sku"],))
        if old is not None and all(_same(row.get(c), old.get(c)) for c in business):
            result.unchanged += 1
            continue
        if old is not None and row["valid_from"] <= old["valid_from"]:
            result.stale += 1
            continue
        if old is None:
            result.new += 1
        else:
            result.changed += 1
            source.append({**row, "_action": "close"})
        source.append({**row, "_action": "open"})
    if not source:
        result.version = _record_day(store, name, kind, day)
        return result
    schema = spec.arrow_schema.append(pa.field("_action", pa.string()))
    data = pa.Table.from_pylist(source, schema=schema)
    inserts = {c: f"s.{c}" for c in spec.column_names}
    result.version = _merge(
        store, name, data, "t.sku = s.sku AND t.is_current AND s._action = 'close'",
        lambda m: m.when_matched_update({"valid_to": "s.valid_from", "is_current": "false"})
                   .when_not_matched_insert(inserts, predicate="s._action = 'open'"),
        commit_properties(kind, day, actor=f"feed:{kind}", feed=feed, app=app_id(kind)))
    return result


# --- derived tables ----------------------------------------------------------------------------------------------


def taxonomy_rows(products: pa.Table) -> list[dict]:
    """The category tree from the products' categories: each department, and each department/sub-category."""
    nodes = {}
    for category in sorted({c for c in products.column("category").to_pylist() if c}):
        department, _, sub = category.partition("/")
        nodes[department] = {"node_id": department, "parent_id": None, "level": 1,
                             "name": DEPARTMENT_NAMES.get(department, department.replace("-", " ").title())}
        if sub:
            nodes[category] = {"node_id": category, "parent_id": department, "level": 2,
                               "name": sub.replace("_", " ").replace("-", " ").title()}
    return list(nodes.values())


def variant_rows(products: pa.Table, *, at: dt.datetime) -> list[dict]:
    """Colour variants: every ordered pair of frames sharing a model code (and a brand)."""
    groups: dict[tuple, list[str]] = {}
    for r in products.select(["sku", "brand", "model_code", "product_type"]).to_pylist():
        if r["model_code"] and r["product_type"] in ("optical_frame", "sunglasses"):
            groups.setdefault((r["brand"], r["model_code"], r["product_type"]), []).append(r["sku"])
    rows = []
    for skus in groups.values():
        for a in skus:
            for b in skus:
                if a != b:
                    rows.append({"sku": a, "related_sku": b, "relation": "variant", "score": None, "updated_at": at,
                                 "feed": "derived:model_code"})
    return rows


def sync_derived(store: DeltaStore, *, kind: str | None, day: str | None, actor: str, at: dt.datetime) -> dict[str, Upsert]:
    """Taxonomy nodes and variant relations follow the products (new ones inserted; nodes and edges are kept)."""
    products = store.read("catalog.products", columns=["sku", "brand", "model_code", "product_type", "category"])
    out = {"catalog.taxonomy_nodes": upsert(store, "catalog.taxonomy_nodes", taxonomy_rows(products), kind=kind,
                                            day=day, actor=actor, feed="derived:products.category")}
    out["catalog.product_relations"] = upsert_new_only(store, "catalog.product_relations", variant_rows(products, at=at),
                                                       kind=kind, day=day, actor=actor, feed="derived:model_code")
    return out


def upsert_new_only(store, name, rows, **kw) -> Upsert:
    """Like ``upsert``, but keys already stored are left as they are (derived rows never overwrite a feed's)."""
    spec = table_spec(name)
    stored = set(_stored(store, name)) if store.exists(name) else set()
    fresh = [r for r in rows if tuple(r[k] for k in spec.key) not in stored]
    result = upsert(store, name, fresh, **kw)
    result.unchanged += len(rows) - len(fresh)
    return result


# --- invalidations -----------------------------------------------------------------------------------------------


def commit_for_day(store: DeltaStore, name: str, kind: str, day: str) -> int | None:
    """The version of the MERGE that applied a feed day to a table (None: the day changed nothing there)."""
    for entry in store.history(name):
        if (entry.get("lenslake.feed_kind"), entry.get("lenslake.feed_day")) == (kind, day) and entry.get("operation") == "MERGE":
            return entry["version"]
    return None


def changes_of(store: DeltaStore, name: str, version: int) -> pa.Table:
    """The change data feed of one commit: inserts and update pre/post images (``_change_type``)."""
    from deltalake import DeltaTable

    return pa.table(DeltaTable(str(store.path(name))).load_cdf(starting_version=version, ending_version=version))


def _price_value(r: dict | None) -> str | None:
    if r is None:
        return None
    return json.dumps({"currency": r["currency"], "list_price": r["list_price"], "promo_price": r["promo_price"],
                       "promo_from": r["promo_from"].isoformat() if r["promo_from"] else None,
                       "promo_to": r["promo_to"].isoformat() if r["promo_to"] else None,
                       "tier_prices": json.loads(r["tier_prices"]) if r["tier_prices"] else None},
                      separators=(",", ":"))


def invalidation_rows(store: DeltaStore, name: str, version: int, now: dt.datetime) -> list[dict]:
    """One record per price change (a new current version) or availability change (a stock position whose
    availability is new or differs) in one commit of catalog.prices or catalog.inventory."""
    changes = changes_of(store, name, version).to_pylist()
    rows = []

    def record(kind, sku, location, old, new, effective_at, feed):
        iid = hashlib.sha256(f"{name}|{version}|{sku}|{location}".encode()).hexdigest()[:32]
        rows.append({"invalidation_id": iid, "kind": kind, "sku": sku, "location": location, "old_value": old,
                     "new_value": new, "source_table": name, "source_version": version, "feed": feed,
                     "effective_at": effective_at, "created_at": now})

    if name == "catalog.prices":
        before = {r["sku"]: r for r in changes if r["_change_type"] == "update_preimage"}
        for r in changes:
            if r["_change_type"] == "insert":
                record("price", r["sku"], None, _price_value(before.get(r["sku"])), _price_value(r), r["valid_from"], r["feed"])
    else:
        before = {(r["sku"], r["location"]): r for r in changes if r["_change_type"] == "update_preimage"}
        for r in changes:
            if r["_change_type"] in ("insert", "update_postimage"):
                old = before.get((r["sku"], r["location"]))
                if old is None or old["availability"] != r["availability"]:
                    record("availability", r["sku"], r["location"], old["availability"] if old else None,
                           r["availability"], r["updated_at"], r["feed"])
    return sorted(rows, key=lambda r: (r["sku"], r["location"] or ""))


def write_invalidations(store: DeltaStore, kind: str, day: str, now: dt.datetime) -> int:
    """The invalidations of a price or stock feed day, appended once (application transaction per feed)."""
    name, source = "catalog.invalidations", main_table(kind)
    if (store.app_version(name, app_id(kind)) or 0) >= day_version(day):
        return 0
    version = commit_for_day(store, source, kind, day)
    rows = invalidation_rows(store, source, version, now) if version is not None else []
    ensure_table(store, name)
    data = pa.Table.from_pylist(rows, schema=table_spec(name).arrow_schema)
    store.append(name, data, app_versions={app_id(kind): day_version(day)})
    return len(rows)


# --- one feed day, and every pending day -------------------------------------------------------------------------


def known_skus(store: DeltaStore) -> set[str]:
    return set(store.read("catalog.products", columns=["sku"]).column("sku").to_pylist())


def _held(store: DeltaStore, kind: str, day: str) -> bool:
    tables = (*TABLES[kind], "catalog.feed_quarantine")
    return all((store.app_version(t, app_id(kind)) or 0) >= day_version(day) for t in tables)


def apply_feed_day(store: DeltaStore, data_root: Path, kind: str, day: str, now: dt.datetime | None = None) -> FeedDayReport:
    now = now or dt.datetime.now(dt.timezone.utc)
    report = FeedDayReport(kind, day)
    if _held(store, kind, day):
        report.skipped = True
        landing.encrypt_files(F.feed_files(data_root, kind, day), data_root)  # held: its files only encrypted
        return report
    landed = F.feed_files(data_root, kind, day)  # listed before reading: only files that were read get encrypted
    lines = F.read_lines(data_root, kind, day)
    checked = F.validate(kind, day, lines, None if kind == "products" else known_skus(store), now)
    winners, superseded = F.survivors(kind, checked.valid)
    report.lines, report.valid, report.superseded, report.winners = checked.lines, len(checked.valid), superseded, len(winners)
    report.quarantined = dict(Counter(q["reason_code"] for q in checked.quarantine))
    report.completeness = checked.completeness
    files = ",".join(checked.files)
    actor = f"feed:{kind}"
    if kind == "products":
        pairs = [F.product_rows(d) for d in winners]
        report.tables["catalog.products"] = upsert(store, "catalog.products", [p for p, _ in pairs], kind=kind, day=day,
                                                   actor=actor, feed=files)
        report.tables["catalog.eyewear_attributes"] = upsert(store, "catalog.eyewear_attributes", [a for _, a in pairs],
                                                             kind=kind, day=day, actor=actor, feed=files)
        at = max((p["updated_at"] for p, _ in pairs), default=now)
        report.tables.update(sync_derived(store, kind=kind, day=day, actor=actor, at=at))
    elif kind == "prices":
        report.tables["catalog.prices"] = apply_prices(store, [F.table_row(kind, d) for d in winners], day=day, feed=files)
    else:
        name = main_table(kind)
        report.tables[name] = upsert(store, name, [F.table_row(kind, d) for d in winners], kind=kind, day=day,
                                     actor=actor, feed=files)
    if kind in ("prices", "inventory"):
        report.invalidations = write_invalidations(store, kind, day, now)
    _write_quarantine(store, kind, day, checked.quarantine)
    # Applied and committed: the day's files are kept only encrypted from now on (a re-read decrypts them).
    landing.encrypt_files(landed, data_root)
    return report


def _write_quarantine(store: DeltaStore, kind: str, day: str, rows: list[dict]) -> None:
    name = "catalog.feed_quarantine"
    if (store.app_version(name, app_id(kind)) or 0) >= day_version(day):
        return
    ensure_table(store, name)
    data = pa.Table.from_pylist(rows, schema=table_spec(name).arrow_schema)
    store.append(name, data, app_versions={app_id(kind): day_version(day)})


def pending_days(store: DeltaStore, data_root: Path) -> list[str]:
    """Feed days some feed of which a table does not hold yet, in order. A day older than what every table holds
    is not pending (a late folder would rewrite history: its rows are stale by survivorship anyway)."""
    return [d for d in F.feed_days(data_root) if not all(_held(store, k, d) for k in F.KINDS)]


def apply_pending(store: DeltaStore, data_root: Path, now: dt.datetime | None = None,
                  days: list[str] | None = None) -> list[FeedDayReport]:
    """Apply every pending feed day (or ``days``), in order, each day's feeds in ``feeds.KINDS`` order."""
    reports = []
    for day in days or pending_days(store, data_root):
        for kind in F.KINDS:
            reports.append(apply_feed_day(store, data_root, kind, day, now))
    return reports
