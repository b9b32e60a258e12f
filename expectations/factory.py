"""Turns a table's GX suite into a Dagster asset check (spec + result), run inside the asset's own step.

Checks run in the materializing step (``check_specs`` on the asset, as dagster-open-platform does), so a run
imports GX once and reads the rows it just wrote; a failed blocking check fails the step and stops promotion.
"""

from __future__ import annotations

import importlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import dagster as dg
import pyarrow as pa

from expectations.runner import columns_needed, run_suite
from expectations.suites import SUITES
from lenslake.delta import cast_to_spec
from lenslake.tables import table_spec


_warm_up: threading.Thread | None = None


def warm_up() -> None:
    """Start importing Great Expectations in the background (about 4 s here): the import overlaps the step's own
    engine work, which runs in native code, and the check that follows finds GX loaded."""
    global _warm_up
    if _warm_up is None:
        # Not a daemon: a process that ends mid-import would abort in native code; shutdown waits for it instead.
        _warm_up = threading.Thread(target=importlib.import_module, args=("great_expectations",), daemon=False)
        _warm_up.start()


def asset_key_of(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def gx_check_spec(table: str, *, blocking: bool = True) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=f"gx_{table.split('.')[1]}_suite",
        asset=asset_key_of(table),
        blocking=blocking,
        description=f"Great Expectations suite of {table} ({SUITES[table].__name__} in expectations/suites.py)",
    )


def gx_check_result(table: str, written: pa.Table | None) -> dg.AssetCheckResult:
    """Validate the rows this run wrote to ``table`` (cast to its declared schema, as the store wrote them)."""
    if _warm_up is not None:
        # Importing GX here while the warm-up thread is half-way through it fails on GX's circular imports.
        _warm_up.join()
    expectations = SUITES[table]()
    spec = table_spec(table)
    data = cast_to_spec(spec, written if written is not None else spec.arrow_schema.empty_table())
    data = data.select([c for c in columns_needed(expectations) if c in data.column_names])
    outcome = run_suite(table.replace(".", "_"), expectations, data.to_pandas(), set(spec.sensitive_columns))
    severity = dg.AssetCheckSeverity.ERROR
    metadata = {
        "rows_validated": data.num_rows,
        "expectations": outcome.evaluated,
        "failed_expectations": ", ".join(outcome.failed) or "none",
        "errored_expectations": ", ".join(outcome.errored) or "none",
    }
    if outcome.statistics:
        metadata["failure_statistics"] = dg.MetadataValue.json(outcome.statistics)
    return dg.AssetCheckResult(
        check_name=gx_check_spec(table).name,
        asset_key=asset_key_of(table),
        passed=outcome.passed,
        severity=severity,
        metadata=metadata,
        description="an expectation raised: the check is broken, not the data" if outcome.errored else None,
    )


class ChecksBeside:
    """Runs the GX suites of a step's tables on one worker thread, beside the step's own writes.

    The step hands a table's rows over as soon as they are final, before it writes them (``rows_ready``, the
    ``lenslake.pipeline`` hook): GX's pandas work then overlaps the Delta writes and the landing encryption, which
    run in native code. A table never handed over is checked as written empty, as ``gx_check_result`` does. The
    checks are the same; only when they run changes, and a step still yields no result before its checks end."""

    def __init__(self, tables: tuple[str, ...]):
        self.tables = tables
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-checks")
        self._running: dict[str, Future] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(wait=True, cancel_futures=True)

    def rows_ready(self, table: str, rows: pa.Table) -> None:
        if table in self.tables:
            self._running[table] = self._pool.submit(gx_check_result, table, rows)

    def result(self, table: str) -> dg.AssetCheckResult:
        running = self._running.get(table)
        return running.result() if running is not None else gx_check_result(table, None)
