"""Content embeddings: product descriptions (catalog.products) and distinct search queries (silver.events), one row
per distinct text and live model version in the LanceDB table ``content_embeddings``.

A row's ``content_id`` is ``<kind>:<source hash of the text>`` and its id ``<content_id>|<model_version>``, so the same
text always makes the same id, whichever run or partition sees it. ``uses`` counts the text's uses in the source: the
active SKUs with that description, or the search events with that query. A run embeds only the texts it has not
embedded yet for a model version; a changed count is written without re-embedding; a text gone from the source
loses its rows. Query text is already scrubbed (Presidio, in bronze) and is kept as it is but for its whitespace
(not lower-cased: the canary scan of the data root matches PII values by their case); descriptions are cut short
(the model slows past ~64 tokens). Validation: the product embeddings' checks (dimension, finite, unit norm, unique
ids) and consistency with the sources.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lenslake.vectors.encoder import DIMENSION, Encoder, ModelVersion, source_hash
from lenslake.vectors.store import VectorStore, live_model_versions
from lenslake.vectors.validate import check_consistency, validate_all

CONTENT_TABLE = "content_embeddings"
CONTENT_KEY = "content_id"
KINDS = ("description", "query")
MAX_WORDS = 40  # about 50-55 word pieces: under the 64-token limit


def content_schema(dim: int = DIMENSION) -> pa.Schema:
    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field(CONTENT_KEY, pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("uses", pa.int64(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("source_hash", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("embedded_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ])


def content_store(settings) -> VectorStore:
    return VectorStore.from_settings(settings, table_name=CONTENT_TABLE, key=CONTENT_KEY, schema=content_schema())


def short_text(text: str | None, max_words: int = MAX_WORDS) -> str:
    """Whitespace collapsed; past ``max_words`` words, cut at the last sentence end within them (when that keeps at
    least half), else at ``max_words`` words."""
    words = " ".join(str(text or "").split()).split(" ")
    if len(words) <= max_words:
        return " ".join(words).strip()
    head = " ".join(words[:max_words])
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", head)]
    if ends and len(head[:ends[-1]].split()) >= max_words // 2:
        return head[:ends[-1]]
    return head


def query_text(query: str | None) -> str:
    return short_text(query)


def content_id(kind: str, text: str) -> str:
    return f"{kind}:{source_hash(text)}"


def content_sources(delta_store):
    """The distinct texts to embed (polars: content_id, kind, text, uses, source_hash): descriptions of active
    products (uses: SKUs) and queries of search events (uses: searches)."""
    import polars as pl

    frames = []
    if delta_store.exists("catalog.products"):
        products = pl.from_arrow(delta_store.read("catalog.products", columns=["status", "description"]))
        texts = (products.filter(pl.col("status").fill_null("active") == "active")
                 .select(pl.col("description").map_elements(short_text, return_dtype=pl.String).alias("text")))
        frames.append(texts.with_columns(pl.lit("description").alias("kind")))
    if delta_store.exists("silver.events"):
        # filtered in memory: a pushed-down filter fails on files delta-rs wrote with string_view columns
        events = delta_store.read("silver.events", columns=["event_type", "query"])
        events = events.filter(pc.fill_null(pc.equal(events.column("event_type"), "search"), False))
        texts = pl.from_arrow(events.select(["query"])).select(
            pl.col("query").map_elements(query_text, return_dtype=pl.String).alias("text"))
        frames.append(texts.with_columns(pl.lit("query").alias("kind")))
    empty = pl.DataFrame(schema={CONTENT_KEY: pl.String, "kind": pl.String, "text": pl.String, "uses": pl.Int64,
                                 "source_hash": pl.String})
    if not frames:
        return empty
    texts = pl.concat(frames).filter(pl.col("text").is_not_null() & (pl.col("text") != ""))
    if texts.height == 0:
        return empty
    grouped = texts.group_by("kind", "text").agg(pl.len().cast(pl.Int64).alias("uses"))
    hashes = [source_hash(t) for t in grouped["text"].to_list()]
    return (grouped.with_columns(pl.Series("source_hash", hashes, dtype=pl.String))
            .with_columns((pl.col("kind") + ":" + pl.col("source_hash")).alias(CONTENT_KEY))
            .select(CONTENT_KEY, "kind", "text", "uses", "source_hash").sort(CONTENT_KEY))


def content_rows(sources, vectors: np.ndarray, version: ModelVersion | str, embedded_at) -> pa.Table:
    """Rows for the given sources (polars, in order) and their vectors."""
    version = ModelVersion.parse(version) if isinstance(version, str) else version
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, DIMENSION)
    n = len(vectors)
    ids = sources[CONTENT_KEY].to_list()
    embedded_at = embedded_at if isinstance(embedded_at, list) else [embedded_at] * n
    return pa.table({
        "id": [f"{c}|{version}" for c in ids],
        CONTENT_KEY: ids,
        "kind": sources["kind"].to_list(),
        "text": sources["text"].to_list(),
        "uses": pa.array(sources["uses"].to_list(), pa.int64()),
        "model_name": [version.model_name] * n,
        "model_version": [str(version)] * n,
        "source_hash": sources["source_hash"].to_list(),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIMENSION),
        "embedded_at": pa.array(embedded_at, pa.timestamp("us", tz="UTC")),
    }, schema=content_schema())


def check_content_consistency(rows: pa.Table, sources, versions: list[str]) -> tuple[bool, dict]:
    """For every live model version: every source text has a row, no row is for a text gone from the sources, no
    row's hash or count is stale, and every id is ``<kind>:<hash>|<model_version>``."""
    import polars as pl

    frame = sources.select(CONTENT_KEY).with_columns(pl.lit("active").alias("status"))
    expected = dict(zip(sources[CONTENT_KEY].to_list(), sources["source_hash"].to_list()))
    uses = dict(zip(sources[CONTENT_KEY].to_list(), sources["uses"].to_list()))
    passed, meta = True, {"texts": sources.height}
    for version in versions:
        ok, m = check_consistency(rows, frame, version, CONTENT_KEY, expected)
        mine = rows.filter(pc.equal(rows.column("model_version"), version))
        cids, kinds, hashes, ids, counts = (mine.column(c).to_pylist() for c in
                                            (CONTENT_KEY, "kind", "source_hash", "id", "uses"))
        stale_uses = sum(1 for c, n in zip(cids, counts) if c in uses and uses[c] != n)
        bad_ids = sum(1 for c, k, h, i in zip(cids, kinds, hashes, ids)
                      if c != f"{k}:{h}" or i != f"{c}|{version}")
        m = {k: v for k, v in m.items() if k not in ("active_products", "orphaned_deleted", "orphaned_inactive")}
        m.update(stale_uses=stale_uses, ids_not_deterministic=bad_ids)
        meta[version] = m
        passed = passed and ok and not stale_uses and not bad_ids
    return passed, meta


@dataclass
class ContentEmbedResult:
    model_version: str  # the published one; the counts below are its own
    descriptions: int
    queries: int
    embedded: int
    recounted: int
    unchanged: int
    removed: int
    tag: str | None
    table_version: int | None
    seconds: float
    encode_seconds: float
    model_load_seconds: float
    checks: dict  # check name -> (passed, metadata)
    versions: dict = field(default_factory=dict)
    retired: int = 0
    cleanup: dict = field(default_factory=dict)


def embed_content(settings, delta_store, store: VectorStore | None = None) -> ContentEmbedResult:
    """For every live model version: embed the texts not embedded yet, rewrite the counts that changed (no
    re-embedding), delete the rows of texts gone from the sources; delete rows of retired model versions; optimize,
    publish a tag per changed version, apply the bounded cleanup and validate."""
    from lenslake.vectors.pipeline import TimedEncoder, publish_changed

    t0 = time.perf_counter()
    now = settings.now()
    versions = live_model_versions(settings)
    sources = content_sources(delta_store)
    store = store or content_store(settings)
    ids = sources[CONTENT_KEY].to_list()
    hashes = dict(zip(ids, sources["source_hash"].to_list()))
    uses = dict(zip(ids, sources["uses"].to_list()))
    stats, changed, encode_s, load_s = {}, {}, 0.0, 0.0
    for version in versions:
        have = store.rows(version, [CONTENT_KEY, "source_hash", "uses"])
        known = {c: (h, n) for c, h, n in zip(*(have.column(x).to_pylist() for x in (CONTENT_KEY, "source_hash", "uses")))}
        new = [c for c in ids if known.get(c, (None,))[0] != hashes[c]]
        recount = [c for c in ids if c in known and known[c][0] == hashes[c] and known[c][1] != uses[c]]
        gone = sorted(set(known) - set(ids))
        if new:
            import polars as pl

            todo = sources.filter(pl.col(CONTENT_KEY).is_in(new))
            encoder = TimedEncoder(Encoder.for_version(version, settings))
            t = time.perf_counter()
            vectors = encoder.encode(todo["text"].to_list())
            encode_s += time.perf_counter() - t - encoder.model_load_seconds
            load_s += encoder.model_load_seconds
            store.upsert(content_rows(todo, vectors, version, now))
        if recount:
            old = store.rows(version)
            old = old.filter(pc.is_in(old.column(CONTENT_KEY), value_set=pa.array(recount, pa.string())))
            counts = pa.array([uses[c] for c in old.column(CONTENT_KEY).to_pylist()], pa.int64())
            store.upsert(old.set_column(old.schema.get_field_index("uses"), "uses", counts))
        removed = store.delete_keys(version, gone) if gone else 0
        if new or recount or gone:
            store.optimize()
            store.ensure_index()
        stats[version] = {"embedded": len(new), "recounted": len(recount), "removed": removed,
                          "unchanged": len(ids) - len(new) - len(recount)}
        changed[version] = bool(new or recount or gone)
    retired = store.retire(versions)
    tags, cleanup = (publish_changed(settings, store, {v: c or bool(retired) for v, c in changed.items()})
                     if store.exists() else ({}, {}))
    rows = store.rows()
    checks = validate_all(rows, dim=store.dim)
    checks["consistency"] = check_content_consistency(rows, sources, versions)
    for version, tag in tags.items():
        stats[version]["tag"] = tag
    first = stats[versions[0]]
    kinds = sources["kind"].to_list()
    return ContentEmbedResult(versions[0], kinds.count("description"), kinds.count("query"), first["embedded"],
                              first["recounted"], first["unchanged"], first["removed"], tags.get(versions[0]),
                              store.table.version if store.exists() else None, time.perf_counter() - t0, encode_s,
                              load_s, checks, stats, retired, cleanup)
