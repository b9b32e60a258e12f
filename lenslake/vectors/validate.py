"""Validation of a vector table, as plain functions returning ``(passed, metadata)``: the blocking asset checks of
the embedding assets call these. Metadata holds counts and, for product tables only, a few sample keys (user tables
are keyed by tokens, which stay out of check results).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lenslake.vectors.encoder import DIMENSION

NORM_TOLERANCE = 1e-3
_SAMPLE = 5


def _sample(keys, key_column: str) -> dict:
    return {"sample": sorted(keys)[:_SAMPLE]} if key_column == "sku" and keys else {}


def _vectors(table: pa.Table) -> tuple[np.ndarray | None, list[int]]:
    """The vectors as a float32 matrix when every row has DIMENSION values, else None and each row's length."""
    col = table.column("vector").combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
        return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False), [dim] * len(col)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths == lengths[0]).all():
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).astype(np.float32, copy=False), list(lengths)
    return None, list(lengths)


def check_dimension(table: pa.Table, dim: int = DIMENSION) -> tuple[bool, dict]:
    """Every vector has exactly ``dim`` values."""
    _, lengths = _vectors(table)
    bad = sum(1 for n in lengths if n != dim)
    return bad == 0, {"expected_dimension": dim, "rows": table.num_rows, "wrong_dimension_rows": bad,
                      "dimensions_seen": sorted({int(n) for n in lengths})[:5]}


def check_finite(table: pa.Table) -> tuple[bool, dict]:
    """No NaN or infinite component."""
    vectors, _ = _vectors(table)
    if vectors is None:
        flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        bad_rows = int(np.count_nonzero(~np.isfinite(flat)))  # an upper bound on rows
    else:
        bad_rows = int(np.count_nonzero(~np.isfinite(vectors).all(axis=1)))
    return bad_rows == 0, {"rows": table.num_rows, "non_finite_rows": bad_rows}


def check_unit_norm(table: pa.Table, tolerance: float = NORM_TOLERANCE) -> tuple[bool, dict]:
    """Every vector has L2 norm 1 (within ``tolerance``): search scores are cosines only then."""
    vectors, _ = _vectors(table)
    if vectors is None or not len(vectors):
        return vectors is not None, {"rows": table.num_rows}
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    off = ~(np.abs(norms - 1.0) <= tolerance)  # NaN norms count as off
    finite = norms[np.isfinite(norms)]
    return not off.any(), {"rows": table.num_rows, "off_norm_rows": int(off.sum()), "tolerance": tolerance,
                           "norm_min": float(finite.min()) if len(finite) else None,
                           "norm_max": float(finite.max()) if len(finite) else None}


def check_unique_ids(table: pa.Table) -> tuple[bool, dict]:
    """No id twice (an id is key + model version: a duplicate means an insert where an upsert was due)."""
    ids = table.column("id")
    counts = pc.value_counts(ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    return len(dup) == 0, {"rows": table.num_rows, "duplicated_ids": len(dup),
                           "extra_rows": int(pc.sum(dup.field("counts")).as_py() or 0) - len(dup)}


def check_consistency(table: pa.Table, products, model_version: str, key: str = "sku",
                      expected_hashes: dict | None = None) -> tuple[bool, dict]:
    """Consistency with the source for one model version: every active product has a vector; no vector belongs to
    a product that is deleted or no longer active; and, given the expected source hashes, no vector is stale."""
    import polars as pl

    if isinstance(products, pa.Table):
        products = pl.from_arrow(products)
    status = products["status"] if "status" in products.columns else pl.Series(["active"] * products.height)
    keys = products[key].cast(pl.String).to_list()
    active = {k for k, s in zip(keys, status.fill_null("active").to_list()) if s == "active"}
    rows = table.filter(pc.equal(table.column("model_version"), model_version))
    have = rows.column(key).to_pylist()
    have_set = set(have)
    missing = active - have_set
    orphaned = have_set - active
    known = set(keys)
    stale = set()
    if expected_hashes is not None:
        stale = {k for k, h in zip(have, rows.column("source_hash").to_pylist())
                 if k in expected_hashes and expected_hashes[k] != h}
    meta = {"model_version": model_version, "active_products": len(active), "vectors": len(have),
            "missing": len(missing), "orphaned": len(orphaned),
            "orphaned_deleted": len(orphaned - known), "orphaned_inactive": len(orphaned & known), "stale": len(stale)}
    for name, keys_ in (("missing", missing), ("orphaned", orphaned), ("stale", stale)):
        if keys_ and key == "sku":
            meta[f"{name}_sample"] = sorted(keys_)[:_SAMPLE]
    return not (missing or orphaned or stale), meta


def validate_all(table: pa.Table, products=None, model_version: str | None = None, key: str = "sku",
                 dim: int = DIMENSION, expected_hashes: dict | None = None) -> dict[str, tuple[bool, dict]]:
    """Every check by name (consistency only when the source and model version are given)."""
    results = {
        "dimension": check_dimension(table, dim),
        "finite": check_finite(table),
        "unit_norm": check_unit_norm(table),
        "unique_ids": check_unique_ids(table),
    }
    if products is not None and model_version is not None:
        results["consistency"] = check_consistency(table, products, model_version, key, expected_hashes)
    return results
