"""Partitions shared by assets and jobs (imported by both, so there are no import cycles)."""

import dagster as dg

# Event days: the landing day of a file (and the Kafka ingest day). end_offset=1 includes today.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
