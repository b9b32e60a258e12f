"""Flexible profile attributes: a JSON object per profile (``profiles.customers.attributes``), behind feature flags.

An attribute is declared here (name, purpose, how it is derived) before it may be stored: the minimization check
fails on a stored key no declaration names. A new attribute rolls out in two steps:

1. enable its flag in the flags file (``<data_root>/profiles/feature_flags.json``, ``lenslake profiles flag``):
   from then on the customers asset fills it for every profile it writes;
2. backfill the profiles written before (``backfill_attribute``; the ``profile_attribute_backfill_job``, or
   ``lenslake profiles backfill ATTRIBUTE``): idempotent (a profile that holds the key is skipped, so a rerun or a
   resumed run fills only what is left), in batches, reporting progress after each batch.

A disabled flag stops both: the asset leaves the attribute alone and the backfill refuses to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore
from lenslake.settings import Settings

CUSTOMERS = "profiles.customers"


@dataclass(frozen=True)
class Attribute:
    name: str
    purpose: str
    doc: str
    derive: Callable[[DeltaStore, pa.Table], dict[str, object]]  # (store, customer rows) → {user_token: value}


def _face_width_fit(store: DeltaStore, rows: pa.Table) -> dict[str, object]:
    """narrow | medium | wide, from the measured face width (the catalogue's face_width_fit of frames)."""
    out = {}
    for token, width in zip(rows.column("user_token").to_pylist(), rows.column("face_width_mm").to_pylist()):
        out[token] = None if width is None else "narrow" if width < 133 else "medium" if width < 145 else "wide"
    return out


def _value_tier(store: DeltaStore, rows: pa.Table) -> dict[str, object]:
    """none | low | mid | high from the net spend in profiles.behaviour (none: no purchase seen)."""
    tokens = rows.column("user_token").to_pylist()
    spend = {}
    if store.exists("profiles.behaviour"):
        b = _of_users(store.read("profiles.behaviour", columns=["user_token", "monetary"]), tokens)
        spend = dict(zip(b.column(0).to_pylist(), b.column(1).to_pylist()))
    out = {}
    for t in tokens:
        m = spend.get(t) or 0.0
        out[t] = "none" if m <= 0 else "low" if m < 150 else "mid" if m < 400 else "high"
    return out


def _of_users(table: pa.Table, tokens) -> pa.Table:
    # filtered after reading: a dataset filter on a merged table can meet string_view statistics (delta-rs) that
    # pyarrow cannot compare
    return table.filter(pc.is_in(table.column("user_token"), value_set=pa.array(list(tokens), pa.string())))


ATTRIBUTES: dict[str, Attribute] = {
    a.name: a for a in (
        Attribute("face_width_fit", "personalization", "frame fit from the measured face width", _face_width_fit),
        Attribute("value_tier", "personalization", "spend tier from profiles.behaviour", _value_tier),
    )
}


# --- flags -------------------------------------------------------------------------------------------------------


def flags_path(settings: Settings) -> Path:
    return Path(settings.data_root) / "profiles" / "feature_flags.json"


def flags(settings: Settings) -> dict[str, bool]:
    """Every declared attribute's flag (absent from the file: off)."""
    path = flags_path(settings)
    stored = json.loads(path.read_text()) if path.exists() else {}
    return {name: bool(stored.get(name, False)) for name in ATTRIBUTES}


def set_flag(settings: Settings, attribute: str, enabled: bool) -> dict[str, bool]:
    _declared(attribute)
    path = flags_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = flags(settings) | {attribute: enabled}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return current


def enabled_attributes(settings: Settings) -> list[str]:
    return [name for name, on in flags(settings).items() if on]


def _declared(attribute: str) -> Attribute:
    if attribute not in ATTRIBUTES:
        raise KeyError(f"attribute {attribute!r} is not declared in lenslake.profiles.attributes.ATTRIBUTES "
                       f"(declared: {sorted(ATTRIBUTES)})")
    return ATTRIBUTES[attribute]


def with_attributes(store: DeltaStore, rows: pa.Table, names: list[str], existing: dict[str, str] | None = None) -> list[str]:
    """The ``attributes`` JSON of each row: what it held (``existing``: token → JSON) plus ``names`` derived now."""
    tokens = rows.column("user_token").to_pylist()
    values = {n: ATTRIBUTES[n].derive(store, rows) for n in names}
    out = []
    for t in tokens:
        doc = json.loads((existing or {}).get(t) or "{}")
        for n in names:
            doc[n] = values[n].get(t)
        out.append(json.dumps(doc, sort_keys=True, separators=(",", ":")))
    return out


# --- backfill ----------------------------------------------------------------------------------------------------


class FlagDisabled(RuntimeError):
    pass


@dataclass
class BackfillReport:
    attribute: str
    profiles: int = 0  # profiles in the table
    already: int = 0  # held the attribute before this run
    filled: int = 0  # filled by this run
    batches: int = 0

    @property
    def remaining(self) -> int:
        return self.profiles - self.already - self.filled


def missing_attribute(store: DeltaStore, attribute: str) -> list[str]:
    """Tokens of the profiles whose attributes lack the key (a JSON null counts as filled)."""
    if not store.exists(CUSTOMERS):
        return []
    t = store.read(CUSTOMERS, columns=["user_token", "attributes"])
    return [tok for tok, a in zip(t.column(0).to_pylist(), t.column(1).to_pylist())
            if attribute not in json.loads(a or "{}")]


def backfill_attribute(store: DeltaStore, settings: Settings, attribute: str, *, batch_size: int = 10_000,
                       progress: Callable[[int, int], None] | None = None) -> BackfillReport:
    """Fill ``attribute`` for every profile that lacks it, ``batch_size`` profiles per commit, calling
    ``progress(filled so far, to fill)`` after each commit. Refuses while the attribute's flag is off."""
    _declared(attribute)
    if not flags(settings)[attribute]:
        raise FlagDisabled(f"the feature flag of {attribute!r} is off: enable it first (lenslake profiles flag "
                           f"{attribute} --on)")
    report = BackfillReport(attribute, profiles=store.count(CUSTOMERS))
    todo = missing_attribute(store, attribute)
    report.already = report.profiles - len(todo)
    if progress:
        progress(0, len(todo))
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        rows = _of_users(store.read(CUSTOMERS), batch)
        existing = dict(zip(rows.column("user_token").to_pylist(), rows.column("attributes").to_pylist()))
        rows = rows.set_column(rows.schema.get_field_index("attributes"), "attributes",
                               pa.array(with_attributes(store, rows, [attribute], existing), pa.string()))
        store.merge(CUSTOMERS, rows)
        report.filled += rows.num_rows
        report.batches += 1
        if progress:
            progress(report.filled, len(todo))
    return report
