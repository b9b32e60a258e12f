"""Access control: one policy file (``policy.yaml``) of roles × tables × columns, applied by ``lenslake sql`` and the API.

A column's treatment comes from its catalogue class (token / clear PII / plain) and the role's rule, with per-column
overrides. ``sql`` opens DuckDB with only the tables the role may read, each a view that omits denied columns and
masks masked ones (gold tables at their *published* version), then turns off DuckDB's file access so that a query
cannot read files behind the policy's back. Every read of a PII-bearing table (one with token or PII columns) is
appended to the access log, allowed or denied.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import fnmatch
import getpass
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from lenslake.settings import Settings
from lenslake.tables import TableSpec, catalogue

TREATMENTS = ("allow", "mask", "deny")
MASK = "***"


class AccessDenied(Exception):
    """A read the policy refuses; the message is one line for a person."""


class UnknownTable(AccessDenied):
    """The name is no table of the catalogue (the API answers 404)."""


class TableDenied(AccessDenied):
    """The role may not read the table (403)."""


class NotReadable(AccessDenied):
    """The table has no readable version yet: not written, or nothing published (404)."""


class BadRead(AccessDenied):
    """A read request the policy allows but that cannot be answered as asked (unknown column, bad value: 400)."""


@dataclass(frozen=True)
class Policy:
    roles: dict

    @classmethod
    def load(cls, settings: Settings | None = None) -> "Policy":
        import yaml

        path = (settings.access_policy_file if settings and settings.access_policy_file
                else Path(__file__).with_name("policy.yaml"))
        doc = yaml.safe_load(Path(path).read_text())
        overrides = doc.get("column_overrides") or {}
        roles = {name: {**rule, "overrides": overrides.get(name) or {}} for name, rule in doc["roles"].items()}
        for name, rule in roles.items():
            for value in [*rule["tables"].values(), *rule["columns"].values(), *rule["overrides"].values()]:
                if value not in TREATMENTS:
                    raise ValueError(f"policy: role {name}: {value!r} is not one of {', '.join(TREATMENTS)}")
        return cls(roles)

    def role(self, role: str) -> dict:
        if role not in self.roles:
            raise AccessDenied(f"unknown role {role!r}: the roles are {', '.join(sorted(self.roles))}")
        return self.roles[role]

    def table(self, role: str, table: str) -> str:
        rules = self.role(role)["tables"]
        matching = [p for p in rules if fnmatch.fnmatchcase(table, p)]
        return rules[max(matching, key=len)] if matching else "deny"

    def column(self, role: str, spec: TableSpec, column: str) -> str:
        rule = self.role(role)
        if f"{spec.name}.{column}" in rule["overrides"]:
            return rule["overrides"][f"{spec.name}.{column}"]
        col = next(c for c in spec.columns if c.name == column)
        if col.token:
            return rule["columns"].get("token", "deny")
        if col.pii or col.free_text:
            return rule["columns"].get("pii", "deny")
        return "allow"

    def columns(self, role: str, spec: TableSpec) -> dict[str, str]:
        return {c.name: self.column(role, spec, c.name) for c in spec.columns}


def pii_bearing(spec: TableSpec) -> bool:
    return bool(spec.sensitive_columns)


def _referenced_tables(query: str) -> list[str]:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse(query, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise AccessDenied(f"cannot parse the query: {str(e).splitlines()[0]}") from None
    names = set()
    for statement in tree:
        if statement is None:
            continue
        if not isinstance(statement, (exp.Select, exp.Union, exp.Subquery, exp.With)) and statement.key not in (
                "select", "union", "with"):
            raise AccessDenied("only SELECT queries are allowed")
        ctes = {c.alias for c in statement.find_all(exp.CTE)}
        for t in statement.find_all(exp.Table):
            if t.name in ctes and not t.db:
                continue
            names.add(f"{t.db}.{t.name}" if t.db else t.name)
    return sorted(names)


def _log(settings: Settings, role: str, entry_point: str, reads: list[tuple[str, dict, str]], query: str,
         principal: str | None = None) -> None:
    """Append one access-log row per PII-bearing table read (allowed or denied)."""
    from lenslake.delta import DeltaStore
    from lenslake.privacy.governance import SQL_ACCESS_LOG

    if not reads:
        return
    now = dt.datetime.now(dt.timezone.utc)
    principal = principal or getpass.getuser()
    digest = hashlib.sha256(query.encode()).hexdigest()
    rows = [{"logged_at": now, "role": role, "principal": principal, "entry_point": entry_point, "table_name": table,
             "columns": ",".join(f"{c}:{t}" for c, t in columns.items() if t != "deny") or None,
             "query_sha256": digest, "log_date": now.date(), "outcome": outcome}
            for table, columns, outcome in reads]
    store = DeltaStore(settings.tables_dir)
    # Not privacy.access_log: that one logs the decrypting accessor's reads of one subject's fields (user_token
    # required); this logs table reads, which name no subject.
    # One appender at a time (the API's threads, `lenslake sql` processes): concurrent appends to one Delta table run
    # out of delta-rs's commit retries ("Failed to commit transaction: 15", seen with 24 concurrent API reads).
    lock = settings.tables_dir / "_locks" / f"{SQL_ACCESS_LOG}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        store.append(SQL_ACCESS_LOG, pa.Table.from_pylist(rows))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(settings: Settings, role: str, tables: list[str] | None = None):
    """A DuckDB connection holding, as views, the tables the role may read (only ``tables`` when given)."""
    import duckdb
    from deltalake import DeltaTable

    from lenslake import publish
    from lenslake.delta import DeltaStore, register_in_duckdb

    policy = Policy.load(settings)
    policy.role(role)
    store = DeltaStore(settings.tables_dir)
    con = duckdb.connect()
    exposed = {}
    for name, spec in catalogue().items():
        if (tables is not None and name not in tables) or policy.table(role, name) != "allow" or not store.exists(name):
            continue
        if name in publish.published_tables():
            if publish.published_version(store, name) is None:
                continue
            dataset = publish.published_dataset(store, name)
        else:
            dataset = DeltaTable(str(store.path(name))).to_pyarrow_dataset()
        columns = policy.columns(role, spec)
        stored = set(dataset.schema.names)
        select = []
        for c, treatment in columns.items():
            if c not in stored or treatment == "deny":
                continue
            select.append(_quote(c) if treatment == "allow"
                          else f"CASE WHEN {_quote(c)} IS NULL THEN NULL ELSE '{MASK}' END AS {_quote(c)}")
        hidden = f"_src_{spec.layer}_{spec.table}"
        register_in_duckdb(con, hidden, dataset)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.layer}")
        con.execute(f"CREATE OR REPLACE VIEW {spec.layer}.{spec.table} AS SELECT {', '.join(select)} FROM {hidden}")
        exposed[name] = columns
    con.execute("SET enable_external_access = false")  # no read_parquet('…') around the policy
    con.execute("SET lock_configuration = true")
    return con, exposed


def open_tables(settings: Settings, role: str, tables: list[str], *, entry_point: str, query: str,
                principal: str | None = None):
    """The one gate of every entry point (``lenslake sql``, the API): unknown tables and denied tables refused (a
    denied PII-bearing table logged), then ``connect`` with only ``tables``, and every PII-bearing read logged.
    Returns ``connect``'s (connection, exposed); the caller closes the connection."""
    policy = Policy.load(settings)
    policy.role(role)
    specs = catalogue()
    unknown = [t for t in tables if t not in specs]
    if unknown:
        raise UnknownTable(f"unknown table {unknown[0]!r}: name tables as <layer>.<table>, e.g. gold.daily_kpis")
    denied = [t for t in tables if policy.table(role, t) != "allow"]
    if denied:
        _log(settings, role, entry_point, [(t, {}, "denied") for t in denied if pii_bearing(specs[t])], query,
             principal)
        raise TableDenied(f"role {role} may not read {', '.join(denied)}")
    con, exposed = connect(settings, role, tables)
    missing = [t for t in tables if t not in exposed]
    if missing:
        con.close()
        raise NotReadable(f"{missing[0]} has no readable version yet (not written, or nothing published)")
    _log(settings, role, entry_point, [(t, exposed[t], "allowed") for t in tables if pii_bearing(specs[t])], query,
         principal)
    return con, exposed


def sql(settings: Settings, role: str, query: str, *, entry_point: str = "sql") -> pa.Table:
    """Run an analyst query as ``role``: denied tables refused (and the refusal logged when PII-bearing), masked and
    denied columns applied, every PII-bearing table read logged."""
    con, _ = open_tables(settings, role, _referenced_tables(query), entry_point=entry_point, query=query)
    try:
        return con.sql(query).to_arrow_table()
    except Exception as e:  # noqa: BLE001  (DuckDB's own errors: a denied column reads as "not found")
        raise AccessDenied(f"query failed for role {role}: {str(e).splitlines()[0]}") from None
    finally:
        con.close()


FILTERABLE = ("VARCHAR", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DATE",
              "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")


def read_rows(settings: Settings, role: str, table: str, *, filters=None, limit: int = 100,
              offset: int = 0, entry_point: str = "api", principal: str | None = None) -> tuple[pa.Table, dict]:
    """One table's rows as ``role`` sees them (the API's read): the same gate and views as ``sql`` (``open_tables``),
    rows where each column of ``filters`` (a dict, or (column, value) pairs) equals its value (a string, cast to the
    column's type), ``limit`` rows from ``offset`` in key order. Filters name readable columns only; a masked column
    cannot be filtered on (its values are all '***'). Returns the rows and the columns exposed with their treatment."""
    pairs = list((filters or {}).items()) if isinstance(filters, dict) or filters is None else list(filters)
    query = f"read {table} where {sorted(pairs)} limit {limit} offset {offset}"
    con, exposed = open_tables(settings, role, [table], entry_point=entry_point, query=query, principal=principal)
    try:
        layer, name = table.split(".", 1)
        view = f"{layer}.{name}"
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())
        where, params = [], []
        for column, value in pairs:
            if column not in types:
                raise BadRead(f"{table} has no column {column[:60]!r} readable by role {role}")
            if exposed[table].get(column) == "mask":
                raise BadRead(f"{table}.{column} is masked for role {role}: it cannot be filtered on")
            if types[column] not in FILTERABLE and not types[column].startswith("DECIMAL("):
                raise BadRead(f"{table}.{column} ({types[column]}) cannot be filtered on")
            if con.execute(f"SELECT TRY_CAST(? AS {types[column]}) IS NULL", [value]).fetchall()[0][0]:
                raise BadRead(f"{table}.{column}: {value[:40]!r} is not a {types[column].lower()}")
            if sum(c == column for c, _ in pairs) > 1:
                raise BadRead(f"{table}.{column} is filtered on twice")
            where.append(f"{_quote(column)} = CAST(? AS {types[column]})")
            params.append(value)
        key = [c for c in catalogue()[table].key if c in types and exposed[table].get(c) == "allow"]
        statement = (f"SELECT * FROM {view}" + (f" WHERE {' AND '.join(where)}" if where else "")
                     + (f" ORDER BY {', '.join(_quote(c) for c in key)}" if key else "")
                     + f" LIMIT {int(limit)} OFFSET {int(offset)}")
        rows = con.sql(statement, params=params).to_arrow_table()
    finally:
        con.close()
    return rows, {c: t for c, t in exposed[table].items() if t != "deny" and c in types}
