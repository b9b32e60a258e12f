"""Minimization: only fields a declared purpose needs are stored.

The check fails (one problem per finding) when

* a registered people-feed field is neither mapped to a stored column nor declared not stored (a new schema version
  added a field no one has declared a purpose for);
* a landed feed line carries a field its registered schema does not declare (it is dropped, never stored, and
  the producer must register it);
* a profile or privacy table column, declared or stored, has no declared purpose, or a stored column is not
  declared in the catalogue at all;
* a stored flexible attribute is not declared in ``lenslake.profiles.attributes.ATTRIBUTES``.
"""

from __future__ import annotations

import json

from lenslake.delta import DeltaStore
from lenslake.profiles import feeds as F
from lenslake.profiles.attributes import ATTRIBUTES
from lenslake.profiles.build import NOT_STORED, STORED
from lenslake.tables import PURPOSES, catalogue

LAYERS = ("profiles.", "privacy.")


def profile_tables() -> list[str]:
    from lenslake.profiles.build import QUARANTINE, TARGETS

    return [*TARGETS.values(), "profiles.behaviour", QUARANTINE, "privacy.current_consent", "privacy.user_keys",
            "privacy.access_log"]


def minimization_problems(store: DeltaStore, undeclared_in_feeds: dict[str, dict[str, int]] | None = None) -> list[str]:
    """Every finding (empty: the check passes). ``undeclared_in_feeds`` (feed → {field: lines}) comes from the
    ingest's validation; without it the landed feed files are read."""
    problems = []
    specs = catalogue()
    for feed in F.FEEDS:
        for name in F.declared_fields(feed):
            column = STORED.get(feed, {}).get(name)
            if column is None and name not in NOT_STORED.get(feed, {}):
                problems.append(f"feed {feed}: registered field {name!r} has no declared purpose (map it to a column "
                                f"in lenslake.profiles.build.STORED or declare it in NOT_STORED)")
            elif column is not None:
                target = specs["profiles." + feed if feed != "consent" else "privacy.consent_ledger"]
                if column not in target.column_names:
                    problems.append(f"feed {feed}: field {name!r} maps to {column!r}, not a column of {target.name}")
    if undeclared_in_feeds is None:
        undeclared_in_feeds = {}
        data_root = store.tables_dir.parent
        for feed in F.FEEDS:
            undeclared_in_feeds[feed] = F.read_feed(data_root, feed).undeclared
    for feed, extra in undeclared_in_feeds.items():
        for name, lines in sorted(extra.items()):
            problems.append(f"feed {feed}: {lines} lines carry {name!r}, a field its registered schema does not declare")
    for table in profile_tables():
        spec = specs[table]
        for c in spec.columns:
            if not c.purpose:
                problems.append(f"{table}.{c.name}: no declared purpose")
            elif set(c.purpose) - set(PURPOSES):
                problems.append(f"{table}.{c.name}: undeclared purposes {sorted(set(c.purpose) - set(PURPOSES))}")
        for name in store.columns(table):
            if name not in spec.column_names:
                problems.append(f"{table}: stored column {name!r} is not declared in the table catalogue")
    if store.exists("profiles.customers"):
        keys = set()
        for a in store.read("profiles.customers", columns=["attributes"]).column(0).to_pylist():
            keys |= set(json.loads(a or "{}"))
        for k in sorted(keys - set(ATTRIBUTES)):
            problems.append(f"profiles.customers.attributes: stored attribute {k!r} is not declared")
    return problems
