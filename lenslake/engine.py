"""The one engine module: everything that cannot be shared between DuckDB (SQLFrame) and Spark.

Transformations elsewhere are written once in the PySpark DataFrame API and receive an ``Engine`` that hands out
the session and its ``F`` (functions) and ``Window`` modules; they never branch on the engine. What lives here:
session start-up, Arrow in and out, reading raw landing lines, extracting JSON fields, reading Delta snapshots.

Both engines see the same raw-line semantics: a line is JSON when DuckDB's ``json_valid`` holds and it is an object
(Spark's parser would accept ``{"a":1} trailing``; DuckDB rejects it). So the split into parseable and malformed
lines is made once, by DuckDB as the lines are read, before either engine parses a field.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from lenslake.settings import Settings, get_settings

_counter = itertools.count()


def read_raw_lines(files: list[tuple[Path, str]], ingest_date=None, settings: Settings | None = None) -> pa.Table:
    """Raw lines of landing files as Arrow: ``line``, ``source_file`` (relative name), ``source_line`` (1-based,
    counting non-empty lines), ``ingest_date`` (given per call), ``is_json`` (a JSON object).

    A file kept encrypted once ingested (``lenslake.privacy.landing``, ``*.enc``; its key ring from ``settings``) is
    authenticated whole in memory, then split by the same DuckDB reader as a clear file, so a rerun of an ingested
    day reads the very lines the first run read."""
    from lenslake.privacy import landing

    con = duckdb.connect()
    parts = []
    try:
        for path, rel in files:
            data = landing.read_bytes(path, settings) if landing.is_encrypted(path) else None
            lines = _read_lines(con, path, data)
            n = lines.num_rows
            zeros = np.zeros(n, dtype=np.int32)
            parts.append(
                lines.append_column("source_file", pa.array([rel], pa.string()).take(zeros))
                .append_column("source_line", pa.array(np.arange(1, n + 1, dtype=np.int64)))
                .append_column("ingest_date", pa.array([ingest_date], pa.date32()).take(zeros))
            )
    finally:
        con.close()
    schema = pa.schema([("line", pa.string()), ("is_json", pa.bool_()), ("source_file", pa.string()),
                        ("source_line", pa.int64()), ("ingest_date", pa.date32())])
    return pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()


# A valid JSON text that starts with '{' is an object.
_IS_JSON = "coalesce(json_valid(line) AND (starts_with(line, '{') OR regexp_matches(line, '^\\s+[{]')), false) AS is_json"


def _read_lines(con, path: Path, data: bytes | None = None) -> pa.Table:
    """One file's non-empty lines in file order, with ``is_json``.

    DuckDB's CSV reader with a delimiter that never occurs in JSON text (0x1F) and no quoting is a fast line
    splitter; results keep the file's order (preserve_insertion_order, DuckDB's default). A file it cannot read
    (invalid UTF-8, a raw 0x1F byte) falls back to a plain split with replacement characters. ``data``: the file's
    bytes already in memory (a decrypted file), read by the same reader through an in-memory file system.
    """
    source, memory = str(path), None
    if data is not None:
        from fsspec.implementations.memory import MemoryFileSystem

        memory = MemoryFileSystem()  # its store is process-wide: a unique name, removed after the read
        if "memory" not in con.list_filesystems():
            con.register_filesystem(memory)
        source = f"memory://lenslake-landing/{os.getpid()}-{next(_counter)}/{Path(path).name}"
        memory.pipe(source, data)
    try:
        return con.sql(
            f"SELECT line, {_IS_JSON} FROM read_csv(?, columns={{'line': 'VARCHAR'}}, delim=chr(31), quote='', escape='',"
            " header=false, auto_detect=false) WHERE line IS NOT NULL AND NOT regexp_matches(line, '^\\s*$')",
            params=[source],
        ).to_arrow_table()
    except duckdb.Error:
        text = (path.read_bytes() if data is None else data).decode("utf-8", errors="replace")
        lines = pa.table({"line": pa.array([x for x in text.split("\n") if x.strip()], pa.string())})
        con.register("fallback_lines", lines)
        try:
            return con.sql(f"SELECT line, {_IS_JSON} FROM fallback_lines").to_arrow_table()
        finally:
            con.unregister("fallback_lines")
    finally:
        if memory is not None:
            memory.rm(source)


class Engine:
    """A session and its function modules, plus the engine-specific I/O."""

    name: str
    session: object
    F: object
    Window: object
    types: object

    def from_arrow(self, table: pa.Table):
        raise NotImplementedError

    def to_arrow(self, df) -> pa.Table:
        raise NotImplementedError

    def checkpoint(self, df):
        """Cut a long lineage where an engine pays for it (SQLFrame re-copies the whole plan on every operation);
        a no-op on Spark, whose optimizer handles deep plans."""
        return df

    def json_fields(self, df, line_col: str, fields: dict[str, str]):
        """Add one string column per (name → JSON path ``$.a`` or ``$.a.b``) holding the value's JSON text (strings
        unquoted; nested values as JSON text; null when absent or JSON null). Only call on lines where is_json."""
        raise NotImplementedError

    def read_delta(self, path: Path, schema: pa.Schema, where: str | None = None, defaults: dict | None = None):
        """A Delta table's current snapshot as a DataFrame with the columns of ``schema`` (empty when the table does
        not exist yet). A declared column the stored table lacks reads null; ``defaults`` (column → value) fills the
        nulls of columns a later schema version added, so old rows read the default."""
        raise NotImplementedError

    def release(self) -> None:
        """Free what the last step registered (DuckDB keeps checkpoints in memory until dropped)."""


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, settings: Settings):
        from sqlframe.duckdb import DuckDBSession, Window
        from sqlframe.duckdb import functions as F
        from sqlframe.duckdb import types

        self.con = duckdb.connect()
        # Closing before interpreter shutdown spares users duckdb's reference-leak report on exit.
        atexit.register(self.con.close)
        self.con.execute("SET TimeZone='UTC'")
        if settings.duckdb_threads:
            self.con.execute(f"SET threads={int(settings.duckdb_threads)}")
        self.session = DuckDBSession(conn=self.con)
        self.F, self.Window, self.types = F, Window, types
        self._objects: list[tuple[str, str]] = []  # (kind, name) created for the current step

    def _view(self, relation_sql: str):
        name = f"v_{next(_counter)}"
        self._objects.append(("VIEW", name))
        # A plain (not TEMP) view: SQLFrame resolves columns of views through the catalog, not of temp objects.
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {relation_sql}")
        return self.session.table(name)

    def from_arrow(self, table: pa.Table):
        name = f"a_{next(_counter)}"
        self.con.register(name, table)
        self._objects.append(("ARROW", name))
        return self._view(f"SELECT * FROM {name}")

    def to_arrow(self, df) -> pa.Table:
        return df.toArrow()

    def checkpoint(self, df):
        name = f"c_{next(_counter)}"
        self._objects.append(("TABLE", name))
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {df.sql(dialect='duckdb', optimize=False, pretty=False)}")
        return self.session.table(name)

    def json_fields(self, df, line_col, fields):
        # One parse per line: json_extract_string with a list of paths returns a list.
        F = self.F
        paths = ", ".join("'" + p.replace("'", "''") + "'" for p in fields.values())
        df = df.withColumn("_j", F.expr(f"json_extract_string({line_col}, [{paths}])"))
        # SQLFrame reads list indexes the Spark way (0-based) and shifts them for DuckDB.
        keep = [F.col(c) for c in df.columns if c != "_j"]
        return df.select(*keep, *[F.expr(f"_j[{i}]").alias(name) for i, name in enumerate(fields)])

    def read_delta(self, path, schema, where=None, defaults=None):
        from deltalake import DeltaTable

        from lenslake.delta import register_in_duckdb

        if not (Path(path) / "_delta_log").exists():
            return self.from_arrow(schema.empty_table())
        table = DeltaTable(str(path))
        stored = set(pa.schema(table.schema().to_arrow()).names)
        name = f"d_{next(_counter)}"
        register_in_duckdb(self.con, name, table.to_pyarrow_dataset())
        self._objects.append(("ARROW", name))
        columns = []
        for f in schema:
            expr = f'"{f.name}"' if f.name in stored else f"CAST(NULL AS {_DUCKDB_TYPES[f.type]})"
            if defaults and f.name in defaults:
                expr = f"COALESCE({expr}, {_sql_literal(defaults[f.name])})"
            columns.append(f'{expr} AS "{f.name}"')
        return self._view(f"SELECT {', '.join(columns)} FROM {name}" + (f" WHERE {where}" if where else ""))

    def release(self):
        for kind, name in reversed(self._objects):
            if kind == "ARROW":
                self.con.unregister(name)
            else:
                self.con.execute(f"DROP {kind} IF EXISTS {name}")
        self._objects.clear()


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, settings: Settings):
        import os
        import shutil

        from pyspark.sql import SparkSession, Window, types
        from pyspark.sql import functions as F

        if not settings.spark_remote and not (os.environ.get("JAVA_HOME") or shutil.which("java")):
            raise RuntimeError(
                "the Spark engine needs Java 17 for a local session: install it (apt-get install openjdk-17-jre-headless), "
                "set LENSLAKE_SPARK_REMOTE to a Spark Connect server, or use the default engine (LENSLAKE_ENGINE=duckdb)"
            )
        builder = SparkSession.builder.appName("lenslake")
        if settings.spark_remote:
            _reachable(settings.spark_remote)
            builder = builder.remote(settings.spark_remote)
        else:
            builder = (
                builder.master(settings.spark_master)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")  # progress bars would fill run logs and the shell
                .config("spark.driver.memory", settings.spark_driver_memory)
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            )
        self.session = (
            builder.config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        # Stopped before interpreter teardown: a JVM gateway torn down mid-shutdown can abort the process.
        atexit.register(self.session.stop)
        self.F, self.Window, self.types = F, Window, types

    def checkpoint(self, df):
        # Materialized once and reused: without it every action re-runs the whole lineage from the files.
        return df.localCheckpoint(eager=True)

    def from_arrow(self, table: pa.Table):
        if table.num_rows == 0:
            return self.session.createDataFrame([], schema=_spark_schema(self.types, table.schema))
        return self.session.createDataFrame(table)

    def to_arrow(self, df) -> pa.Table:
        return df.toArrow()

    def json_fields(self, df, line_col, fields):
        # json_tuple parses each JSON text once, streaming (from_json to a map or get_json_object per field are
        # several times slower); one pass for the top level, one per nested object.
        F = self.F
        top_keys = list(dict.fromkeys(p.split(".")[1] for p in fields.values()))
        nested = sorted({p.split(".")[1] for p in fields.values() if p.count(".") == 2})
        if any(p.count(".") > 2 for p in fields.values()):
            raise ValueError("JSON paths deeper than two levels are not supported")
        keep = [F.col(c) for c in df.columns]
        top_names = [f"_t_{k}" for k in top_keys]
        df = df.select(*keep, F.json_tuple(F.col(line_col), *top_keys).alias(*top_names))
        for parent in nested:
            keys = [p.split(".")[2] for p in fields.values() if p.count(".") == 2 and p.split(".")[1] == parent]
            names = [f"_n_{parent}_{k}" for k in keys]
            df = df.select(*[F.col(c) for c in df.columns], F.json_tuple(F.col(f"_t_{parent}"), *keys).alias(*names))
        out = []
        for name, path in fields.items():
            parts = path.split(".")[1:]
            source = f"_t_{parts[0]}" if len(parts) == 1 else f"_n_{parts[0]}_{parts[1]}"
            out.append(F.col(source).alias(name))
        return df.select(*keep, *out)

    def read_delta(self, path, schema, where=None, defaults=None):
        from deltalake import DeltaTable

        if not (Path(path) / "_delta_log").exists():
            return self.from_arrow(schema.empty_table())
        files = DeltaTable(str(path)).file_uris()
        if not files:
            return self.from_arrow(schema.empty_table())
        # Spark reads the snapshot's parquet files itself; partition values come from the paths (basePath).
        # Columns of the schema missing from older files read null.
        df = self.session.read.option("basePath", str(path)).schema(_spark_schema(self.types, schema)).parquet(*files)
        df = df.where(where) if where else df
        if defaults:
            F = self.F
            df = df.select(*[F.coalesce(F.col(c), F.lit(defaults[c])).alias(c) if c in defaults else F.col(c)
                             for c in schema.names])
        return df


def _reachable(remote: str, timeout: float = 10.0) -> None:
    """Refuse a Spark Connect URL nothing answers at, at once: the client would retry with growing back-offs for
    many minutes (a run against a dead address was still waiting after 15), deaf to SIGTERM meanwhile."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(remote.split(";", 1)[0])
    host, port = url.hostname or "localhost", url.port or 15002
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise RuntimeError(f"cannot reach the Spark Connect server at {host}:{port} ({e.strerror or e}): start it "
                           "(README: Two engines) or unset LENSLAKE_SPARK_REMOTE for a local session") from None


_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.float64(): "DOUBLE",
                 pa.bool_(): "BOOLEAN", pa.date32(): "DATE", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ"}


def _sql_literal(value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _spark_schema(T, schema: pa.Schema):
    mapping = {
        pa.string(): T.StringType(),
        pa.int32(): T.IntegerType(),
        pa.int64(): T.LongType(),
        pa.float64(): T.DoubleType(),
        pa.bool_(): T.BooleanType(),
        pa.date32(): T.DateType(),
    }
    fields = []
    for f in schema:
        t = T.TimestampType() if pa.types.is_timestamp(f.type) else mapping[f.type]
        fields.append(T.StructField(f.name, t, True))
    return T.StructType(fields)


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(settings: Settings | None = None) -> Engine:
    """The engine chosen by settings, created lazily, once per process (SQLFrame's session and Spark's are both
    per-process singletons)."""
    settings = settings or get_settings()
    with _lock:
        if settings.engine not in _engines:
            _engines[settings.engine] = DuckDBEngine(settings) if settings.engine == "duckdb" else SparkEngine(settings)
        return _engines[settings.engine]
