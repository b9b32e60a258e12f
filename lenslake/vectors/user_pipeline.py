"""The user-embedding and product-segment steps as plain functions (the Dagster assets in ``assets/vectors`` are
thin wrappers): engagements from silver.events, restricted to users with personalization consent, become
time-decayed user vectors in LanceDB (``user_embeddings``, ids ``<user_token>|<model_version>``, one per live model
version, tagged per publish); users who lost consent lose their vector. Product segments: k-means over the published
product vectors, one LanceDB row per segment (``product_segments``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lenslake.vectors.store import (
    VectorStore,
    live_model_versions,
    vector_rows,
    vectors_dir,
    vectors_of,
)
from lenslake.vectors.users import EVENT_WEIGHTS, user_embeddings
from lenslake.vectors.validate import check_dimension, check_finite, check_unit_norm

USER_TABLE = "user_embeddings"
USER_KEY = "user_token"
SEGMENT_TABLE = "product_segments"
# the engagements that say something about taste (silver.events event types)
ENGAGEMENTS = tuple(t for t, w in EVENT_WEIGHTS.items() if w > 0)


def user_store(settings) -> VectorStore:
    return VectorStore.from_settings(settings, table_name=USER_TABLE, key=USER_KEY)


def engagements(delta_store):
    """Engagement events with a user and a SKU (polars: user_id, sku, event_time, event_type)."""
    import polars as pl

    if not delta_store.exists("silver.events"):
        return pl.DataFrame(schema={"user_id": pl.String, "sku": pl.String, "event_time": pl.Datetime("us", "UTC"),
                                    "event_type": pl.String})
    ev = pl.from_arrow(delta_store.read("silver.events", columns=["user_token", "sku", "event_type", "event_time"]))
    return (ev.filter(pl.col("event_type").is_in(ENGAGEMENTS) & pl.col("user_token").is_not_null()
                      & pl.col("sku").is_not_null())
            .rename({"user_token": "user_id"}))


def no_vector_without_consent(rows: pa.Table, consented: set[str]) -> tuple[bool, dict]:
    """Every stored user vector belongs to a user whose personalization consent is in force (counts only: no tokens)."""
    users = set(rows.column(USER_KEY).to_pylist()) if rows.num_rows else set()
    without = users - consented
    return not without, {"stored_users": len(users), "users_without_consent": len(without)}


@dataclass
class UserEmbedResult:
    model_version: str  # the published one; the counts below are its own
    embedded: int
    skipped_no_consent: int
    removed: int
    removed_no_consent: int
    table_version: int | None
    seconds: float
    checks: dict  # check name -> (passed, metadata)
    tags: dict = field(default_factory=dict)  # model version -> its current publish tag
    retired: int = 0


def embed_users(settings, delta_store, half_life_days: float = 30.0) -> UserEmbedResult:
    """For every live model version: one vector per user with personalization consent, from that version's product
    vectors; the vectors of users who lost consent (or all engagement) are deleted with their fragments rewritten, so
    no data file of the latest version keeps them. Then rows of retired model versions go, each changed version is
    published (a tag) and the bounded cleanup runs."""
    from lenslake.privacy.consent import consented_users
    from lenslake.vectors.pipeline import publish_changed

    t0 = time.perf_counter()
    now = settings.now()
    versions = live_model_versions(settings)
    consented = consented_users(delta_store, "personalization", now)
    ev = engagements(delta_store)
    engaged = set(ev.get_column("user_id").unique().to_list())
    products_store = VectorStore.from_settings(settings)
    store = user_store(settings)
    counts, changed = {}, {}
    for version in versions:
        products = products_store.rows(version, ["sku", "vector"])
        users = user_embeddings(ev, products, consented, half_life_days=half_life_days, as_of=now)
        have = dict(zip(*[store.rows(version, [USER_KEY, "source_hash"]).column(c).to_pylist()
                          for c in (USER_KEY, "source_hash")]))
        keep = set(users.get_column("user_id").to_list())
        gone = set(have) - keep
        hashes = [f"{n}:{w:.6g}" for n, w in zip(users["engagements"].to_list(), users["weight"].to_list())]
        if users.height:
            vectors = np.asarray(users.get_column("vector").to_list(), dtype=np.float32)
            store.upsert(vector_rows(users.get_column("user_id").to_list(), vectors, hashes, version, now,
                                     key=USER_KEY))
        removed = store.delete_keys(version, gone, materialize=True) if gone else 0
        updated = sum(1 for u, h in zip(users.get_column("user_id").to_list(), hashes) if have.get(u) != h)
        counts[version] = (users.height, removed, len(gone - consented))
        changed[version] = bool(updated or removed)
    retired = store.retire(versions)
    tags = (publish_changed(settings, store, {v: c or bool(retired) for v, c in changed.items()})[0]
            if store.exists() else {})
    rows = store.rows()
    checks = {"dimension": check_dimension(rows, store.dim), "finite": check_finite(rows),
              "unit_norm": check_unit_norm(rows),
              "no_vector_without_consent": no_vector_without_consent(rows, consented)}
    embedded, removed, removed_no_consent = counts[versions[0]]
    return UserEmbedResult(versions[0], embedded, len(engaged - consented), removed, removed_no_consent,
                           store.table.version if store.exists() else None, time.perf_counter() - t0, checks,
                           tags, retired)


def segment_products(settings, k: int | None = None) -> dict:
    """k-means over the published model version's product vectors; overwrites the ``product_segments`` LanceDB
    table (one row per segment: id, size, centroid, SKUs). Returns the quality metadata."""
    from lenslake.vectors.segments import kmeans_segments

    version = live_model_versions(settings)[0]
    products = VectorStore.from_settings(settings).rows(version, ["sku", "vector"])
    seg = kmeans_segments(vectors_of(products), k or settings.product_segments)
    skus = np.asarray(products.column("sku").to_pylist(), dtype=object)
    n, dim = seg.centroids.shape
    table = pa.table({
        "segment": pa.array(range(n), pa.int32()),
        "model_version": [version] * n,
        "size": pa.array(np.bincount(seg.labels, minlength=n), pa.int64()),
        "centroid": pa.FixedSizeListArray.from_arrays(pa.array(seg.centroids.astype(np.float32).reshape(-1)), dim),
        "skus": [sorted(skus[seg.labels == i].tolist()) for i in range(n)],
    })
    import lancedb

    lancedb.connect(str(vectors_dir(settings))).create_table(SEGMENT_TABLE, table, mode="overwrite")
    return {**seg.metadata, "model_version": version, "sizes": table.column("size").to_pylist()}


def read_segments(settings) -> pa.Table:
    import lancedb

    return lancedb.connect(str(vectors_dir(settings))).open_table(SEGMENT_TABLE).to_arrow()
