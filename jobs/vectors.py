"""The vector jobs and the sensors that start them: product vectors when the product master changes, content vectors
when product descriptions or search events change, user vectors when events or consent change."""

import dagster as dg

from orchestration.resources import Lakehouse

vectors_job = dg.define_asset_job(
    "vectors_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["vectors", "product_embeddings"])),
    description="Embed the changed products, remove the vectors of deleted or discontinued ones, publish a tag, "
                "validate the vector table.",
)

# Separate from vectors_job (which the catalog sensor and the demo run): user vectors read silver.events and consent
# (people data). Both assets read the published product vectors, which vectors_job keeps current.
user_vectors_job = dg.define_asset_job(
    "user_vectors_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["vectors", "user_embeddings"]),
                                       dg.AssetKey(["vectors", "product_segments"])),
    description="Time-decayed user vectors for users with personalization consent (removing the vectors of users "
                "who lost it), and k-means product segments with cluster-quality metadata.",
)


# Content vectors read both the catalog (descriptions) and silver.events (search queries): their own job and sensor,
# so a new day of events does not re-run product vectors and a catalog change does not wait for events.
content_vectors_job = dg.define_asset_job(
    "content_vectors_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["vectors", "content_embeddings"])),
    description="Embed the new product descriptions and search queries for every live model version, update use "
                "counts, remove texts gone from the sources, publish a tag, validate the content vector table.",
)


@dg.sensor(job=vectors_job, minimum_interval_seconds=300,
           description="Starts a vectors run when catalog.products has a Delta version the last run did not see.")
def catalog_change_sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse):
    store = lakehouse.store()
    if not store.exists("catalog.products"):
        yield dg.SkipReason("catalog.products does not exist yet")
        return
    version = str(store.version("catalog.products"))
    if context.cursor == version:
        yield dg.SkipReason(f"catalog.products still at version {version}")
        return
    context.update_cursor(version)
    yield dg.RunRequest(run_key=f"catalog-products-v{version}", tags={"lenslake/catalog_products_version": version})


# What user vectors depend on: new events, a change of consent, new product vectors.
USER_VECTOR_SOURCES = ("silver.events", "privacy.current_consent")
# What content vectors depend on: product descriptions and search events.
CONTENT_VECTOR_SOURCES = ("catalog.products", "silver.events")


def _sources_changed(context: dg.SensorEvaluationContext, lakehouse: Lakehouse, sources: tuple[str, ...],
                     prefix: str, nothing_new: str):
    store = lakehouse.store()
    missing = [t for t in sources if not store.exists(t)]
    if missing:
        yield dg.SkipReason(f"not there yet: {', '.join(missing)}")
        return
    versions = "|".join(f"{t}@{store.version(t)}" for t in sources)
    if context.cursor == versions:
        yield dg.SkipReason(f"{nothing_new} ({versions})")
        return
    context.update_cursor(versions)
    yield dg.RunRequest(run_key=f"{prefix}-{versions}", tags={"lenslake/sources": versions})


@dg.sensor(job=user_vectors_job, minimum_interval_seconds=300,
           description="Starts a user-vectors run when silver.events or privacy.current_consent has a Delta version "
                       "the last run did not see (a withdrawn consent removes the user's vector on that run).")
def user_vectors_sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse):
    yield from _sources_changed(context, lakehouse, USER_VECTOR_SOURCES, "user-vectors", "no new events or consent")


@dg.sensor(job=content_vectors_job, minimum_interval_seconds=300,
           description="Starts a content-vectors run when catalog.products or silver.events has a Delta version the "
                       "last run did not see.")
def content_vectors_sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse):
    yield from _sources_changed(context, lakehouse, CONTENT_VECTOR_SOURCES, "content-vectors",
                                "no new products or events")
