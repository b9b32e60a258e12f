"""Silver → gold: daily KPIs and the session funnel by channel and device."""

from __future__ import annotations

from lenslake.transforms.aggregates import amount_of, count_of


def _ratio(F, num, den):
    return F.when(F.col(den) > F.lit(0), F.col(num) / F.col(den)).otherwise(F.lit(0.0)).cast("double")


def daily_kpis(engine, events):
    F = engine.F
    return (
        events.groupBy("event_date")
        .agg(
            F.count(F.lit(1)).cast("bigint").alias("events"),
            F.countDistinct("session_id").cast("bigint").alias("sessions"),
            F.countDistinct("device_token").cast("bigint").alias("visitors"),
            F.countDistinct("user_token").cast("bigint").alias("users"),
            count_of(F, "page_view").alias("page_views"),
            count_of(F, "product_view").alias("product_views"),
            count_of(F, "search").alias("searches"),
            count_of(F, "add_to_cart").alias("add_to_carts"),
            count_of(F, "wishlist_add").alias("wishlist_adds"),
            count_of(F, "purchase").alias("orders"),
            amount_of(F, "purchase", "total_amount").alias("revenue"),
            count_of(F, "return").alias("returns"),
            amount_of(F, "return", "refund_amount").alias("refunds"),
            count_of(F, "login").alias("logins"),
            count_of(F, "failed_login").alias("failed_logins"),
        )
        .withColumn("conversion_rate", _ratio(F, "orders", "sessions"))
        .withColumn("avg_order_value", F.round(_ratio(F, "revenue", "orders"), 2))
    )


def daily_funnel(engine, sessions):
    F = engine.F

    def sessions_with(column):
        return F.sum(F.when(F.col(column) > F.lit(0), F.lit(1)).otherwise(F.lit(0))).cast("bigint")

    return (
        sessions.groupBy("session_date", "channel", "device")
        .agg(
            F.count(F.lit(1)).cast("bigint").alias("sessions"),
            sessions_with("product_views").alias("product_view_sessions"),
            sessions_with("add_to_carts").alias("cart_sessions"),
            sessions_with("purchases").alias("purchase_sessions"),
            F.round(F.sum(F.col("revenue")), 2).cast("double").alias("revenue"),
        )
        .withColumn("view_rate", _ratio(F, "product_view_sessions", "sessions"))
        .withColumn("cart_rate", _ratio(F, "cart_sessions", "product_view_sessions"))
        .withColumn("purchase_rate", _ratio(F, "purchase_sessions", "cart_sessions"))
    )
