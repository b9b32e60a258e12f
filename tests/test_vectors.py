"""Embeddings and the vector store: validation, incremental re-embedding, upserts, consent, publish tags, rollback,
cleanup, filtered search, the fast path's quality gate, segments and the serving index. Real model, real LanceDB,
small catalogs."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from lenslake.vectors import validate
from lenslake.vectors.encoder import (
    DIMENSION,
    Encoder,
    ModelVersion,
    normalize,
    product_text,
    quality_gate,
)
from lenslake.vectors.store import VectorStore, incremental_embed, vector_rows

FP32 = "minilm-l6-v2@fp32"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def catalog() -> pl.DataFrame:
    from lenslake.synth.catalog import build_catalog

    return build_catalog(np.random.default_rng(5), 120).feed


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder.for_version(FP32)


@pytest.fixture
def store(tmp_path) -> VectorStore:
    return VectorStore(tmp_path / "vectors", index_min_rows=10_000)


def _edit(frame: pl.DataFrame, sku: str, **values) -> pl.DataFrame:
    return frame.with_columns([pl.when(pl.col("sku") == sku).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
                               for c, v in values.items()])


def _good_rows(n=4, version=FP32) -> pa.Table:
    rng = np.random.default_rng(0)
    return vector_rows([f"SKU{i}" for i in range(n)], normalize(rng.standard_normal((n, DIMENSION))),
                       [f"h{i}" for i in range(n)], version, NOW)


# --- validation: each failure mode -------------------------------------------------------------------------------

def test_a_good_table_passes_every_check():
    rows = _good_rows()
    products = pl.DataFrame({"sku": [f"SKU{i}" for i in range(4)], "status": ["active"] * 4})
    results = validate.validate_all(rows, products, FP32)
    assert all(passed for passed, _ in results.values()), results


def test_a_vector_of_the_wrong_dimension_fails_the_dimension_check():
    rows = _good_rows()
    vectors = [list(v) for v in rows.column("vector").to_pylist()]
    vectors[2] = vectors[2][:-1]
    bad = rows.set_column(rows.schema.get_field_index("vector"), "vector", pa.array(vectors, pa.list_(pa.float32())))
    passed, meta = validate.check_dimension(bad)
    assert not passed and meta["wrong_dimension_rows"] == 1 and 383 in meta["dimensions_seen"]


def test_a_nan_component_fails_the_finite_check():
    rows = _good_rows()
    vectors = np.array(rows.column("vector").to_pylist(), dtype=np.float32)
    vectors[1, 7] = np.nan
    bad = rows.set_column(rows.schema.get_field_index("vector"), "vector",
                          pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIMENSION))
    passed, meta = validate.check_finite(bad)
    assert not passed and meta["non_finite_rows"] == 1
    assert not validate.check_unit_norm(bad)[0]


def test_a_vector_off_unit_norm_fails_the_norm_check():
    rows = _good_rows()
    vectors = np.array(rows.column("vector").to_pylist(), dtype=np.float32)
    vectors[3] *= 1.05
    bad = rows.set_column(rows.schema.get_field_index("vector"), "vector",
                          pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIMENSION))
    passed, meta = validate.check_unit_norm(bad)
    assert not passed and meta["off_norm_rows"] == 1 and meta["norm_max"] == pytest.approx(1.05, abs=1e-4)


def test_a_duplicated_id_fails_the_unique_id_check():
    rows = _good_rows()
    passed, meta = validate.check_unique_ids(pa.concat_tables([rows, rows.slice(0, 1)]))
    assert not passed and meta == {"rows": 5, "duplicated_ids": 1, "extra_rows": 1}


def test_consistency_fails_on_a_missing_active_sku_a_deleted_sku_and_a_discontinued_sku():
    rows = _good_rows()  # SKU0..SKU3
    products = pl.DataFrame({"sku": ["SKU0", "SKU1", "SKU2", "SKU4"], "status": ["active", "active", "discontinued",
                                                                                 "active"]})
    passed, meta = validate.check_consistency(rows, products, FP32)
    assert not passed
    assert (meta["missing"], meta["orphaned_deleted"], meta["orphaned_inactive"]) == (1, 1, 1)
    assert meta["missing_sample"] == ["SKU4"] and meta["orphaned_sample"] == ["SKU2", "SKU3"]


def test_consistency_is_per_model_version_and_catches_stale_vectors():
    rows = pa.concat_tables([_good_rows(4, FP32), _good_rows(2, "minilm-l6-v2@bf16")])
    products = pl.DataFrame({"sku": [f"SKU{i}" for i in range(4)], "status": ["active"] * 4})
    assert validate.check_consistency(rows, products, FP32)[0]
    passed, meta = validate.check_consistency(rows, products, "minilm-l6-v2@bf16")
    assert not passed and meta["missing"] == 2
    passed, meta = validate.check_consistency(rows, products, FP32, expected_hashes={"SKU1": "changed"})
    assert not passed and meta["stale"] == 1


# --- incremental embedding and upserts ---------------------------------------------------------------------------

def test_changing_one_product_re_embeds_exactly_that_product(catalog, encoder, store):
    first = incremental_embed(catalog, encoder, store, now=NOW)
    active = catalog.filter(pl.col("status") == "active").height
    assert (first.embedded, first.deleted, store.count(FP32)) == (active, 0, active)
    before = {r["sku"]: r["source_hash"] for r in store.rows(FP32, ["sku", "source_hash"]).to_pylist()}

    again = incremental_embed(catalog, encoder, store, now=NOW)
    assert (again.embedded, again.unchanged, again.table_version) == (0, active, first.table_version)

    sku = catalog.filter(pl.col("status") == "active")["sku"][3]
    changed = _edit(catalog, sku, colour="ultraviolet", price=1.0)
    report = incremental_embed(changed, encoder, store, now=NOW)
    assert (report.embedded, report.deleted) == (1, 0)
    after = {r["sku"]: r["source_hash"] for r in store.rows(FP32, ["sku", "source_hash"]).to_pylist()}
    assert {k for k in after if after[k] != before[k]} == {sku}
    # a field the text does not use (price) changes nothing
    assert incremental_embed(_edit(changed, sku, price=2.0), encoder, store, now=NOW).embedded == 0


def test_a_deleted_or_discontinued_product_loses_its_vector(catalog, encoder, store):
    incremental_embed(catalog, encoder, store, now=NOW)
    active = catalog.filter(pl.col("status") == "active")["sku"]
    gone, retired = active[0], active[1]
    newer = _edit(catalog.filter(pl.col("sku") != gone), retired, status="discontinued")
    report = incremental_embed(newer, encoder, store, now=NOW)
    assert (report.embedded, report.deleted) == (0, 2)
    skus = set(store.rows(FP32, ["sku"]).column("sku").to_pylist())
    assert gone not in skus and retired not in skus
    assert validate.check_consistency(store.rows(FP32), newer, FP32)[0]


def test_upserting_the_same_rows_twice_never_duplicates(store):
    rows = _good_rows(5)
    assert store.upsert(rows) == {"inserted": 5, "updated": 0}
    assert store.upsert(rows) == {"inserted": 0, "updated": 5}
    assert store.count() == 5 and validate.check_unique_ids(store.rows())[0]
    with pytest.raises(ValueError, match="same id more than once"):
        store.upsert(pa.concat_tables([rows, rows.slice(0, 1)]))


# --- publish, rollback, cleanup ----------------------------------------------------------------------------------

def test_publish_tags_a_version_and_rollback_restores_it(catalog, encoder, store):
    incremental_embed(catalog, encoder, store, now=NOW)
    first = store.publish(FP32)
    assert first == "minilm-l6-v2.fp32-1"
    old = {r["sku"]: r["source_hash"] for r in store.rows(FP32, ["sku", "source_hash"]).to_pylist()}

    sku = catalog.filter(pl.col("status") == "active")["sku"][0]
    incremental_embed(_edit(catalog, sku, name="Totally New Name"), encoder, store, now=NOW)
    second = store.publish(FP32)
    assert second == "minilm-l6-v2.fp32-2"
    assert store.rows(FP32, ["sku", "source_hash"]).to_pylist() != sorted(old.items())

    store.rollback(first)
    now_rows = {r["sku"]: r["source_hash"] for r in store.rows(FP32, ["sku", "source_hash"]).to_pylist()}
    assert now_rows == old
    status = store.status()
    assert status["latest_is_published"] and status["published_tag"].startswith(first + ".rollback-")
    with pytest.raises(KeyError):
        store.rollback("no-such-tag")


def test_cleanup_keeps_the_last_publishes_and_pinned_tags(catalog, encoder, store):
    sku = catalog.filter(pl.col("status") == "active")["sku"][0]
    tags = []
    for i in range(4):
        incremental_embed(_edit(catalog, sku, colour=f"colour {i}"), encoder, store, now=NOW)
        tags.append(store.publish(FP32))
    store.pin(tags[1])
    pinned_rows = store.rows(FP32, ["sku", "source_hash"], tag=tags[1]).to_pylist()
    version_of = {t.name: t.version for t in store.tags()}
    before = [v["version"] for v in store.table.list_versions()]

    report = store.cleanup(keep_last=1, grace=dt.timedelta(0))
    assert {t.name for t in store.tags()} == {tags[1], "pin-" + tags[1], tags[3]}
    assert set(report.tags_deleted) == {tags[0], tags[2]}
    # every version beyond the policy is gone, the pinned one (older than the kept publish) included in what stays:
    # exactly the tagged versions and the latest remain
    kept = [v["version"] for v in store.table.list_versions()]
    assert kept == report.versions_kept == sorted({version_of[tags[1]], version_of[tags[3]], store.table.version})
    assert len(before) > len(kept) + 2 and not store.table.branches.list()  # no hold branch left behind
    # the pinned publish can still be read and restored
    assert store.rows(FP32, ["sku", "source_hash"], tag=tags[1]).to_pylist() == pinned_rows
    store.rollback(tags[1])
    assert store.rows(FP32, ["sku", "source_hash"]).to_pylist() == pinned_rows

    store.unpin(tags[1])
    report = store.cleanup(keep_last=1, grace=dt.timedelta(0))
    assert tags[1] in report.tags_deleted and version_of[tags[1]] not in report.versions_kept
    with pytest.raises(ValueError):
        store.cleanup(keep_last=0)


def test_a_prune_interrupted_after_taking_the_tags_off_puts_them_back(store):
    from lenslake.vectors.store import HOLD_PREFIX, prune

    store.upsert(_good_rows(3))
    tag = store.publish(FP32)
    store.delete_keys(FP32, ["SKU0"])
    table = store.table
    # what a crash between the two steps of a prune leaves: the tag's version held by a branch, the tag gone
    table.branches.create(HOLD_PREFIX + tag, from_version=table.tags.get_version(tag))
    table.tags.delete(tag)
    prune(table, dt.timedelta(0))
    assert [t.name for t in store.tags()] == [tag] and not table.branches.list()
    assert store.rows(FP32, ["sku"], tag=tag).num_rows == 3


# --- search, two live model versions -----------------------------------------------------------------------------

def test_search_returns_only_the_requested_model_version(catalog, encoder, tmp_path):
    store = VectorStore(tmp_path / "vectors", index_min_rows=50)  # small threshold: the ANN index is built
    other = Encoder.for_version(FP32 + "+name")
    incremental_embed(catalog, encoder, store, now=NOW)
    incremental_embed(catalog, other, store, now=NOW)
    assert store.has_vector_index() and store.unindexed_rows() == 0
    active = catalog.filter(pl.col("status") == "active").height
    assert store.count(FP32) == store.count(FP32 + "+name") == active

    row = catalog.filter(pl.col("status") == "active").row(0, named=True)
    query = other.encode([other.text(row)])[0]
    hit = store.search(query, k=5, model_version=FP32 + "+name").to_pylist()
    assert hit[0]["sku"] == row["sku"] and hit[0]["score"] == pytest.approx(1.0, abs=1e-4)
    in_a = store.search(query, k=5, model_version=FP32).to_pylist()
    assert len(in_a) == 5 and in_a[0]["score"] < 0.999  # the other version's vectors, not this one
    exact = store.search(query, k=5, model_version=FP32, exact=True).to_pylist()
    assert exact[0]["sku"] == in_a[0]["sku"] and len({h["sku"] for h in exact} & {h["sku"] for h in in_a}) >= 4


# --- encoder -----------------------------------------------------------------------------------------------------

def test_product_text_is_short_and_skips_absent_attributes(catalog, encoder):
    tokenizer = encoder.model.tokenizer
    texts = [product_text(r) for r in catalog.to_dicts()]
    assert max(len(tokenizer(t)["input_ids"]) for t in texts) <= 64
    myntra_like = {"sku": "MYN-1", "name": "Ray-Ban Men Aviator Gold Sunglasses", "description": None,
                   "category": "sunglasses", "colour": "gold", "gender": "men", "frame_shape": None}
    assert product_text(myntra_like) == "Ray-Ban Men Aviator Gold Sunglasses"
    assert ModelVersion.parse("minilm-l6-v2@bf16+name").slug == "minilm-l6-v2.bf16.name"
    with pytest.raises(ValueError):
        ModelVersion.parse("minilm-l6-v2@fp8")


def test_the_bf16_fast_path_passes_the_quality_gate_and_noise_does_not(catalog, encoder):
    texts = [product_text(r) for r in catalog.to_dicts()]
    full = encoder.encode(texts)
    fast = Encoder.for_version("minilm-l6-v2@bf16").encode(texts)
    assert fast.dtype == np.float32 and np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    gate = quality_gate(full, fast)
    assert gate.passed, gate
    noisy = normalize(full + 0.05 * np.random.default_rng(0).standard_normal(full.shape))
    bad = quality_gate(full, noisy)
    assert not bad.passed and bad.cosine_min < 0.99


# --- user embeddings, segments, serving index, Myntra -------------------------------------------------------------

def _product_vectors():
    basis = np.eye(DIMENSION, dtype=np.float32)[:3]
    return pl.DataFrame({"sku": ["A", "B", "C"], "vector": [list(v) for v in basis]})


def test_only_users_with_personalization_consent_get_an_embedding():
    events = pl.DataFrame({
        "user_id": ["u1", "u1", "u2", "u3"],
        "sku": ["A", "B", "A", "C"],
        "event_type": ["product_view", "purchase", "purchase", "product_view"],
        "event_time": [NOW - dt.timedelta(days=1)] * 4,
    })
    from lenslake.vectors.users import user_embeddings

    out = user_embeddings(events, _product_vectors(), consented_users={"u1", "u3"}, as_of=NOW)
    assert out["user_id"].to_list() == ["u1", "u3"]
    u1 = np.array(out.filter(pl.col("user_id") == "u1")["vector"][0])
    assert np.linalg.norm(u1) == pytest.approx(1.0, abs=1e-5) and u1[1] > u1[0] > 0  # a purchase outweighs a view
    assert user_embeddings(events, _product_vectors(), consented_users=set(), as_of=NOW).height == 0


def test_user_embeddings_decay_with_time_and_ignore_the_future():
    from lenslake.vectors.users import user_embeddings

    events = pl.DataFrame({
        "user_id": ["u1", "u1", "u1"], "sku": ["A", "B", "C"], "event_type": ["product_view"] * 3,
        "event_time": [NOW - dt.timedelta(days=60), NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=1)],
    })
    v = np.array(user_embeddings(events, _product_vectors(), {"u1"}, half_life_days=30, as_of=NOW)["vector"][0])
    assert v[2] == 0 and v[1] / v[0] == pytest.approx(4.0, rel=0.01)  # two half-lives apart


def test_kmeans_segments_report_quality():
    from lenslake.vectors.segments import kmeans_segments

    rng = np.random.default_rng(0)
    centres = normalize(rng.standard_normal((4, DIMENSION)))
    x = normalize(np.repeat(centres, 50, axis=0) + 0.05 * rng.standard_normal((200, DIMENSION)))
    seg = kmeans_segments(x, k=4)
    assert seg.metadata["k"] == 4 and seg.metadata["size_min"] == seg.metadata["size_max"] == 50
    assert seg.metadata["silhouette"] > 0.3 and seg.metadata["inertia"] > 0
    assert len(seg.labels) == 200 and seg.centroids.shape == (4, DIMENSION)


def test_the_serving_index_finds_the_exact_neighbours():
    from lenslake.vectors.ann import IvfIndex, exact_top_k, recall_at_k

    rng = np.random.default_rng(1)
    centres = normalize(rng.standard_normal((40, DIMENSION)))
    x = normalize(centres[rng.integers(0, 40, 3000)] + 0.08 * rng.standard_normal((3000, DIMENSION)))
    index = IvfIndex.build(x, np.arange(3000))
    queries = x[rng.choice(3000, 100, replace=False)]
    truth = exact_top_k(queries, x)
    found = [index.search(q, 10)[0] for q in queries]
    assert recall_at_k(found, truth) >= 0.95

def test_the_cli_rolls_back_to_a_tag_and_reports_status(tmp_path):
    store = VectorStore(tmp_path / "lake" / "vectors")
    store.upsert(_good_rows(3))
    tag = store.publish(FP32)
    store.delete_keys(FP32, ["SKU0"])
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path / "lake")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lenslake.cli", "vectors", *args], capture_output=True,
                              text=True, env=env, timeout=120, check=False)

    out = cli("rollback", "--to", tag)
    assert out.returncode == 0 and f"restored {tag}" in out.stdout
    assert VectorStore(tmp_path / "lake" / "vectors").count() == 3
    out = cli("rollback", "--to", "nope")
    assert out.returncode == 1 and "no tag 'nope'" in out.stderr and tag in out.stderr and "Traceback" not in out.stderr
    out = cli("status")
    assert out.returncode == 0 and "minilm-l6-v2@fp32" in out.stdout and f"published: {tag}.rollback-" in out.stdout


# --- content texts and their consistency check; A/B assignment ---------------------------------------------------

def test_content_texts_are_cut_short_at_a_sentence_and_ids_follow_the_text():
    import polars as pl

    from lenslake.vectors.content import (
        MAX_WORDS,
        check_content_consistency,
        content_rows,
        short_text,
    )
    from lenslake.vectors.encoder import source_hash

    long = "Round acetate frame.  " + " ".join(["Handmade in Italy with care."] * 12)
    cut = short_text(long)
    assert len(cut.split()) <= MAX_WORDS and cut.endswith("care.") and "  " not in cut
    assert short_text("  wide   fit\n aviators ") == "wide fit aviators"

    texts = ["round frames", "blue light glasses"]
    sources = pl.DataFrame({"content_id": [f"query:{source_hash(t)}" for t in texts], "kind": ["query"] * 2,
                            "text": texts, "uses": [3, 1], "source_hash": [source_hash(t) for t in texts]})
    rows = content_rows(sources, normalize(np.random.default_rng(0).standard_normal((2, DIMENSION))), FP32, NOW)
    assert rows.column("id").to_pylist()[0] == f"query:{source_hash('round frames')}|{FP32}"
    assert check_content_consistency(rows, sources, [FP32])[0]
    recounted = sources.with_columns(pl.Series("uses", [4, 1]))
    passed, meta = check_content_consistency(rows, recounted, [FP32])
    assert not passed and meta[FP32]["stale_uses"] == 1
    passed, meta = check_content_consistency(rows.slice(0, 1), sources, [FP32])
    assert not passed and meta[FP32]["missing"] == 1
    passed, meta = check_content_consistency(rows, sources.slice(0, 1), [FP32])
    assert not passed and meta[FP32]["orphaned"] == 1
    forged = rows.set_column(0, "id", pa.array(["x|" + FP32, rows.column("id")[1].as_py()]))
    assert check_content_consistency(forged, sources, [FP32])[1][FP32]["ids_not_deterministic"] == 1


def test_ab_assignment_is_stable_and_a_weight_change_moves_only_boundary_subjects():
    from lenslake.vectors.routing import assign, bucket, load_routing, parse_routing

    def experiment(a, b, salt="s-1"):
        return parse_routing({"experiments": {"e": {"salt": salt, "variants": [
            {"name": "a", "model_version": "minilm-l6-v2@bf16", "weight": a},
            {"name": "b", "model_version": FP32, "weight": b}]}}})["e"]

    subjects = [f"u{i}" for i in range(10_000)]
    half, more_a = experiment(50, 50), experiment(60, 40)
    first = [assign(half, s)[0].name for s in subjects]
    assert first == [assign(half, s)[0].name for s in subjects] and bucket("s-1", "u1") == bucket("s-1", "u1")
    assert 0.48 < first.count("b") / len(subjects) < 0.52
    moved = [(x, assign(more_a, s)[0].name) for x, s in zip(first, subjects) if assign(more_a, s)[0].name != x]
    assert moved and all(m == ("b", "a") for m in moved)  # only b → a, about 10 % of everyone
    assert 0.08 < len(moved) / len(subjects) < 0.12
    reshuffled = [assign(experiment(50, 50, "s-2"), s)[0].name for s in subjects]
    assert 0.4 < sum(x != y for x, y in zip(first, reshuffled)) / len(subjects) < 0.6  # a new salt: a new draw
    assert {assign(experiment(100, 0), s)[0].name for s in subjects[:500]} == {"a"}
    for bad in ({"table": "nope"}, {"variants": [{"name": "a", "model_version": FP32, "weight": -1}]},
                {"variants": [{"name": "a", "model_version": FP32, "weight": 0}]},
                {"variants": [{"name": "a", "model_version": FP32, "weight": 1}] * 2},
                {"variants": [{"name": "a", "model_version": "minilm-l6-v2@fp8", "weight": 1}]}):
        with pytest.raises(ValueError):
            parse_routing({"experiments": {"e": {"variants": [{"name": "a", "model_version": FP32, "weight": 1}],
                                                 **bad}}})
    assert "similar_items_precision" in load_routing()  # the shipped routing file parses


def test_erasing_rows_rewrites_their_fragment_and_rebuilds_indexes_that_held_them(tmp_path):
    from lenslake.vectors.store import erase_rows

    store = VectorStore(tmp_path / "vectors", "user_embeddings", "user_token", index_min_rows=300)
    tokens = [f"t1_{i:026d}" for i in range(600)]
    vectors = normalize(np.random.default_rng(2).standard_normal((600, DIMENSION)))
    for part in (slice(0, 400), slice(400, 600)):  # two fragments
        store.upsert(vector_rows(tokens[part], vectors[part], ["h"] * (part.stop - part.start),
                                 "minilm-l6-v2@bf16", NOW, key="user_token"))
    store.ensure_index(force=True)
    store.table.create_scalar_index("user_token", index_type="BTREE")  # an index that holds the tokens themselves
    tag = store.publish("minilm-l6-v2@bf16")
    folder = tmp_path / "vectors" / "user_embeddings.lance"
    needles = [tokens[450].encode(), vectors[450].astype("<f4").tobytes()]
    assert any("_indices" in f for f in _files(folder, needles)) and any("data" in f for f in _files(folder, needles))

    out = erase_rows(store.table, "user_token", [tokens[450]], folder)
    assert _files(folder, needles) == [] and out["rows_removed"] == 1 and out["tags_repointed"] == [tag]
    assert store.count() == 599 and {ix.columns[0] for ix in store.table.list_indices()} == \
        {"vector", "user_token", "model_version"}
    assert store.search(vectors[3], k=1).to_pylist()[0]["user_token"] == tokens[3]
    assert erase_rows(store.table, "user_token", [tokens[450]], folder) is None  # nothing left to erase


def _files(folder, needles) -> list[str]:
    return [str(p.relative_to(folder)) for p in sorted(folder.rglob("*"))
            if p.is_file() and any(n in p.read_bytes() for n in needles)]
