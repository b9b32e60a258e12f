"""One Great Expectations suite per table, as plain builders (a list of GX 1.x expectation objects).

What the store already guarantees is not re-checked here: every write is cast to the table's declared schema and
refuses nulls in non-nullable columns, so a not-null expectation on such a column could never fail. The suites
check what the schema cannot say: value sets and formats, ranges, keys, per-event-type required fields, and
relations between columns.
"""

from __future__ import annotations

from lenslake.contracts.events import event_types
from lenslake.contracts.table_contracts import gx_expectations, table_contract

TOKEN_REGEX = r"^[a-z0-9]+_[a-z2-7]{32}$"
SKU_EVENTS = ["product_view", "add_to_cart", "remove_from_cart", "wishlist_add", "return"]


def _gx():
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    return gxe, Column


def bronze_events():
    gxe, Column = _gx()
    return [
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=event_types()),
        gxe.ExpectColumnValuesToMatchRegex(column="event_id", regex=r"^[0-9a-f]{32}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="device_token", regex=TOKEN_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="ip_token", regex=TOKEN_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="email_token", regex=TOKEN_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=["file", "kafka"]),
        gxe.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0, max_value=100_000),
        # One bronze row per landed line.
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_file", "source_line"]),
        gxe.ExpectColumnValuesToNotBeNull(column="sku", row_condition=Column("event_type").is_in(SKU_EVENTS)),
    ]


def silver_events():
    gxe, Column = _gx()
    return [
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=event_types()),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, max_value=20),
        gxe.ExpectColumnValuesToMatchRegex(column="session_id", regex=r"^[0-9a-f]{32}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="device_token", regex=TOKEN_REGEX),
        gxe.ExpectColumnValuesToNotBeNull(column="order_id", row_condition=Column("event_type").is_in(["purchase", "return"])),
    ]


def silver_sessions():
    gxe, _ = _gx()
    return [
        gxe.ExpectColumnValuesToBeUnique(column="session_id"),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0, max_value=86_400),
        gxe.ExpectColumnValuesToBeBetween(column="event_count", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="event_count", column_B="purchases", or_equal=True),
    ]


def gold_daily_kpis():
    """The quality expectations of the table's data contract (lenslake/contracts/tables/)."""
    return gx_expectations(table_contract("gold.daily_kpis"))


def gold_daily_funnel():
    """The quality expectations of the table's data contract (lenslake/contracts/tables/)."""
    return gx_expectations(table_contract("gold.daily_funnel"))


def gold_catalog_quality():
    """The quality expectations of the table's data contract (lenslake/contracts/tables/)."""
    return gx_expectations(table_contract("gold.catalog_quality"))


SUITES = {
    "bronze.events": bronze_events,
    "silver.events": silver_events,
    "silver.sessions": silver_sessions,
    "gold.daily_kpis": gold_daily_kpis,
    "gold.daily_funnel": gold_daily_funnel,
    "gold.catalog_quality": gold_catalog_quality,
}
