"""One Great Expectations suite per table, as plain builders (a list of GX 1.x expectation objects).

Column lists come from the table catalogue where they can (non-null columns, tokens), so a new column declared
there is checked without editing this file.
"""

from __future__ import annotations

from lenslake.contracts.events import event_types
from lenslake.tables import table_spec

TOKEN_REGEX = r"^[a-z0-9]+_[a-z2-7]{32}$"


def _not_null(gxe, table: str, limit: int | None = None):
    cols = [c.name for c in table_spec(table).columns if not c.nullable]
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in cols[:limit]]


def bronze_events():
    import great_expectations.expectations as gxe

    return [
        *_not_null(gxe, "bronze.events"),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=event_types()),
        gxe.ExpectColumnValuesToMatchRegex(column="event_id", regex=r"^[0-9a-f]{32}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="device_token", regex=TOKEN_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="ip_token", regex=TOKEN_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=["file", "kafka"]),
        gxe.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0, max_value=100_000),
    ]


def silver_events():
    import great_expectations.expectations as gxe

    return [
        *_not_null(gxe, "silver.events"),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=event_types()),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, max_value=20),
        gxe.ExpectColumnValuesToMatchRegex(column="session_id", regex=r"^[0-9a-f]{32}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="device_token", regex=TOKEN_REGEX),
    ]


def silver_sessions():
    import great_expectations.expectations as gxe

    return [
        *_not_null(gxe, "silver.sessions"),
        gxe.ExpectColumnValuesToBeUnique(column="session_id"),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0, max_value=86_400),
        gxe.ExpectColumnValuesToBeBetween(column="event_count", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0),
    ]


def gold_daily_kpis():
    import great_expectations.expectations as gxe

    return [
        *_not_null(gxe, "gold.daily_kpis"),
        gxe.ExpectColumnValuesToBeUnique(column="event_date"),
        gxe.ExpectColumnValuesToBeBetween(column="conversion_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0),
    ]


def gold_daily_funnel():
    import great_expectations.expectations as gxe

    return [
        *_not_null(gxe, "gold.daily_funnel"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["session_date", "channel", "device"]),
        gxe.ExpectColumnValuesToBeBetween(column="view_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="cart_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="purchase_rate", min_value=0, max_value=1),
    ]


SUITES = {
    "bronze.events": bronze_events,
    "silver.events": silver_events,
    "silver.sessions": silver_sessions,
    "gold.daily_kpis": gold_daily_kpis,
    "gold.daily_funnel": gold_daily_funnel,
}
