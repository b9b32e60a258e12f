"""Key store: tokenization (HMAC) keys and encryption (AES-GCM) keys, each with a key id so keys can rotate.

Production reads keys from settings (``LENSLAKE_TOKEN_KEY`` / ``LENSLAKE_ENCRYPTION_KEY`` as ``id:base64``);
development generates a key file under the data root on first use (git-ignored, never committed).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lenslake.settings import Settings


@dataclass(frozen=True)
class KeyRing:
    active: str
    keys: dict[str, bytes]

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active]


@dataclass(frozen=True)
class KeyStore:
    token: KeyRing
    encryption: KeyRing


def _parse(secret: str) -> KeyRing:
    kid, _, b64 = secret.partition(":")
    if not kid or not b64:
        raise ValueError("a key setting must look like 'key_id:base64key'")
    return KeyRing(kid, {kid: base64.b64decode(b64)})


def _ring(doc: dict) -> KeyRing:
    return KeyRing(doc["active"], {k: base64.b64decode(v) for k, v in doc["keys"].items()})


def _new_dev_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "token": {"active": "t1", "keys": {"t1": base64.b64encode(secrets.token_bytes(32)).decode()}},
        "encryption": {"active": "e1", "keys": {"e1": base64.b64encode(secrets.token_bytes(32)).decode()}},
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)  # atomic: concurrent first uses never see half a file


def load_keys(settings: Settings) -> KeyStore:
    token = _parse(settings.token_key.get_secret_value()) if settings.token_key else None
    encryption = _parse(settings.encryption_key.get_secret_value()) if settings.encryption_key else None
    if token is None or encryption is None:
        path = settings.resolved_key_file
        if not path.exists():
            _new_dev_file(path)
        doc = json.loads(path.read_text())
        token = token or _ring(doc["token"])
        encryption = encryption or _ring(doc["encryption"])
    return KeyStore(token=token, encryption=encryption)


def load_landing_keys(settings: Settings) -> KeyRing:
    """The key ring of raw landing files at rest (``lenslake.privacy.landing``), its own: the ingest can hold it
    without the token or field keys, and rotating one says nothing about the others.

    Production: ``LENSLAKE_LANDING_KEY`` as ``id:base64[,id:base64...]`` (the first encrypts, each one decrypts, so a
    rotation lists the new key first and keeps the old one until every file is re-encrypted). Development: a key file
    ``<data_root>/keys/landing-keys.json`` (found from the data root alone, as the feed readers are handed only that)
    with a random key id (a file from another lake names a key this one lacks), created exclusively, so concurrent
    first uses agree on one key."""
    if settings.landing_key:
        pairs = [_parse(part.strip()) for part in settings.landing_key.get_secret_value().split(",") if part.strip()]
        if not pairs:
            raise ValueError("LENSLAKE_LANDING_KEY must look like 'key_id:base64key[,key_id:base64key...]'")
        ring = KeyRing(pairs[0].active, {kid: key for r in pairs for kid, key in r.keys.items()})
    else:
        path = settings.data_root / "keys" / "landing-keys.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            kid = f"dev-{secrets.token_hex(4)}"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"active": kid, "keys": {kid: base64.b64encode(secrets.token_bytes(32)).decode()}}, f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic and exclusive: the first writer wins, every other reads its key
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        ring = _ring(json.loads(path.read_text()))
    bad = [kid for kid, key in ring.keys.items() if len(key) != 32]
    if bad or ring.active not in ring.keys:
        raise ValueError(f"landing key ring: every key must be 32 bytes (AES-256) and the active one present ({bad})")
    return ring
