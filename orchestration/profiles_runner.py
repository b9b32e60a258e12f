"""Run the profiles job through Dagster as a user would, and summarise it (used by `lenslake profiles run` and the
demo)."""

from __future__ import annotations

import time

from lenslake.settings import Settings


def run_profiles_job(settings: Settings, instance=None, *, behaviour_only: bool = False):
    """Materialize the profiles group (or only the behaviour asset, after a new events run)."""
    from dagster import materialize

    from orchestration.runner import dagster_instance, execute_job, lakehouse_resources, log_config

    if behaviour_only:
        import assets.profiles

        return materialize([assets.profiles.behaviour], instance=instance or dagster_instance(settings),
                           resources=lakehouse_resources(settings), run_config=log_config(), raise_on_error=False)
    return execute_job(settings, "profiles_job", instance)


def run_backfill_job(settings: Settings, attribute: str, batch_size: int = 10_000, instance=None):
    from orchestration.runner import execute_job

    config = {"ops": {"backfill_profile_attribute": {"config": {"attribute": attribute, "batch_size": batch_size}}}}
    return execute_job(settings, "profile_attribute_backfill_job", instance, run_config=config)


def profiles_summary(settings: Settings, result, wall_s: float) -> str:
    from dagster import DagsterEventType

    from lenslake.delta import DeltaStore
    from lenslake.tables import catalogue

    store = DeltaStore(settings.tables_dir)
    lines = [f"profiles run: {result.run_id}  success: {result.success}  wall time: {wall_s:.1f} s", "", "profile tables:"]
    lines += [f"  {name:<28} {store.count(name):>10,}  v{store.version(name)}"
              for name in catalogue() if name.startswith(("profiles.", "privacy.")) and store.exists(name)]
    checks = [e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    if checks:
        lines += ["", "checks:"] + [f"  {'PASS' if c.passed else 'FAIL'}  {c.asset_key.to_user_string()}:{c.check_name}"
                                    for c in checks]
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            lines.append(f"  failed step {event.step_key}: {event.event_specific_data.error.message.strip().splitlines()[0]}")
    return "\n".join(lines)


def timed_profiles_run(settings: Settings, *, behaviour_only: bool = False):
    t = time.perf_counter()
    result = run_profiles_job(settings, behaviour_only=behaviour_only)
    return result, time.perf_counter() - t
