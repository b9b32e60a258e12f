"""The marketing audience: the customers whose marketing consent is in force, and nobody else.

Rebuilt whole from ``privacy.current_consent`` on every run (an overwrite, so a withdrawal removes the customer on the
next run), restricted to customers with a profile (the CRM can only reach those). It holds tokens and the consent's
time and source only; contact details stay encrypted in ``profiles.customers`` and are read through
``lenslake.privacy.accessor.decrypt_profile_fields(..., purpose="marketing")``, which checks consent once more at
send time.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore, WriteResult
from lenslake.privacy.consent import consented_users, current_consent
from lenslake.tables import table_spec

TABLE = "profiles.marketing_audience"


def build_audience(store: DeltaStore, now: dt.datetime) -> pa.Table:
    consent = current_consent(store, now)
    consent = consent.filter(pc.and_(pc.equal(consent.column("purpose"), "marketing"),
                                     pc.equal(consent.column("granted"), True)))
    customers = pa.array(sorted(set(store.read("profiles.customers", columns=["user_token"]).column(0).to_pylist())),
                         pa.string())
    consent = consent.filter(pc.is_in(consent.column("user_token"), value_set=customers)).sort_by("user_token")
    n = consent.num_rows
    return pa.table({
        "user_token": consent.column("user_token"),
        "consent_granted_at": consent.column("recorded_at"),
        "consent_source": consent.column("source"),
        "computed_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
    }, schema=table_spec(TABLE).arrow_schema)


def write_audience(store: DeltaStore, now: dt.datetime) -> tuple[WriteResult, int]:
    audience = build_audience(store, now)
    return store.overwrite(TABLE, audience), audience.num_rows


def without_consent(store: DeltaStore, now: dt.datetime) -> list[str]:
    """Tokens in the audience whose marketing consent is not in force now (the blocking check: empty)."""
    if not store.exists(TABLE):
        return []
    held = set(store.read(TABLE, columns=["user_token"]).column(0).to_pylist())
    return sorted(held - consented_users(store, "marketing", as_of=now))
