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
