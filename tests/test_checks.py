"""Great Expectations checks: failures and errors told apart, no sensitive values copied, gates that block."""

import json

import pandas as pd

from expectations.runner import run_suite


def test_a_failed_expectation_reports_statistics_and_an_errored_one_is_not_called_bad_data():
    import great_expectations.expectations as gxe

    frame = pd.DataFrame({"quantity": [1, 2, None], "sku": ["OF000001", "OF000002", "OF000003"]})
    outcome = run_suite("t", [
        gxe.ExpectColumnValuesToNotBeNull(column="quantity"),
        gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=r"^OF\d{6}$"),
        gxe.ExpectColumnValuesToBeBetween(column="no_such_column", min_value=0),
    ], frame, sensitive_columns=set())
    assert not outcome.passed and outcome.evaluated == 3
    assert outcome.failed == ["expect_column_values_to_not_be_null(quantity)"]
    assert outcome.statistics["expect_column_values_to_not_be_null(quantity)"]["unexpected_count"] == 1
    assert len(outcome.errored) == 1 and "no_such_column" in outcome.errored[0]


def test_expectations_on_sensitive_columns_copy_no_values_into_results():
    import great_expectations.expectations as gxe

    frame = pd.DataFrame({"email_token": ["t1_" + "a" * 32, "secret@example.com"]})
    outcome = run_suite("t", [gxe.ExpectColumnValuesToMatchRegex(column="email_token", regex=r"^t1_")], frame,
                        sensitive_columns={"email_token"})
    assert outcome.failed == ["expect_column_values_to_match_regex(email_token)"]
    assert "secret@example.com" not in json.dumps(outcome.__dict__)


def test_a_failed_blocking_check_stops_promotion_to_the_next_layer(settings, monkeypatch):
    import great_expectations.expectations as gxe

    from expectations import suites
    from lenslake.delta import DeltaStore
    from orchestration.runner import dagster_instance, run_events_job
    from tests.conftest import make_event
    from tests.test_silver_gold import land

    land(settings, "2026-11-16", [make_event("page_view"), make_event("product_view")])
    monkeypatch.setitem(suites.SUITES, "bronze.events",
                        lambda: [gxe.ExpectTableRowCountToBeBetween(min_value=1000)])  # fails: 2 rows
    result = run_events_job(settings, instance=dagster_instance(settings))
    assert not result.success
    store = DeltaStore(settings.tables_dir)
    assert store.read("bronze.events").num_rows == 2
    assert not store.exists("silver.events") and not store.exists("gold.daily_kpis")


def test_checks_beside_the_writes_validate_the_rows_handed_over_and_an_empty_table_for_the_rest(monkeypatch):
    import great_expectations.expectations as gxe
    import pyarrow as pa

    from expectations import suites
    from expectations.factory import ChecksBeside
    from lenslake.tables import table_spec

    monkeypatch.setitem(suites.SUITES, "silver.sessions",
                        lambda: [gxe.ExpectTableRowCountToEqual(value=3), gxe.ExpectColumnValuesToBeBetween(
                            column="event_count", min_value=1)])
    spec = table_spec("silver.sessions")
    rows = pa.table({f.name: pa.array([_filler(f.type)] * 3).cast(f.type) for f in spec.arrow_schema})
    rows = rows.set_column(rows.column_names.index("event_count"), "event_count", pa.array([1, 2, 0], pa.int64()))
    with ChecksBeside(("silver.events", "silver.sessions")) as checks:
        checks.rows_ready("silver.sessions", rows)
        checks.rows_ready("gold.daily_kpis", rows)  # not one of this step's checks: ignored
        sessions, events = checks.result("silver.sessions"), checks.result("silver.events")
    assert not sessions.passed and sessions.metadata["rows_validated"].value == 3
    assert "expect_column_values_to_be_between(event_count)" in sessions.metadata["failed_expectations"].value
    assert events.metadata["rows_validated"].value == 0


def _filler(arrow_type):
    """A plausible non-null value of a column's type."""
    import datetime as dt

    import pyarrow as pa

    if pa.types.is_string(arrow_type):
        return "f" * 32
    if pa.types.is_timestamp(arrow_type):
        return dt.datetime(2026, 11, 16, 9, 0)
    if pa.types.is_date(arrow_type):
        return dt.date(2026, 11, 16)
    if pa.types.is_boolean(arrow_type):
        return False
    return 1
