"""Access control: one policy file (``policy.yaml``) of roles × tables × columns, applied by ``lenslake sql`` and the API.

A column's treatment comes from its catalogue class (token / clear PII / plain) and the role's rule, with per-column
overrides. ``sql`` opens DuckDB with only the tables the role may read, each a view that omits denied columns and
masks masked ones (gold tables at their *published* version), then turns off DuckDB's file access so that a query
cannot read files behind the policy's back. Every read of a PII-bearing table (one with token or PII columns) is
appended to the access log, allowed or denied.
"""

from __future__ import annotations

import datetime as dt
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


def _log(settings: Settings, role: str, entry_point: str, reads: list[tuple[str, dict, str]], query: str) -> None:
    """Append one access-log row per PII-bearing table read (allowed or denied)."""
    from lenslake.delta import DeltaStore
    from lenslake.privacy.governance import SQL_ACCESS_LOG

    if not reads:
        return
    now = dt.datetime.now(dt.timezone.utc)
    principal = getpass.getuser()
    digest = hashlib.sha256(query.encode()).hexdigest()
    rows = [{"logged_at": now, "role": role, "principal": principal, "entry_point": entry_point, "table_name": table,
             "columns": ",".join(f"{c}:{t}" for c, t in columns.items() if t != "deny") or None,
             "query_sha256": digest, "log_date": now.date(), "outcome": outcome}
            for table, columns, outcome in reads]
    store = DeltaStore(settings.tables_dir)
    # Not privacy.access_log: that one logs the decrypting accessor's reads of one subject's fields (user_token
    # required); this logs table reads, which name no subject.
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


def sql(settings: Settings, role: str, query: str, *, entry_point: str = "sql") -> pa.Table:
    """Run an analyst query as ``role``: denied tables refused (and the refusal logged when PII-bearing), masked and
    denied columns applied, every PII-bearing table read logged."""
    policy = Policy.load(settings)
    policy.role(role)
    specs = catalogue()
    referenced = _referenced_tables(query)
    unknown = [t for t in referenced if t not in specs]
    if unknown:
        raise AccessDenied(f"unknown table {unknown[0]!r}: name tables as <layer>.<table>, e.g. gold.daily_kpis")
    denied = [t for t in referenced if policy.table(role, t) != "allow"]
    if denied:
        _log(settings, role, entry_point, [(t, {}, "denied") for t in denied if pii_bearing(specs[t])], query)
        raise AccessDenied(f"role {role} may not read {', '.join(denied)}")
    con, exposed = connect(settings, role, referenced)
    missing = [t for t in referenced if t not in exposed]
    if missing:
        raise AccessDenied(f"{missing[0]} has no readable version yet (not written, or nothing published)")
    _log(settings, role, entry_point, [(t, exposed[t], "allowed") for t in referenced if pii_bearing(specs[t])], query)
    try:
        return con.sql(query).to_arrow_table()
    except Exception as e:  # noqa: BLE001  (DuckDB's own errors: a denied column reads as "not found")
        raise AccessDenied(f"query failed for role {role}: {str(e).splitlines()[0]}") from None
    finally:
        con.close()


def read_table(settings: Settings, role: str, table: str, columns: list[str] | None = None) -> pa.Table:
    """The API's read of one table under the policy (same views, same log)."""
    cols = ", ".join(_quote(c) for c in columns) if columns else "*"
    return sql(settings, role, f"SELECT {cols} FROM {table}", entry_point="api")
