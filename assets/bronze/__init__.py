"""Bronze: landing NDJSON → validated, tokenized events and a quarantine with reasons."""

import dagster as dg

from assets.common import write_metadata
from expectations.factory import ChecksBeside, gx_check_spec, warm_up
from lenslake.pipeline import ingest_landing_days
from orchestration.partitions import EVENT_PARTITIONING
from orchestration.resources import Lakehouse

EVENTS = dg.AssetKey(["bronze", "events"])
QUARANTINE = dg.AssetKey(["bronze", "events_quarantine"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(EVENTS, description="Validated landing events, PII tokenized, partitioned by ingest day and source.",
                     kinds={"pyspark", "delta"}, owners=["team:data-platform"]),
        dg.AssetSpec(QUARANTINE, description="Rejected landing lines with a reason code; PII tokenized or the line sealed.",
                     kinds={"pyspark", "delta"}, owners=["team:data-platform"]),
    ],
    check_specs=[
        dg.AssetCheckSpec("landed_lines_reconcile", asset=EVENTS, blocking=True,
                          description="every landed line is either a bronze row or a quarantine row"),
        gx_check_spec("bronze.events"),
    ],
    **EVENT_PARTITIONING,
    group_name="bronze",
)
def bronze_events(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    warm_up()
    with ChecksBeside(("bronze.events",)) as checks:
        result = ingest_landing_days(lakehouse.engine(), lakehouse.store(), lakehouse.settings(), context.partition_keys,
                                     checks.rows_ready)
        gx_bronze = checks.result("bronze.events")
    c = result.counts
    context.log.info(f"{c['landed']} lines → {c['accepted']} bronze, {c['quarantined']} quarantined")
    yield dg.MaterializeResult(
        asset_key=EVENTS,
        metadata=write_metadata(result.write("bronze.events"), per_day=dg.MetadataValue.json(c["per_day"])),
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata=write_metadata(result.write("bronze.events_quarantine"), reasons=dg.MetadataValue.json(c["reasons"])),
    )
    yield dg.AssetCheckResult(
        check_name="landed_lines_reconcile", asset_key=EVENTS,
        passed=c["landed"] == c["accepted"] + c["quarantined"],
        metadata={"landed": c["landed"], "accepted": c["accepted"], "quarantined": c["quarantined"]},
    )
    yield gx_bronze
