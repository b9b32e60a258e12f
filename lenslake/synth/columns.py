"""Vectorised column builders: fixed-width ids, vocabulary look-ups, IPs, money.

Ids are built as an (n, width) uint8 matrix of ASCII bytes and handed to Arrow as one
string buffer with fixed offsets, so a million ids cost a few numpy operations instead
of a million Python string formats.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def hex_chars(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """(n, 2*nbytes) ASCII matrix of random lowercase hex digits."""
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    out = np.empty((n, 2 * nbytes), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 0x0F]
    return out


def digit_chars(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII matrix of the zero-padded decimal digits of non-negative ints."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return _DIGITS[(values[:, None] // powers[None, :]) % 10]


def fixed_width(n: int, *parts: bytes | np.ndarray) -> pl.Series:
    """Concatenate constant byte prefixes and (n, w) ASCII matrices into one string column."""
    mats = [np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (n, len(p))) if isinstance(p, bytes) else p
            for p in parts]
    mat = np.ascontiguousarray(np.hstack(mats)) if mats else np.empty((n, 0), dtype=np.uint8)
    width = mat.shape[1]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    arr = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(mat.tobytes())])
    return pl.from_arrow(arr)


def pick(vocab: Sequence[str | None], idx: np.ndarray) -> pl.Series:
    """vocab[idx] as a string column; negative indexes give null."""
    idx = np.asarray(idx)
    indices = pa.array(idx.astype(np.int64), mask=idx < 0)
    return pl.Series(list(vocab), dtype=pl.String).gather(pl.from_arrow(indices))


def ip_strings(ips: np.ndarray) -> pl.Series:
    """Dotted-quad strings of uint32 IPv4 addresses."""
    ips = np.asarray(ips, dtype=np.int64)
    octets = [pl.Series((ips >> shift) & 0xFF).cast(pl.String) for shift in (24, 16, 8, 0)]
    return pl.DataFrame({f"o{i}": o for i, o in enumerate(octets)}).select(
        pl.concat_str(pl.all(), separator=".")).to_series()


def public_ips(rng: np.random.Generator, n: int, first_octets: Sequence[int]) -> np.ndarray:
    """Random uint32 IPv4 host addresses whose first octet is drawn from `first_octets`.

    The last octet is 1..254: .0 and .255 are network and broadcast addresses, never a host's (and a host address
    ending in .0 would read as the /24 prefix that analytics keeps)."""
    first = rng.choice(np.asarray(first_octets, dtype=np.int64), size=n)
    middle = rng.integers(0, 1 << 16, size=n, dtype=np.int64)
    last = rng.integers(1, 255, size=n, dtype=np.int64)
    return ((first << 24) | (middle << 8) | last).astype(np.uint32)


def money(cents: np.ndarray) -> np.ndarray:
    """Integer cents -> float amounts; JSON-encoded these print with at most 2 decimals."""
    return np.asarray(cents, dtype=np.int64) / 100.0


def quarter_steps(values: np.ndarray) -> np.ndarray:
    """Round dioptre values to the 0.25 grid prescriptions use."""
    return np.round(np.asarray(values) * 4.0) / 4.0
