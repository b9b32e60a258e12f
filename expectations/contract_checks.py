"""Asset checks that enforce a table's data contract on the table as written: its schema and its freshness.

The contract's quality expectations run as the table's GX suite (expectations/suites.py builds it from the
contract); these two checks cover what a suite on rows cannot: the Delta table's own schema (a drifted schema is
never published: blocking) and how recent its newest day is (a stale table is still served: a warning).
"""

from __future__ import annotations

import dagster as dg
import pyarrow.compute as pc

from lenslake.contracts.table_contracts import freshness, schema_drift, table_contract
from lenslake.delta import DeltaStore
from lenslake.settings import Settings


def _key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def contract_check_specs(table: str) -> list[dg.AssetCheckSpec]:
    c = table_contract(table)
    short = table.split(".")[1]
    return [
        dg.AssetCheckSpec(f"{short}_contract_schema", asset=_key(table), blocking=True,
                          description=f"the Delta table's schema is the one its contract v{c.version} declares"),
        dg.AssetCheckSpec(f"{short}_freshness", asset=_key(table), blocking=False,
                          description=f"the newest {c.freshness.column} ended at most {c.freshness.max_age_hours:g} h ago"),
    ]


def contract_check_results(table: str, store: DeltaStore, settings: Settings) -> list[dg.AssetCheckResult]:
    c = table_contract(table)
    schema_spec, fresh_spec = contract_check_specs(table)
    if store.exists(table):
        drift = schema_drift(c, store.schema(table))
        column = store.read(table, columns=[c.freshness.column]).column(0)
        newest = pc.max(column).as_py() if len(column) else None
    else:
        drift, newest = ["the table does not exist"], None
    schema_result = dg.AssetCheckResult(
        check_name=schema_spec.name, asset_key=_key(table), passed=not drift,
        metadata={"contract_version": c.version, "differences": "; ".join(drift) or "none"},
    )
    f = freshness(c, newest, settings.now())
    fresh_result = dg.AssetCheckResult(
        check_name=fresh_spec.name, asset_key=_key(table), passed=f.fresh, severity=dg.AssetCheckSeverity.WARN,
        metadata={"newest": str(f.newest), "age_hours": f.age_hours if f.age_hours is not None else -1.0,
                  "max_age_hours": f.max_age_hours, "as_of": settings.now().isoformat()},
    )
    return [schema_result, fresh_result]
