"""Blue-green publishing of the gold tables services read: readers see a checked version, never the latest one.

Every Delta commit is an immutable snapshot, so "blue" and "green" are two versions of one table rather than two
tables. What readers see is a *pointer* per table, ``<tables_dir>/_published/<table>.json``, naming the published
version; ``read_published`` (and ``published_dataset``/``register_duckdb``) open the table at that version by
time travel, never at its latest. A new version is written and checked while readers keep the old one; publishing
it is one atomic replace of the pointer file (temp file in the same folder, fsync, ``os.replace``), so a reader
always finds a complete pointer, old or new.

One publication cycle (``publishing``), per table, under a per-table write lock (so two runs cannot interleave):

1. restore to the published version when the latest differs (an earlier write failed its checks, or a rollback
   happened): the write must build on published rows only, or publishing the next good write would publish the bad
   one with it. Commits of a migration (``lenslake.migration`` in their commitInfo) on top of the published version
   are kept, not restored away (a RESTORE reverts schema and constraints too): they are published with the next
   passing write. With nothing published yet, the rows are deleted instead (schema kept); a table that predates
   publishing (no pointer at all) is adopted as it stands.
2. write (the caller: ``lenslake.pipeline.build_gold``);
3. check (the caller: the asset's check results). The checks validate the rows the write put in; every other row of
   the new version comes from the published one, which was checked when it was published;
4. flip the pointer to exactly the version written, only when no blocking check failed (``failed_blocking``), and
   only when the published version is still the one the write was based on (a rollback during the run wins). A
   rejected version is recorded in the pointer's history, so ``lenslake publish status`` says why it is not live.

``rollback`` steps the pointer back through the published versions on record (``lineage``, the last
``ROLLBACK_DEPTH``); it is a new history entry, not an erasure. The next cycle then restores the table to the
rolled-back version before writing.

Retention: time travel needs the data files of every version in the lineage. ``vacuum`` here passes them as
``keep_versions``; a vacuum run any other way must keep them too. Time travel also needs the commit log:
``delta.logRetentionDuration`` (30 days by default) must exceed the age of the oldest rollback target.

The pointer lives on the local file system next to the tables (atomic ``os.replace``, ``flock`` locks); on object
storage the same design needs a conditional put or a catalogue row instead of the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lenslake.delta import DeltaStore, WriteResult, register_in_duckdb, scan
from lenslake.settings import Settings
from lenslake.tables import catalogue

POINTER_DIR = "_published"
ROLLBACK_DEPTH = 10  # published versions rollback can step back through (and vacuum keeps)
HISTORY_LIMIT = 200  # entries of the pointer's audit history


class PublishError(Exception):
    """A publishing request that cannot be done; the message is one line for a person."""


class NotPublished(PublishError):
    pass


class PublishConflict(PublishError):
    pass


def published_tables() -> list[str]:
    """The tables read through a published pointer: the gold layer, which services and analysts read."""
    return [name for name, spec in catalogue().items() if spec.layer == "gold"]


def _known(table: str) -> str:
    if table not in published_tables():
        raise PublishError(f"unknown table {table!r}: the published tables are {', '.join(published_tables())}")
    return table


def _store(source: DeltaStore | Settings | str | os.PathLike) -> DeltaStore:
    if isinstance(source, DeltaStore):
        return source
    if isinstance(source, Settings):
        return DeltaStore(source.tables_dir)
    return DeltaStore(Path(source))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the pointer ----------------------------------------------------------------------------------------------------


@dataclass
class Pointer:
    table: str
    version: int | None = None  # the published version; None: nothing published yet
    published_at: str | None = None
    run_id: str | None = None
    lineage: list[int] = field(default_factory=list)  # published versions rollback steps back through, oldest first
    history: list[dict] = field(default_factory=list)  # every flip, rejection and restore, oldest first

    def record(self, action: str, version: int | None, *, run_id: str | None = None, reason: str | None = None,
               **extra):
        entry = {"at": _now(), "action": action, "version": version, "previous": self.version, "run_id": run_id,
                 "reason": reason, **extra}
        self.history = (self.history + [entry])[-HISTORY_LIMIT:]


def pointer_path(source, table: str) -> Path:
    return _store(source).tables_dir / POINTER_DIR / f"{table}.json"


def load_pointer(source, table: str) -> Pointer | None:
    """The table's pointer as it is now (None when the table has never been published). No lock: the file is only
    ever replaced whole."""
    try:
        text = pointer_path(source, table).read_text()
    except FileNotFoundError:
        return None
    return Pointer(**json.loads(text))


def _save_pointer(store: DeltaStore, pointer: Pointer) -> None:
    """Replace the pointer file atomically: a complete temp file in the same folder, fsynced, then ``os.replace``."""
    path = pointer_path(store, pointer.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(asdict(pointer), indent=1) + "\n").encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes it 0600: services reading the tables must read it too
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)  # the rename itself survives a crash once its folder is synced
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(store: DeltaStore, table: str, kind: str) -> Iterator[None]:
    """An exclusive advisory lock: ``pointer`` around a read-modify-write of the pointer, ``write`` around a
    whole publication cycle (restore, write, check, flip)."""
    path = store.tables_dir / POINTER_DIR / f".{table}.{kind}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _delta(store: DeltaStore, table: str, version: int | None = None):
    from deltalake import DeltaTable

    return DeltaTable(str(store.path(table)), version=version)


def _commit(note: str):
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"lenslake.publish": note})


# --- publishing and rolling back ------------------------------------------------------------------------------------

_ANY = object()


def publish(source, table: str, version: int, *, expected=_ANY, run_id: str | None = None,
            reason: str = "checks passed") -> Pointer:
    """Flip the pointer to ``version``. With ``expected``, only if the published version is still that one
    (compare-and-swap; ``PublishConflict`` otherwise)."""
    store = _store(source)
    _known(table)
    with _locked(store, table, "pointer"):
        pointer = load_pointer(store, table) or Pointer(table)
        if expected is not _ANY and pointer.version != expected:
            raise PublishConflict(
                f"{table}: the published version moved from {expected} to {pointer.version} while version {version} "
                f"was written on top of {expected} (a rollback?); version {version} is not published, run again")
        latest = store.version(table)
        if not 0 <= version <= latest:
            raise PublishError(f"{table}: there is no version {version} (latest is {latest})")
        pointer.record("publish", version, run_id=run_id, reason=reason)
        pointer.version, pointer.published_at, pointer.run_id = version, _now(), run_id
        if pointer.lineage[-1:] != [version]:
            pointer.lineage = (pointer.lineage + [version])[-ROLLBACK_DEPTH:]
        _save_pointer(store, pointer)
        return pointer


def reject(source, table: str, version: int, failed: list[str], *, run_id: str | None = None) -> Pointer:
    """Record that ``version`` failed its checks; the published version stays."""
    store = _store(source)
    with _locked(store, table, "pointer"):
        pointer = load_pointer(store, table) or Pointer(table)
        pointer.record("reject", version, run_id=run_id, reason="blocking checks failed: " + ", ".join(failed))
        _save_pointer(store, pointer)
        return pointer


def _assert_readable(store: DeltaStore, table: str, version: int) -> None:
    try:
        uris = _delta(store, table, version).file_uris()
    except Exception as e:  # noqa: BLE001  (delta-rs raises several types for an unloadable version)
        raise PublishError(f"{table}: version {version} can no longer be loaded ({e})") from None
    local = [u.removeprefix("file://") for u in uris if u.startswith(("/", "file://"))]
    missing = [u for u in local if not os.path.exists(u)]
    if missing:
        raise PublishError(f"{table}: version {version} has {len(missing)} data files vacuumed away; it cannot be read")


def rollback(source, table: str, *, run_id: str | None = None, reason: str = "manual rollback") -> Pointer:
    """Flip the pointer back to the version published before the current one."""
    store = _store(source)
    _known(table)
    with _locked(store, table, "pointer"):
        pointer = load_pointer(store, table)
        if pointer is None or pointer.version is None:
            raise PublishError(f"{table}: nothing is published, so there is nothing to roll back")
        if len(pointer.lineage) < 2:
            raise PublishError(f"{table}: nothing to roll back to: version {pointer.version} is the only published "
                               "version on record")
        target = pointer.lineage[-2]
        _assert_readable(store, table, target)
        pointer.record("rollback", target, run_id=run_id, reason=reason)
        pointer.version, pointer.published_at, pointer.run_id = target, _now(), run_id
        pointer.lineage = pointer.lineage[:-1]
        _save_pointer(store, pointer)
        return pointer


MIGRATION_TAG = "lenslake.migration"  # commitInfo key of a migration's commits (lenslake/migrations/ops.py)
NO_DATA_CHANGE = {"VACUUM START", "VACUUM END", "OPTIMIZE"}


def _clean_versions(store: DeltaStore, table: str, published: int) -> tuple[set[int], list[str]]:
    """The versions since ``published`` whose rows are the published rows, changed by migrations only, and the
    migrations committed on top of unpublished rows (which a restore would undo).

    Walking the commits after the published one: a migration (schema evolution that must survive, e.g. an added
    column or CHECK constraint) or a commit that changes no data keeps a clean state clean; a RESTORE is clean when
    its target is; any other commit (a write not published) makes the state unclean."""
    latest = store.version(table)
    if latest < published:
        raise PublishError(f"{table}: version {published} is published but the table's latest is {latest}")
    commits = _delta(store, table).history(latest - published) if latest > published else []
    commits.sort(key=lambda c: c["version"])
    clean, unclean, stranded = {published}, False, []
    for c in commits:
        op = c.get("operation")
        if op == "RESTORE":
            target = (c.get("operationParameters") or {}).get("version")
            unclean = target is None or int(target) not in clean
            stranded = stranded if unclean else []
        elif MIGRATION_TAG in c and unclean:
            stranded.append(str(c[MIGRATION_TAG]))
        elif op not in NO_DATA_CHANGE and MIGRATION_TAG not in c:
            unclean = True
        if not unclean:
            clean.add(c["version"])
    return clean, stranded


def prepare(source, table: str, *, run_id: str | None = None) -> int | None:
    """Make the table's latest version hold exactly the published rows, so that the next write builds on them;
    returns the published version (the base ``publish`` later compares against). Call it under the write lock
    (``publishing`` does).

    Migrations committed on top of the published version are kept (the next published write publishes them too);
    a migration committed on top of an unpublished write cannot be kept apart from it: that is an error."""
    store = _store(source)
    _known(table)
    with _locked(store, table, "pointer"):
        pointer = load_pointer(store, table)
        if not store.exists(table):
            if pointer is not None and pointer.version is not None:
                raise PublishError(f"{table}: version {pointer.version} is published but the table is missing "
                                   f"from {store.path(table)}")
            if pointer is None:  # from now on an unpublished write is undone before the next one
                pointer = Pointer(table)
                pointer.record("manage", None, run_id=run_id, reason="new table: nothing published yet")
                _save_pointer(store, pointer)
            return None
        latest = store.version(table)
        if pointer is None:  # the table predates publishing: its latest version is adopted as published
            pointer = Pointer(table, version=latest, published_at=_now(), run_id=run_id, lineage=[latest])
            pointer.record("adopt", latest, run_id=run_id, reason="table written before publishing was managed")
            _save_pointer(store, pointer)
            return latest
        if pointer.version is None:  # nothing published: no row may stay (DELETE keeps schema and constraints)
            if store.count(table):
                _delta(store, table).delete(commit_properties=_commit("emptied: nothing is published yet"))
                pointer.record("restore", None, run_id=run_id,
                               reason=f"unpublished rows up to version {latest} deleted")
                _save_pointer(store, pointer)
            return None
        clean, stranded = _clean_versions(store, table, pointer.version)
        if stranded:
            raise PublishError(
                f"{table}: migration {', '.join(stranded)} was committed on top of unpublished writes (after published "
                f"version {pointer.version}); restoring would undo it: restore by hand and re-apply the migration")
        if latest not in clean:
            target = max(clean)
            _assert_readable(store, table, target)
            _delta(store, table).restore(target, commit_properties=_commit(f"restore to published version {target}"))
            pointer.record("restore", target, run_id=run_id,
                           reason=f"unpublished versions up to {latest} set aside before writing")
            _save_pointer(store, pointer)
        return pointer.version


# --- checks decide -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    blocking: bool = True


def failed_blocking(checks: Iterable) -> list[str]:
    """Names of the checks that stop publication: failed, blocking, and not of WARN severity (Dagster's rule for
    a blocking check). Takes ``Check``s or anything with ``passed`` and a ``name``/``check_name``, such as Dagster's
    ``AssetCheckResult`` (blocking unless it says otherwise)."""
    failed = []
    for c in checks:
        severity = getattr(c, "severity", None)
        if c.passed or not getattr(c, "blocking", True) or str(getattr(severity, "value", severity)).upper() == "WARN":
            continue
        failed.append(getattr(c, "name", None) or getattr(c, "check_name", None) or repr(c))
    return failed


@dataclass(frozen=True)
class Outcome:
    table: str
    published: bool
    published_version: int | None
    written_version: int | None
    note: str

    @property
    def metadata(self) -> dict:
        return {"published": self.published, "published_version": self.published_version, "publish_note": self.note}


class Publication:
    """The tables of one cycle, based on their published versions; ``publish`` flips each one whose checks passed."""

    def __init__(self, store: DeltaStore, bases: dict[str, int | None], run_id: str | None):
        self.store, self.bases, self.run_id = store, bases, run_id

    def publish(self, table: str, write: WriteResult | None, checks: list) -> Outcome:
        base = self.bases[table]
        if write is None:
            return Outcome(table, False, base, None, "nothing written: the published version stays")
        if not checks:
            raise ValueError(f"{table}: a version is published only after checks; none were given")
        failed = failed_blocking(checks)
        if failed:
            reject(self.store, table, write.version, failed, run_id=self.run_id)
            return Outcome(table, False, base, write.version,
                           f"version {write.version} not published: {', '.join(failed)} failed")
        publish(self.store, table, write.version, expected=base, run_id=self.run_id,
                reason=f"checks passed: {', '.join(getattr(c, 'name', None) or c.check_name for c in checks)}")
        return Outcome(table, True, write.version, write.version, f"version {write.version} published")


@contextlib.contextmanager
def publishing(source, tables: Iterable[str], *, run_id: str | None = None) -> Iterator[Publication]:
    """A publication cycle: lock the tables, base them on their published versions, then let the caller write,
    check and ``publish`` each one."""
    store = _store(source)
    tables = sorted({_known(t) for t in tables})  # one lock order for every cycle: no deadlock
    with contextlib.ExitStack() as stack:
        for table in tables:
            stack.enter_context(_locked(store, table, "write"))
        yield Publication(store, {t: prepare(store, t, run_id=run_id) for t in tables}, run_id)


# --- readers -------------------------------------------------------------------------------------------------------


def published_version(source, table: str) -> int | None:
    pointer = load_pointer(source, _known(table))
    return pointer.version if pointer else None


def _published(source, table: str):
    store = _store(source)
    version = published_version(store, table)
    if version is None:
        raise NotPublished(f"{table}: no version is published yet")
    return _delta(store, table, version)


def published_dataset(source, table: str):
    """The published snapshot as a pyarrow dataset (lazy: DuckDB or pyarrow scan only what a query needs)."""
    return _published(source, table).to_pyarrow_dataset()


def read_published(source, table: str, columns: list[str] | None = None, filter=None):
    """The published version of a gold table as Arrow: what services and analysts read."""
    return scan(published_dataset(source, table), columns, filter)


def register_duckdb(con, source, tables: Iterable[str] | None = None) -> dict[str, int]:
    """Make the published snapshots queryable in a DuckDB connection as ``gold.daily_kpis`` etc. (views over the
    pinned datasets); tables with nothing published are left out. Returns table → version."""
    pinned = {}
    for table in tables or published_tables():
        version = published_version(source, table)
        if version is None:
            continue
        layer, name = table.split(".", 1)
        hidden = f"_published_{layer}_{name}"
        register_in_duckdb(con, hidden, published_dataset(source, table))
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        con.execute(f"CREATE OR REPLACE VIEW {layer}.{name} AS SELECT * FROM {hidden}")
        pinned[table] = version
    return pinned


# --- status and retention --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableStatus:
    table: str
    published: int | None
    latest: int  # -1: the table does not exist
    published_at: str | None
    run_id: str | None
    rollback_to: int | None
    last: dict | None  # the pointer's latest history entry


def status(source) -> list[TableStatus]:
    store = _store(source)
    rows = []
    for table in published_tables():
        p = load_pointer(store, table) or Pointer(table)
        rows.append(TableStatus(table, p.version, store.version(table), p.published_at, p.run_id,
                                p.lineage[-2] if len(p.lineage) > 1 else None, p.history[-1] if p.history else None))
    return rows


def retained_versions(source, table: str) -> list[int]:
    """The versions vacuum must keep readable: the published one and every rollback target."""
    p = load_pointer(source, _known(table))
    return sorted(set(p.lineage) | ({p.version} - {None})) if p else []


def vacuum(source, table: str, *, retention_hours: int | None = None, dry_run: bool = True,
           enforce_retention_duration: bool = True) -> list[str]:
    """Delta VACUUM that keeps the published version and the rollback targets (``keep_versions``)."""
    store = _store(source)
    return _delta(store, table).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                       enforce_retention_duration=enforce_retention_duration,
                                       keep_versions=retained_versions(store, table))
