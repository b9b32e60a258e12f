"""The product-embedding asset through Dagster: a generated catalog, the catalog job, then the vectors job."""

import datetime as dt

import dagster as dg
import numpy as np
import pytest

from lenslake.settings import get_settings

START = dt.date(2024, 3, 1)
AS_OF = "2024-03-02T06:00:00+00:00"
CHECKS = {"embedding_dimension", "embedding_finite", "embedding_unit_norm", "embedding_unique_ids",
          "embedding_consistent_with_catalog"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from lenslake.synth.world import generate_world
    from orchestration.catalog_runner import run_catalog_job

    root = tmp_path_factory.mktemp("vectors_lake")
    generate_world(root, days=1, users=200, events=1000, products=120, seed=3, start=START)
    settings = get_settings(data_root=root, engine="duckdb", as_of=AS_OF)
    with dg.instance_for_test() as instance:
        assert run_catalog_job(settings, instance).success
        yield settings, instance


def _run(settings, instance):
    from orchestration.vectors_runner import check_results, materialization_metadata, run_vectors_job

    result = run_vectors_job(settings, instance)
    return result, materialization_metadata(result), check_results(result)


def _active_skus(settings) -> set[str]:
    from lenslake.delta import DeltaStore

    products = DeltaStore(settings.tables_dir).read("catalog.products", columns=["sku", "status"]).to_pylist()
    return {p["sku"] for p in products if (p["status"] or "active") == "active"}


def _overwrite_one_vector(settings, transform):
    """Write a broken vector for one SKU through the library, keeping its source hash (so it is not re-embedded)."""
    from lenslake.vectors.store import VectorStore, vector_rows, vectors_of

    store = VectorStore.from_settings(settings)
    row = store.rows().slice(0, 1)
    vector = transform(vectors_of(row).copy())
    store.upsert(vector_rows(row.column("sku").to_pylist(), vector, row.column("source_hash").to_pylist(),
                             row.column("model_version")[0].as_py(), dt.datetime.now(dt.timezone.utc)))
    return row.column("sku")[0].as_py()


def test_the_vectors_job_embeds_every_active_sku_then_only_what_changed(lake):
    settings, instance = lake
    active = _active_skus(settings)
    result, md, checks = _run(settings, instance)
    assert result.success
    assert checks == {name: True for name in CHECKS}
    assert (md["embedded"], md["unchanged"], md["removed"]) == (len(active), 0, 0)
    assert md["dagster/row_count"] == len(active)
    assert md["model_version"] == settings.embedding_model_version and md["tag"]

    # a second run over the same catalog re-embeds nothing and publishes no new tag
    again, md2, checks2 = _run(settings, instance)
    assert again.success and all(checks2.values())
    assert (md2["embedded"], md2["unchanged"], md2["removed"]) == (0, len(active), 0)
    assert md2["tag"] == md["tag"]
    assert md2["model_load_seconds"] == 0.0

    # a vector for a SKU the catalog does not hold is removed on the next run
    from lenslake.vectors.store import VectorStore, vector_rows

    store = VectorStore.from_settings(settings)
    unit = np.zeros((1, store.dim), np.float32)
    unit[0, 0] = 1.0
    store.upsert(vector_rows(["NO-SUCH-SKU"], unit, ["x"], settings.embedding_model_version,
                             dt.datetime.now(dt.timezone.utc)))
    healed, md3, checks3 = _run(settings, instance)
    assert healed.success and all(checks3.values())
    assert (md3["embedded"], md3["removed"]) == (0, 1)
    assert md3["tag"] != md["tag"]


# LanceDB itself refuses a NaN component on write; an infinite one gets through, and the finite check catches it.
@pytest.mark.parametrize("transform, failing", [
    (lambda v: v * 2.0, {"embedding_unit_norm"}),
    (lambda v: np.where(np.arange(v.shape[1]) == 0, np.inf, v).astype(np.float32),
     {"embedding_finite", "embedding_unit_norm"}),
])
def test_a_broken_vector_fails_its_blocking_check(lake, transform, failing):
    settings, instance = lake
    from lenslake.vectors.store import VectorStore

    assert _run(settings, instance)[0].success  # a valid table to start from
    sku = _overwrite_one_vector(settings, transform)
    result, md, checks = _run(settings, instance)
    assert md["embedded"] == 0  # same source hash: the broken vector stays
    assert not result.success
    assert {name for name, ok in checks.items() if not ok} == failing

    # repair: drop the broken vector, and the next run embeds that SKU again
    VectorStore.from_settings(settings).delete_keys(settings.embedding_model_version, [sku])
    repaired, md, checks = _run(settings, instance)
    assert repaired.success and all(checks.values()) and md["embedded"] == 1


def test_the_catalog_change_sensor_asks_once_per_products_version(lake):
    from orchestration.definitions import defs
    from orchestration.resources import Lakehouse

    settings, _ = lake
    sensor = defs.resolve_sensor_def("catalog_change_sensor")
    lakehouse = Lakehouse(data_root=str(settings.data_root))
    with dg.build_sensor_context(resources={"lakehouse": lakehouse}) as ctx:
        first = list(sensor(ctx))
        assert len(first) == 1 and isinstance(first[0], dg.RunRequest)
        cursor = ctx.cursor
    with dg.build_sensor_context(cursor=cursor, resources={"lakehouse": lakehouse}) as ctx:
        assert all(isinstance(r, dg.SkipReason) for r in sensor(ctx))
    with dg.build_sensor_context(cursor="-1", resources={"lakehouse": lakehouse}) as ctx:
        assert isinstance(list(sensor(ctx))[0], dg.RunRequest)


def test_two_model_versions_are_live_at_once_and_each_ab_variant_reads_its_own(lake, monkeypatch):
    settings, instance = lake
    from typer.testing import CliRunner

    from lenslake.cli import app
    from lenslake.vectors.routing import Router, parse_routing
    from lenslake.vectors.store import VectorStore, vectors_of

    bf16, fp32 = settings.embedding_model_version, "minilm-l6-v2@fp32"
    assert bf16 == "minilm-l6-v2@bf16"  # the published fast path; fp32 (the reference) kept live beside it
    monkeypatch.setenv("LENSLAKE_EMBEDDING_LIVE_VERSIONS", fp32)  # what the run's resource reads
    both = get_settings(data_root=settings.data_root, engine="duckdb", as_of=AS_OF)
    assert both.embedding_live_versions == fp32
    result, md, checks = _run(both, instance)
    active = _active_skus(settings)
    assert result.success and checks == {name: True for name in CHECKS}
    assert md["live_model_versions"][fp32]["embedded"] == len(active)
    assert md["live_model_versions"][bf16]["embedded"] == 0
    store = VectorStore.from_settings(both)
    assert store.count(fp32) == store.count(bf16) == len(active)
    tags = {v: store.published(v).name for v in (bf16, fp32)}
    assert tags[fp32].startswith("minilm-l6-v2.fp32-") and tags[bf16].startswith("minilm-l6-v2.bf16-")

    experiments = parse_routing({"experiments": {"similar_items": {"table": "product_embeddings", "salt": "test-1",
                                                                   "variants": [
        {"name": "control", "model_version": bf16, "weight": 80},
        {"name": "full_precision", "model_version": fp32, "weight": 20}]}}})
    router = Router(both, experiments)
    subjects = [f"session-{i}" for i in range(20_000)]
    routes = [router.route("similar_items", s) for s in subjects]
    assert 0.19 < sum(r.variant == "full_precision" for r in routes) / len(routes) < 0.21
    again = Router(both, experiments)  # another process: the same assignment
    assert [again.route("similar_items", s).variant for s in subjects[:2000]] == [r.variant for r in routes[:2000]]
    by = {r.variant: r for r in routes}
    assert (by["control"].model_version, by["control"].tag) == (bf16, tags[bf16])
    assert (by["full_precision"].model_version, by["full_precision"].tag) == (fp32, tags[fp32])

    # each route finds neighbours among its own version's vectors: query with a SKU's fp32 vector
    rows = {v: store.rows(v, ["sku", "vector"]) for v in (bf16, fp32)}
    vec = {v: dict(zip(rows[v].column("sku").to_pylist(), vectors_of(rows[v]))) for v in rows}
    sku = min(vec[fp32], key=lambda k: float(vec[fp32][k] @ vec[bf16][k]))  # where the two versions differ most
    query = vec[fp32][sku]
    full = router.neighbours(by["full_precision"], query, k=5, exact=True).to_pylist()
    fast = router.neighbours(by["control"], query, k=5, exact=True).to_pylist()
    assert full[0]["sku"] == fast[0]["sku"] == sku
    assert full[0]["score"] == pytest.approx(1.0, abs=1e-6)
    assert fast[0]["score"] == pytest.approx(float(vec[bf16][sku] @ query), abs=1e-6) and fast[0]["score"] < 1 - 1e-5
    # a route reads its publish tag, not whatever the latest version holds
    store.delete_keys(fp32, [sku])
    assert router.neighbours(by["full_precision"], query, k=1, exact=True).to_pylist()[0]["sku"] == sku

    # the shipped routing file: the fp32 variant at weight 0 until someone gives it a share
    out = CliRunner().invoke(app, ["vectors", "route", "--experiment", "similar_items_precision", "--subject", "u1",
                                   "--subject", "u2"], env={"LENSLAKE_DATA_ROOT": str(settings.data_root)})
    assert out.exit_code == 0, out.output
    assert out.output.count("variant control") == 2 and f"at {tags[bf16]}" in out.output

    # back to one live version: the other's rows are retired, and a route to it is refused
    monkeypatch.delenv("LENSLAKE_EMBEDDING_LIVE_VERSIONS")
    result, md, checks = _run(settings, instance)
    assert result.success and all(checks.values()) and md["retired_rows"] == len(active) - 1
    assert VectorStore.from_settings(settings).count(fp32) == 0
    routed_to_fp32 = subjects[[r.variant for r in routes].index("full_precision")]
    with pytest.raises(LookupError, match="not live"):
        Router(get_settings(data_root=settings.data_root), experiments).route("similar_items", routed_to_fp32)
