"""Run the vectors job through Dagster and summarise it (used by the demo and the tests)."""

from __future__ import annotations

import os
import time

from lenslake.settings import Settings


def run_vectors_job(settings: Settings, instance=None):
    from orchestration.definitions import defs
    from orchestration.resources import Lakehouse
    from orchestration.runner import dagster_instance

    job = defs.resolve_job_def("vectors_job")
    resources = {"lakehouse": Lakehouse(data_root=str(settings.data_root), engine_name=settings.engine,
                                        as_of=settings.as_of.isoformat() if settings.as_of else None)}
    run_config = {"loggers": {"console": {"config": {"log_level": os.environ.get("LENSLAKE_LOG_LEVEL", "CRITICAL")}}}}
    return job.execute_in_process(instance=instance or dagster_instance(settings), resources=resources,
                                  run_config=run_config, raise_on_error=False)


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


def timed_vectors_run(settings: Settings):
    t = time.perf_counter()
    result = run_vectors_job(settings)
    return result, time.perf_counter() - t
