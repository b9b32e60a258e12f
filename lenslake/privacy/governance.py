"""The privacy ledgers (erasure requests, suppression list, SQL access log) and the suppression of erased users.

The suppression list holds one keyed hash per erased user id, under the *suppression* key (never the token key:
rotating or leaking one says nothing about the other), so a replay of landing files or Kafka topics cannot bring an
erased user back: ``drop_suppressed`` removes their lines before bronze, vectorized (the user id is read from each
raw line by one regular expression, each distinct id is hashed once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.settings import Settings

ERASURE_REQUESTS = "privacy.erasure_requests"
SUPPRESSED_USERS = "privacy.suppressed_users"
SQL_ACCESS_LOG = "privacy.sql_access_log"

# The top-level user id member of a raw event line (and of a customer feed line).
USER_ID_PATTERN = r'"user_id"\s*:\s*"(?P<uid>(?:[^"\\]|\\.)*)"'


def governance_specs() -> list:
    """Table specs of the privacy ledgers (added to the catalogue by ``lenslake.tables``)."""
    from lenslake.tables import C, TableSpec

    return [
        TableSpec(
            ERASURE_REQUESTS,
            "Right-to-erasure requests: one row per request, pending until executed; the subjects are kept only sealed "
            "while pending and nulled (then vacuumed) once done.",
            (
                C("request_id", "string", "erasure request id (er_<hex>)", nullable=False),
                C("requested_at", "timestamp", "when the request was recorded", nullable=False),
                C("subjects", "int32", "how many user ids the request names", nullable=False),
                C("status", "string", "pending | done", nullable=False),
                C("subjects_sealed", "string", "AES-GCM ciphertext of the user ids, while pending (null once done)", pii=True),
                C("subjects_key_id", "string", "id of the key subjects_sealed is sealed with"),
                C("completed_at", "timestamp", "when the erasure finished"),
                C("receipt", "string", "path of the erasure receipt, relative to the data root"),
            ),
            key=("request_id",),
            owner="privacy-office",
        ),
        TableSpec(
            SUPPRESSED_USERS,
            "Erased users, as a keyed hash under the suppression key only: bronze ingestion drops their events.",
            (
                C("subject_hash", "string", "HMAC-SHA256 of the user id under the suppression key", nullable=False),
                C("key_id", "string", "suppression key id", nullable=False),
                C("request_id", "string", "the erasure request that added it", nullable=False),
                C("suppressed_at", "timestamp", "when it was added", nullable=False),
            ),
            key=("subject_hash",),
            owner="privacy-office",
        ),
        TableSpec(
            SQL_ACCESS_LOG,
            "Append-only log of every read of a PII-bearing table through the analyst SQL entry point or the API.",
            (
                C("logged_at", "timestamp", "when the read happened", nullable=False),
                C("role", "string", "the reader's role", nullable=False),
                C("principal", "string", "who read (OS user or service name)"),
                C("entry_point", "string", "sql | api", nullable=False),
                C("table_name", "string", "the PII-bearing table read", nullable=False),
                C("columns", "string", "columns exposed, with their treatment (col:allow|mask), comma-separated"),
                C("query_sha256", "string", "sha256 of the query text (the text itself may hold identifiers)"),
                C("outcome", "string", "allowed | denied"),
                C("log_date", "date", "UTC date of logged_at", nullable=False),
            ),
            partition_by=("log_date",),
            owner="privacy-office",
            retention_days=400,
        ),
    ]


# --- the suppression key and hash ------------------------------------------------------------------------------------


def suppression_key(settings: Settings) -> tuple[str, bytes]:
    """(key id, key) of the suppression list: the setting, or a dev key file beside (not inside) the token keys."""
    if settings.suppression_key:
        kid, _, b64 = settings.suppression_key.get_secret_value().partition(":")
        return kid, base64.b64decode(b64)
    path = settings.data_root / "keys" / "suppression-key.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"active": "s1", "keys": {"s1": base64.b64encode(secrets.token_bytes(32)).decode()}}, f)
        os.replace(tmp, path)
    doc = json.loads(Path(path).read_text())
    return doc["active"], base64.b64decode(doc["keys"][doc["active"]])


def subject_hash(user_id: str, key: bytes) -> str:
    return hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def suppressed_hashes(settings: Settings) -> set[str]:
    from lenslake.delta import DeltaStore

    store = DeltaStore(settings.tables_dir)
    if not store.exists(SUPPRESSED_USERS):
        return set()
    return set(store.read(SUPPRESSED_USERS, columns=["subject_hash"]).column(0).to_pylist())


def user_ids_of_lines(lines: pa.Array) -> pa.Array:
    """The top-level ``user_id`` of each raw JSON line (null where absent or null), vectorized."""
    extracted = pc.extract_regex(lines, USER_ID_PATTERN)
    return pc.struct_field(extracted, [0])


def suppressed_mask(lines: pa.Array, hashes: set[str], key: bytes) -> pa.Array:
    """True for the lines of suppressed users: each distinct user id is hashed once."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    return suppressed_user_mask(user_ids_of_lines(lines), hashes, key)


def suppressed_user_mask(user_ids: pa.Array, hashes: set[str], key: bytes) -> pa.Array:
    """True where the user id (clear, before tokenization) is a suppressed user's: each distinct id hashed once."""
    if isinstance(user_ids, pa.ChunkedArray):
        user_ids = user_ids.combine_chunks()
    encoded = pc.dictionary_encode(user_ids)
    flags = pa.array([subject_hash(v, key) in hashes for v in encoded.dictionary.to_pylist()], pa.bool_())
    return pc.fill_null(pc.take(flags, encoded.indices), False)


def drop_suppressed(lines: pa.Table, settings: Settings) -> tuple[pa.Table, int]:
    """The landing lines without those of erased users, and how many were dropped (0 and no work when the
    suppression list is empty)."""
    kept, dropped = split_suppressed(lines, settings)
    return kept, dropped.num_rows


def split_suppressed(lines: pa.Table, settings: Settings, *, user_column: str | None = None) -> tuple[pa.Table, pa.Table]:
    """(the lines to ingest, the lines of erased users): the second is what a caller counts per source position.
    ``user_column``: rows that hold the clear user id in a column (decoded Kafka records) instead of a JSON line."""
    hashes = suppressed_hashes(settings)
    if not hashes or lines.num_rows == 0:
        return lines, lines.slice(0, 0)
    _, key = suppression_key(settings)
    if user_column:
        mask = suppressed_user_mask(lines.column(user_column), hashes, key)
    else:
        mask = suppressed_mask(lines.column("line"), hashes, key)
    return lines.filter(pc.invert(mask)), lines.filter(mask)
