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


# The product database: what its tables must hold after every applied feed day, beyond the referential checks
# (lenslake.catalog.integrity). Value sets, patterns and bounds a feed states are read from its contract, so a new
# version of a registered feed record needs no edit here.
SKU_REGEX = r"^(?:OF|SG|LN|CL|AC|MY)[0-9]{6}$"  # the product feed's SKUs, and MY for the Myntra import


def _feed(kind: str, field: str) -> dict:
    """A field's rules in a catalog feed's contract (``feed_schema``: derived from the registered feed record)."""
    from lenslake.catalog.feeds import feed_schema

    return feed_schema(kind)["properties"][field]


def catalog_products():
    gxe, _ = _gx()
    return [
        gxe.ExpectColumnValuesToBeUnique(column="sku"),
        gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=SKU_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="product_type", value_set=_feed("products", "product_type")["enum"]),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=_feed("products", "status")["enum"]),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=["feed", "myntra"]),
    ]


def catalog_prices():
    gxe, Column = _gx()
    return [
        # type 2: one version per SKU and start, and one current version per SKU
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["sku", "valid_from"]),
        gxe.ExpectColumnValuesToBeUnique(column="sku", row_condition=Column("is_current") == True),  # noqa: E712
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="valid_to", column_B="valid_from",
                                                    ignore_row_if="either_value_is_missing"),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=_feed("prices", "currency")["enum"]),
        gxe.ExpectColumnValuesToBeBetween(column="list_price", min_value=0, max_value=100_000),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="list_price", column_B="promo_price", or_equal=True,
                                                    ignore_row_if="either_value_is_missing"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="promo_to", column_B="promo_from", or_equal=True,
                                                    ignore_row_if="either_value_is_missing"),
    ]


def catalog_inventory():
    gxe, _ = _gx()
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["sku", "location"]),
        gxe.ExpectColumnValuesToMatchRegex(column="location", regex=_feed("inventory", "location")["pattern"]),
        gxe.ExpectColumnValuesToBeBetween(column="on_hand", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="reserved", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="available", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="on_hand", column_B="available", or_equal=True),
        gxe.ExpectColumnValuesToBeInSet(column="availability",
                                        value_set=["in_stock", "low_stock", "backorder", "out_of_stock"]),
    ]


def catalog_media():
    gxe, _ = _gx()
    position = _feed("media", "position")
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["sku", "media_type", "position"]),
        gxe.ExpectColumnValuesToBeInSet(column="media_type", value_set=_feed("media", "media_type")["enum"]),
        gxe.ExpectColumnValuesToBeBetween(column="position", min_value=position["minimum"],
                                          max_value=position["maximum"]),
        gxe.ExpectColumnValuesToMatchRegex(column="uri", regex=_feed("media", "uri")["pattern"]),
        gxe.ExpectColumnValuesToMatchRegex(column="checksum_sha256",
                                           regex=_feed("media", "checksum_sha256")["pattern"]),
    ]


def catalog_product_relations():
    gxe, _ = _gx()
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["sku", "related_sku", "relation"]),
        # variants are derived from the products; the others come from the relations feed
        gxe.ExpectColumnValuesToBeInSet(column="relation",
                                        value_set=["variant", *_feed("relations", "relation")["enum"]]),
        gxe.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToMatchRegex(column="related_sku", regex=SKU_REGEX),
    ]


CATALOG_SUITES = {
    "catalog.products": catalog_products,
    "catalog.prices": catalog_prices,
    "catalog.inventory": catalog_inventory,
    "catalog.media": catalog_media,
    "catalog.product_relations": catalog_product_relations,
}

SUITES = {
    **CATALOG_SUITES,
    "bronze.events": bronze_events,
    "silver.events": silver_events,
    "silver.sessions": silver_sessions,
    "gold.daily_kpis": gold_daily_kpis,
    "gold.daily_funnel": gold_daily_funnel,
    "gold.catalog_quality": gold_catalog_quality,
}
