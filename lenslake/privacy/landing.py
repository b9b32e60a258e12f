"""Raw landing files at rest: kept only encrypted once ingested, read back transparently, so reruns still work.

Once an ingest has committed (events: bronze of the day; catalog feeds: the feed day applied; people feeds: the
snapshot stored), each clear ``x.ndjson`` it read becomes ``x.ndjson.enc`` and the clear file is removed. Readers
(``lenslake.engine.read_raw_lines``, the catalog and people feed readers, erasure) take either and see the same
bytes, so a rerun or backfill of an ingested day writes the same rows (``source_file`` keeps the clear name).

File format (version 1), chunked AES-256-GCM in the STREAM construction::

    header  = b"LLND" | version (1 byte) | key id length (1 byte) | key id (ASCII) | chunk size (4 bytes, big-endian)
              | salt (32 random bytes)
    file key = HKDF-SHA256(landing key[key id], salt, info=b"lenslake/landing/v1")   (a fresh key per file)
    chunk i = AES-GCM(file key, nonce = i (11 bytes) | final (1 byte), plaintext chunk, aad = header | i | final)

Every chunk but the last holds exactly ``chunk size`` plaintext bytes; the last (final flag 1) holds fewer, possibly
none. So a flipped bit, a reordered, dropped or appended chunk, a cut after any chunk, or another key all fail
authentication: the reader raises ``LandingFileError``, one line naming the file, and never returns part of one.
The key id in the header picks the key from the landing key ring (``lenslake.privacy.keys.load_landing_keys``), so
keys rotate: new files use the active key, old ones still open, ``reencrypt`` moves files to the active key.

Writes are atomic: a temporary file in the same folder, fsynced, read back and compared (a digest of the
plaintext), ``os.replace``d into place, the folder fsynced, then the clear file removed. A crash leaves the clear
file, the encrypted one, or both (readers prefer the clear one, which the next ingest encrypts again).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from lenslake.settings import Settings

SUFFIX = ".enc"
MAGIC = b"LLND"
VERSION = 1
CHUNK = 4 << 20  # plaintext bytes per chunk: one AES-GCM call each, bounded memory on any file size
TAG = 16
SALT = 32
_INFO = b"lenslake/landing/v1"
_MAX_CHUNK = 64 << 20


class LandingFileError(ValueError):
    """An encrypted landing file that cannot be read: not authentic (tampered, truncated, another key), or not one."""


def is_encrypted(path: Path) -> bool:
    return Path(path).name.endswith(SUFFIX)


def sealed_path(path: Path) -> Path:
    """Where the encrypted copy of a clear file lives (the path itself when it is already one)."""
    path = Path(path)
    return path if is_encrypted(path) else path.with_name(path.name + SUFFIX)


def clear_path(path: Path) -> Path:
    """The clear file name an encrypted file stands for (what ``source_file`` columns record)."""
    path = Path(path)
    return path.with_name(path.name[: -len(SUFFIX)]) if is_encrypted(path) else path


def listing(folder: Path, pattern: str = "*.ndjson") -> list[Path]:
    """The files of ``folder`` matching ``pattern``, clear or encrypted, one per clear name, in clear-name order.
    Where both exist (a file delivered again after ingest, or a crash before the clear one was removed) the clear
    one wins: it is the newer delivery, and the next ingest encrypts it over the old one."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = {p: p for p in folder.glob(pattern) if p.is_file()}
    for p in folder.glob(pattern + SUFFIX):
        if p.is_file():
            found.setdefault(clear_path(p), p)
    return [found[k] for k in sorted(found)]


def ring_of(settings: Settings | Path):
    """The landing key ring, from settings or (for readers that are handed a data root only) a data root with the
    other settings from the environment."""
    from lenslake.privacy.keys import load_landing_keys
    from lenslake.settings import get_settings

    return load_landing_keys(settings if isinstance(settings, Settings) else get_settings(data_root=Path(settings)))


def _aesgcm(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _file_key(master: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(master)


def _nonce_aad(header: bytes, i: int, final: bool) -> tuple[bytes, bytes]:
    flag = b"\x01" if final else b"\x00"
    return i.to_bytes(11, "big") + flag, header + i.to_bytes(8, "big") + flag


def _header(kid: str, chunk: int, salt: bytes) -> bytes:
    k = kid.encode("ascii")
    if not 0 < len(k) < 256:
        raise ValueError("a landing key id must be 1 to 255 ASCII characters")
    return MAGIC + bytes([VERSION, len(k)]) + k + chunk.to_bytes(4, "big") + salt


def _read_exactly(f, n: int) -> bytes:
    out = f.read(n)
    while len(out) < n:
        more = f.read(n - len(out))
        if not more:
            break
        out += more
    return out


def encrypt_chunks(chunks: Iterable[bytes], ring, *, chunk: int = CHUNK) -> Iterator[bytes]:
    """Ciphertext pieces (header first) of the plaintext ``chunks``, under the ring's active key. ``chunks``: pieces
    of exactly ``chunk`` bytes, the last one possibly shorter (``_file_chunks``, ``_memory_chunks``)."""
    salt = secrets.token_bytes(SALT)
    header = _header(ring.active, chunk, salt)
    aead = _aesgcm(_file_key(ring.active_key, salt))
    yield header
    pieces = iter(chunks)
    cur, i = next(pieces, b""), 0
    while True:
        if len(cur) > chunk:
            raise ValueError(f"a plaintext piece of {len(cur)} bytes is longer than the chunk size {chunk}")
        nxt = next(pieces, None) if len(cur) == chunk else None
        final = nxt is None and len(cur) < chunk  # the final chunk is always shorter than a full one (maybe empty)
        nonce, aad = _nonce_aad(header, i, final)
        yield aead.encrypt(nonce, cur, aad)
        if final:
            if next(pieces, None) is not None:
                raise ValueError("a short plaintext piece before the last one")
            return
        cur, i = (b"" if nxt is None else nxt), i + 1


def _file_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while piece := _read_exactly(f, size):
            yield piece
            if len(piece) < size:
                return


def _memory_chunks(data: bytes, size: int = CHUNK) -> Iterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield view[i: i + size]


def decrypt_chunks(path: Path, ring) -> Iterator[bytes]:
    """The plaintext of an encrypted landing file, chunk by chunk. Raises ``LandingFileError`` (one line, naming
    the file) before yielding the chunk that fails; callers that must not act on part of a file (every reader
    here) collect the whole file first (``read_bytes``)."""
    from cryptography.exceptions import InvalidTag

    path = Path(path)
    with open(path, "rb") as f:
        fixed = _read_exactly(f, 6)
        if len(fixed) < 6 or fixed[:4] != MAGIC:
            raise LandingFileError(f"{path}: not an encrypted landing file (no LLND header)")
        if fixed[4] != VERSION:
            raise LandingFileError(f"{path}: encrypted landing file version {fixed[4]} is not supported")
        rest = _read_exactly(f, fixed[5] + 4 + SALT)
        if len(rest) < fixed[5] + 4 + SALT:
            raise LandingFileError(f"{path}: truncated header")
        header = fixed + rest
        kid = rest[: fixed[5]].decode("ascii", "replace")
        chunk = int.from_bytes(rest[fixed[5]: fixed[5] + 4], "big")
        if not 0 < chunk <= _MAX_CHUNK:
            raise LandingFileError(f"{path}: implausible chunk size {chunk} in the header")
        if kid not in ring.keys:
            raise LandingFileError(f"{path}: encrypted under landing key '{kid}', which the landing key ring lacks")
        aead = _aesgcm(_file_key(ring.keys[kid], rest[-SALT:]))
        block = chunk + TAG
        cur, i = _read_exactly(f, block), 0
        while True:
            final = len(cur) < block
            if not final:
                nxt = _read_exactly(f, block)
                if not nxt:
                    raise LandingFileError(f"{path}: truncated (ends after chunk {i} without its final chunk)")
            nonce, aad = _nonce_aad(header, i, final)
            try:
                plain = aead.decrypt(nonce, cur, aad)
            except InvalidTag:
                raise LandingFileError(f"{path}: not authentic at chunk {i} (tampered, truncated, or another "
                                       f"key '{kid}')") from None
            yield plain
            if final:
                return
            cur, i = nxt, i + 1


def read_bytes(path: Path, settings: Settings | Path | None = None, ring=None) -> bytes:
    """A landing file's bytes, clear or encrypted (then authenticated whole before any byte is returned)."""
    path = Path(path)
    if not is_encrypted(path):
        return path.read_bytes()
    if ring is None:
        if settings is None:
            raise ValueError(f"{path}: an encrypted landing file needs the settings (its key ring) to be read")
        ring = ring_of(settings)
    return b"".join(decrypt_chunks(path, ring))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(target: Path, chunks: Iterable[bytes], ring, mode: int = 0o600) -> None:
    """Encrypt ``chunks`` into ``target`` atomically, after reading the written file back and comparing digests."""
    digest = hashlib.sha256()

    def hashed():
        for c in chunks:
            digest.update(c)
            yield c

    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in encrypt_chunks(hashed(), ring):
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        back = hashlib.sha256()
        for piece in decrypt_chunks(tmp, ring):
            back.update(piece)
        if back.digest() != digest.digest():  # pragma: no cover - a disk or memory fault
            raise LandingFileError(f"{target}: the encrypted copy does not read back as written")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def encrypt_file(path: Path, settings: Settings | Path, ring=None) -> Path:
    """Encrypt a clear landing file in place (``x.ndjson`` → ``x.ndjson.enc``, the clear file removed); returns
    the encrypted path. An encrypted or absent path is left as it is."""
    path = Path(path)
    if is_encrypted(path) or not path.exists():
        return sealed_path(path)
    ring = ring or ring_of(settings)
    target = sealed_path(path)
    _write_atomic(target, _file_chunks(path), ring, os.stat(path).st_mode & 0o777)
    path.unlink()
    _fsync_dir(path.parent)
    return target


def encrypt_files(paths: Iterable[Path], settings: Settings | Path) -> list[Path]:
    """Encrypt every clear file of ``paths`` (the files an ingest read, once it has committed)."""
    if isinstance(paths, (str, bytes, Path)):
        raise TypeError("encrypt_files takes a list of paths")
    clear = [Path(p) for p in paths if not is_encrypted(Path(p)) and Path(p).exists()]
    if not clear:
        return []
    ring = ring_of(settings)
    return [encrypt_file(p, settings, ring) for p in clear]


def write_encrypted(path: Path, data: bytes, settings: Settings | Path) -> Path:
    """Replace an encrypted landing file's content (erasure rewrites files without a user's lines) atomically,
    under the active key."""
    target = sealed_path(path)
    mode = os.stat(target).st_mode & 0o777 if target.exists() else 0o600
    _write_atomic(target, _memory_chunks(data), ring_of(settings), mode)
    return target


def key_id(path: Path) -> str:
    """The key id in an encrypted file's header."""
    with open(path, "rb") as f:
        fixed = _read_exactly(f, 6)
        if len(fixed) < 6 or fixed[:4] != MAGIC:
            raise LandingFileError(f"{path}: not an encrypted landing file (no LLND header)")
        return _read_exactly(f, fixed[5]).decode("ascii", "replace")


def reencrypt(root: Path, settings: Settings | Path) -> int:
    """Key rotation: re-encrypt every encrypted file under ``root`` not yet under the active landing key; returns
    how many were rewritten. Run it after putting the new key first in the ring, then drop the old key."""
    ring = ring_of(settings)
    done = 0
    for path in sorted(Path(root).rglob("*" + SUFFIX)):
        if path.is_file() and key_id(path) != ring.active:
            data = b"".join(decrypt_chunks(path, ring))
            _write_atomic(path, _memory_chunks(data), ring, os.stat(path).st_mode & 0o777)
            done += 1
    return done
