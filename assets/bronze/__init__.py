"""Bronze: landing NDJSON → validated, tokenized events and a quarantine with reasons."""


import datetime as dt
from collections import Counter

import dagster as dg
import pyarrow.dataset as ds

from assets.common import write_metadata
from expectations.factory import gx_check_result, gx_check_spec
from lenslake.pipeline import ingest_landing_day
from orchestration.partitions import daily_partitions
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
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="bronze",
)
def bronze_events(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    settings, engine, store = lakehouse.settings(), lakehouse.engine(), lakehouse.store()
    totals, reasons, per_day, last = Counter(), Counter(), {}, {}
    for day in context.partition_keys:
        result = ingest_landing_day(engine, store, settings, day)
        c = result.counts
        totals.update({k: c[k] for k in ("landed", "accepted", "quarantined")})
        reasons.update(c["reasons"])
        per_day[day] = {k: c[k] for k in ("landed", "accepted", "quarantined")}
        last = {w.table: w for w in result.writes}
        context.log.info(f"{day}: {c['landed']} lines → {c['accepted']} bronze, {c['quarantined']} quarantined")
    yield dg.MaterializeResult(
        asset_key=EVENTS,
        metadata=write_metadata(last["bronze.events"], rows_accepted=totals["accepted"], per_day=dg.MetadataValue.json(per_day)),
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata=write_metadata(last["bronze.events_quarantine"], rows_quarantined=totals["quarantined"],
                                reasons=dg.MetadataValue.json(dict(reasons))),
    )
    yield dg.AssetCheckResult(
        check_name="landed_lines_reconcile", asset_key=EVENTS,
        passed=totals["landed"] == totals["accepted"] + totals["quarantined"],
        metadata={"landed": totals["landed"], "accepted": totals["accepted"], "quarantined": totals["quarantined"]},
    )
    days = [dt.date.fromisoformat(d) for d in context.partition_keys]
    yield gx_check_result(store, "bronze.events", ds.field("ingest_date").isin(days))
