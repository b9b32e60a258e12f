"""Partitions shared by assets and jobs (imported by both, so there are no import cycles)."""

import dagster as dg

# Event days: the landing day of a file (and the Kafka ingest day). The last partition is the day that ended, so
# the 02:00 schedule materializes yesterday, whose landing folder is complete.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01")

# Every event asset: daily partitions, and a backfill of many days is one run (one plan, one engine session).
EVENT_PARTITIONING = {"partitions_def": daily_partitions, "backfill_policy": dg.BackfillPolicy.single_run()}


def unfinished_days(days) -> list[str]:
    """The days that are not (yet) partitions: today, the future, or not a date at all."""
    valid = set(daily_partitions.get_partition_keys())
    return [d for d in days if d not in valid]
