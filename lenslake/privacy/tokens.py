"""Tokens (keyed HMAC-SHA256, ``<key id>_<base32>``) and sealing (AES-GCM) of PII.

Tokens are computed in Python once per distinct value and joined back, so both engines write the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import pyarrow as pa

from lenslake.privacy.keys import KeyRing

TOKEN_BYTES = 20  # 160 bits: 32 base32 characters, no padding


def token(value: str, ring: KeyRing) -> str:
    digest = hmac.new(ring.active_key, value.encode("utf-8"), hashlib.sha256).digest()[:TOKEN_BYTES]
    return f"{ring.active}_{base64.b32encode(digest).decode('ascii').lower()}"


def token_map(values: pa.Array, ring: KeyRing) -> pa.Table:
    """``value → token`` for the distinct non-null values given."""
    distinct = [v for v in values.unique().to_pylist() if v is not None]
    return pa.table({"value": pa.array(distinct, pa.string()), "token": pa.array([token(v, ring) for v in distinct], pa.string())})


def tokenize_columns(engine, df, columns: dict[str, str], ring: KeyRing):
    """Replace each source column by its token column (``{"email": "email_token"}``); raw columns are dropped."""
    if not columns:
        return df
    F = engine.F
    values = df.select(F.explode(F.array(*[F.col(src).cast("string") for src in columns])).alias("value"))
    distinct = engine.to_arrow(values.where(F.col("value").isNotNull()).distinct()).column("value")
    mapping = engine.from_arrow(token_map(distinct, ring))
    for src, dst in columns.items():
        m = mapping.select(F.col("value").alias(f"_v_{src}"), F.col("token").alias(dst))
        df = df.join(m, F.col(src).cast("string") == F.col(f"_v_{src}"), "left").drop(f"_v_{src}", src)
    return df


def seal(plaintext: bytes, ring: KeyRing, associated_data: bytes) -> tuple[str, str]:
    """AES-256-GCM; returns (base64 nonce‖ciphertext, key id)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    ct = AESGCM(ring.active_key).encrypt(nonce, plaintext, associated_data)
    return base64.b64encode(nonce + ct).decode("ascii"), ring.active


def unseal(sealed: str, key_id: str, ring: KeyRing, associated_data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(sealed)
    return AESGCM(ring.keys[key_id]).decrypt(raw[:12], raw[12:], associated_data)


_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_DIGIT = re.compile(r"\d")


def masked_preview(text: str, length: int = 80) -> str:
    """The shape of a line without its content: letters → x, digits → 9, cut to ``length``."""
    return _DIGIT.sub("9", _LETTER.sub("x", text[:length]))
