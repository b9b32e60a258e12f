"""Access control: the whole role × table matrix through `lenslake sql`'s engine, the log, and the command."""

import os
import subprocess
import sys

import pytest

from lenslake.delta import DeltaStore
from lenslake.privacy.access import MASK, AccessDenied, Policy, sql
from lenslake.settings import get_settings
from lenslake.tables import catalogue

ROLES = ("analyst", "data_engineer", "privacy_officer", "service")
# What each role may read, by layer (the policy file's intent, restated independently).
READS = {
    "analyst": lambda t: t.startswith(("gold.", "catalog.")) or t in ("silver.sessions", "silver.events"),
    "data_engineer": lambda t: not t.startswith(("privacy.", "profiles.")),
    "privacy_officer": lambda t: True,
    "service": lambda t: t.startswith(("gold.", "catalog.")),
}
CLASS = {"analyst": ("mask", "deny"), "data_engineer": ("allow", "mask"), "privacy_officer": ("allow", "allow"),
         "service": ("deny", "deny")}


@pytest.fixture(scope="module")
def lake(policy_lake):
    return policy_lake  # conftest: events through bronze, silver and published gold, plus the catalog


def test_the_policy_decides_every_role_and_table():
    policy = Policy.load(get_settings())
    for role in ROLES:
        for name, spec in catalogue().items():
            assert (policy.table(role, name) == "allow") == READS[role](name), (role, name)
            token_rule, pii_rule = CLASS[role]
            for c in spec.columns:
                expected = token_rule if c.token else pii_rule if (c.pii or c.free_text) else "allow"
                if role == "analyst" and name == "silver.events" and c.name == "ip_prefix":
                    expected = "deny"  # column override
                assert policy.column(role, spec, c.name) == expected, (role, name, c.name)


def test_every_role_reads_exactly_what_the_policy_allows(lake):
    store = DeltaStore(lake.tables_dir)
    written = [n for n in catalogue() if store.exists(n)]
    assert {"bronze.events", "bronze.events_quarantine", "silver.events", "gold.daily_kpis", "catalog.products",
            "catalog.prices"} <= set(written)
    policy = Policy.load(lake)
    for role in ROLES:
        for name in written:
            spec = catalogue()[name]
            if not READS[role](name):
                with pytest.raises(AccessDenied, match=f"role {role} may not read {name}"):
                    sql(lake, role, f"SELECT * FROM {name}")
                continue
            result = sql(lake, role, f"SELECT * FROM {name}")
            rules = policy.columns(role, spec)
            assert set(result.column_names) == {c for c, t in rules.items() if t != "deny"}, (role, name)
            for c, t in rules.items():
                if t == "mask":
                    assert set(result.column(c).drop_null().to_pylist()) <= {MASK}, (role, name, c)
                if t == "allow" and c in spec.token_columns and result.num_rows:
                    assert any(v and v != MASK for v in result.column(c).to_pylist()) or \
                        result.column(c).null_count == result.num_rows, (role, name, c)


def test_pii_bearing_reads_are_logged_and_plain_ones_are_not(lake):
    store = DeltaStore(lake.tables_dir)
    log = "privacy.sql_access_log"

    def entries():
        return store.count(log) if store.exists(log) else 0

    n = entries()
    sql(lake, "analyst", "SELECT count(*) FROM gold.daily_kpis")
    assert entries() == n
    sql(lake, "analyst", "SELECT count(*) FROM silver.events e JOIN silver.sessions s USING (session_id)")
    assert entries() == n + 2
    with pytest.raises(AccessDenied):
        sql(lake, "service", "SELECT * FROM bronze.events")
    assert entries() == n + 3


def test_a_query_cannot_read_files_around_the_policy(lake):
    path = DeltaStore(lake.tables_dir).path("bronze.events")
    with pytest.raises(AccessDenied):
        sql(lake, "analyst", f"SELECT * FROM read_parquet('{path}/**/*.parquet')")


def test_lenslake_sql_refuses_a_denied_table_with_one_clear_line(lake):
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(lake.data_root)}
    denied = subprocess.run([sys.executable, "-m", "lenslake.cli", "sql", "--role", "analyst",
                             "SELECT * FROM bronze.events"], capture_output=True, text=True, env=env, timeout=60)
    assert denied.returncode == 2
    assert denied.stderr.strip() == "error: role analyst may not read bronze.events"
    assert "Traceback" not in denied.stderr + denied.stdout
    ok = subprocess.run([sys.executable, "-m", "lenslake.cli", "sql", "--role", "analyst",
                         "SELECT user_token FROM silver.events LIMIT 1"], capture_output=True, text=True, env=env,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert MASK in ok.stdout and "t1_" not in ok.stdout
