"""Catalog: the product database fed by the daily catalog, media, relations, price and stock feeds.

One multi-asset applies every pending feed day in order (lenslake.catalog.apply): not daily partitions, because a
feed day is applied on top of the state the previous day left (type-2 prices, stock levels, survivorship against the
stored rows), so days must not run out of order or in parallel; Delta application transactions make a rerun skip
what each table already holds. Referential integrity and the GX suites of the core tables (keys, value sets, ranges,
prices and stock that add up: expectations/suites.py) gate it as blocking checks, run on each table as it stands
after the run. The quality metrics are an asset of their own, downstream: gold.catalog_quality, a contracted and
published gold table.
"""

import base64

import dagster as dg

from expectations.contract_checks import contract_check_results, contract_check_specs
from expectations.factory import gx_check_result, gx_check_spec, warm_up
from expectations.suites import CATALOG_SUITES
from lenslake.catalog.apply import apply_pending
from lenslake.catalog.integrity import CHECKS, referential_checks
from orchestration.resources import Lakehouse

KINDS = {"python", "delta"}
TABLE_DOCS = {
    "catalog.products": "The golden record per SKU (product master), from the catalog feed and imports.",
    "catalog.eyewear_attributes": "Frame, size, lens and fit attributes per SKU.",
    "catalog.media": "Image, 3D model and virtual try-on references with checksums.",
    "catalog.taxonomy_nodes": "The category tree (derived from the products).",
    "catalog.product_relations": "Variants (derived), accessories and frequently bought together.",
    "catalog.prices": "Type-2 price history: list price, promotion and window, tiers.",
    "catalog.inventory": "Stock and availability per SKU and location.",
    "catalog.feed_quarantine": "Feed lines not applied, with the reason, feed, file and line.",
    "catalog.invalidations": "One record per applied price or availability change, for the serving caches.",
}
PRODUCTS = dg.AssetKey(["catalog", "products"])


def key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def _deps(table: str) -> list[dg.AssetKey]:
    return [] if table == "catalog.products" else [PRODUCTS]


@dg.multi_asset(
    specs=[dg.AssetSpec(key(t), deps=_deps(t), kinds=KINDS, description=doc, owners=["team:merchandising"])
           for t, doc in TABLE_DOCS.items()],
    check_specs=[*(dg.AssetCheckSpec(name, asset=key(table), blocking=True, description=description)
                   for name, (table, description) in CHECKS.items()),
                 *(gx_check_spec(table) for table in CATALOG_SUITES)],
    group_name="catalog",
)
def catalog_tables(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    warm_up()
    settings = lakehouse.settings()
    store = lakehouse.store()
    reports = apply_pending(store, settings.data_root, settings.now())
    applied = [r for r in reports if not r.skipped]
    context.log.info(f"catalog: {len(applied)} feed days applied ({len(reports) - len(applied)} already held)")
    per_table: dict[str, list[dict]] = {t: [] for t in TABLE_DOCS}
    for r in applied:
        for table, u in r.tables.items():
            per_table[table].append({"day": r.day, "feed": r.kind, "new": u.new, "changed": u.changed,
                                     "unchanged": u.unchanged, "stale": u.stale})
    quarantined = {f"{r.day} {r.kind}": r.quarantined for r in applied if r.quarantined}
    for table in TABLE_DOCS:
        md = {"dagster/row_count": store.count(table), "table_version": store.version(table),
              "feed_days_applied": ", ".join(sorted({r.day for r in applied})) or "none pending"}
        if per_table[table]:
            md["changes"] = dg.MetadataValue.json(per_table[table])
        if table == "catalog.feed_quarantine":
            md["quarantined_by_feed_day"] = dg.MetadataValue.json(quarantined)
            md["quarantined"] = sum(sum(q.values()) for q in quarantined.values())
        if table == "catalog.invalidations":
            md["new_invalidations"] = sum(r.invalidations for r in applied)
        yield dg.MaterializeResult(asset_key=key(table), metadata=md)
    for result in referential_checks(store):
        yield dg.AssetCheckResult(
            check_name=result.name, asset_key=key(result.table), passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows_checked": result.checked, "orphans": result.orphans,
                      "orphan_samples": ", ".join(result.samples) or "none"},
        )
    for table in CATALOG_SUITES:  # small tables (thousands of rows): the whole of each is checked
        yield gx_check_result(table, store.read(table))


QUALITY = "gold.catalog_quality"


@dg.asset(
    key=key(QUALITY),
    deps=[key(t) for t in ("catalog.products", "catalog.eyewear_attributes", "catalog.media", "catalog.prices",
                           "catalog.inventory", "catalog.feed_quarantine")],
    kinds=KINDS,
    group_name="catalog",
    owners=["team:merchandising"],
    description="Completeness and validity per feed and per catalog table, per feed day, tracked over days: a "
                "contracted gold table, published blue-green once its checks pass.",
    check_specs=[gx_check_spec(QUALITY), *contract_check_specs(QUALITY)],
)
def catalog_quality(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.catalog import quality
    from lenslake.publish import publishing, read_published

    warm_up()
    settings = lakehouse.settings()
    store = lakehouse.store()
    with publishing(store, [QUALITY], run_id=context.run_id) as cycle:
        measured = quality.measure(store, settings.data_root, settings.now())
        checks = [gx_check_result(QUALITY, measured.rows), *contract_check_results(QUALITY, store, settings)]
        outcome = cycle.publish(QUALITY, measured.write, checks)
    metrics = read_published(store, QUALITY) if outcome.published_version is not None else measured.rows
    md = {"dagster/row_count": metrics.num_rows, "measured_rows": measured.rows.num_rows,
          "changed_rows": measured.write.rows if measured.write else 0, **outcome.metadata}
    # Numeric metadata: the Dagster UI plots each of these across materializations.
    for subject, m in sorted(quality.latest(metrics).items()):
        md[f"completeness/{subject}"] = dg.MetadataValue.float(round(m["completeness"], 4))
        md[f"validity/{subject}"] = dg.MetadataValue.float(round(m["validity"], 4))
    if metrics.num_rows:
        png = base64.b64encode(quality.plot_png(metrics)).decode()
        md["plot"] = dg.MetadataValue.md(f"![completeness and validity per day](data:image/png;base64,{png})")
        md["completeness_by_day"] = dg.MetadataValue.md(quality.markdown(metrics, "completeness"))
        md["validity_by_day"] = dg.MetadataValue.md(quality.markdown(metrics, "validity"))
    return dg.MaterializeResult(metadata=md, check_results=checks)


catalog_assets = [catalog_tables, catalog_quality]
