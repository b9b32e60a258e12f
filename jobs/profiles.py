"""The profiles job, and the backfill job that fills a newly flagged attribute for existing profiles."""

import dagster as dg

from orchestration.resources import Lakehouse

profiles_job = dg.define_asset_job(
    "profiles_job",
    selection=dg.AssetSelection.groups("profiles"),
    description="Ingest the people feeds (customers, prescriptions, service history, consent) with encryption and "
                "quarantine, rebuild the consent in force, recompute behaviour; check reconciliation and minimization.",
)


class BackfillConfig(dg.Config):
    attribute: str
    batch_size: int = 10_000


@dg.op(description="Fill one flexible attribute for every profile lacking it (idempotent, behind its feature flag).")
def backfill_profile_attribute(context: dg.OpExecutionContext, config: BackfillConfig, lakehouse: Lakehouse):
    from lenslake.profiles.attributes import backfill_attribute

    store = lakehouse.store()

    def progress(done: int, total: int) -> None:
        context.log.info(f"backfill {config.attribute}: {done:,} of {total:,} profiles filled")

    report = backfill_attribute(store, lakehouse.settings(), config.attribute, batch_size=config.batch_size,
                                progress=progress)
    yield dg.AssetMaterialization(asset_key=["profiles", "customers"], metadata={
        "backfilled_attribute": config.attribute, "profiles": report.profiles, "already_filled": report.already,
        "filled_now": report.filled, "batches": report.batches, "table_version": store.version("profiles.customers")})
    yield dg.Output(report.filled)


@dg.job(description="Backfill a flexible profile attribute (run config: ops.backfill_profile_attribute.config."
                    "attribute); refuses while the attribute's feature flag is off.")
def profile_attribute_backfill_job():
    backfill_profile_attribute()
