"""API keys: each key names a caller and the access-policy role it reads as.

Production reads them from settings (``LENSLAKE_API_KEYS`` as ``name:role:key[,name:role:key…]``); development
generates a key file under the data root on first use, one key per policy role (``<data_root>/keys/api-keys.json``,
mode 0600, git-ignored like every key file there). Keys are held only as their sha256: a lookup compares digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lenslake.settings import Settings


@dataclass(frozen=True)
class Caller:
    name: str  # the access log's principal; never the key
    role: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_file(settings: Settings) -> Path:
    return settings.api_key_file or settings.data_root / "keys" / "api-keys.json"


def _new_dev_file(path: Path, roles: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"keys": [{"name": f"dev-{role}", "role": role, "key": f"llk_{secrets.token_urlsafe(32)}"} for role in roles]}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)  # atomic: concurrent first uses never see half a file


def _parse(setting: str) -> list[dict]:
    entries = []
    for item in filter(None, (x.strip() for x in setting.split(","))):
        name, role, key = (item.split(":", 2) + ["", ""])[:3]
        if not (name and role and key):
            raise ValueError("LENSLAKE_API_KEYS must look like 'name:role:key[,name:role:key…]'")
        entries.append({"name": name, "role": role, "key": key})
    return entries


def load_api_keys(settings: Settings, roles: list[str]) -> dict[str, Caller]:
    """sha256 of each key → its caller. ``roles``: the policy's roles (a key naming another role is an error; the dev
    file gets one key for each)."""
    if settings.api_keys:
        entries = _parse(settings.api_keys.get_secret_value())
    else:
        path = key_file(settings)
        if not path.exists():
            _new_dev_file(path, roles)
        entries = json.loads(path.read_text())["keys"]
    callers = {}
    for e in entries:
        if e["role"] not in roles:
            raise ValueError(f"API key {e['name']!r}: role {e['role']!r} is not in the access policy "
                             f"({', '.join(roles)})")
        if len(e["key"]) < 16:
            raise ValueError(f"API key {e['name']!r}: a key needs at least 16 characters")
        callers[digest(e["key"])] = Caller(e["name"], e["role"])
    if not callers:
        raise ValueError("no API keys configured")
    return callers
