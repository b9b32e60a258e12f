"""Run the vectors job through Dagster and summarise it (used by the demo and the tests)."""

from __future__ import annotations

import time

from lenslake.settings import Settings


def run_vectors_job(settings: Settings, instance=None):
    from orchestration.runner import execute_job

    return execute_job(settings, "vectors_job", instance)


def materialization_metadata(result) -> dict:
    from dagster import DagsterEventType

    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    return {}


def check_results(result) -> dict[str, bool]:
    from dagster import DagsterEventType

    return {event.event_specific_data.check_name: event.event_specific_data.passed for event in result.all_events
            if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION}


def vectors_summary(result, wall_s: float) -> str:
    md = materialization_metadata(result)
    lines = [f"vectors run: {result.run_id}  success: {result.success}  wall time: {wall_s:.1f} s",
             "", "product embeddings:"]
    lines += [f"  {k:<20} {md[k]}" for k in ("model_version", "tag", "embedded", "unchanged", "removed", "seconds",
                                              "model_load_seconds") if k in md]
    lines += ["", "checks:"]
    lines += [f"  {'PASS' if ok else 'FAIL'}  vectors/product_embeddings:{name}" for name, ok in check_results(result).items()]
    return "\n".join(lines)


def job_summary(result, wall_s: float, title: str, keys: tuple[str, ...]) -> str:
    """A run's materializations (the given metadata keys, per asset) and its checks, for the demo."""
    from dagster import DagsterEventType

    lines = [f"{title} run: {result.run_id}  success: {result.success}  wall time: {wall_s:.1f} s"]
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            m = event.event_specific_data.materialization
            md = {k: v.value for k, v in m.metadata.items()}
            lines += ["", f"{m.asset_key.to_user_string()}:"] + [f"  {k:<20} {md[k]}" for k in keys if k in md]
    checks = [e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    lines += ["", "checks:"] + [f"  {'PASS' if c.passed else 'FAIL'}  {c.asset_key.to_user_string()}:{c.check_name}"
                                for c in checks]
    return "\n".join(lines)


def timed_job_run(settings: Settings, job_name: str):
    from orchestration.runner import execute_job

    t = time.perf_counter()
    result = execute_job(settings, job_name, None)
    return result, time.perf_counter() - t


def timed_vectors_run(settings: Settings):
    return timed_job_run(settings, "vectors_job")
