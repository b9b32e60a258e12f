"""The one way to read encrypted profile fields: ``decrypt_profile_fields``.

It checks the caller's role and stated purpose against the policy, and appends one row to the append-only
``privacy.access_log`` for every call (who, role, purpose, user, fields, time, outcome), allowed or not.

Policy: a role may act for some purposes (``ROLE_PURPOSES``); a field is released for a purpose its column declares
in the table catalogue (``Column.purpose``), and for ``privacy`` (a subject-access request covers every field). A
consent purpose (marketing, …) also needs the user's consent in force. One field refused refuses the call.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore
from lenslake.settings import Settings
from lenslake.tables import CONSENT_PURPOSES, catalogue

ACCESS_LOG = "privacy.access_log"
ROLE_PURPOSES: dict[str, frozenset[str]] = {
    "customer_service": frozenset({"service"}),
    "optometrist": frozenset({"eye_care", "service"}),
    "marketing": frozenset({"marketing"}),
    "privacy_officer": frozenset({"privacy"}),
}


class AccessDenied(PermissionError):
    pass


@dataclass(frozen=True)
class EncryptedField:
    name: str  # what callers ask for: "email", "prescription"
    table: str
    column: str
    purposes: frozenset[str]


def encrypted_fields() -> dict[str, EncryptedField]:
    """Every encrypted column of the catalogue, by field name (column name without ``_enc``)."""
    out = {}
    for spec in catalogue().values():
        for c in spec.columns:
            if c.encrypted:
                name = c.name.removesuffix("_enc")
                out[name] = EncryptedField(name, spec.name, c.name, frozenset(c.purpose) | {"privacy"})
    return out


def decision(role: str, purpose: str, fields, *, consented: bool = True) -> str | None:
    """Why the policy refuses (None: allowed)."""
    known = encrypted_fields()
    unknown = [f for f in fields if f not in known]
    if unknown:
        return f"unknown fields {unknown}"
    if purpose not in ROLE_PURPOSES.get(role, frozenset()):
        return f"role {role!r} may not act for purpose {purpose!r}"
    refused = [f for f in fields if purpose not in known[f].purposes]
    if refused:
        return f"fields {refused} are not declared for purpose {purpose!r}"
    if purpose in CONSENT_PURPOSES and not consented:
        return f"the user has not consented to {purpose!r}"
    return None


def decrypt_profile_fields(store: DeltaStore, settings: Settings, *, caller: str, role: str, purpose: str,
                           user_token: str, fields) -> dict:
    """Decrypt some of one user's encrypted fields ({field: value}; ``prescription`` is {eye: {…}}). Raises
    ``AccessDenied`` when the policy refuses, ``KeyUnavailable`` when the user's data key is gone (shredded);
    either way the call is logged first."""
    from lenslake.privacy.encryption import KeyUnavailable, associated_data, open_value, user_keys

    fields = list(dict.fromkeys(fields))
    now = settings.now()
    consented = True
    if purpose in CONSENT_PURPOSES:
        from lenslake.privacy.consent import consented_users

        consented = user_token in consented_users(store, purpose, now)
    reason = decision(role, purpose, fields, consented=consented)
    if reason:
        _log(store, now, caller, role, purpose, user_token, fields, "denied", reason)
        raise AccessDenied(reason)
    key = user_keys(store, settings, [user_token]).get(user_token)
    if key is None:
        _log(store, now, caller, role, purpose, user_token, fields, "unavailable", "no data key (shredded or never stored)")
        raise KeyUnavailable("the user's data key is gone: their encrypted fields are unreadable")
    known = encrypted_fields()
    out = {}
    by_table: dict[str, list[EncryptedField]] = {}
    for f in fields:
        by_table.setdefault(known[f].table, []).append(known[f])
    for table, wanted in by_table.items():
        t = store.read(table)
        rows = t.filter(pc.equal(t.column("user_token"), user_token)).to_pylist()
        for f in wanted:
            if table == "profiles.prescriptions":
                out[f.name] = {r["eye"]: json.loads(open_value(key, r[f.column], associated_data(table, f.name, user_token, r["eye"])))
                               for r in rows}
            else:
                out[f.name] = open_value(key, rows[0][f.column], associated_data(table, f.name, user_token)) if rows else None
    _log(store, now, caller, role, purpose, user_token, fields, "granted", None)
    return out


def _log(store, now: dt.datetime, caller, role, purpose, user_token, fields, outcome, reason) -> None:
    row = {"access_id": uuid.uuid4().hex, "accessed_at": now, "caller": caller, "role": role, "purpose": purpose,
           "user_token": user_token, "fields": ",".join(fields), "outcome": outcome, "reason": reason}
    store.append(ACCESS_LOG, pa.Table.from_pylist([row]))
