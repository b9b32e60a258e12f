"""Data minimization: rows older than their table's retention are purged, then vacuumed.

Each table's retention is the catalogue's ``retention_days`` (``LENSLAKE_RETENTION_OVERRIDES`` can shorten it:
the demo configuration keeps raw events 30 days and quarantine 14). Age is read from the table's retention column:
its first date/time partition column (a purge then drops whole partitions), else its first date/time column.
"Now" is ``settings.now()`` (``as_of`` in tests). A purge deletes the expired rows (the predicate holds a date, no
personal value) and vacuums with the settings' window (``retention_vacuum_hours``), keeping published versions and
rollback targets of published tables. The check proves that no table holds a row older than its retention, and that
no file removed longer ago than the vacuum window is still on disk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc

from lenslake.delta import DeltaStore
from lenslake.settings import Settings
from lenslake.tables import TableSpec, catalogue


@dataclass(frozen=True)
class PurgeResult:
    table: str
    retention_days: int
    column: str
    cutoff: str
    rows_purged: int
    files_vacuumed: int


@dataclass(frozen=True)
class RetentionCheck:
    table: str
    passed: bool
    detail: str


def retention_days(spec: TableSpec, settings: Settings) -> int | None:
    overrides = dict(item.split("=", 1) for item in settings.retention_overrides.split(",") if "=" in item)
    value = overrides.get(spec.name, spec.retention_days)
    return int(value) if value is not None else None


def retention_column(spec: TableSpec) -> str | None:
    timed = [c for c in spec.columns if c.type in ("date", "timestamp")]
    for name in spec.partition_by:
        if any(c.name == name for c in timed):
            return name
    return timed[0].name if timed else None


def _cutoff(spec: TableSpec, column: str, days: int, settings: Settings):
    """Rows with ``column`` below the cutoff are expired: a date for date columns, a UTC time otherwise."""
    limit = settings.now() - dt.timedelta(days=days)
    kind = next(c.type for c in spec.columns if c.name == column)
    return limit.date() if kind == "date" else limit


def _literal(value) -> str:
    if isinstance(value, dt.datetime):
        return f"'{value.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')}Z'"  # noqa: Q000
    return f"'{value.isoformat()}'"


def governed_tables(settings: Settings) -> list[tuple[TableSpec, int, str]]:
    out = []
    for spec in catalogue().values():
        days = retention_days(spec, settings)
        column = retention_column(spec)
        if days is not None and column is not None:
            out.append((spec, days, column))
    return out


def _vacuum(store: DeltaStore, name: str, hours: int, dry_run: bool) -> list[str]:
    from deltalake import DeltaTable

    from lenslake import publish

    keep = publish.retained_versions(store, name) if name in publish.published_tables() else []
    return DeltaTable(str(store.path(name))).vacuum(retention_hours=hours, dry_run=dry_run,
                                                    enforce_retention_duration=False, keep_versions=keep or None)


def purge_expired(settings: Settings, *, dry_run: bool = False) -> list[PurgeResult]:
    from deltalake import DeltaTable

    store = DeltaStore(settings.tables_dir)
    results = []
    for spec, days, column in governed_tables(settings):
        if not store.exists(spec.name):
            continue
        cutoff = _cutoff(spec, column, days, settings)
        expired = store.read(spec.name, columns=[column], filter=pc.field(column) < cutoff).num_rows
        if expired and not dry_run:
            DeltaTable(str(store.path(spec.name))).delete(f"{column} < {_literal(cutoff)}")
        files = _vacuum(store, spec.name, settings.retention_vacuum_hours, dry_run)
        results.append(PurgeResult(spec.name, days, column, str(cutoff), expired, len(files)))
    return results


def check_retention(settings: Settings) -> list[RetentionCheck]:
    """Per governed table: no row older than its retention; no removed file older than the vacuum window on disk."""
    store = DeltaStore(settings.tables_dir)
    checks = []
    for spec, days, column in governed_tables(settings):
        if not store.exists(spec.name):
            continue
        cutoff = _cutoff(spec, column, days, settings)
        old = store.read(spec.name, columns=[column], filter=pc.field(column) < cutoff).num_rows
        # a dry run lists the tombstones past the window; those still on disk are files a vacuum should have removed
        root = store.path(spec.name)
        lingering = sum(1 for f in _vacuum(store, spec.name, settings.retention_vacuum_hours, dry_run=True)
                        if (root / f.removeprefix("file://")).exists() or Path(f.removeprefix("file://")).exists())
        problems = []
        if old:
            problems.append(f"{old} rows older than {days} days ({column} < {cutoff})")
        if lingering:
            problems.append(f"{lingering} removed files older than the {settings.retention_vacuum_hours} h vacuum window")
        checks.append(RetentionCheck(spec.name, not problems, "; ".join(problems) or f"nothing older than {cutoff}"))
    return checks
