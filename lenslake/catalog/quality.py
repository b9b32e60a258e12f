"""Data-quality metrics of the product database, per feed and per table, per feed day (``gold.catalog_quality``).

A gold table with a data contract (lenslake/contracts/tables/gold.catalog_quality.yaml), published blue-green like
every gold table: ``measure`` writes, the catalog job's asset checks the rows and publishes the version, and readers
(``lenslake catalog quality``, ``lenslake sql``, dashboards) see the published one.

Feeds (``feed:<kind>``), from the landing files and the quarantine:

* completeness: the share of the feed's measured optional fields (``feeds.FEEDS[kind].measured``) that its parseable
  lines fill;
* validity: the share of its lines that were not quarantined.

Tables, each as of the last commit of that feed day (Delta time travel: the version before the first commit of a
later feed day), so that a run applying a week of feeds still measures every day as it was:

* completeness: ``catalog.products``: non-null share of description, category, brand, model code;
  ``catalog.eyewear_attributes``: non-null share of the frame attributes over frames (optical and sun);
  ``catalog.prices`` / ``catalog.inventory`` / ``catalog.media``: coverage, the share of active products with a
  current price / of active stockable products (not lenses) with a stock row / of products with an image;
* validity: the share of rows that pass referential integrity (a product for every row; for products, a taxonomy
  node for the category).

Recomputing is idempotent: rows are merged by (metric_date, subject); a re-measure that changes no value writes
nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from lenslake.catalog import feeds as F
from lenslake.catalog.apply import app_id, day_version, ensure_table, upsert
from lenslake.delta import DeltaStore, WriteResult

TABLE = "gold.catalog_quality"
MEASURED_TABLES = ("catalog.products", "catalog.eyewear_attributes", "catalog.prices", "catalog.inventory",
                   "catalog.media")
PRODUCT_FIELDS = ("description", "category", "brand", "model_code")
FRAME_FIELDS = ("frame_material", "frame_shape", "colour", "lens_width_mm", "bridge_mm", "temple_mm", "rim_type",
                "lens_types", "gender", "face_width_fit")


def version_as_of(store: DeltaStore, name: str, day: str) -> int:
    """The table's version at the end of feed day ``day``: its last commit before the first commit of a later feed
    day (-1: the table did not exist yet)."""
    version = -1
    for entry in sorted(store.history(name), key=lambda h: h["version"]):
        feed_day = entry.get("lenslake.feed_day")
        if feed_day and feed_day > day:
            break
        version = entry["version"]
    return version


def _snapshot(store: DeltaStore, name: str, day: str):
    import polars as pl
    from deltalake import DeltaTable

    version = version_as_of(store, name, day)
    if version < 0:
        return None
    return pl.from_arrow(DeltaTable(str(store.path(name)), version=version).to_pyarrow_table())


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def feed_metrics(store: DeltaStore, data_root: Path, day: str, now: dt.datetime) -> list[dict]:
    import polars as pl

    quarantine = store.read("catalog.feed_quarantine", columns=["feed", "feed_day"])
    q = pl.from_arrow(quarantine).filter(pl.col("feed_day") == dt.date.fromisoformat(day)).group_by("feed").len()
    quarantined = dict(zip(q["feed"].to_list(), q["len"].to_list()))
    rows = []
    for kind in F.KINDS:
        lines = F.read_lines(data_root, kind, day)
        if not lines:
            continue
        rows.append({"metric_date": dt.date.fromisoformat(day), "subject": f"feed:{kind}", "subject_type": "feed",
                     "rows": len(lines), "completeness": F.completeness(kind, lines),
                     "validity": _share(len(lines) - quarantined.get(kind, 0), len(lines)), "computed_at": now})
    return rows


def table_metrics(store: DeltaStore, day: str, now: dt.datetime) -> list[dict]:
    import polars as pl

    products = _snapshot(store, "catalog.products", day)
    if products is None:
        return []
    nodes = _snapshot(store, "catalog.taxonomy_nodes", day)
    node_ids = set(nodes["node_id"].to_list()) if nodes is not None else set()
    skus = set(products["sku"].to_list())
    active = products.filter(pl.col("status") == "active")
    frames = set(products.filter(pl.col("product_type").is_in(["optical_frame", "sunglasses"]))["sku"].to_list())
    out = []

    def row(name, n, completeness, valid):
        out.append({"metric_date": dt.date.fromisoformat(day), "subject": name, "subject_type": "table", "rows": n,
                    "completeness": completeness, "validity": _share(valid, n), "computed_at": now})

    def filled(frame, fields):
        return _share(sum(frame[f].is_not_null().sum() for f in fields), frame.height * len(fields))

    row("catalog.products", products.height, filled(products, PRODUCT_FIELDS),
        products.filter(pl.col("category").is_null() | pl.col("category").is_in(list(node_ids))).height)
    for name in MEASURED_TABLES[1:]:
        table = _snapshot(store, name, day)
        if table is None:
            continue
        valid = table.filter(pl.col("sku").is_in(list(skus))).height
        if name == "catalog.eyewear_attributes":
            completeness = filled(table.filter(pl.col("sku").is_in(list(frames))), FRAME_FIELDS)
        elif name == "catalog.prices":
            priced = set(table.filter(pl.col("is_current"))["sku"].to_list())
            completeness = _share(len(priced & set(active["sku"].to_list())), active.height)
        elif name == "catalog.inventory":
            stockable = set(active.filter(pl.col("product_type") != "lens")["sku"].to_list())
            completeness = _share(len(set(table["sku"].to_list()) & stockable), len(stockable))
        else:
            imaged = set(table.filter(pl.col("media_type") == "image")["sku"].to_list())
            completeness = _share(len(imaged & skus), len(skus))
        row(name, table.height, completeness, valid)
    return out


def applied_days(store: DeltaStore, data_root: Path) -> list[str]:
    """Feed days the product master holds."""
    held = store.app_version("catalog.products", app_id("products")) or 0
    return [d for d in F.feed_days(data_root) if day_version(d) <= held]


@dataclass(frozen=True)
class Measurement:
    rows: pa.Table  # every metric measured this time (what the checks validate)
    write: WriteResult | None  # the commit that merged them; None: no value changed


def measure(store: DeltaStore, data_root: Path, now: dt.datetime | None = None, days: list[str] | None = None) -> Measurement:
    """Metrics of every applied feed day (or ``days``), merged into gold.catalog_quality (not published: the caller
    checks and publishes, see ``lenslake.publish.publishing``)."""
    from lenslake.tables import table_spec

    now = now or dt.datetime.now(dt.timezone.utc)
    rows = []
    for day in days or applied_days(store, data_root):
        rows += feed_metrics(store, data_root, day, now) + table_metrics(store, day, now)
    ensure_table(store, TABLE)
    merged = upsert(store, TABLE, rows, kind=None, day=None, actor="quality", feed="lenslake.catalog.quality")
    written = merged.new + merged.changed
    write = WriteResult(TABLE, written, merged.version, "MERGE") if written else None
    return Measurement(pa.Table.from_pylist(rows, schema=table_spec(TABLE).arrow_schema), write)


def markdown(metrics: pa.Table, value: str = "completeness") -> str:
    """Day × subject pivot of one metric, as a markdown table."""
    rows = sorted(metrics.to_pylist(), key=lambda r: (r["metric_date"], r["subject"]))
    subjects = sorted({r["subject"] for r in rows}, key=lambda s: (not s.startswith("feed:"), s))
    days = sorted({r["metric_date"] for r in rows})
    cell = {(r["metric_date"], r["subject"]): r[value] for r in rows}
    head = f"| day | {' | '.join(subjects)} |\n|---|{'---|' * len(subjects)}\n"
    body = "".join(f"| {d} | " + " | ".join(f"{cell[d, s]:.3f}" if (d, s) in cell else "" for s in subjects) + " |\n"
                   for d in days)
    return head + body


def plot_png(metrics: pa.Table) -> bytes:
    """Completeness and validity per subject over the days, two panels, as PNG bytes (matplotlib, Agg)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(metrics.to_pylist(), key=lambda r: (r["subject"], r["metric_date"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, value in zip(axes, ("completeness", "validity")):
        for subject in sorted({r["subject"] for r in rows}):
            points = [(r["metric_date"].isoformat()[5:], r[value]) for r in rows if r["subject"] == subject]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                    linestyle="--" if subject.startswith("feed:") else "-", label=subject)
        ax.set_title(value)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    axes[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def latest(metrics: pa.Table) -> dict[str, dict]:
    """subject → its most recent day's metrics."""
    out = {}
    for r in sorted(metrics.to_pylist(), key=lambda r: r["metric_date"]):
        out[r["subject"]] = {k: r[k] for k in ("metric_date", "rows", "completeness", "validity")}
    return out


def render(metrics: pa.Table) -> str:
    rows = sorted(metrics.to_pylist(), key=lambda r: (r["metric_date"], r["subject_type"], r["subject"]))
    lines = [f"{'day':<11} {'subject':<28} {'rows':>8} {'complete':>9} {'valid':>7}"]
    lines += [f"{r['metric_date']!s:<11} {r['subject']:<28} {r['rows']:>8,} {r['completeness']:>9.3f} {r['validity']:>7.3f}"
              for r in rows]
    return "\n".join(lines)

