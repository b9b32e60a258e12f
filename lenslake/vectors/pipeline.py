"""The product-embedding step as plain functions (the Dagster asset in ``assets/vectors`` is a thin wrapper):
read the current products with their eyewear attributes from Delta, embed incrementally, publish a tag, validate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lenslake.vectors.encoder import Encoder, source_hash
from lenslake.vectors.store import VectorStore, incremental_embed, live_model_versions
from lenslake.vectors.validate import validate_all

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


class _TimedEncoder:
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
    model_version: str
    active: int
    embedded: int
    unchanged: int
    removed: int
    tag: str
    table_version: int | None
    seconds: float
    model_load_seconds: float
    checks: dict  # check name -> (passed, metadata)


def embed_products(settings, delta_store, vector_store: VectorStore | None = None) -> ProductEmbedResult:
    """Embed the changed active products for the published model version, delete the vectors of deleted or
    discontinued ones, optimize, publish a tag (a new one only when the table changed) and validate the table."""
    t0 = time.perf_counter()
    version = live_model_versions(settings)[0]
    encoder = _TimedEncoder(Encoder.for_version(version, settings))
    store = vector_store or VectorStore.from_settings(settings)
    products = current_products(delta_store)
    report = incremental_embed(products, encoder, store, now=settings.now(), optimize=True)
    published = store.published()
    if report.embedded or report.deleted or published is None or published.version != store.table.version:
        tag = store.publish(version)
    else:
        tag = published.name
    expected = {str(r["sku"]): source_hash(encoder.text(r))
                for r in products.to_dicts() if (r.get("status") or "active") == "active"}
    checks = validate_all(store.rows(), products, version, "sku", store.dim, expected)
    return ProductEmbedResult(version, report.active, report.embedded, report.unchanged, report.deleted, tag,
                              store.table.version if store.exists() else None, time.perf_counter() - t0,
                              encoder.model_load_seconds, checks)
