"""User embeddings, product segments and content embeddings through Dagster, on a tiny world: catalog, profiles
(consent), events, the product vectors, then user_vectors_job and content_vectors_job. Only consented users get a
vector; a withdrawal removes it on the next run; descriptions and search queries are embedded once per distinct text;
an erasure leaves no version, tag or byte of the user in LanceDB (the last test: it rewrites the world)."""

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from lenslake.settings import get_settings

START = dt.date(2024, 3, 1)
USER_CHECKS = {"user_embedding_dimension", "user_embedding_finite", "user_embedding_unit_norm",
               "no_vector_without_consent"}
CONTENT_CHECKS = {f"content_embedding_{c}" for c in ("dimension", "finite", "unit_norm", "unique_ids",
                                                     "consistent_with_sources")}


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


def _run_content(settings, instance):
    from orchestration.runner import execute_job
    from orchestration.vectors_runner import check_results

    result = execute_job(settings, "content_vectors_job", instance)
    return result, _metadata(result, "vectors/content_embeddings"), check_results(result)


def test_content_vectors_embed_each_description_and_query_once_then_only_what_changed(lake):
    settings, instance, _ = lake
    from lenslake.delta import DeltaStore
    from lenslake.privacy.canary import planted_values, scan
    from lenslake.vectors.content import (
        content_rows,
        content_sources,
        content_store,
        query_text,
        short_text,
    )
    from lenslake.vectors.encoder import Encoder, source_hash
    from orchestration.definitions import defs
    from orchestration.resources import Lakehouse

    version = settings.embedding_model_version
    sensor = defs.resolve_sensor_def("content_vectors_sensor")
    resources = {"lakehouse": Lakehouse(data_root=str(settings.data_root))}
    with dg.build_sensor_context(resources=resources) as ctx:
        [request] = list(sensor(ctx))
        cursor = ctx.cursor
    with dg.build_sensor_context(cursor=cursor, resources=resources) as ctx:
        [skip] = list(sensor(ctx))
    assert isinstance(request, dg.RunRequest) and isinstance(skip, dg.SkipReason)

    result, md, checks = _run_content(settings, instance)
    assert result.success and checks == {name: True for name in CONTENT_CHECKS}
    # what the sources hold, counted here from the Delta tables directly
    tables = DeltaStore(settings.tables_dir)
    products = tables.read("catalog.products", columns=["status", "description"]).to_pylist()
    descriptions = Counter(short_text(p["description"]) for p in products
                           if (p["status"] or "active") == "active" and p["description"])
    events = tables.read("silver.events", columns=["event_type", "query"]).to_pylist()
    queries = Counter(query_text(e["query"]) for e in events if e["event_type"] == "search" and e["query"])
    assert len(descriptions) > 50 and len(queries) > 20 and max(queries.values()) > 1  # a query searched twice
    rows = content_store(settings).rows(version)
    stored = {(r["kind"], r["text"]): r["uses"] for r in rows.select(["kind", "text", "uses"]).to_pylist()}
    assert stored == {**{("description", t): n for t, n in descriptions.items()},
                      **{("query", t): n for t, n in queries.items()}}
    assert (md["descriptions"], md["queries"], md["embedded"], md["dagster/row_count"]) == \
        (len(descriptions), len(queries), len(stored), len(stored))
    assert all(r["id"] == f"{r['kind']}:{source_hash(r['text'])}|{version}" and r["model_version"] == version
               for r in rows.select(["id", "kind", "text", "model_version"]).to_pylist())
    tokenizer = Encoder.for_version(version).model.tokenizer
    assert max(len(tokenizer(text)["input_ids"]) for _, text in stored) <= 64
    # the queries were scrubbed before they got here: no planted PII value anywhere in the vector store
    manifest = json.loads((Path(settings.data_root) / "synth" / "manifest.json").read_text())
    assert scan(Path(settings.data_root) / "vectors", planted_values(manifest)) == []

    again, md2, checks2 = _run_content(settings, instance)
    assert again.success and all(checks2.values())
    assert (md2["embedded"], md2["recounted"], md2["removed"], md2["tag"]) == (0, 0, 0, md["tag"])

    # a count gone stale, a text lost, a text no source holds: the next run re-embeds only the lost one
    store = content_store(settings)
    stale, lost = rows.slice(0, 1), rows.slice(1, 1)
    store.upsert(stale.set_column(stale.schema.get_field_index("uses"), "uses", pa.array([99], pa.int64())))
    store.delete_keys(version, lost.column("content_id").to_pylist())
    import polars as pl

    ghost = pl.DataFrame({"content_id": ["query:" + source_hash("no one searched this")], "kind": ["query"],
                          "text": ["no one searched this"], "uses": [1],
                          "source_hash": [source_hash("no one searched this")]})
    unit = np.zeros((1, store.dim), np.float32)
    unit[0, 0] = 1.0
    store.upsert(content_rows(ghost, unit, version, settings.now()))
    healed, md3, checks3 = _run_content(settings, instance)
    assert healed.success and all(checks3.values())
    assert (md3["embedded"], md3["recounted"], md3["removed"]) == (1, 1, 1) and md3["tag"] != md["tag"]
    assert content_store(settings).rows(version, ["kind", "text", "uses"]).num_rows == len(stored)
    assert content_sources(tables).height == len(stored)


def _files_with(folder: Path, needles: list[bytes]) -> list[str]:
    return [str(p.relative_to(folder)) for p in sorted(folder.rglob("*"))
            if p.is_file() and any(n in p.read_bytes() for n in needles)]


def _traces(store, user: str) -> list[bytes]:
    """The user's token and the float32 bytes of their vector in every version that holds one."""
    from lenslake.vectors.store import vectors_of

    needles, table = [user.encode()], store.table  # (``store.table`` checks out the latest on every access)
    for v in table.list_versions():
        table.checkout(v["version"])
        mine = table.search().where(f"user_token = '{user}'").select(["vector"]).to_arrow()
        table.checkout_latest()
        needles += [x.astype("<f4").tobytes() for x in vectors_of(mine)] if mine.num_rows else []
    return needles


def _nowhere(store, user: str) -> bool:
    """No version and no tag of the table holds a row of the user."""
    table = store.table
    for v in table.list_versions():
        table.checkout(v["version"])
        held = table.count_rows(f"user_token = '{user}'")
        table.checkout_latest()
        if held:
            return False
    return all(user not in store.rows(columns=["user_token"], tag=t.name).column(0).to_pylist() for t in store.tags())


def test_an_erased_user_is_in_no_lancedb_version_tag_or_file(lake):
    settings, instance, _ = lake
    from lenslake.delta import DeltaStore
    from lenslake.privacy.consent import record_consent
    from lenslake.privacy.erasure import erase_users
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import token
    from lenslake.vectors.user_pipeline import user_store

    store = user_store(settings)
    folder = Path(settings.data_root) / "vectors"
    ring = load_keys(settings).token
    ids = {token(f"U{1_000_001 + i}", ring): f"U{1_000_001 + i}" for i in range(200)}
    first = store.tags()[0].name
    store.pin(first)  # the first publish, pinned as a rollback target
    current, withdrawn = sorted(set(store.rows(columns=["user_token"]).column(0).to_pylist())
                                & set(store.rows(columns=["user_token"], tag=first).column(0).to_pylist()))[:2]
    # a later run, an hour on (every weight decays: a new publish), after `withdrawn` took back their consent
    record_consent(DeltaStore(settings.tables_dir), [{"user_token": withdrawn, "purpose": "personalization",
                                                      "granted": False, "recorded_at": settings.now(),
                                                      "source": "test"}], now=settings.now())
    later = get_settings(data_root=settings.data_root, engine="duckdb", as_of=settings.now() + dt.timedelta(hours=1))
    result, md, _ = _run(later, instance)
    assert result.success and md["vectors_removed_no_consent"] == 1
    after_withdrawal = store.published().name
    assert len([t for t in store.tags() if not t.name.startswith("pin-")]) >= 3
    traces = {u: _traces(store, u) for u in (current, withdrawn)}
    assert all(len(t) >= 3 and _files_with(folder, t) for t in traces.values())  # the scan finds them before

    # 1. a user whose vector is only in history (withdrawn): gone from it; a publish that never held them stays
    kept_version = store.table.tags.get_version(after_withdrawal)
    receipt = erase_users(settings, [ids[withdrawn]])
    erased = receipt["vectors"]["tables"]["user_embeddings"]
    assert erased["rows_removed"] == 0 and {first, "pin-" + first} <= set(erased["tags_dropped"])
    assert after_withdrawal not in erased["tags_dropped"] + erased["tags_repointed"]
    assert _nowhere(store, withdrawn) and _files_with(folder, traces[withdrawn]) == []
    assert store.table.tags.get_version(after_withdrawal) == kept_version

    # 2. a user with a current vector: gone from the latest and every version, tag and file; the newest publish
    # that held them re-pointed at the rewritten version; the other users intact, and it still rolls back
    others = set(store.rows(columns=["user_token"], tag=after_withdrawal).column(0).to_pylist()) - {current}
    receipt = erase_users(settings, [ids[current]])
    erased = receipt["vectors"]["tables"]["user_embeddings"]
    assert erased["rows_removed"] == 1 and after_withdrawal in erased["tags_repointed"]
    assert {store.table.tags.get_version(t) for t in erased["tags_repointed"]} == {store.table.version}
    assert current not in store.rows(columns=["user_token"]).column(0).to_pylist()
    assert _nowhere(store, current) and _files_with(folder, traces[current]) == []
    assert set(store.rows(columns=["user_token"], tag=after_withdrawal).column(0).to_pylist()) == others
    store.rollback(after_withdrawal)
    assert set(store.rows(columns=["user_token"]).column(0).to_pylist()) == others
