"""Small helpers shared by the asset packages: metadata and previews."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from lenslake.delta import WriteResult


def write_metadata(w: WriteResult, **extra) -> dict:
    md = {"dagster/row_count": w.rows, "table_version": w.version, "operation": w.operation}
    if w.predicate:
        md["predicate"] = w.predicate
    md.update(extra)
    return md


def preview(table: pa.Table, columns: list[str], n: int = 5) -> dg.MetadataValue:
    """A small markdown preview of non-sensitive columns."""
    return dg.MetadataValue.md(table.select(columns).slice(0, n).to_pandas().to_markdown(index=False))
