"""Gold: daily KPIs and the session funnel by channel and device."""

import dagster as dg

from assets.common import preview, write_metadata
from expectations.contract_checks import contract_check_results, contract_check_specs
from expectations.factory import gx_check_result, gx_check_spec, warm_up
from lenslake.pipeline import build_gold
from lenslake.publish import publishing
from orchestration.partitions import EVENT_PARTITIONING
from orchestration.resources import Lakehouse

KPIS = dg.AssetKey(["gold", "daily_kpis"])
FUNNEL = dg.AssetKey(["gold", "daily_funnel"])
GOLD = ("gold.daily_kpis", "gold.daily_funnel")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(KPIS, deps=[dg.AssetKey(["silver", "events"])], kinds={"pyspark", "delta"}, owners=["team:analytics"],
                     description="Daily behaviour KPIs by UTC event date."),
        dg.AssetSpec(FUNNEL, deps=[dg.AssetKey(["silver", "sessions"])], kinds={"pyspark", "delta"}, owners=["team:analytics"],
                     description="Session funnel (view → cart → purchase) per day, channel and device."),
    ],
    check_specs=[spec for table in GOLD for spec in (gx_check_spec(table), *contract_check_specs(table))],
    **EVENT_PARTITIONING,
    group_name="gold",
)
def gold_tables(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    warm_up()
    store = lakehouse.store()
    # Blue-green: services read the published version; a new one is published only when its checks pass.
    with publishing(store, GOLD, run_id=context.run_id) as cycle:
        result = build_gold(lakehouse.engine(), store, lakehouse.settings(), context.partition_keys)
        # The contract's expectations (the GX suite), its schema (blocking) and its freshness (a warning).
        checks = {table: [gx_check_result(table, result.written.get(table)),
                          *contract_check_results(table, store, lakehouse.settings())] for table in GOLD}
        published = {table: cycle.publish(table, result.write(table), checks[table]) for table in GOLD}
    kpis, funnel = result.write("gold.daily_kpis"), result.write("gold.daily_funnel")
    written = result.written.get("gold.daily_kpis")
    kpis_md = write_metadata(kpis, preview=preview(written.sort_by("event_date"),
                             ["event_date", "sessions", "orders", "revenue", "conversion_rate"], 10)) if kpis else {}
    yield dg.MaterializeResult(asset_key=KPIS, metadata={**kpis_md, **published["gold.daily_kpis"].metadata},
                               check_results=checks["gold.daily_kpis"])
    funnel_md = write_metadata(funnel) if funnel else {}
    yield dg.MaterializeResult(asset_key=FUNNEL, metadata={**funnel_md, **published["gold.daily_funnel"].metadata},
                               check_results=checks["gold.daily_funnel"])
