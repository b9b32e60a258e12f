"""The audit trail of a SKU, read from Delta's change data feed of the product, attribute, price and stock tables.

Every commit that changes one of them also writes its changed rows, before (``update_preimage``) and after
(``update_postimage``) or inserted, into the table's own log (``delta.enableChangeDataFeed``, set at creation), so
old → new is exact and cannot drift from the data. Who changed it is the row's ``feed`` column (the feed file, or the
importer's source) and the commit's ``lenslake.actor``; when is the commit's time (applied) and the row's source
time (``updated_at``, a price version's ``valid_from``). A type-2 price change is one commit that closes the old
version and inserts the new one: the trail shows it as one change, old price → new price.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pyarrow as pa

from lenslake.delta import DeltaStore
from lenslake.tables import table_spec

AUDITED = ("catalog.products", "catalog.eyewear_attributes", "catalog.prices", "catalog.inventory")
SKU = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_SKIP = {"updated_at", "feed", "valid_from", "valid_to", "is_current", "sku"}


@dataclass
class Change:
    applied_at: dt.datetime  # the commit's time
    table: str
    version: int
    actor: str  # feed:<kind>, import:myntra, or the Delta operation
    feed: str | None  # the row's source: feed file or importer source
    source_time: dt.datetime | None  # the source's change time
    change: str  # insert | update | delete
    key: str  # the row within the SKU: a stock location, or ""
    fields: list[tuple[str, object, object]] = field(default_factory=list)  # (column, old, new)

    def render(self) -> str:
        when = self.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        source = f", source time {self.source_time.strftime('%Y-%m-%dT%H:%M:%SZ')}" if self.source_time else ""
        where = f" [{self.key}]" if self.key else ""
        head = f"{when}  {self.table} v{self.version}{where}  {self.change} by {self.actor} ({self.feed or '-'}{source})"
        if self.change == "insert":
            body = ["    " + ", ".join(f"{name}={_fmt(new)}" for name, _, new in self.fields)]
        else:
            body = [f"    {name}: {_fmt(old)} → {_fmt(new)}" for name, old, new in self.fields]
        return "\n".join([head, *body])


def _fmt(v) -> str:
    if v is None:
        return "∅"
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def _commits(store: DeltaStore, name: str) -> dict[int, dict]:
    return {h["version"]: h for h in store.history(name)}


def _cdf(store: DeltaStore, name: str, sku: str) -> list[dict]:
    from deltalake import DeltaTable

    if not store.exists(name):
        return []
    reader = DeltaTable(str(store.path(name))).load_cdf(starting_version=0, predicate=f"sku = '{sku}'")
    return pa.table(reader).to_pylist()


def _business(name: str) -> list[str]:
    return [c for c in table_spec(name).column_names if c not in _SKIP]


def sku_history(store: DeltaStore, sku: str) -> list[Change]:
    """Every change to a SKU's product, attribute, price and stock rows, oldest first."""
    if not SKU.match(sku):
        raise ValueError(f"not a SKU: {sku!r}")
    changes: list[Change] = []
    for name in AUDITED:
        rows = _cdf(store, name, sku)
        if not rows:
            continue
        commits = _commits(store, name)
        columns = _business(name)
        by_version: dict[int, list[dict]] = {}
        for r in rows:
            by_version.setdefault(r["_commit_version"], []).append(r)
        for version, group in sorted(by_version.items()):
            commit = commits.get(version, {})
            actor = commit.get("lenslake.actor") or commit.get("operation", "?")
            applied = group[0]["_commit_timestamp"]
            changes.extend(_changes(name, version, group, columns, actor, applied))
    return sorted(changes, key=lambda c: (c.applied_at, AUDITED.index(c.table), c.key))


def _changes(name, version, group, columns, actor, applied) -> list[Change]:
    out = []
    key_of = (lambda r: r["location"]) if name == "catalog.inventory" else (lambda r: "")

    def change(kind, old, new):
        row = new or old
        fields = [(c, (old or {}).get(c), (new or {}).get(c)) for c in columns
                  if (old or {}).get(c) != (new or {}).get(c)]
        source_time = row.get("valid_from") if name == "catalog.prices" else row.get("updated_at")
        out.append(Change(applied, name, version, actor, row.get("feed"), source_time, kind, key_of(row), fields))

    pre = {key_of(r): r for r in group if r["_change_type"] == "update_preimage"}
    post = {key_of(r): r for r in group if r["_change_type"] == "update_postimage"}
    inserts = [r for r in group if r["_change_type"] == "insert"]
    if name == "catalog.prices":
        # a new version closes the previous one in the same commit: old = the closed version, new = the insert
        for r in inserts:
            change("update" if "" in pre else "insert", pre.get(""), r)
        if not inserts:
            for k in post:
                change("update", pre.get(k), post[k])
    else:
        for k in post:
            change("update", pre.get(k), post[k])
        for r in inserts:
            change("insert", None, r)
    for r in group:
        if r["_change_type"] == "delete":
            change("delete", r, None)
    return out


def render_history(store: DeltaStore, sku: str) -> str:
    changes = sku_history(store, sku)
    if not changes:
        return f"{sku}: no change recorded in {', '.join(AUDITED)}"
    lines = [f"{sku}: {len(changes)} changes (from the Delta change data feed of {', '.join(AUDITED)})"]
    return "\n".join(lines + [c.render() for c in changes])
