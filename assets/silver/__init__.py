"""Silver: deduplicated, bot-free, sessionized events; the bot audit table; sessions."""


import datetime as dt
from collections import Counter

import dagster as dg
import pyarrow.dataset as ds

from assets.common import write_metadata
from expectations.factory import gx_check_result, gx_check_spec
from lenslake.pipeline import build_silver_day
from orchestration.partitions import daily_partitions
from orchestration.resources import Lakehouse

EVENTS = dg.AssetKey(["silver", "events"])
BOTS = dg.AssetKey(["silver", "bot_events"])
SESSIONS = dg.AssetKey(["silver", "sessions"])
ONE_DAY = dt.timedelta(days=1)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(EVENTS, deps=[dg.AssetKey(["bronze", "events"])], kinds={"pyspark", "delta"},
                     description="Human events, one per event id, dated by event time, with a derived 30-minute session."),
        dg.AssetSpec(BOTS, deps=[dg.AssetKey(["bronze", "events"])], kinds={"pyspark", "delta"},
                     description="Events removed as bots, with the reason."),
        dg.AssetSpec(SESSIONS, deps=[EVENTS], kinds={"pyspark", "delta"}, description="One row per derived session."),
    ],
    check_specs=[gx_check_spec("silver.events"), gx_check_spec("silver.sessions")],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="silver",
)
def silver_events(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    settings, engine, store = lakehouse.settings(), lakehouse.engine(), lakehouse.store()
    totals, bot_reasons, last = Counter(), Counter(), {}
    for day in context.partition_keys:
        result = build_silver_day(engine, store, settings, day)
        c = result.counts
        totals.update({k: c[k] for k in ("bronze_rows", "duplicates_removed", "bots_removed", "new_events")})
        bot_reasons.update(c["bot_reasons"])
        last.update({w.table: w for w in result.writes})
        context.log.info(f"{day}: {c}")
    yield dg.MaterializeResult(
        asset_key=EVENTS,
        metadata=write_metadata(last["silver.events"], duplicates_removed=totals["duplicates_removed"],
                                new_events=totals["new_events"]) if "silver.events" in last else {"new_events": 0},
    )
    yield dg.MaterializeResult(
        asset_key=BOTS,
        metadata=write_metadata(last["silver.bot_events"], bots_removed=totals["bots_removed"],
                                bot_reasons=dg.MetadataValue.json(dict(bot_reasons))),
    )
    yield dg.MaterializeResult(
        asset_key=SESSIONS, metadata=write_metadata(last["silver.sessions"]) if "silver.sessions" in last else {}
    )
    days = [dt.date.fromisoformat(d) for d in context.partition_keys]
    lo, hi = min(days) - ONE_DAY, max(days) + ONE_DAY
    yield gx_check_result(store, "silver.events", ds.field("ingest_date").isin(days))
    yield gx_check_result(store, "silver.sessions", (ds.field("session_date") >= lo) & (ds.field("session_date") <= hi))
