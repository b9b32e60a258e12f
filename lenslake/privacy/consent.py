"""The consent ledger and the consent in force.

``privacy.consent_ledger`` is append-only: every decision (user, purpose, granted or withdrawn, when, where from) is
one row, identified by a hash of its content so a replayed feed appends nothing twice; rows are never updated (the
only deletion is erasure's). The decision in force for a user and purpose is the latest by ``recorded_at`` (ties:
a withdrawal wins, then the later ingest); ``privacy.current_consent`` materializes it as of now.

How downstream work enforces it (the consent purposes are lenslake.tables.CONSENT_PURPOSES):

* personalized recommendations, user embeddings: ``consented_users(store, "personalization", as_of)``; users
  outside the set get non-personalized results (popular / session-based) and no user embedding;
* marketing exports: ``consented_users(store, "marketing", as_of)``; sharing with partners: ``"data_sharing"``;
* analytics: ``withdrawn_users(store, "analytics")`` is excluded from gold (lenslake.pipeline._build_gold): a user
  who never answered is counted, one who withdrew is not.

Consent is opt-in for every purpose but analytics: no record means no consent.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore, WriteResult
from lenslake.tables import CONSENT_PURPOSES

LEDGER = "privacy.consent_ledger"
CURRENT = "privacy.current_consent"


def consent_id(user_token: str, purpose: str, granted: bool, recorded_at: dt.datetime, source: str) -> str:
    text = f"{user_token}|{purpose}|{int(bool(granted))}|{recorded_at.isoformat()}|{source}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_consent(store: DeltaStore, decisions: list[dict], *, now: dt.datetime,
                   source_file: str | None = None) -> WriteResult | None:
    """Append decisions (dicts with user_token, purpose, granted, recorded_at (aware datetime), source) that the
    ledger does not hold yet, in one commit, then rebuild ``privacy.current_consent``. Returns the ledger write
    (None when every decision was already there)."""
    rows = []
    for d in decisions:
        if d["purpose"] not in CONSENT_PURPOSES:
            raise ValueError(f"unknown consent purpose {d['purpose']!r}")
        rid = consent_id(d["user_token"], d["purpose"], d["granted"], d["recorded_at"], d["source"])
        rows.append({"consent_id": rid, "user_token": d["user_token"], "purpose": d["purpose"],
                     "granted": bool(d["granted"]), "recorded_at": d["recorded_at"], "source": d["source"],
                     "source_file": d.get("source_file", source_file), "ingested_at": now})
    held = set(store.read(LEDGER, columns=["consent_id"]).column(0).to_pylist()) if store.exists(LEDGER) else set()
    new, seen = [], set()
    for r in rows:
        if r["consent_id"] not in held and r["consent_id"] not in seen:
            seen.add(r["consent_id"])
            new.append(r)
    if not new:
        if not store.exists(CURRENT) and store.exists(LEDGER):
            rebuild_current(store)
        return None
    result = store.append(LEDGER, pa.Table.from_pylist(new))
    rebuild_current(store)
    return result


def current_consent(store: DeltaStore, as_of: dt.datetime | None = None) -> pa.Table:
    """The decision in force per (user, purpose), as of a time (default: every decision recorded)."""
    import polars as pl

    ledger = store.read(LEDGER, columns=["user_token", "purpose", "granted", "recorded_at", "source", "ingested_at"])
    if as_of is not None and ledger.num_rows:
        ledger = ledger.filter(pc.less_equal(ledger.column("recorded_at"), pa.scalar(as_of, ledger.schema.field("recorded_at").type)))
    frame = pl.from_arrow(ledger)
    if frame.height == 0:
        return store.read(CURRENT).slice(0, 0) if store.exists(CURRENT) else _empty_current()
    latest = (frame.with_columns(withdrawn=~pl.col("granted"))
              .sort(["user_token", "purpose", "recorded_at", "withdrawn", "ingested_at"])
              .group_by(["user_token", "purpose"], maintain_order=True).last()
              .select("user_token", "purpose", "granted", "recorded_at", "source"))
    return latest.to_arrow()


def _empty_current() -> pa.Table:
    from lenslake.tables import table_spec

    return table_spec(CURRENT).arrow_schema.empty_table()


def rebuild_current(store: DeltaStore) -> WriteResult:
    return store.overwrite(CURRENT, current_consent(store))


def consented_users(store: DeltaStore, purpose: str, as_of: dt.datetime | None = None) -> set[str]:
    """Tokens of the users whose decision in force for ``purpose`` (as of ``as_of``) is granted. The gate of every
    personalized or marketing output: users outside the set get non-personalized results, no embedding, no export."""
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}; one of {CONSENT_PURPOSES}")
    t = current_consent(store, as_of) if as_of is not None or not store.exists(CURRENT) else store.read(CURRENT)
    t = t.filter(pc.and_(pc.equal(t.column("purpose"), purpose), pc.equal(t.column("granted"), True)))
    return set(t.column("user_token").to_pylist())


def withdrawn_users(store: DeltaStore, purpose: str, as_of: dt.datetime | None = None) -> set[str]:
    """Tokens of the users whose decision in force for ``purpose`` is a withdrawal (analytics excludes them).
    Empty when no consent table exists."""
    if not store.exists(LEDGER):
        return set()
    t = current_consent(store, as_of) if as_of is not None or not store.exists(CURRENT) else store.read(CURRENT)
    t = t.filter(pc.and_(pc.equal(t.column("purpose"), purpose), pc.equal(t.column("granted"), False)))
    return set(t.column("user_token").to_pylist())
