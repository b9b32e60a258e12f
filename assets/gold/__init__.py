"""Gold: daily KPIs and the session funnel by channel and device."""

import dagster as dg

from assets.common import preview, write_metadata
from expectations.factory import gx_check_result, gx_check_spec, warm_up
from lenslake.pipeline import build_gold
from orchestration.partitions import EVENT_PARTITIONING
from orchestration.resources import Lakehouse

KPIS = dg.AssetKey(["gold", "daily_kpis"])
FUNNEL = dg.AssetKey(["gold", "daily_funnel"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(KPIS, deps=[dg.AssetKey(["silver", "events"])], kinds={"pyspark", "delta"}, owners=["team:analytics"],
                     description="Daily behaviour KPIs by UTC event date."),
        dg.AssetSpec(FUNNEL, deps=[dg.AssetKey(["silver", "sessions"])], kinds={"pyspark", "delta"}, owners=["team:analytics"],
                     description="Session funnel (view → cart → purchase) per day, channel and device."),
    ],
    check_specs=[gx_check_spec("gold.daily_kpis"), gx_check_spec("gold.daily_funnel")],
    **EVENT_PARTITIONING,
    group_name="gold",
)
def gold_tables(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    warm_up()
    result = build_gold(lakehouse.engine(), lakehouse.store(), lakehouse.settings(), context.partition_keys)
    kpis, funnel = result.write("gold.daily_kpis"), result.write("gold.daily_funnel")
    written = result.written.get("gold.daily_kpis")
    yield dg.MaterializeResult(
        asset_key=KPIS,
        metadata=write_metadata(kpis, preview=preview(written.sort_by("event_date"),
                                ["event_date", "sessions", "orders", "revenue", "conversion_rate"], 10)) if kpis else {},
    )
    yield dg.MaterializeResult(asset_key=FUNNEL, metadata=write_metadata(funnel) if funnel else {})
    yield gx_check_result("gold.daily_kpis", written)
    yield gx_check_result("gold.daily_funnel", result.written.get("gold.daily_funnel"))
