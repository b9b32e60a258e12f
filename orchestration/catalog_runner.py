"""Run the catalog job through Dagster as a user would, and summarise it (used by `lenslake catalog run` and the
demo)."""

from __future__ import annotations

import time

from lenslake.settings import Settings


def run_catalog_job(settings: Settings, instance=None):
    """Materialize the catalog group (every pending feed day, the referential checks, the quality metrics)."""
    from orchestration.runner import execute_job

    return execute_job(settings, "catalog_job", instance)


def catalog_summary(settings: Settings, result, wall_s: float) -> str:
    from dagster import DagsterEventType

    from lenslake import publish
    from lenslake.catalog.quality import TABLE, latest
    from lenslake.delta import DeltaStore
    from lenslake.tables import catalogue

    store = DeltaStore(settings.tables_dir)
    lines = [f"catalog run: {result.run_id}  success: {result.success}  wall time: {wall_s:.1f} s", "", "catalog tables:"]
    lines += [f"  {name:<28} {store.count(name):>10,}  v{store.version(name)}"
              for name in catalogue() if name.startswith("catalog.") and store.exists(name)]
    lines += ["", "checks:"]
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = event.event_specific_data
            lines.append(f"  {'PASS' if ev.passed else 'FAIL'}  {ev.asset_key.to_user_string()}:{ev.check_name}")
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            lines.append(f"  failed step {event.step_key}: {event.event_specific_data.error.message.strip().splitlines()[0]}")
    if publish.published_version(store, TABLE) is not None:
        lines += ["", f"quality, latest day (completeness / validity; {TABLE} v{publish.published_version(store, TABLE)}):"]
        for subject, m in sorted(latest(publish.read_published(store, TABLE)).items()):
            lines.append(f"  {subject:<28} {m['completeness']:.3f} / {m['validity']:.3f}  ({m['metric_date']}, {m['rows']:,} rows)")
    return "\n".join(lines)


def timed_catalog_run(settings: Settings):
    t = time.perf_counter()
    result = run_catalog_job(settings)
    return result, time.perf_counter() - t
