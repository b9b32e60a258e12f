"""Jobs, schedules and sensors."""


import json

import dagster as dg

from lenslake.pipeline import landing_days
from orchestration.partitions import daily_partitions, unfinished_days
from orchestration.resources import Lakehouse

daily_events_job = dg.define_asset_job(
    "daily_events_job",
    # the Kafka ingest runs on its own (kafka_lag_sensor); this job takes its rows by the day they were ingested
    selection=dg.AssetSelection.groups("bronze", "silver", "gold") - dg.AssetSelection.assets(["bronze", "kafka_events"]),
    partitions_def=daily_partitions,
    description="Landing events of one day (or a range) through bronze, silver and gold.",
)

daily_events_schedule = dg.build_schedule_from_partitioned_job(daily_events_job, hour_of_day=2, minute_of_hour=0)


@dg.sensor(job=daily_events_job, minimum_interval_seconds=60, description="Starts a run when a new landing day appears.")
def landing_day_sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse):
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    days = landing_days(lakehouse.settings())
    unfinished = set(unfinished_days(days))
    new = [d for d in days if d not in seen and d not in unfinished]
    for day in new:
        yield dg.RunRequest(run_key=f"landing-{day}", partition_key=day)
    if new:
        context.update_cursor(json.dumps(sorted(seen | set(new))))
    else:
        yield dg.SkipReason(f"no new landing day ({len(days)} seen)")


# --- Kafka ------------------------------------------------------------------------------------------------------------

KAFKA_EVENTS = dg.AssetKey(["bronze", "kafka_events"])

kafka_ingest_job = dg.define_asset_job(
    "kafka_ingest_job",
    selection=dg.AssetSelection.assets(KAFKA_EVENTS),
    description="Kafka topics → bronze (exactly once), up to the end offsets seen when the run starts. Silver and gold "
                "take the Kafka rows with the ingest day they landed on (daily_events_job).",
)


SENSOR_BROKER_TIMEOUT_S = 10.0


def lag_decision(lag: int, threshold: int, last_request: float | None, now: float, max_interval_s: float) -> str | None:
    """Why an ingest run is due (None: not due): the lag reached the threshold, or it is above zero and no run was
    requested for ``max_interval_s``."""
    if lag <= 0:
        return None
    if lag >= threshold:
        return f"lag {lag:,} ≥ threshold {threshold:,}"
    if last_request is None or now - last_request >= max_interval_s:
        return f"lag {lag:,} and no ingest for {max_interval_s / 60:.0f} min"
    return None


@dg.sensor(job=kafka_ingest_job, minimum_interval_seconds=30,
           description="Starts a Kafka ingest run when the consumer group's lag reaches LENSLAKE_KAFKA_LAG_THRESHOLD, "
                       "and at least every LENSLAKE_KAFKA_MAX_INTERVAL_MINUTES while it is above zero.")
def kafka_lag_sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse):
    import time

    settings = lakehouse.settings()
    if not settings.kafka_bootstrap:
        return dg.SkipReason("Kafka is not configured (no LENSLAKE_KAFKA_BOOTSTRAP)")
    active = context.instance.get_runs(dg.RunsFilter(job_name=kafka_ingest_job.name, statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]), limit=1)
    if active:
        return dg.SkipReason(f"an ingest run is already under way ({active[0].run_id})")
    from lenslake.kafka.config import unreachable
    from lenslake.kafka.topics import status

    try:  # (a tick waits at most this long: sensors are evaluated under a time limit)
        rows = status(settings, timeout=SENSOR_BROKER_TIMEOUT_S)
    except Exception as e:  # a broker that cannot be reached fails the tick with one clear line
        line = unreachable(settings, e)
        if line is None:
            raise
        raise RuntimeError(line) from None
    lag = sum(r.lag for r in rows)
    now = time.time()
    last = float(context.cursor) if context.cursor else None
    why = lag_decision(lag, settings.kafka_lag_threshold, last, now, settings.kafka_max_interval_minutes * 60)
    if why is None:
        return dg.SkipReason(f"lag {lag:,} (threshold {settings.kafka_lag_threshold:,})")
    context.update_cursor(str(now))
    return dg.RunRequest(run_key=f"kafka-{int(now)}", tags={"lenslake/kafka_lag": str(lag), "lenslake/why": why})
