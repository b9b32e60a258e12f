"""LanceDB vector tables: rows versioned by model, upserted by deterministic id, tagged per publish.

One table per kind of vector (``product_embeddings``, ``content_embeddings``, ``user_embeddings``) holds the rows
of every live model version side by side, so two versions can serve at once (an A/B test routes a variant to one
by filtering on ``model_version``, at that version's publish tag: ``lenslake.vectors.routing``). A row's id is
``<key>|<model_version>``, so a rerun or a retry upserts the same row instead of adding one (``merge_insert``). Each
publish of a model version is a LanceDB version with a tag ``<model-slug>-<n>``; ``rollback`` restores a tag's data
as a new latest version (readers switch on their next refresh); ``cleanup`` keeps the last N publish tags of each
model version and every pinned tag (``pin-<tag>``), and removes every other version older than a grace period.

lancedb 0.40 facts this module leans on (checked here): tag names allow only letters, digits, '.', '-' and '_';
``optimize()`` always prunes versions older than its ``cleanup_older_than`` (7 days by default) and raises when a
tagged version is older than that (lance's ``error_if_tagged_old_versions`` is not exposed, and the optional
``pylance`` package is not installed); a version that a *branch* was forked from survives a prune without an error.
So ``prune`` holds each old tag's version by a branch ``hold-<tag>``, takes those tags off for the prune and puts
them back (a crash in between: the next prune re-creates the tags from the branches). A ``delete`` writes its literal
predicate into the new version's manifest and transaction file, and leaves the deleted rows' bytes in their data
file behind a deletion vector; a ``merge_insert`` delete records no predicate, and a fragment whose rows are all
deleted is dropped: ``delete_keys`` deletes that way, rewriting the rows that share a fragment with deleted ones
(``materialize``), so a removed vector leaves no bytes behind once old versions are pruned. Readers must refresh
(``checkout_latest``) to see new versions; one writer per table.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lenslake.vectors.encoder import DIMENSION, ModelVersion, source_hash

PRODUCT_TABLE = "product_embeddings"
TABLE_KEYS = {PRODUCT_TABLE: "sku", "content_embeddings": "content_id", "user_embeddings": "user_token"}
PIN_PREFIX = "pin-"
HOLD_PREFIX = "hold-"  # a branch that holds a tag's version while a prune runs (see ``prune``)
_TAG_OK = re.compile(r"^[A-Za-z0-9._-]+$")
# a publish tag (``<slug>-<n>``) or a rollback to one (``<slug>-<n>.rollback-<version>``): its model's slug
_PUBLISH_TAG = re.compile(r"^(?P<slug>.+?)-\d+(?:\.rollback-\d+)?$")


def vectors_dir(settings) -> Path:
    return Path(settings.vectors_dir) if settings.vectors_dir else Path(settings.data_root) / "vectors"


def live_model_versions(settings) -> list[str]:
    """The published model version first, then the others kept live beside it (A/B)."""
    versions = [str(ModelVersion.parse(settings.embedding_model_version))]
    for v in settings.embedding_live_versions.split(","):
        if v.strip() and v.strip() not in versions:
            versions.append(str(ModelVersion.parse(v)))
    return versions


def row_id(key: str, model_version: str) -> str:
    """Deterministic: the same key and model version always make the same id (never a batch counter)."""
    return f"{key}|{model_version}"


def vector_schema(key: str = "sku", dim: int = DIMENSION) -> pa.Schema:
    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field(key, pa.string(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("source_hash", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("embedded_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ])


def vector_rows(keys, vectors: np.ndarray, hashes, version: ModelVersion | str, embedded_at: dt.datetime,
                key: str = "sku") -> pa.Table:
    version = ModelVersion.parse(version) if isinstance(version, str) else version
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape if vectors.ndim == 2 else (0, DIMENSION)
    keys = [str(k) for k in keys]
    return pa.table({
        "id": [row_id(k, str(version)) for k in keys],
        key: keys,
        "model_name": [version.model_name] * n,
        "model_version": [str(version)] * n,
        "source_hash": list(hashes),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
        "embedded_at": pa.array([embedded_at] * n, pa.timestamp("us", tz="UTC")),
    }, schema=vector_schema(key, dim))


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def vectors_of(table: pa.Table) -> np.ndarray:
    """The ``vector`` column as an (n, dim) float32 array (no copy when possible)."""
    col = table.column("vector").combine_chunks()
    dim = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


@dataclass(frozen=True)
class TagInfo:
    name: str
    version: int
    pinned: bool


@dataclass
class CleanupReport:
    tags_deleted: list[str]
    tags_kept: list[str]
    versions_before: int
    versions_after: int
    versions_kept: list[int] = field(default_factory=list)


def tag_slug(tag: str) -> str | None:
    """The model slug of a publish or rollback tag (``minilm-l6-v2.fp32-3.rollback-9`` → ``minilm-l6-v2.fp32``)."""
    m = _PUBLISH_TAG.match(tag)
    return m.group("slug") if m and not tag.startswith(PIN_PREFIX) else None


def table_names(db) -> list[str]:
    names, token = [], None
    while True:  # list_tables pages its answer
        page = db.list_tables(page_token=token) if token else db.list_tables()
        names += page.tables
        token = page.page_token
        if not token:
            return names


def heal_holds(table) -> list[str]:
    """Put back the tags a crashed prune left held by ``hold-<tag>`` branches only, and drop those branches."""
    healed = []
    tags = table.tags.list()
    for name, info in table.branches.list().items():
        if not name.startswith(HOLD_PREFIX):
            continue
        tag = name[len(HOLD_PREFIX):]
        if tag not in tags and info.get("parent_version") is not None:
            table.tags.create(tag, info["parent_version"])
            healed.append(tag)
        table.branches.delete(name)
    return healed


def prune(table, older_than: dt.timedelta) -> None:
    """Remove every version older than ``older_than`` that no tag points at (the latest always stays), and the files
    only they used. lancedb 0.40 refuses a prune that would pass a tagged version; a version a branch was forked from
    survives one. So the tags on versions about as old as the window or older are held by branches while they are
    off, and put back after (the newer tags, which readers resolve most, stay on throughout)."""
    import warnings

    heal_holds(table)
    stamps = {v["version"]: _as_utc(v["timestamp"]) for v in table.list_versions()}
    oldest_untouched = _utcnow() - older_than + dt.timedelta(minutes=5)  # a margin for the prune's own clock
    tags = {name: info["version"] for name, info in table.tags.list().items()
            if stamps.get(info["version"], oldest_untouched) < oldest_untouched}
    for name, version in tags.items():
        table.branches.create(HOLD_PREFIX + name, from_version=version)
    try:
        for name in tags:
            table.tags.delete(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "cleanup_older_than=0 removes every version except the latest"
            table.optimize(cleanup_older_than=older_than, delete_unverified=True)
    finally:
        table.checkout_latest()
        existing = table.tags.list()
        for name, version in tags.items():
            if name not in existing:
                table.tags.create(name, version)
        for name in tags:
            table.branches.delete(HOLD_PREFIX + name)


# --- deleting without leaving bytes behind, and erasure ------------------------------------------------------

def delete_where(table, where: str, materialize: bool = False) -> int:
    """Delete the rows matching ``where`` by a merge (no predicate recorded in the version's manifest); with
    ``materialize``, the other rows of the fragments that held them are rewritten in the same commit, so those
    fragments leave the latest version. Returns the rows deleted."""
    n = table.count_rows(where)
    if not n:
        return 0
    names = table.schema.names
    source = table.schema.empty_table()
    if materialize:
        # a row address is <fragment id> << 32 | <offset> (no stable row ids here)
        held = table.search().where(where).select(["_rowaddr"]).to_arrow().column("_rowaddr").combine_chunks()
        fragments = pc.unique(pc.shift_right(held, pa.scalar(32, pa.uint64())))
        rows = table.search().select([*names, "_rowaddr"]).to_arrow()
        addr = rows.column("_rowaddr")
        mates = pc.and_(pc.is_in(pc.shift_right(addr, pa.scalar(32, pa.uint64())), value_set=fragments),
                        pc.invert(pc.is_in(addr, value_set=held)))
        source = rows.filter(mates).select(names).cast(table.schema)
    table.merge_insert("id").when_matched_update_all().when_not_matched_by_source_delete(where).execute(source)
    return n


def _rewrite_all(table) -> None:
    """Rewrite every row of the latest version (each old fragment then has all its rows deleted and leaves it)."""
    rows = table.to_arrow()
    if rows.num_rows:
        table.merge_insert("id").when_matched_update_all().execute(rows)


def _vector_index_config(m: int = 20, ef_construction: int = 300):
    from lancedb.index import HnswSq

    return HnswSq(distance_type="cosine", num_partitions=1, m=m, ef_construction=ef_construction)


def _rebuild_indices(table) -> None:
    """Build every index of the table again from the latest rows (an index keeps values of rows since deleted)."""
    for ix in table.list_indices():
        column = ix.columns[0]
        kind = str(ix.index_type).upper().replace("_", "")
        scalar = {"BTREE": "BTREE", "BITMAP": "BITMAP", "LABELLIST": "LABEL_LIST"}
        if kind in scalar:
            table.create_scalar_index(column, index_type=scalar[kind], replace=True)
        elif column == "vector" and table.count_rows() >= 256:
            table.create_index(column, config=_vector_index_config(), replace=True)
        else:
            table.drop_index(ix.name)


def _files_holding(folder: Path, needles: list[bytes]) -> list[str]:
    """Files under ``folder`` whose bytes contain one of ``needles`` (relative paths)."""
    hits = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(str(path.relative_to(folder)))
    return hits


def erase_rows(table, column: str, values, folder: Path) -> dict | None:
    """Erase every row whose ``column`` is one of ``values`` from a LanceDB table and from its history, down to the
    bytes: None when no version, branch or file holds them.

    The latest version loses the rows (a merge that rewrites their fragments' other rows, so no data file keeps
    them behind a deletion vector) and its indexes are rebuilt; branches showing them are dropped; tags whose version
    shows them are dropped, except those on the newest such version, which are re-pointed at the rewritten latest;
    every untagged version is pruned at once. Then the files under ``folder`` (the table's directory) are scanned for
    the values and the float32 bytes of their vectors: while some remain (rows behind a deletion vector, a literal
    ``delete`` predicate in an old manifest), the latest is rewritten whole, then the oldest remaining tags are
    dropped one by one; if none is left and bytes remain, it raises."""
    values = sorted({str(v) for v in values})
    if not values:
        return None
    where = f"{column} IN ({', '.join(_quote(v) for v in values)})"
    heal_holds(table)
    needles = [v.encode() for v in values]
    holding = []
    for info in table.list_versions():
        table.checkout(info["version"])
        cols = ["vector"] if "vector" in table.schema.names else [column]
        found = table.search().where(where).select(cols).to_arrow()
        if found.num_rows:
            holding.append(info["version"])
            if "vector" in cols:
                needles += [v.astype("<f4").tobytes() for v in vectors_of(found)]
    table.checkout_latest()
    needles = list(dict.fromkeys(needles))
    branches = [name for name in table.branches.list()
                if table.branches.checkout(name).count_rows(where)]
    if not holding and not branches and not _files_holding(folder, needles):
        return None
    for name in branches:
        table.branches.delete(name)
    versions_before = len(table.list_versions())
    tags = {name: info["version"] for name, info in table.tags.list().items()}
    holding_tags = {name: v for name, v in tags.items() if v in holding}
    newest = max(holding_tags.values(), default=None)
    repoint = sorted(name for name, v in holding_tags.items() if v == newest)
    dropped = sorted(set(holding_tags) - set(repoint))
    for name in holding_tags:
        table.tags.delete(name)
    removed = delete_where(table, where, materialize=True)
    if removed:
        _rebuild_indices(table)
    prune(table, dt.timedelta(0))
    rewritten = False
    while _files_holding(folder, needles):
        if not rewritten:
            _rewrite_all(table)
            _rebuild_indices(table)
            rewritten = True
        else:
            left = sorted(table.tags.list().items(), key=lambda kv: (kv[1]["version"], kv[0]))
            if not left:
                raise RuntimeError(f"erasure: files under {folder} still hold the erased values: "
                                   f"{', '.join(_files_holding(folder, needles))}")
            table.tags.delete(left[0][0])
            dropped.append(left[0][0])
        prune(table, dt.timedelta(0))
    table.checkout_latest()
    for name in repoint:
        table.tags.create(name, table.version)
    return {"rows_removed": removed, "versions_held": len(holding), "versions_before": versions_before,
            "versions_after": len(table.list_versions()), "tags_repointed": repoint, "tags_dropped": sorted(dropped),
            "branches_dropped": sorted(branches), "rewritten_whole": rewritten, "version": table.version,
            "files_scanned_clean": True}


@dataclass
class VectorStore:
    """One LanceDB table of vectors. Open it with ``from_settings``; the table is created on first write."""

    directory: Path
    table_name: str = PRODUCT_TABLE
    key: str = "sku"
    dim: int = DIMENSION
    index_min_rows: int = 5000
    schema: pa.Schema | None = None  # default: ``vector_schema(key, dim)``
    _db: object = field(default=None, repr=False)
    _table: object = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings, table_name: str = PRODUCT_TABLE, key: str = "sku",
                      schema: pa.Schema | None = None) -> VectorStore:
        return cls(vectors_dir(settings), table_name, key, index_min_rows=settings.vectors_index_min_rows,
                   schema=schema)

    @property
    def row_schema(self) -> pa.Schema:
        return self.schema if self.schema is not None else vector_schema(self.key, self.dim)

    # --- opening -----------------------------------------------------------------------------------------------
    @property
    def db(self):
        if self._db is None:
            import os

            import lancedb

            # lance warns on every index listing unless told whether index statistics include centroids
            os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = lancedb.connect(str(self.directory))
        return self._db

    def __post_init__(self):
        self.directory = Path(self.directory)

    def exists(self) -> bool:
        return self.table_name in table_names(self.db)

    @property
    def table(self):
        """The table at its latest version (refreshed on every access: other processes may have written)."""
        if self._table is None:
            if self.exists():
                self._table = self.db.open_table(self.table_name)
            else:
                self._table = self.db.create_table(self.table_name, schema=self.row_schema)
        else:
            self._table.checkout_latest()
        return self._table

    # --- reading -----------------------------------------------------------------------------------------------
    def rows(self, model_version: str | None = None, columns: list[str] | None = None, tag: str | None = None) -> pa.Table:
        """Every row (of one model version), optionally at a tag's version."""
        if not self.exists():
            return self.row_schema.empty_table().select(columns or self.row_schema.names)
        table = self.table
        if tag is not None:
            table.checkout(tag)
        try:
            query = table.search()
            if model_version is not None:
                query = query.where(f"model_version = {_quote(model_version)}")
            if columns:
                query = query.select(columns)
            return query.to_arrow()
        finally:
            if tag is not None:
                table.checkout_latest()

    def count(self, model_version: str | None = None) -> int:
        if not self.exists():
            return 0
        return self.table.count_rows(f"model_version = {_quote(model_version)}" if model_version else None)

    # --- writing -----------------------------------------------------------------------------------------------
    def upsert(self, rows: pa.Table) -> dict:
        """Insert new ids, update existing ones; never a second row for an id. Refuses a batch holding an id twice."""
        if rows.num_rows == 0:
            return {"inserted": 0, "updated": 0}
        ids = rows.column("id")
        if pc.count_distinct(ids).as_py() != rows.num_rows:
            raise ValueError("the batch holds the same id more than once; dedupe it before upserting")
        rows = rows.cast(self.row_schema)
        result = (self.table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(rows))
        return {"inserted": result.num_inserted_rows, "updated": result.num_updated_rows}

    def delete_keys(self, model_version: str | None, keys, materialize: bool = False) -> int:
        """Delete the rows of ``keys`` (of one model version, or of every one with None) by a merge that records no
        predicate. ``materialize``: also rewrite the other rows of the fragments that held them, so those fragments
        (and the deleted rows' bytes) leave the latest version (for people's vectors)."""
        keys = sorted({str(k) for k in keys})
        if not keys or not self.exists():
            return 0
        deleted = 0
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            if model_version is None:
                where = f"{self.key} IN ({', '.join(_quote(k) for k in chunk)})"
            else:
                where = f"id IN ({', '.join(_quote(row_id(k, model_version)) for k in chunk)})"
            deleted += delete_where(self.table, where, materialize=materialize)
        return deleted

    def retire(self, live_versions) -> int:
        """Delete the rows of every model version that is not live any more."""
        if not self.exists():
            return 0
        have = set(self.rows(columns=["model_version"]).column("model_version").to_pylist())
        gone = sorted(have - {str(v) for v in live_versions})
        if not gone:
            return 0
        return delete_where(self.table, f"model_version IN ({', '.join(_quote(v) for v in gone)})")

    def _safe_window(self) -> dt.timedelta:
        """A prune window reaching back past the oldest tagged version (or 7 days), so optimize never trips on a tag."""
        week = dt.timedelta(days=7)
        tags = self.table.tags.list()
        if not tags:
            return week
        oldest = min(t["version"] for t in tags.values())
        stamp = next((v["timestamp"] for v in self.table.list_versions() if v["version"] == oldest), None)
        if stamp is None:
            return week
        age = _utcnow() - _as_utc(stamp)
        return max(week, age + dt.timedelta(days=1))

    def optimize(self) -> None:
        """Compact small files and add new rows to every index (after each batch: no rows sit outside the index)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.table.optimize(cleanup_older_than=self._safe_window())

    def has_vector_index(self) -> bool:
        return any("vector" in ix.columns for ix in self.table.list_indices())

    def unindexed_rows(self) -> int | None:
        """Rows the vector index does not cover yet (None without an index)."""
        for ix in self.table.list_indices():
            if "vector" in ix.columns:
                return int(ix.num_unindexed_rows)
        return None

    def ensure_index(self, force: bool = False, m: int = 20, ef_construction: int = 300) -> bool:
        """Build the ANN index (IVF-HNSW-SQ, cosine) once the table holds ``index_min_rows``, plus a bitmap index on
        ``model_version`` for the filtered search. Returns whether an index was built now."""
        from lancedb.index import Bitmap

        table = self.table
        n = table.count_rows()
        built = False
        if not self.has_vector_index() and n and (force or n >= self.index_min_rows):
            table.create_index("vector", config=_vector_index_config(m, ef_construction))
            built = True
        if n and not any("model_version" in ix.columns for ix in table.list_indices()):
            table.create_index("model_version", config=Bitmap())
        return built

    # --- search ------------------------------------------------------------------------------------------------
    def search(self, vector, k: int = 10, model_version: str | None = None, ef: int = 100,
               exact: bool = False, tag: str | None = None) -> pa.Table:
        """The k nearest rows by cosine among one model version's rows (ANN when indexed, ``exact`` bypasses the
        index), at the latest version or at a tag's: columns key and score, the cosine similarity (computed here:
        the index reports its own distance)."""
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        q = q / (np.linalg.norm(q) or 1.0)
        table = self.table
        if tag is not None:
            table.checkout(tag)
        try:
            query = table.search(q).distance_type("cosine").limit(k).select([self.key, "vector", "_distance"])
            if model_version is not None:
                query = query.where(f"model_version = {_quote(model_version)}", prefilter=True)
            query = query.bypass_vector_index() if exact else query.ef(ef)
            out = query.to_arrow()
        finally:
            if tag is not None:
                table.checkout_latest()
        scores = vectors_of(out) @ q if out.num_rows else np.zeros(0, dtype=np.float32)
        order = np.argsort(-scores, kind="stable")
        return pa.table({self.key: out.column(self.key).take(pa.array(order, pa.int64())),
                         "score": pa.array(scores[order], pa.float32())})

    # --- publish, tags, rollback, cleanup ----------------------------------------------------------------------
    def tags(self) -> list[TagInfo]:
        raw = self.table.tags.list() if self.exists() else {}
        pinned = {name[len(PIN_PREFIX):] for name in raw if name.startswith(PIN_PREFIX)}
        return sorted((TagInfo(name, info["version"], name in pinned or name.startswith(PIN_PREFIX))
                       for name, info in raw.items()), key=lambda t: (t.version, t.name))

    def publish(self, model_version: str, tag: str | None = None) -> str:
        """Tag the current version as a publish of ``model_version``: ``<slug>-<n>`` unless a tag is given."""
        table = self.table
        existing = table.tags.list()
        if tag is None:
            slug = ModelVersion.parse(model_version).slug
            numbers = [int(m.group(1)) for name in existing if (m := re.fullmatch(re.escape(slug) + r"-(\d+)", name))]
            tag = f"{slug}-{max(numbers, default=0) + 1}"
        if not _TAG_OK.match(tag) or tag.startswith(PIN_PREFIX):
            raise ValueError(f"invalid tag {tag!r}: letters, digits, '.', '-', '_' only, not starting with {PIN_PREFIX!r}")
        if tag in existing:
            raise ValueError(f"tag {tag!r} already exists (version {existing[tag]['version']})")
        table.tags.create(tag, table.version)
        return tag

    def published(self, model_version: str | None = None) -> TagInfo | None:
        """The publish tag of the newest version that has one (pins aside), of one model version if given (its
        publishes and rollbacks to them)."""
        slug = ModelVersion.parse(model_version).slug if model_version else None
        tags = [t for t in self.tags() if not t.name.startswith(PIN_PREFIX)
                and (slug is None or tag_slug(t.name) == slug)]
        return tags[-1] if tags else None

    def rollback(self, tag: str) -> int:
        """Make the data of ``tag`` the latest version again: a new version (history is kept), tagged
        ``<tag>.rollback-<version>`` so that status names what is live. Returns the new version."""
        table = self.table
        if tag not in table.tags.list():
            known = ", ".join(t.name for t in self.tags()) or "none"
            raise KeyError(f"no tag {tag!r} (tags: {known})")
        table.restore(tag)
        base = tag.removeprefix(PIN_PREFIX)
        table.tags.create(f"{base.split('.rollback-')[0]}.rollback-{table.version}", table.version)
        return table.version

    def pin(self, tag: str) -> str:
        table = self.table
        tags = table.tags.list()
        if tag not in tags:
            raise KeyError(f"no tag {tag!r}")
        pin = PIN_PREFIX + tag
        if pin not in tags:
            table.tags.create(pin, tags[tag]["version"])
        return pin

    def unpin(self, tag: str) -> None:
        if PIN_PREFIX + tag in self.table.tags.list():
            self.table.tags.delete(PIN_PREFIX + tag)

    def cleanup(self, keep_last: int = 5, grace: dt.timedelta = dt.timedelta(hours=1)) -> CleanupReport:
        """Bounded history: keep the newest ``keep_last`` publish tags of each model version (rollbacks to them
        count as publishes) and every pinned tag with the tag it pins, delete the other tags, then remove every
        version that no kept tag points at and that is older than ``grace`` (the latest always stays)."""
        if keep_last < 1:
            raise ValueError("keep_last must be at least 1 (the published tag of each model version stays)")
        table = self.table
        heal_holds(table)
        before = len(table.list_versions())
        tags = self.tags()
        pinned = {t.name for t in tags if t.pinned}
        groups: dict[str, list[TagInfo]] = {}
        for t in tags:
            if not t.name.startswith(PIN_PREFIX):
                groups.setdefault(tag_slug(t.name) or t.name, []).append(t)
        keep = set(pinned)
        for group in groups.values():
            keep |= {t.name for t in group[-keep_last:]}  # tags() is sorted by version
        deleted = sorted(t.name for t in tags if t.name not in keep)
        for name in deleted:
            table.tags.delete(name)
        prune(table, grace)
        table.checkout_latest()
        versions = [v["version"] for v in table.list_versions()]
        return CleanupReport(deleted, sorted(keep), before, len(versions), versions)

    def status(self) -> dict:
        if not self.exists():
            return {"table": self.table_name, "exists": False}
        table = self.table
        versions = self.rows(columns=["model_version"]).column("model_version")
        counts = pc.value_counts(versions).to_pylist() if len(versions) else []
        published = self.published()
        return {
            "table": self.table_name, "exists": True, "version": table.version, "rows": table.count_rows(),
            "rows_by_model_version": {c["values"]: c["counts"] for c in counts},
            "versions_kept": len(table.list_versions()),
            "published_tag": published.name if published else None,
            "published_version": published.version if published else None,
            "latest_is_published": bool(published and published.version == table.version),
            "vector_index": self.has_vector_index(), "unindexed_rows": self.unindexed_rows(),
            "tags": [(t.name, t.version, t.pinned) for t in self.tags()],
        }


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_utc(stamp: dt.datetime) -> dt.datetime:
    # lancedb reports version timestamps as naive local time
    return stamp.astimezone(dt.UTC) if stamp.tzinfo is None else stamp


# --- incremental embedding ---------------------------------------------------------------------------------------

@dataclass
class EmbedReport:
    model_version: str
    active: int
    embedded: int
    unchanged: int
    deleted: int
    table_version: int | None
    encode_seconds: float
    write_seconds: float
    seconds: float

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _product_rows(products) -> list[dict]:
    import polars as pl

    if isinstance(products, pa.Table):
        products = pl.from_arrow(products)
    if isinstance(products, pl.DataFrame):
        return products.to_dicts()
    return [dict(r) for r in products]


def incremental_embed(products, encoder, store: VectorStore, *, now: dt.datetime | None = None,
                      optimize: bool = True) -> EmbedReport:
    """Embed only the active products whose source text is new or changed (content hash), and delete the vectors
    of products that are gone or no longer active, for the encoder's model version. Then optimize the table and
    build the ANN index once it is large enough. Products: a polars/Arrow frame or dicts with at least ``sku``
    (and ``status``; a row without one counts as active)."""
    t0 = time.perf_counter()
    version = str(encoder.version)
    key = store.key
    latest: dict[str, dict] = {}
    for row in _product_rows(products):
        latest[str(row[key])] = row  # a key listed twice: the last row wins
    active = {k: r for k, r in latest.items() if (r.get("status") or "active") == "active"}
    texts = {k: encoder.text(r) for k, r in active.items()}
    hashes = {k: source_hash(t) for k, t in texts.items()}

    existing = store.rows(version, [key, "source_hash"])
    have = dict(zip(existing.column(key).to_pylist(), existing.column("source_hash").to_pylist()))
    todo = [k for k in active if have.get(k) != hashes[k]]
    gone = [k for k in have if k not in active]

    t1 = time.perf_counter()
    vectors = encoder.encode([texts[k] for k in todo])
    t2 = time.perf_counter()
    if todo:
        store.upsert(vector_rows(todo, vectors, [hashes[k] for k in todo], encoder.version,
                                 now or _utcnow(), key=key))
    deleted = store.delete_keys(version, gone) if gone else 0
    if optimize and (todo or gone):
        store.optimize()
        store.ensure_index()
    t3 = time.perf_counter()
    return EmbedReport(version, len(active), len(todo), len(active) - len(todo), deleted,
                       store.table.version if store.exists() else None, t2 - t1, (t3 - t2) + (t1 - t0), t3 - t0)
