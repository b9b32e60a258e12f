"""User embeddings: time-decayed means of the vectors of the products a user engaged with, for users with
personalization consent only."""

from __future__ import annotations

import datetime as dt

import numpy as np

from lenslake.vectors.encoder import normalize

# How much one engagement of each type says about taste (relative weights).
EVENT_WEIGHTS = {"product_view": 1.0, "wishlist_add": 2.0, "add_to_cart": 3.0, "purchase": 5.0,
                 "remove_from_cart": 0.0, "return": 0.0}


def user_embeddings(engagements, product_vectors, consented_users, half_life_days: float = 30.0,
                    as_of: dt.datetime | None = None, key: str = "sku"):
    """One unit vector per consenting user: the weighted mean of the vectors of the products they engaged with,
    each engagement weighted by its type (``weight`` column, else ``EVENT_WEIGHTS`` by ``event_type``, else 1)
    times ``0.5 ** (age_days / half_life_days)``. Engagements after ``as_of`` and products without a vector are
    ignored; users outside ``consented_users`` get no vector at all (personalization consent).

    engagements: polars/Arrow frame with ``user_id``, ``key``, ``event_time`` (+ ``event_type`` or ``weight``).
    product_vectors: frame with ``key`` and ``vector`` (e.g. ``VectorStore.rows(model_version)``).
    Returns a polars frame: user_id, vector (list of float32), engagements, weight, last_event_time.
    """
    import polars as pl
    import pyarrow as pa

    ev = pl.from_arrow(engagements) if isinstance(engagements, pa.Table) else engagements
    pv = pl.from_arrow(product_vectors) if isinstance(product_vectors, pa.Table) else product_vectors
    as_of = as_of or dt.datetime.now(dt.UTC)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    empty = pl.DataFrame(schema={"user_id": pl.String, "vector": pl.List(pl.Float32), "engagements": pl.Int64,
                                 "weight": pl.Float64, "last_event_time": pl.Datetime("us", "UTC")})
    consented = pl.Series("user_id", sorted({str(u) for u in consented_users}), dtype=pl.String)
    if ev.height == 0 or pv.height == 0 or consented.len() == 0:
        return empty

    if "weight" in ev.columns:
        weight = pl.col("weight").cast(pl.Float64)
    elif "event_type" in ev.columns:
        weight = pl.col("event_type").replace_strict(EVENT_WEIGHTS, default=1.0, return_dtype=pl.Float64)
    else:
        weight = pl.lit(1.0)
    time_col = pl.col("event_time")
    if ev.schema["event_time"] == pl.String:
        time_col = time_col.str.to_datetime(time_zone="UTC")
    elif getattr(ev.schema["event_time"], "time_zone", None) is None:
        time_col = time_col.dt.replace_time_zone("UTC")
    index = pv.select(pl.col(key).cast(pl.String)).with_row_index("row")
    ev = (ev.select(pl.col("user_id").cast(pl.String), pl.col(key).cast(pl.String),
                    time_col.dt.cast_time_unit("us").alias("t"), weight.alias("w"))
          .filter(pl.col("user_id").is_in(consented.implode()) & (pl.col("t") <= as_of) & (pl.col("w") > 0))
          .join(index, on=key, how="inner"))
    if ev.height == 0:
        return empty
    age_days = (pl.lit(as_of).dt.cast_time_unit("us") - pl.col("t")).dt.total_microseconds() / 86_400e6
    ev = ev.with_columns((pl.col("w") * (0.5 ** (age_days / half_life_days))).alias("w"))
    users = ev.group_by("user_id").agg(pl.len().alias("engagements"), pl.col("w").sum().alias("weight"),
                                       pl.col("t").max().alias("last_event_time")).sort("user_id")
    user_row = users.select("user_id").with_row_index("u")
    ev = ev.join(user_row, on="user_id")

    vectors = np.asarray(pv["vector"].to_list(), dtype=np.float32) if pv["vector"].dtype != pl.Array else pv["vector"].to_numpy()
    acc = np.zeros((users.height, vectors.shape[1]), dtype=np.float64)
    np.add.at(acc, ev["u"].to_numpy(), vectors[ev["row"].to_numpy()] * ev["w"].to_numpy()[:, None])
    out = normalize(acc)
    return users.select(
        "user_id", pl.Series("vector", list(out), dtype=pl.List(pl.Float32)), "engagements", "weight",
        pl.col("last_event_time").dt.replace_time_zone("UTC") if users.schema["last_event_time"].time_zone is None
        else pl.col("last_event_time"),
    )
