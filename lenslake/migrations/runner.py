"""The migration runner: finds the scripts, compares them with ``meta.schema_migrations``, applies the pending ones.

A script is ``m<id>_<slug>.py`` (id: 4 digits) declaring ``ID``, a one-line ``DESCRIPTION`` and ``up(ctx)``. The
checksum recorded is the sha256 of the source that ran: the runner hashes the bytes it executes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from lenslake.delta import DeltaStore
from lenslake.migrations.ops import MigrationContext, MigrationError

VERSIONS_DIR = Path(__file__).parent / "versions"
MIGRATIONS_TABLE = "meta.schema_migrations"
SCRIPT_NAME = re.compile(r"^m(\d{4})_[a-z0-9_]+\.py$")


@dataclass(frozen=True)
class Script:
    id: str
    description: str
    path: Path
    checksum: str
    up: Callable[[MigrationContext], object]


@dataclass(frozen=True)
class MigrationState:
    id: str
    description: str
    state: str  # applied | pending | changed (source differs from what was applied) | missing (recorded, no script)
    applied_at: dt.datetime | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Applied:
    id: str
    description: str
    outcome: str  # applied | no-op
    duration_ms: int
    notes: tuple[str, ...]


def _one_line(error: Exception) -> str:
    text = str(error).split("Preview of invalid data")[0]  # delta-rs's previews carry row values
    return " ".join(text.split()) or type(error).__name__


def load_scripts(directory: Path = VERSIONS_DIR) -> list[Script]:
    """Every script of ``directory`` in id order, checked: names, ids, descriptions and ``up``."""
    scripts = []
    for path in sorted(Path(directory).glob("m*.py")):
        match = SCRIPT_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: a migration script is named m<4 digits>_<slug>.py")
        source = path.read_bytes()
        module = types.ModuleType(f"lenslake_migration_{path.stem}")
        module.__file__ = str(path)
        exec(compile(source, str(path), "exec"), module.__dict__)
        id_, description, up = (getattr(module, a, None) for a in ("ID", "DESCRIPTION", "up"))
        if id_ != match.group(1):
            raise MigrationError(f"{path.name}: declares ID {id_!r}, its file name says {match.group(1)!r}")
        if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
            raise MigrationError(f"{path.name}: DESCRIPTION must be one line of text")
        if not callable(up):
            raise MigrationError(f"{path.name}: no up(ctx) function")
        checksum = hashlib.sha256(source.replace(b"\r\n", b"\n")).hexdigest()
        scripts.append(Script(id_, description.strip(), path, checksum, up))
    ids = [s.id for s in scripts]
    if len(set(ids)) != len(ids):
        raise MigrationError(f"two scripts share an id in {directory}: {sorted({i for i in ids if ids.count(i) > 1})}")
    return scripts


class Migrator:
    """Applies the scripts of ``directory`` (default: ``lenslake/migrations/versions``) to the store's tables."""

    def __init__(self, store: DeltaStore, directory: Path | None = None):
        self.store = store
        self.directory = Path(directory) if directory else VERSIONS_DIR

    def scripts(self) -> list[Script]:
        return load_scripts(self.directory)

    def records(self) -> dict[str, dict]:
        """The first record of each applied id (append-only: a concurrent second run may add a duplicate)."""
        rows = sorted(self.store.read(MIGRATIONS_TABLE).to_pylist(), key=lambda r: r["applied_at"])
        first: dict[str, dict] = {}
        for row in rows:
            first.setdefault(row["id"], row)
        return first

    def status(self, scripts: list[Script] | None = None) -> list[MigrationState]:
        scripts = {s.id: s for s in (self.scripts() if scripts is None else scripts)}
        records = self.records()
        states = []
        for id_ in sorted(scripts.keys() | records.keys()):
            script, record = scripts.get(id_), records.get(id_)
            if record is None:
                states.append(MigrationState(id_, script.description, "pending"))
                continue
            state = "missing" if script is None else "applied" if script.checksum == record["checksum"] else "changed"
            states.append(MigrationState(id_, record["description"], state, record["applied_at"], record["outcome"]))
        return states

    def up(self, on_applied: Callable[[Applied], None] | None = None) -> list[Applied]:
        """Apply the pending scripts in id order, recording each right after it succeeds. A failure stops the run
        (the failed script is not recorded, so the next ``up`` retries it: operations are idempotent). Refuses to
        start when an applied script has changed or disappeared: history and scripts must agree first."""
        scripts = self.scripts()
        states = self.status(scripts)
        disagree = [f"{s.id} ({s.state})" for s in states if s.state in ("changed", "missing")]
        if disagree:
            raise MigrationError(f"applied migrations differ from their scripts: {', '.join(disagree)}; restore the "
                                 "scripts as they were applied (a new change is a new migration)")
        pending = {s.id for s in states if s.state == "pending"}
        done = []
        for script in (s for s in scripts if s.id in pending):
            ctx = MigrationContext(self.store, script.id)
            start = time.perf_counter()
            try:
                script.up(ctx)
            except Exception as e:
                raise MigrationError(f"migration {script.id} ({script.description}) failed: {_one_line(e)}; it is "
                                     "not recorded and the later ones were not run") from e
            applied = Applied(script.id, script.description, "applied" if ctx.changed else "no-op",
                              round((time.perf_counter() - start) * 1000), tuple(ctx.notes))
            self.store.append(MIGRATIONS_TABLE, pa.table({
                "id": [script.id],
                "description": [script.description],
                "checksum": [script.checksum],
                "applied_at": [dt.datetime.now(dt.timezone.utc)],
                "duration_ms": [applied.duration_ms],
                "outcome": [applied.outcome],
                "notes": ["\n".join(applied.notes)],
            }))
            done.append(applied)
            if on_applied:
                on_applied(applied)
        return done
