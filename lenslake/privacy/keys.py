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
