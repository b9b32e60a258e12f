"""Vectors: product, content and user embeddings in LanceDB, kept in step with their sources.

Unpartitioned: each run embeds, for every live model version, only the texts whose source changed (content hash),
removes the vectors of what is gone, optimizes, publishes a tag per changed model version and applies the bounded
cleanup. Each table's validity (dimension, finite, unit norm, unique ids, consistency with its sources) gates it as
blocking checks.
"""

import dagster as dg

from orchestration.resources import Lakehouse

PRODUCT_EMBEDDINGS = dg.AssetKey(["vectors", "product_embeddings"])
# check name -> (validate_all's name, description)
def _check_specs(asset: dg.AssetKey, checks: dict) -> list[dg.AssetCheckSpec]:
    """Blocking checks of a vector table: check name → (the library's check, its description)."""
    return [dg.AssetCheckSpec(name, asset=asset, blocking=True, description=doc) for name, (_, doc) in checks.items()]


def _check_results(asset: dg.AssetKey, checks: dict, results: dict):
    """The library's results (``which`` → (passed, metadata)) as the asset's check results."""
    for name, (which, _) in checks.items():
        passed, meta = results[which]
        yield dg.AssetCheckResult(check_name=name, asset_key=asset, passed=bool(passed),
                                  severity=dg.AssetCheckSeverity.ERROR, metadata=_json_safe(meta))


CHECKS = {
    "embedding_dimension": ("dimension", "Every vector has the model's dimension."),
    "embedding_finite": ("finite", "No NaN or infinite component."),
    "embedding_unit_norm": ("unit_norm", "Every vector has L2 norm 1 (search scores are cosines only then)."),
    "embedding_unique_ids": ("unique_ids", "No id (sku + model version) twice."),
    "embedding_consistent_with_catalog": ("consistency", "Every active SKU has a current vector for the published "
                                                         "model version; none for a deleted or inactive SKU."),
}


def _json_safe(meta: dict) -> dict:
    return {k: (dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v) for k, v in meta.items()
            if v is not None}


@dg.asset(
    key=PRODUCT_EMBEDDINGS,
    deps=[dg.AssetKey(["catalog", "products"]), dg.AssetKey(["catalog", "eyewear_attributes"])],
    kinds={"lancedb"},
    group_name="vectors",
    owners=["team:merchandising"],
    description="One vector per active SKU and live model version (LanceDB), tagged per publish.",
    check_specs=_check_specs(PRODUCT_EMBEDDINGS, CHECKS),
)
def product_embeddings(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.vectors.pipeline import embed_products

    r = embed_products(lakehouse.settings(), lakehouse.store())
    context.log.info(f"product embeddings: {r.embedded} embedded, {r.unchanged} unchanged, {r.removed} removed, "
                     f"tag {r.tag}")
    yield dg.MaterializeResult(asset_key=PRODUCT_EMBEDDINGS, metadata={
        "dagster/row_count": r.active, "embedded": r.embedded, "unchanged": r.unchanged, "removed": r.removed,
        "model_version": r.model_version, "tag": r.tag, "table_version": r.table_version,
        "live_model_versions": dg.MetadataValue.json(r.versions), "retired_rows": r.retired,
        "versions_kept": r.cleanup.get("versions_kept", 0),
        "seconds": dg.MetadataValue.float(round(r.seconds, 3)),
        "model_load_seconds": dg.MetadataValue.float(round(r.model_load_seconds, 3)),
    })
    yield from _check_results(PRODUCT_EMBEDDINGS, CHECKS, r.checks)


CONTENT_EMBEDDINGS = dg.AssetKey(["vectors", "content_embeddings"])
CONTENT_CHECKS = {
    "content_embedding_dimension": ("dimension", "Every vector has the model's dimension."),
    "content_embedding_finite": ("finite", "No NaN or infinite component."),
    "content_embedding_unit_norm": ("unit_norm", "Every vector has L2 norm 1."),
    "content_embedding_unique_ids": ("unique_ids", "No id (kind:content hash + model version) twice."),
    "content_embedding_consistent_with_sources": ("consistency", "Every distinct active-product description and "
                                                                 "search query has a current vector with its count, for "
                                                                 "every live model version; none for a text gone."),
}


@dg.asset(
    key=CONTENT_EMBEDDINGS,
    deps=[dg.AssetKey(["catalog", "products"]), dg.AssetKey(["silver", "events"])],
    kinds={"lancedb"},
    group_name="vectors",
    owners=["team:merchandising"],
    description="One vector per distinct product description (catalog.products) and search query (silver.events, "
                "scrubbed) and live model version (LanceDB, ids <kind>:<content hash>|<model_version>, with use counts), "
                "tagged per publish.",
    check_specs=_check_specs(CONTENT_EMBEDDINGS, CONTENT_CHECKS),
)
def content_embeddings(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.vectors.content import embed_content

    r = embed_content(lakehouse.settings(), lakehouse.store())
    context.log.info(f"content embeddings: {r.descriptions} descriptions, {r.queries} queries; {r.embedded} embedded, "
                     f"{r.recounted} recounted, {r.removed} removed, tag {r.tag}")
    yield dg.MaterializeResult(asset_key=CONTENT_EMBEDDINGS, metadata={
        "dagster/row_count": r.descriptions + r.queries, "descriptions": r.descriptions, "queries": r.queries,
        "embedded": r.embedded, "recounted": r.recounted, "unchanged": r.unchanged, "removed": r.removed,
        "model_version": r.model_version, "tag": r.tag or "", "table_version": r.table_version or 0,
        "live_model_versions": dg.MetadataValue.json(r.versions), "retired_rows": r.retired,
        "versions_kept": r.cleanup.get("versions_kept", 0),
        "seconds": dg.MetadataValue.float(round(r.seconds, 3)),
        "encode_seconds": dg.MetadataValue.float(round(r.encode_seconds, 3)),
        "model_load_seconds": dg.MetadataValue.float(round(r.model_load_seconds, 3)),
    })
    yield from _check_results(CONTENT_EMBEDDINGS, CONTENT_CHECKS, r.checks)


USER_EMBEDDINGS = dg.AssetKey(["vectors", "user_embeddings"])
PRODUCT_SEGMENTS = dg.AssetKey(["vectors", "product_segments"])
USER_CHECKS = {
    "user_embedding_dimension": ("dimension", "Every user vector has the model's dimension."),
    "user_embedding_finite": ("finite", "No NaN or infinite component."),
    "user_embedding_unit_norm": ("unit_norm", "Every user vector has L2 norm 1."),
    "no_vector_without_consent": ("no_vector_without_consent", "Every stored user vector's user has personalization "
                                                               "consent in force now."),
}


@dg.asset(
    key=USER_EMBEDDINGS,
    deps=[PRODUCT_EMBEDDINGS, dg.AssetKey(["silver", "events"])],
    kinds={"lancedb"},
    group_name="vectors",
    owners=["team:merchandising"],
    description="One time-decayed vector per user with personalization consent (LanceDB, ids "
                "<user_token>|<model_version>); users who lost consent lose their vector.",
    check_specs=_check_specs(USER_EMBEDDINGS, USER_CHECKS),
)
def user_embeddings(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.vectors.user_pipeline import embed_users

    r = embed_users(lakehouse.settings(), lakehouse.store())
    context.log.info(f"user embeddings: {r.embedded} embedded, {r.skipped_no_consent} skipped (no consent), "
                     f"{r.removed} removed")
    yield dg.MaterializeResult(asset_key=USER_EMBEDDINGS, metadata={
        "dagster/row_count": r.embedded, "users_embedded": r.embedded,
        "users_skipped_no_consent": r.skipped_no_consent, "vectors_removed": r.removed,
        "vectors_removed_no_consent": r.removed_no_consent, "model_version": r.model_version,
        "table_version": r.table_version, "tags": dg.MetadataValue.json(r.tags), "retired_rows": r.retired,
        "seconds": dg.MetadataValue.float(round(r.seconds, 3)),
    })
    yield from _check_results(USER_EMBEDDINGS, USER_CHECKS, r.checks)


@dg.asset(
    key=PRODUCT_SEGMENTS,
    deps=[PRODUCT_EMBEDDINGS],
    kinds={"lancedb"},
    group_name="vectors",
    owners=["team:merchandising"],
    description="k-means segments of the published product vectors (LanceDB table product_segments: one row per "
                "segment with its size, centroid and SKUs), with cluster-quality metadata.",
)
def product_segments(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.vectors.user_pipeline import segment_products

    meta = segment_products(lakehouse.settings())
    context.log.info(f"product segments: k={meta['k']}, silhouette={meta['silhouette']}")
    return dg.MaterializeResult(metadata={"dagster/row_count": meta["k"], **_json_safe(meta)})


vectors_assets = [product_embeddings, content_embeddings, user_embeddings, product_segments]
