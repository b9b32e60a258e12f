"""Silver: deduplicated, bot-free, sessionized events; the bot audit table; sessions."""

import dagster as dg

from assets.common import write_metadata
from expectations.factory import ChecksBeside, gx_check_spec, warm_up
from lenslake.pipeline import build_silver
from orchestration.partitions import EVENT_PARTITIONING
from orchestration.resources import Lakehouse

EVENTS = dg.AssetKey(["silver", "events"])
BOTS = dg.AssetKey(["silver", "bot_events"])
SESSIONS = dg.AssetKey(["silver", "sessions"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(EVENTS, deps=[dg.AssetKey(["bronze", "events"]), dg.AssetKey(["bronze", "kafka_events"])], kinds={"pyspark", "delta"},
                     description="Human events, one per event id, dated by event time, with a derived 30-minute session."),
        dg.AssetSpec(BOTS, deps=[dg.AssetKey(["bronze", "events"]), dg.AssetKey(["bronze", "kafka_events"])], kinds={"pyspark", "delta"},
                     description="Events removed as bots, with the reason."),
        dg.AssetSpec(SESSIONS, deps=[EVENTS], kinds={"pyspark", "delta"}, description="One row per derived session."),
    ],
    check_specs=[gx_check_spec("silver.events"), gx_check_spec("silver.sessions")],
    **EVENT_PARTITIONING,
    group_name="silver",
)
def silver_events(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    warm_up()
    with ChecksBeside(("silver.events", "silver.sessions")) as checks:
        result = build_silver(lakehouse.engine(), lakehouse.store(), lakehouse.settings(), context.partition_keys,
                              checks.rows_ready)
        gx = {table: checks.result(table) for table in checks.tables}
    c = result.counts
    context.log.info(f"silver: {c}")
    events, sessions = result.write("silver.events"), result.write("silver.sessions")
    yield dg.MaterializeResult(
        asset_key=EVENTS,
        metadata=(write_metadata(events, duplicates_removed=c["duplicates_removed"], new_events=c["new_events"],
                                 event_dates_rewritten=c.get("event_dates_rewritten", "")) if events else {"new_events": 0}),
    )
    yield dg.MaterializeResult(
        asset_key=BOTS,
        metadata=write_metadata(result.write("silver.bot_events"), bots_removed=c["bots_removed"],
                                bot_reasons=dg.MetadataValue.json(c["bot_reasons"])),
    )
    yield dg.MaterializeResult(asset_key=SESSIONS, metadata=write_metadata(sessions) if sessions else {})
    yield gx["silver.events"]
    yield gx["silver.sessions"]
