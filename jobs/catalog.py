"""The catalog job and the sensor that starts it when a new feed day lands."""

import dagster as dg

from orchestration.resources import Lakehouse

catalog_job = dg.define_asset_job(
    "catalog_job",
    selection=dg.AssetSelection.groups("catalog"),
    description="Apply every pending catalog feed day in order (products, media, relations, prices, stock), check "
                "referential integrity, measure data quality.",
)


@dg.sensor(job=catalog_job, minimum_interval_seconds=300,
           description="Starts a catalog run when a feed day lands that the catalog tables do not hold yet.")
def catalog_feed_sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse):
    from lenslake.catalog.apply import pending_days

    settings = lakehouse.settings()
    pending = pending_days(lakehouse.store(), settings.data_root)
    if not pending:
        yield dg.SkipReason("no pending catalog feed day")
        return
    # One run applies every pending day in order; the key names the newest, so a day landing later asks again.
    yield dg.RunRequest(run_key=f"catalog-{pending[-1]}", tags={"lenslake/catalog_days": ",".join(pending)})
