"""Data contracts of the tables services and analysts read: one readable YAML file per table.

A contract (``lenslake/contracts/tables/<table>.yaml``) states the owner, the schema with the meaning of every
column, the freshness SLA and the quality expectations. It is the single source of those facts: the table
catalogue builds the table's spec from it, the GX suite is built from its expectations, and the asset checks
enforce its schema and freshness.

Consumers are protected by versioning: ``lock.json`` records the schema of every major version. A change that
would break a consumer (a column removed or retyped, a non-null column made nullable) is refused unless the
contract's major version is bumped; any change must be recorded with ``lenslake contract lock``, so that a schema
change is always a reviewed diff of that file.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONTRACT_DIR = Path(__file__).parent / "tables"
LOCK_FILE = CONTRACT_DIR / "lock.json"

ColumnType = Literal["string", "int32", "int64", "double", "bool", "date", "timestamp"]
# Type changes a reader of the old schema still reads correctly.
SAFE_WIDENINGS = {("int32", "int64")}


class ContractColumn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: ColumnType
    nullable: bool = True
    description: str = Field(min_length=3)


class Freshness(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    max_age_hours: float = Field(gt=0)


class TableContract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(pattern=r"^[a-z]+\.[a-z0-9_]+$")
    version: str = Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    owner: str
    description: str
    consumers: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    freshness: Freshness
    columns: tuple[ContractColumn, ...]
    constraints: dict[str, str] = Field(default_factory=dict)  # name → SQL CHECK expression, enforced by Delta
    expectations: tuple[dict[str, Any], ...] = ()

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def schema_record(self) -> list[dict]:
        """What consumers depend on: names, types and nullability, in order."""
        return [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in self.columns]

    @model_validator(mode="after")
    def _columns_referenced_exist(self):
        names = set(self.column_names)
        if len(names) != len(self.columns):
            raise ValueError("column names must be unique")
        referenced = [*self.partition_by, *self.key, self.freshness.column]
        for e in self.expectations:
            if "expect" not in e:
                raise ValueError(f"expectation {e} has no 'expect' name")
            referenced += [e[k] for k in ("column", "column_A", "column_B") if k in e] + list(e.get("column_list", []))
        missing = sorted(set(referenced) - names)
        if missing:
            raise ValueError(f"refers to columns it does not declare: {', '.join(missing)}")
        return self


class ContractError(ValueError):
    """A contract file is invalid, or a change to it would break consumers."""


def load_contract(path: Path) -> TableContract:
    try:
        return TableContract.model_validate(yaml.safe_load(path.read_text()))
    except (ValidationError, yaml.YAMLError) as e:
        raise ContractError(f"{path.name}: {e}") from None


@functools.cache
def _load_all(directory: Path) -> dict[str, TableContract]:
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        c = load_contract(path)
        if path.stem != c.table:
            raise ContractError(f"{path.name} declares table {c.table!r}: the file must be named {c.table}.yaml")
        out[c.table] = c
    return out


def table_contracts(directory: Path = CONTRACT_DIR) -> dict[str, TableContract]:
    return _load_all(directory)


def table_contract(table: str) -> TableContract:
    try:
        return table_contracts()[table]
    except KeyError:
        raise KeyError(f"table {table!r} has no contract in {CONTRACT_DIR}") from None


# --- consumers' compatibility ----------------------------------------------------------------------------------


def breaking_changes(old: list[dict], new: list[dict]) -> list[str]:
    """Why a reader of schema ``old`` would break on schema ``new`` (empty: compatible; added columns are fine)."""
    problems = []
    now = {c["name"]: c for c in new}
    for c in old:
        n = now.get(c["name"])
        if n is None:
            problems.append(f"column {c['name']!r} removed")
            continue
        if n["type"] != c["type"] and (c["type"], n["type"]) not in SAFE_WIDENINGS:
            problems.append(f"column {c['name']!r} changes type {c['type']} → {n['type']}")
        if n["nullable"] and not c["nullable"]:
            problems.append(f"column {c['name']!r} becomes nullable (consumers rely on it being set)")
    return problems


def read_lock(path: Path = LOCK_FILE) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def lock_problems(contract: TableContract, lock: dict) -> list[str]:
    """Why the contract disagrees with the recorded schemas (empty: it is recorded as it is)."""
    majors = lock.get(contract.table, {})
    locked = majors.get(str(contract.major))
    if locked is None:
        earlier = [int(m) for m in majors if int(m) < contract.major]
        if majors and not earlier:
            return [f"{contract.table}: version {contract.version} is below the recorded major {max(map(int, majors))}"]
        return [f"{contract.table}: major version {contract.major} is not recorded: run `lenslake contract lock`"]
    breaks = breaking_changes(locked["columns"], contract.schema_record())
    if breaks:
        return [f"{contract.table} {contract.version} breaks consumers of major {contract.major} "
                f"({'; '.join(breaks)}): bump the major version"]
    if locked["columns"] != contract.schema_record() or locked["version"] != contract.version:
        return [f"{contract.table}: the contract changed since it was recorded: run `lenslake contract lock`"]
    return []


def lock(contracts: dict[str, TableContract] | None = None, path: Path = LOCK_FILE) -> list[str]:
    """Record every contract's schema under its major version; refuse a breaking change within a major.

    Returns what changed. A new major keeps the earlier majors' records, so their consumers stay documented.
    """
    contracts = contracts if contracts is not None else table_contracts()
    state = read_lock(path)
    changed = []
    for c in contracts.values():
        majors = state.setdefault(c.table, {})
        locked = majors.get(str(c.major))
        if locked is not None:
            breaks = breaking_changes(locked["columns"], c.schema_record())
            if breaks:
                raise ContractError(f"{c.table} {c.version} breaks consumers of major {c.major} "
                                    f"({'; '.join(breaks)}): bump the major version")
        record = {"version": c.version, "columns": c.schema_record()}
        if locked != record:
            majors[str(c.major)] = record
            changed.append(f"{c.table} {c.version}")
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return changed


# --- enforcement on the data -----------------------------------------------------------------------------------


def schema_drift(contract: TableContract, schema) -> list[str]:
    """Differences between the contract and a table's actual Arrow schema (empty: they agree)."""
    from lenslake.tables import ARROW_TYPES

    problems = []
    actual = {f.name: f for f in schema}
    for c in contract.columns:
        f = actual.get(c.name)
        if f is None:
            problems.append(f"{c.name}: missing")
            continue
        if f.type != ARROW_TYPES[c.type]:
            problems.append(f"{c.name}: type {f.type}, contract says {c.type}")
        if f.nullable != c.nullable:
            problems.append(f"{c.name}: nullable={f.nullable}, contract says {c.nullable}")
    problems += [f"{name}: not in the contract" for name in actual if name not in set(contract.column_names)]
    return problems


@dataclass(frozen=True)
class FreshnessResult:
    fresh: bool
    newest: dt.date | None
    age_hours: float | None  # hours since the end of the newest day
    max_age_hours: float


def freshness(contract: TableContract, newest: dt.date | None, now: dt.datetime) -> FreshnessResult:
    """Is the newest day in the table recent enough? A day's data is complete at the following midnight UTC."""
    limit = contract.freshness.max_age_hours
    if newest is None:
        return FreshnessResult(False, None, None, limit)
    end = dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    age = (now - end).total_seconds() / 3600
    return FreshnessResult(age <= limit, newest, round(age, 1), limit)


def gx_expectations(contract: TableContract) -> list:
    """The contract's quality expectations as GX 1.x expectation objects (``expect: column_values_to_be_unique``
    → ``ExpectColumnValuesToBeUnique``)."""
    import great_expectations.expectations as gxe

    out = []
    for e in contract.expectations:
        kwargs = {k: v for k, v in e.items() if k != "expect"}
        cls_name = "Expect" + "".join(p.capitalize() for p in re.split(r"_", e["expect"]))
        cls = getattr(gxe, cls_name, None)
        if cls is None:
            raise ContractError(f"{contract.table}: unknown expectation {e['expect']!r}")
        out.append(cls(**kwargs))
    return out
