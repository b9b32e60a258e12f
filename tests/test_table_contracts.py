"""Data contracts of the gold tables: one readable file each, versioned so that consumers are never broken silently."""

import datetime as dt
import json
import shutil

import pyarrow as pa
import pytest
import yaml

from lenslake.contracts.table_contracts import (
    CONTRACT_DIR,
    LOCK_FILE,
    ContractError,
    breaking_changes,
    freshness,
    load_contract,
    lock,
    lock_problems,
    read_lock,
    schema_drift,
    table_contract,
    table_contracts,
)
from lenslake.tables import table_spec


def test_every_contract_is_recorded_in_the_lock_as_it_is():
    """The gate: a schema change to a contract fails here until it is recorded, and a breaking one until the major
    version is bumped."""
    state = read_lock()
    assert set(table_contracts()) == {"gold.daily_kpis", "gold.daily_funnel", "gold.catalog_quality"}
    for contract in table_contracts().values():
        assert lock_problems(contract, state) == []


def test_the_catalogue_takes_the_gold_specs_from_their_contracts():
    for contract in table_contracts().values():
        spec = table_spec(contract.table)
        assert spec.column_names == contract.column_names
        assert [f.nullable for f in spec.arrow_schema] == [c.nullable for c in contract.columns]
        assert (spec.owner, spec.partition_by, spec.key) == (contract.owner, contract.partition_by, contract.key)


def _edited(tmp_path, table, edit):
    """A copy of a contract file, edited as a YAML document, loaded back."""
    doc = yaml.safe_load((CONTRACT_DIR / f"{table}.yaml").read_text())
    edit(doc)
    path = tmp_path / f"{table}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_contract(path)


def _drop(name):
    return lambda doc: doc.update(columns=[c for c in doc["columns"] if c["name"] != name])


def test_removing_a_column_without_a_major_bump_is_refused(tmp_path):
    changed = _edited(tmp_path, "gold.daily_kpis", _drop("refunds"))
    [problem] = lock_problems(changed, read_lock())
    assert "column 'refunds' removed" in problem and "bump the major version" in problem
    lock_copy = tmp_path / "lock.json"
    shutil.copy(LOCK_FILE, lock_copy)
    with pytest.raises(ContractError, match="bump the major version"):
        lock({changed.table: changed}, lock_copy)
    assert json.loads(lock_copy.read_text()) == read_lock()  # nothing recorded


def test_a_major_bump_takes_the_breaking_change_once_it_is_recorded(tmp_path):
    def edit(doc):
        _drop("refunds")(doc)
        doc["version"] = "2.0.0"

    changed = _edited(tmp_path, "gold.daily_kpis", edit)
    lock_copy = tmp_path / "lock.json"
    shutil.copy(LOCK_FILE, lock_copy)
    assert "major version 2 is not recorded" in lock_problems(changed, read_lock(lock_copy))[0]
    assert lock({changed.table: changed}, lock_copy) == ["gold.daily_kpis 2.0.0"]
    state = read_lock(lock_copy)
    assert lock_problems(changed, state) == []
    assert "refunds" in [c["name"] for c in state["gold.daily_kpis"]["1"]["columns"]]  # major 1 stays documented


def test_adding_a_column_is_compatible_but_must_still_be_recorded(tmp_path):
    def edit(doc):
        doc["columns"].append({"name": "new_metric", "type": "double", "nullable": True, "description": "a new metric"})
        doc["version"] = "1.1.0"

    changed = _edited(tmp_path, "gold.daily_kpis", edit)
    [problem] = lock_problems(changed, read_lock())
    assert "changed since it was recorded" in problem
    lock_copy = tmp_path / "lock.json"
    shutil.copy(LOCK_FILE, lock_copy)
    assert lock({changed.table: changed}, lock_copy) == ["gold.daily_kpis 1.1.0"]


def test_retyping_or_relaxing_a_column_breaks_consumers():
    old = [{"name": "a", "type": "int32", "nullable": False}, {"name": "b", "type": "string", "nullable": False}]
    assert breaking_changes(old, [{**old[0], "type": "int64"}, old[1]]) == []  # widening is safe
    assert breaking_changes(old, [{**old[0], "type": "string"}, old[1]]) == ["column 'a' changes type int32 → string"]
    assert breaking_changes(old, [old[0], {**old[1], "nullable": True}]) == [
        "column 'b' becomes nullable (consumers rely on it being set)"
    ]


def test_a_contract_that_refers_to_an_undeclared_column_is_rejected_with_its_name(tmp_path):
    with pytest.raises(ContractError, match="does not declare: no_such_column"):
        _edited(tmp_path, "gold.daily_funnel",
                lambda doc: doc["expectations"].append({"expect": "column_values_to_be_unique", "column": "no_such_column"}))
    with pytest.raises(ContractError, match="Extra inputs are not permitted"):
        _edited(tmp_path, "gold.daily_funnel", lambda doc: doc.update(sla="soon"))


def test_schema_drift_names_each_difference():
    contract = table_contract("gold.daily_funnel")
    schema = table_spec("gold.daily_funnel").arrow_schema
    assert schema_drift(contract, schema) == []
    drifted = schema.remove(schema.get_field_index("cart_rate")).append(pa.field("extra", pa.string()))
    drifted = drifted.set(drifted.get_field_index("sessions"), pa.field("sessions", pa.int32(), nullable=False))
    assert schema_drift(contract, drifted) == [
        "sessions: type int32, contract says int64",
        "cart_rate: missing",
        "extra: not in the contract",
    ]


def test_freshness_counts_from_the_end_of_the_newest_day():
    contract = table_contract("gold.daily_kpis")  # 30 hours
    utc = dt.timezone.utc
    day = dt.date(2026, 11, 19)
    assert freshness(contract, day, dt.datetime(2026, 11, 21, 5, tzinfo=utc)).fresh  # 29 h after 11-20 00:00
    late = freshness(contract, day, dt.datetime(2026, 11, 21, 7, tzinfo=utc))
    assert (late.fresh, late.age_hours) == (False, 31.0)
    assert not freshness(contract, None, dt.datetime(2026, 11, 21, tzinfo=utc)).fresh
