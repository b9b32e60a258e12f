"""Run the daily events job through Dagster as a user would (one run over a range of days), and summarise it."""

from __future__ import annotations

import os
import time
from collections import Counter

from lenslake.delta import DeltaStore
from lenslake.pipeline import landing_days
from lenslake.settings import Settings
from lenslake.tables import catalogue


def dagster_instance(settings: Settings):
    """The Dagster instance under the data root (DAGSTER_HOME), so runs show in `dagster dev` afterwards."""
    from dagster import DagsterInstance

    home = settings.dagster_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_HOME", str(home))
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.from_config(str(home))


def lakehouse_resources(settings: Settings) -> dict:
    """The resources of a run for these settings (data root, engine and 'now' passed on explicitly)."""
    from orchestration.resources import Lakehouse

    return {"lakehouse": Lakehouse(data_root=str(settings.data_root), engine_name=settings.engine,
                                   as_of=settings.as_of.isoformat() if settings.as_of else None)}


def log_config() -> dict:
    """Run config that keeps Dagster's console quiet unless LENSLAKE_LOG_LEVEL says otherwise."""
    return {"loggers": {"console": {"config": {"log_level": os.environ.get("LENSLAKE_LOG_LEVEL", "CRITICAL")}}}}


def execute_job(settings: Settings, job_name: str, instance=None, *, run_config: dict | None = None, tags=None):
    """Run one of the code location's jobs in this process, as a user would, under the data root's instance."""
    from orchestration.definitions import defs

    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(instance=instance or dagster_instance(settings), resources=lakehouse_resources(settings),
                                  run_config={**log_config(), **(run_config or {})}, tags=tags, raise_on_error=False)


def run_events_job(settings: Settings, days: list[str] | None = None, instance=None):
    """Materialize bronze → silver → gold for ``days`` (default: every landing day) in one single-run backfill."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from orchestration.partitions import unfinished_days

    days = sorted(days or landing_days(settings))
    if not days:
        raise SystemExit(f"no landing days under {settings.events_landing_dir}: run `lenslake generate` first")
    not_yet = unfinished_days(days)
    if not_yet:
        raise SystemExit(f"not a complete day yet (or not a date): {', '.join(not_yet)}; days run once they have ended")
    tags = {ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1]}
    return execute_job(settings, "daily_events_job", instance, tags=tags)


def run_kafka_ingest_job(settings: Settings, instance=None):
    """Materialize bronze/kafka_events (Kafka topics → bronze, up to the end offsets seen now) through Dagster."""
    return execute_job(settings, "kafka_ingest_job", instance)


def kafka_ingest_summary(result) -> str:
    """The ingest run's materialization metadata, as lines."""
    from dagster import DagsterEventType

    lines = [f"kafka ingest run: {result.run_id}  success: {result.success}"]
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            md = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
            if md.get("idle"):
                lines.append(f"  idle: {md.get('message')}")
            else:
                empty = md.get("offsets_without_message", 0)
                lines.append(f"  {md['messages_read']:,} messages read (lag at start {md['lag_at_start']:,}"
                             + (f", {empty:,} offsets held no message" if empty else "") + "): "
                             f"{md['dagster/row_count']:,} to bronze, {md['quarantined']:,} quarantined "
                             f"in {md['seconds']} s; reasons {md['reasons']}")
    return "\n".join(lines)


def summarize(settings: Settings, result, wall_s: float) -> str:
    from dagster import DagsterEventType

    store = DeltaStore(settings.tables_dir)
    lines = [f"engine: {settings.engine}   data root: {settings.data_root}   wall time: {wall_s:.1f} s",
             f"run: {result.run_id}  success: {result.success}", "", "rows per table:"]
    for name in catalogue():
        if store.exists(name):
            lines.append(f"  {name:<28} {store.count(name):>10,}")
    q = store.read("bronze.events_quarantine", columns=["reason_code"])
    lines += ["", "quarantine reasons:"] + [f"  {k:<28} {v:>10,}" for k, v in Counter(q.column(0).to_pylist()).most_common()]
    b = store.read("silver.bot_events", columns=["bot_reason"])
    lines += ["", f"bots removed: {b.num_rows:,}"] + [f"  {k:<28} {v:>10,}" for k, v in Counter(b.column(0).to_pylist()).most_common()]
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    if failures:
        lines += ["", "failed steps (LENSLAKE_LOG_LEVEL=INFO shows the run's log):"]
        for event in failures:
            error = event.event_specific_data.error
            cause = error.cause or error
            while cause.cause is not None:
                cause = cause.cause
            lines.append(f"  {event.step_key}: {cause.message.strip().splitlines()[0]}")
    lines += ["", "checks:"]
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = event.event_specific_data
            lines.append(f"  {'PASS' if ev.passed else 'FAIL'}  {ev.asset_key.to_user_string()}:{ev.check_name}")
    from lenslake.publish import status

    lines += ["", "published (what services and analysts read):"]
    try:
        for st in status(settings):
            if st.latest < 0:  # (the store says -1 for a table not written yet)
                lines.append(f"  {st.table:<28} not written yet")
            else:
                published = f"v{st.published}" if st.published is not None else "none"
                lines.append(f"  {st.table:<28} {published:<7} (latest v{st.latest})")
    except OSError as e:  # a failed run may have left no readable tables folder: the summary still prints
        lines.append(f"  unavailable: {e.strerror or e}")
    return "\n".join(lines)


def timed_run(settings: Settings, days=None):
    t = time.perf_counter()
    result = run_events_job(settings, days)
    return result, time.perf_counter() - t
