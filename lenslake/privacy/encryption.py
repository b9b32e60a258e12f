"""Field-level envelope encryption of profile fields under per-user data keys.

Every user has one random 256-bit data key, kept in ``privacy.user_keys`` only wrapped (AES-GCM) by the key store's
active encryption key (``lenslake.privacy.keys``), with the user's token as associated data. A field value is sealed
with AES-256-GCM under the user's data key; its associated data is ``<table>|<field>|<user token>[|<qualifier>]``,
so a ciphertext copied to another user, field or row does not decrypt.

Crypto-shredding: ``shred_user_keys`` deletes users' rows from ``privacy.user_keys`` (a MERGE against a table of
tokens, so no token literal reaches ``_delta_log``) and vacuums the table's old files at once; from then on every
ciphertext of those users, in every table and every retained version, is unreadable.
"""

from __future__ import annotations

import base64
import datetime as dt
import os

import pyarrow as pa

from lenslake.delta import DeltaStore
from lenslake.privacy.keys import KeyRing, load_keys
from lenslake.settings import Settings

USER_KEYS = "privacy.user_keys"
DATA_KEY_ID = "dk1"  # one data key per user; the id names the scheme, so a later re-key can tell versions apart


class KeyUnavailable(LookupError):
    """The user has no data key: shredded (erased), or never stored."""


def associated_data(table: str, field: str, user_token: str, qualifier: str = "") -> bytes:
    return f"{table}|{field}|{user_token}|{qualifier}".encode()


def _wrap_aad(user_token: str) -> bytes:
    return f"privacy.user_keys|{user_token}".encode()


def _aesgcm(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def seal_value(key: bytes, value: str | None, aad: bytes) -> str | None:
    if value is None:
        return None
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _aesgcm(key).encrypt(nonce, value.encode("utf-8"), aad)).decode("ascii")


def open_value(key: bytes, sealed: str | None, aad: bytes) -> str | None:
    """Raises ``cryptography.exceptions.InvalidTag`` when the key or the associated data is not the one it was
    sealed with."""
    if sealed is None:
        return None
    raw = base64.b64decode(sealed)
    return _aesgcm(key).decrypt(raw[:12], raw[12:], aad).decode("utf-8")


def _unwrap(ring: KeyRing, row: dict) -> bytes:
    raw = base64.b64decode(row["wrapped_key"])
    return _aesgcm(ring.keys[row["wrap_key_id"]]).decrypt(raw[:12], raw[12:], _wrap_aad(row["user_token"]))


def user_keys(store: DeltaStore, settings: Settings, user_tokens, *, create: bool = False,
              now: dt.datetime | None = None) -> dict[str, bytes]:
    """The data keys of users (token → 32 bytes). With ``create``, users without one get a new key, written
    (wrapped) in one commit; without it, users without a key are simply absent from the answer."""
    import pyarrow.compute as pc

    wanted = sorted(set(user_tokens))
    ring = load_keys(settings).encryption
    found: dict[str, bytes] = {}
    if wanted and store.exists(USER_KEYS):
        t = store.read(USER_KEYS)
        rows = t.filter(pc.is_in(t.column("user_token"), value_set=pa.array(wanted, pa.string()))).to_pylist()
        found = {r["user_token"]: _unwrap(ring, r) for r in rows}
    missing = [t for t in wanted if t not in found]
    if create and missing:
        now = now or settings.now()
        new_rows = []
        for t in missing:
            key = os.urandom(32)
            nonce = os.urandom(12)
            wrapped = base64.b64encode(nonce + _aesgcm(ring.active_key).encrypt(nonce, key, _wrap_aad(t))).decode()
            new_rows.append({"user_token": t, "data_key_id": DATA_KEY_ID, "wrap_key_id": ring.active,
                             "wrapped_key": wrapped, "created_at": now})
            found[t] = key
        # merge without update: a key another run created meanwhile is never replaced (its ciphertexts stay readable)
        store.merge(USER_KEYS, pa.Table.from_pylist(new_rows), update=False)
        if len(found) != len(wanted):  # pragma: no cover - defensive
            raise RuntimeError("data keys missing after creation")
    return found


def shred_user_keys(store: DeltaStore, settings: Settings, user_tokens) -> int:
    """Crypto-shred users: delete their data keys (merge-delete, no literal in the log), then vacuum the key
    table's removed files with no retention, so no older version still holds a wrapped key. Returns how many keys
    were deleted. Idempotent: shredding a user twice deletes nothing the second time."""
    from deltalake import DeltaTable

    tokens = sorted(set(user_tokens))
    if not tokens or not store.exists(USER_KEYS):
        return 0
    before = store.count(USER_KEYS)
    source = pa.table({"user_token": pa.array(tokens, pa.string())})
    table = DeltaTable(str(store.path(USER_KEYS)))
    table.merge(source, predicate="t.user_token = s.user_token", source_alias="s", target_alias="t") \
        .when_matched_delete().execute()
    table = DeltaTable(str(store.path(USER_KEYS)))
    table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    return before - store.count(USER_KEYS)
