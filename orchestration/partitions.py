"""Partitions shared by assets and jobs (imported by both, so there are no import cycles)."""

import dagster as dg

# Event days: the landing day of a file (and the Kafka ingest day). The last partition is the day that ended, so
# the 02:00 schedule materializes yesterday, whose landing folder is complete.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01")
