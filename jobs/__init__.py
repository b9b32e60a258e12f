"""Jobs, schedules and sensors."""


import json

import dagster as dg

from lenslake.pipeline import landing_days
from orchestration.partitions import daily_partitions, unfinished_days
from orchestration.resources import Lakehouse

daily_events_job = dg.define_asset_job(
    "daily_events_job",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold"),
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
