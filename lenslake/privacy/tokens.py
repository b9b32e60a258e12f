"""Tokens (keyed HMAC-SHA256, ``<key id>_<base32>``) and sealing (AES-GCM) of PII.

Tokens are computed in Python once per distinct value and joined back, so both engines write the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lenslake.privacy.keys import KeyRing

TOKEN_BYTES = 20  # 160 bits: 32 base32 characters, no padding


def token(value: str, ring: KeyRing) -> str:
    digest = hmac.new(ring.active_key, value.encode("utf-8"), hashlib.sha256).digest()[:TOKEN_BYTES]
    return f"{ring.active}_{base64.b32encode(digest).decode('ascii').lower()}"


def tokens(values: list[str], ring: KeyRing) -> pa.StringArray:
    """``token`` of many values at once, the same text: one HMAC each (the one-shot C call), then the base32 of all
    the digests in one call and the Arrow strings laid out from it (20 bytes are whole 5-byte base32 groups, so each
    digest is exactly 32 characters of the joined text)."""
    key = ring.active_key
    digests = b"".join([hmac.digest(key, v.encode("utf-8"), "sha256")[:TOKEN_BYTES] for v in values])
    text = np.frombuffer(base64.b32encode(digests).lower(), np.uint8).reshape(len(values), 32)
    prefix = np.frombuffer(f"{ring.active}_".encode("ascii"), np.uint8)
    width = len(prefix) + 32
    data = np.empty((len(values), width), np.uint8)
    data[:, : len(prefix)] = prefix
    data[:, len(prefix):] = text
    offsets = np.arange(0, (len(values) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))


def tokenize_arrow(table: pa.Table, columns: dict[str, str], ring: KeyRing) -> pa.Table:
    """Replace each source column by its token column (``{"email": "email_token"}``); raw columns are dropped.

    Each column is dictionary-encoded, the HMAC is computed once per distinct value, and the tokens are put back by
    index (a vectorized take): no per-row Python, and the same bytes whichever engine produced the rows.
    """
    for src, dst in columns.items():
        encoded = pc.dictionary_encode(table.column(src).cast(pa.string())).combine_chunks()
        table = table.append_column(dst, pc.take(tokens(encoded.dictionary.to_pylist(), ring), encoded.indices))
        table = table.drop_columns([src])
    return table


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
