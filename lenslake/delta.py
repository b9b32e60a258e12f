"""The Delta table store (delta-rs): every table of the catalogue is written and read through it.

Both engines meet delta-rs over Arrow. Every write is cast to the table's declared schema first, so a DuckDB
DECIMAL sum or a Spark int never changes a table's type. A partition replace states its predicate and the store
asserts that every written row satisfies it, so a bad predicate can never overwrite the whole table.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.tables import TableSpec, table_spec


@dataclass(frozen=True)
class WriteResult:
    table: str
    rows: int
    version: int
    operation: str
    predicate: str | None = None


def scan(dataset, columns: list[str] | None = None, filter=None) -> pa.Table:
    """``dataset.to_table`` with a filter that also works on files delta-rs wrote with ``string_view`` columns
    (its MERGE does): Arrow's pushed-down comparison of such a fragment against a ``string`` literal has no kernel
    ("no kernel matching input types (string, string_view)", deltalake 1.6.6, pyarrow 26). Such a scan reads the
    whole table and filters it in memory, where every column has the table's type."""
    try:
        return dataset.to_table(columns=columns, filter=filter)
    except pa.ArrowNotImplementedError:
        if filter is None:
            raise
    table = dataset.to_table()
    table = table.filter(filter)
    return table.select(columns) if columns is not None else table


def has_view_columns(dataset) -> bool:
    """Whether a data file stores a column as ``string_view``/``binary_view`` (see ``scan``); reads file footers only."""
    return any(pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type)
               for fragment in dataset.get_fragments() for f in fragment.physical_schema)


def register_in_duckdb(con, name: str, dataset) -> None:
    """Register a Delta snapshot's Arrow dataset in DuckDB. DuckDB pushes a query's string filters into the Arrow
    scan, which fails on view-typed files (see ``scan``); for such a dataset the connection stops pushing filters
    down (every row is read and filtered in DuckDB, which is correct on every file)."""
    if has_view_columns(dataset):
        con.execute("SET disabled_optimizers = 'filter_pushdown'")
    con.register(name, dataset)


def _literal(value) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def partition_predicate(values: dict) -> str:
    """SQL predicate for a partition replace. Values: a scalar (=), a list (IN) or a (low, high) range tuple."""
    clauses = []
    for col, v in values.items():
        if isinstance(v, tuple):
            clauses.append(f"{col} >= {_literal(v[0])} AND {col} <= {_literal(v[1])}")
        elif isinstance(v, list):
            clauses.append(f"{col} IN ({', '.join(_literal(x) for x in v)})")
        else:
            clauses.append(f"{col} = {_literal(v)}")
    return " AND ".join(clauses)


def _rows_outside(table: pa.Table, values: dict) -> int:
    mask = None
    for col, v in values.items():
        arr = table.column(col)
        if isinstance(v, tuple):
            m = pc.and_(pc.greater_equal(arr, pa.scalar(v[0], arr.type)), pc.less_equal(arr, pa.scalar(v[1], arr.type)))
        elif isinstance(v, list):
            m = pc.is_in(arr, value_set=pa.array(v, arr.type))
        else:
            m = pc.equal(arr, pa.scalar(v, arr.type))
        mask = m if mask is None else pc.and_(mask, m)
    if mask is None:
        return 0
    return table.num_rows - pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() if table.num_rows else 0


def refused_rows(error: Exception) -> int | None:
    """How many rows delta-rs refused for breaking a CHECK constraint (a lower bound: it stops at the first batch
    holding such rows), or None when ``error`` is something else.

    delta-rs's message previews the refused rows, values and all; callers raise their own message without it, so
    tokens never reach a log or a run's error."""
    m = re.search(r"(\d+) rows failed validation check", str(error))
    return int(m.group(1)) if m else None


def cast_to_spec(spec: TableSpec, table: pa.Table) -> pa.Table:
    """Select the declared columns in order and cast them; absent nullable columns become nulls, or the column's
    default where it declares one."""
    target = spec.arrow_schema
    extra = set(table.column_names) - set(target.names)
    if extra:
        raise ValueError(f"{spec.name}: columns not declared in the table catalogue: {sorted(extra)}")
    arrays = []
    for field in target:
        if field.name in table.column_names:
            arr = table.column(field.name)
            if arr.type != field.type:
                arr = arr.cast(field.type)
        elif field.nullable:
            arr = pa.nulls(table.num_rows, field.type)
        else:
            raise ValueError(f"{spec.name}: required column {field.name!r} is missing")
        if field.name in spec.defaults and arr.null_count:
            arr = pc.fill_null(arr, pa.scalar(spec.defaults[field.name], field.type))
        if not field.nullable and arr.null_count:
            raise ValueError(f"{spec.name}: {arr.null_count} nulls in non-nullable column {field.name!r}")
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=target)


class DeltaStore:
    def __init__(self, tables_dir: Path):
        self.tables_dir = Path(tables_dir)

    def path(self, name: str) -> Path:
        spec = table_spec(name)
        return self.tables_dir / spec.layer / spec.table

    def exists(self, name: str) -> bool:
        return (self.path(name) / "_delta_log").exists()

    def _table(self, name: str):
        from deltalake import DeltaTable

        return DeltaTable(str(self.path(name)))

    def _configuration(self, spec: TableSpec) -> dict:
        # Tokens and free text stay out of min/max statistics in _delta_log (which VACUUM never rewrites).
        config = {"delta.dataSkippingStatsColumns": ",".join(spec.stats_columns)}
        if spec.change_data_feed:  # from the first commit on, so the change feed can be read from version 0
            config["delta.enableChangeDataFeed"] = "true"
        return config

    def _create(self, spec: TableSpec) -> None:
        """An empty table with the declared schema, then its CHECK constraints in one commit, so that the first
        write is checked too (delta-rs refuses ``delta.constraints.*`` in a new table's configuration)."""
        from deltalake import DeltaTable

        table = DeltaTable.create(str(self.path(spec.name)), spec.arrow_schema,
                                  partition_by=list(spec.partition_by) or None, configuration=self._configuration(spec))
        table.alter.add_constraint(dict(spec.constraints))

    def append(self, name: str, data: pa.Table, *, evolve_schema: bool = False,
               app_versions: dict[str, int] | None = None) -> WriteResult:
        """Append in one commit; ``app_versions`` ({app id: version}) are recorded in that same commit as Delta
        application transactions (``txn`` actions: what Spark Structured Streaming writes for idempotent sinks),
        read back with ``app_version``. An empty ``data`` with app versions still commits them."""
        return self._write(name, data, mode="append", replace=None, evolve_schema=evolve_schema,
                           app_versions=app_versions)

    def app_version(self, name: str, app_id: str) -> int | None:
        """The version the table's log last recorded for an application id, or None (no table, or never recorded)."""
        return self.app_versions(name, [app_id])[app_id]

    def app_versions(self, name: str, app_ids) -> dict[str, int | None]:
        """``app_version`` of several application ids, reading the table's log once."""
        if not self.exists(name):
            return {a: None for a in app_ids}
        table = self._table(name)
        return {a: table.transaction_version(a) for a in app_ids}

    def replace_partitions(self, name: str, data: pa.Table, partitions: dict) -> WriteResult:
        """Replace exactly the rows matching ``partitions`` (e.g. ``{"ingest_date": d, "source": "file"}``)."""
        spec = table_spec(name)
        unknown = set(partitions) - set(spec.partition_by)
        if unknown:
            raise ValueError(f"{name}: {sorted(unknown)} are not partition columns of the table")
        return self._write(name, data, mode="overwrite", replace=partitions)

    def overwrite(self, name: str, data: pa.Table) -> WriteResult:
        return self._write(name, data, mode="overwrite", replace=None)

    def _write(self, name, data, *, mode, replace, evolve_schema=False, app_versions=None) -> WriteResult:
        from deltalake import write_deltalake

        spec = table_spec(name)
        data = cast_to_spec(spec, data)
        predicate = None
        if replace is not None:
            predicate = partition_predicate(replace)
            outside = _rows_outside(data, replace)
            if outside:
                raise ValueError(f"{name}: {outside} rows fall outside the replace predicate {predicate!r}")
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        kwargs = {}
        if not self.exists(name):
            if spec.constraints:
                self._create(spec)
            else:
                kwargs["configuration"] = self._configuration(spec)
        if evolve_schema or self._declares_new_columns(spec):
            kwargs["schema_mode"] = "merge"
        if app_versions:
            from deltalake import CommitProperties, Transaction

            kwargs["commit_properties"] = CommitProperties(
                app_transactions=[Transaction(app_id, int(v)) for app_id, v in sorted(app_versions.items())])
        try:
            write_deltalake(
                str(path), data, mode=mode, partition_by=list(spec.partition_by) or None, predicate=predicate, **kwargs
            )
        except Exception as e:
            if (refused := refused_rows(e)) is None:
                raise
            raise ValueError(f"{name}: rows break the table's CHECK constraints ({refused} in the first batch "
                             "delta-rs checked); nothing was written") from None
        return WriteResult(name, data.num_rows, self.version(name), "replace" if predicate else mode, predicate)

    def merge(self, name: str, data: pa.Table, *, on: tuple[str, ...] | None = None, update: bool = True) -> WriteResult:
        """Upsert by the table's key: matched rows are updated (when ``update``), new rows inserted, in one commit."""
        spec = table_spec(name)
        data = cast_to_spec(spec, data)
        keys = on or spec.key
        if not self.exists(name):
            return self._write(name, data, mode="append", replace=None)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        merger = self._table(name).merge(data, predicate=predicate, source_alias="s", target_alias="t",
                                         merge_schema=self._declares_new_columns(spec))
        if update:
            merger = merger.when_matched_update_all()
        try:
            merger.when_not_matched_insert_all().execute()
        except Exception as e:
            if (refused := refused_rows(e)) is None:
                raise
            raise ValueError(f"{name}: rows break the table's CHECK constraints ({refused} in the first batch "
                             "delta-rs checked); nothing was merged") from None
        return WriteResult(name, data.num_rows, self.version(name), "merge", predicate)

    def schema(self, name: str) -> pa.Schema:
        """The table's schema as stored (the declared one may be ahead until the next write)."""
        return pa.schema(self._table(name).schema().to_arrow())

    def columns(self, name: str) -> list[str]:
        return list(self.schema(name).names) if self.exists(name) else []

    def _declares_new_columns(self, spec: TableSpec) -> bool:
        """The catalogue declares columns the stored table lacks: a registered schema version added a field. The
        write then evolves the table's schema (old files are not rewritten; their rows read null, or the default)."""
        stored = self.columns(spec.name)
        return bool(stored) and bool(set(spec.column_names) - set(stored))

    def read(self, name: str, columns: list[str] | None = None, filter=None) -> pa.Table:
        """The current snapshot as Arrow (empty with the declared schema when the table does not exist). Columns
        declared after a row was written read the column's default, or null."""
        spec = table_spec(name)
        if not self.exists(name):
            schema = spec.arrow_schema
            return schema.empty_table().select(columns) if columns else schema.empty_table()
        stored = set(self.columns(name))
        wanted = columns or spec.column_names + sorted(stored - set(spec.column_names))
        table = scan(self._table(name).to_pyarrow_dataset(), [c for c in wanted if c in stored], filter)
        types = {f.name: f.type for f in spec.arrow_schema}
        for i, column in enumerate(wanted):
            if column not in stored:
                if column not in types:
                    raise KeyError(f"{name} has no column {column!r}")
                table = table.add_column(i, column, pa.nulls(table.num_rows, types[column]))
            if column in spec.defaults and table.column(column).null_count:
                filled = pc.fill_null(table.column(column), pa.scalar(spec.defaults[column], types[column]))
                table = table.set_column(i, column, filled)
        return table

    def count(self, name: str, partitions: dict | None = None) -> int:
        """Rows in the current snapshot (optionally of some partition values: ``{"ingest_date": [d1, d2]}``),
        from the log's per-file record counts: no data file is read."""
        if not self.exists(name):
            return 0
        actions = pa.table(self._table(name).get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return 0
        for column, values in (partitions or {}).items():
            col = actions.column(f"partition.{column}")
            actions = actions.filter(pc.is_in(col, value_set=pa.array(values if isinstance(values, list) else [values], col.type)))
        return int(pc.sum(actions.column("num_records")).as_py() or 0)

    def version(self, name: str) -> int:
        return self._table(name).version() if self.exists(name) else -1

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        return self._table(name).history(limit) if self.exists(name) else []
