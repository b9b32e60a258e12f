"""The product-embedding step as plain functions (the Dagster asset in ``assets/vectors`` is a thin wrapper):
read the current products with their eyewear attributes from Delta, embed incrementally for every live model
version, publish a tag per changed version, clean up old versions by the bounded policy, validate.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np

from lenslake.vectors.encoder import Encoder, source_hash
from lenslake.vectors.store import VectorStore, incremental_embed, live_model_versions
from lenslake.vectors.validate import check_consistency, validate_all

# The attribute columns product_text reads (the rest of catalog.eyewear_attributes is not embedded).
ATTRIBUTE_COLUMNS = ("frame_shape", "frame_material", "colour", "gender", "face_width_fit",
                     "lens_width_mm", "bridge_mm", "temple_mm")


def current_products(delta_store):
    """catalog.products left-joined with the embedded columns of catalog.eyewear_attributes (a polars frame)."""
    import polars as pl

    products = pl.from_arrow(delta_store.read("catalog.products"))
    if delta_store.exists("catalog.eyewear_attributes"):
        attrs = pl.from_arrow(delta_store.read("catalog.eyewear_attributes"))
        wanted = [c for c in ATTRIBUTE_COLUMNS if c in attrs.columns and c not in products.columns]
        if wanted:
            attrs = attrs.select(["sku", *wanted]).unique("sku", keep="last")
            products = products.join(attrs, on="sku", how="left")
    return products


class TimedEncoder:
    """Delegates to an Encoder and times the model load (only paid when something is to be embedded)."""

    def __init__(self, encoder: Encoder):
        self.inner = encoder
        self.version = encoder.version
        self.model_load_seconds = 0.0

    def text(self, row: dict) -> str:
        return self.inner.text(row)

    def encode(self, texts: list[str]) -> np.ndarray:
        if len(texts):
            t = time.perf_counter()
            _ = self.inner.model
            self.model_load_seconds = time.perf_counter() - t
        return self.inner.encode(texts)


@dataclass
class ProductEmbedResult:
    model_version: str  # the published one (the first live version); the counts below are its own
    active: int
    embedded: int
    unchanged: int
    removed: int
    tag: str
    table_version: int | None
    seconds: float
    model_load_seconds: float  # every live version's together
    checks: dict  # check name -> (passed, metadata)
    versions: dict = field(default_factory=dict)  # model version -> {embedded, unchanged, removed, tag, ...}
    retired: int = 0  # rows of model versions no longer live, deleted
    cleanup: dict = field(default_factory=dict)


def publish_changed(settings, store: VectorStore, changed: dict[str, bool]) -> tuple[dict[str, str], dict]:
    """Tag the current version once for each model version whose rows changed (or that has no publish yet); the
    others keep their last publish tag. After a new publish, the settings' bounded history policy runs (cleanup).
    Returns model version -> its current publish tag, and what the cleanup did and the versions now kept."""
    tags, new = {}, False
    for version, did_change in changed.items():
        published = store.published(version)
        if did_change or published is None:
            tags[version], new = store.publish(version), True
        else:
            tags[version] = published.name
    deleted = 0
    if new:
        report = store.cleanup(keep_last=settings.vectors_keep_publishes,
                               grace=dt.timedelta(minutes=settings.vectors_cleanup_grace_minutes))
        deleted = len(report.tags_deleted)
    return tags, {"ran": new, "tags_deleted": deleted, "versions_kept": len(store.table.list_versions())}


def embed_products(settings, delta_store, vector_store: VectorStore | None = None) -> ProductEmbedResult:
    """For every live model version (the published one first, then those kept live beside it for A/B): embed the
    changed active products, delete the vectors of deleted or discontinued ones; delete the rows of model versions
    no longer live; optimize, publish a tag for each model version whose rows changed, apply the bounded cleanup and
    validate the table (consistency with the catalog checked per live version)."""
    t0 = time.perf_counter()
    versions = live_model_versions(settings)
    store = vector_store or VectorStore.from_settings(settings)
    products = current_products(delta_store)
    active_rows = [r for r in products.to_dicts() if (r.get("status") or "active") == "active"]
    reports, expected, load_seconds = {}, {}, 0.0
    for version in versions:
        encoder = TimedEncoder(Encoder.for_version(version, settings))
        reports[version] = incremental_embed(products, encoder, store, now=settings.now(), optimize=True)
        load_seconds += encoder.model_load_seconds
        expected[version] = {str(r["sku"]): source_hash(encoder.text(r)) for r in active_rows}
    retired = store.retire(versions)
    if retired:
        store.optimize()
    tags, cleanup = publish_changed(settings, store, {v: bool(r.embedded or r.deleted or retired)
                                                      for v, r in reports.items()})
    rows = store.rows()
    checks = validate_all(rows, products, versions[0], "sku", store.dim, expected[versions[0]])
    for version in versions[1:]:  # one consistency check over every live version
        passed, meta = check_consistency(rows, products, version, "sku", expected[version])
        first_passed, first_meta = checks["consistency"]
        checks["consistency"] = (first_passed and passed,
                                 {**first_meta, "other_versions": {**first_meta.get("other_versions", {}),
                                                                   version: meta}})
    first = reports[versions[0]]
    per_version = {v: {"embedded": r.embedded, "unchanged": r.unchanged, "removed": r.deleted, "tag": tags[v],
                       "rows": store.count(v)} for v, r in reports.items()}
    return ProductEmbedResult(versions[0], first.active, first.embedded, first.unchanged, first.deleted,
                              tags[versions[0]], store.table.version if store.exists() else None,
                              time.perf_counter() - t0, load_seconds, checks, per_version, retired, cleanup)
