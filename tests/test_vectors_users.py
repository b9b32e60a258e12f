"""User embeddings and product segments through Dagster, on a tiny world: catalog, profiles (consent), events, the
product vectors, then user_vectors_job. Only consented users get a vector; a withdrawal removes it on the next run."""

import datetime as dt

import dagster as dg
import numpy as np
import pytest

from lenslake.settings import get_settings

START = dt.date(2024, 3, 1)
USER_CHECKS = {"user_embedding_dimension", "user_embedding_finite", "user_embedding_unit_norm",
               "no_vector_without_consent"}


def _metadata(result, asset: str) -> dict:
    return {k: v.value for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
            and e.event_specific_data.materialization.asset_key.to_user_string() == asset
            for k, v in e.event_specific_data.materialization.metadata.items()}


def _run(settings, instance):
    from orchestration.runner import execute_job
    from orchestration.vectors_runner import check_results

    result = execute_job(settings, "user_vectors_job", instance)
    return result, _metadata(result, "vectors/user_embeddings"), check_results(result)


def _stored_users(settings) -> set[str]:
    from lenslake.vectors.user_pipeline import user_store

    return set(user_store(settings).rows(settings.embedding_model_version, ["user_token"]).column(0).to_pylist())


def _consented(settings) -> set[str]:
    from lenslake.delta import DeltaStore
    from lenslake.privacy.consent import consented_users

    return consented_users(DeltaStore(settings.tables_dir), "personalization", settings.now())


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from lenslake.synth.world import generate_world
    from orchestration.catalog_runner import run_catalog_job
    from orchestration.profiles_runner import run_profiles_job
    from orchestration.runner import run_events_job
    from orchestration.vectors_runner import run_vectors_job

    root = tmp_path_factory.mktemp("user_vectors_lake")
    manifest = generate_world(root, days=1, users=200, events=2000, products=120, seed=3, start=START)
    last_day = dt.date.fromisoformat(max(manifest["days_detail"]))
    as_of = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(6), tzinfo=dt.UTC)
    settings = get_settings(data_root=root, engine="duckdb", as_of=as_of)
    with dg.instance_for_test() as instance:
        assert run_catalog_job(settings, instance).success
        assert run_profiles_job(settings, instance).success
        assert run_events_job(settings, instance=instance).success
        assert run_vectors_job(settings, instance).success
        first = _run(settings, instance)
        yield settings, instance, first


def test_only_consented_users_get_a_vector(lake):
    settings, _, (result, md, checks) = lake
    assert result.success
    assert checks == {name: True for name in USER_CHECKS}
    stored = _stored_users(settings)
    consented = _consented(settings)
    assert stored and stored <= consented
    assert md["users_embedded"] == len(stored) and md["vectors_removed"] == 0
    assert md["users_skipped_no_consent"] > 0  # the world has engaged users without personalization consent

    from lenslake.vectors.store import vectors_of
    from lenslake.vectors.user_pipeline import user_store

    rows = user_store(settings).rows()
    assert all(i == f"{u}|{settings.embedding_model_version}"
               for i, u in zip(rows.column("id").to_pylist(), rows.column("user_token").to_pylist()))
    assert np.allclose(np.linalg.norm(vectors_of(rows), axis=1), 1.0, atol=1e-3)


def test_product_segments_have_k_rows_and_quality_metadata(lake):
    settings, _, (result, _, _) = lake
    from lenslake.vectors.user_pipeline import read_segments

    md = _metadata(result, "vectors/product_segments")
    segments = read_segments(settings)
    assert segments.num_rows == md["k"] == min(settings.product_segments, 120)
    assert sum(segments.column("size").to_pylist()) == md["vectors"] == sum(md["sizes"])
    assert md["inertia"] >= 0 and -1 <= md["silhouette"] <= 1 and md["size_min"] >= 1


def test_a_withdrawal_removes_the_users_vector_on_the_next_run(lake):
    settings, instance, _ = lake
    from lenslake.delta import DeltaStore
    from lenslake.privacy.consent import record_consent

    from orchestration.definitions import defs
    from orchestration.resources import Lakehouse

    sensor = defs.resolve_sensor_def("user_vectors_sensor")
    resources = {"lakehouse": Lakehouse(data_root=str(settings.data_root))}
    with dg.build_sensor_context(resources=resources) as ctx:
        [first] = list(sensor(ctx))
        cursor = ctx.cursor
    with dg.build_sensor_context(cursor=cursor, resources=resources) as ctx:
        [same] = list(sensor(ctx))
    assert isinstance(first, dg.RunRequest) and isinstance(same, dg.SkipReason)  # nothing new since

    user = min(_stored_users(settings))
    record_consent(DeltaStore(settings.tables_dir),
                   [{"user_token": user, "purpose": "personalization", "granted": False,
                     "recorded_at": settings.now() - dt.timedelta(minutes=1), "source": "test"}], now=settings.now())
    assert user not in _consented(settings)
    with dg.build_sensor_context(cursor=cursor, resources=resources) as ctx:
        [after] = list(sensor(ctx))
    assert isinstance(after, dg.RunRequest)  # the withdrawal changed privacy.current_consent: a run is due

    result, md, checks = _run(settings, instance)
    assert result.success and checks == {name: True for name in USER_CHECKS}
    assert user not in _stored_users(settings)
    assert md["vectors_removed"] == 1 and md["vectors_removed_no_consent"] == 1
    assert _stored_users(settings) <= _consented(settings)
