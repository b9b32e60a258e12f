"""The Dagster code location: everything assembled explicitly."""

import dagster as dg

import assets.bronze
import assets.bronze.kafka
import assets.catalog
import assets.gold
import assets.profiles
import assets.silver
import assets.vectors
from jobs import daily_events_job, daily_events_schedule, kafka_ingest_job, kafka_lag_sensor, landing_day_sensor
from jobs.catalog import catalog_feed_sensor, catalog_job
from jobs.privacy import erasure_job, purge_job, purge_schedule
from jobs.profiles import profile_attribute_backfill_job, profiles_job
from jobs.vectors import (catalog_change_sensor, content_vectors_job, content_vectors_sensor, user_vectors_job,
                          user_vectors_sensor, vectors_job)
from orchestration.resources import Lakehouse

defs = dg.Definitions(
    assets=[assets.bronze.bronze_events, assets.bronze.kafka.kafka_events, assets.silver.silver_events, assets.gold.gold_tables,
            *assets.catalog.catalog_assets, *assets.profiles.profiles_assets, *assets.vectors.vectors_assets],
    jobs=[daily_events_job, kafka_ingest_job, catalog_job, profiles_job, profile_attribute_backfill_job,
          purge_job, erasure_job, vectors_job, content_vectors_job, user_vectors_job],
    schedules=[daily_events_schedule, purge_schedule],
    sensors=[landing_day_sensor, kafka_lag_sensor, catalog_feed_sensor, catalog_change_sensor, content_vectors_sensor,
             user_vectors_sensor],
    resources={"lakehouse": Lakehouse()},
    # One process per run: one engine session (and at most one JVM) and one import of GX per run.
    executor=dg.in_process_executor,
)
