"""Bronze events → silver: deduplicated by event id, bots removed (with the reason kept), sessionized."""

from __future__ import annotations

from lenslake.transforms.aggregates import amount_of, count_of

# Not okhttp or similar: native apps use those HTTP clients too.
CRAWLER_UA = r"(?i)(bot|crawler|spider|slurp|python-requests|curl/|wget|scrapy)"
HEADLESS_UA = r"(?i)(headlesschrome|phantomjs|puppeteer|playwright|selenium)"
# A device is inhuman when it fires many events at an average gap no person keeps up.
INHUMAN_MIN_EVENTS = 50
INHUMAN_MAX_AVG_GAP_S = 2.0


def dedupe_events(engine, events):
    """One row per event id: the first landed copy (by ingest day, source, file, line) wins."""
    F, W = engine.F, engine.Window
    w = W.partitionBy("event_id").orderBy(F.col("ingest_date"), F.col("source"), F.col("source_file"), F.col("source_line"))
    return events.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1).drop("_rn")


def classify_bots(engine, events):
    """Add ``bot_reason`` (null for humans): crawler or headless user agents, or inhuman timing per device and
    ingest day (per day, so a run over a range of days classifies exactly as day-by-day runs do)."""
    F = engine.F
    micros = F.unix_micros(F.col("event_time"))
    per_device = events.groupBy("device_token", "ingest_date").agg(
        F.count(F.lit(1)).alias("_n"), ((F.max(micros) - F.min(micros)) / F.lit(1_000_000.0)).alias("_span_s")
    )
    inhuman = per_device.where(
        (F.col("_n") >= F.lit(INHUMAN_MIN_EVENTS)) & (F.col("_span_s") / (F.col("_n") - F.lit(1)) < F.lit(INHUMAN_MAX_AVG_GAP_S))
    ).select(F.col("device_token").alias("_fast_device"), F.col("ingest_date").alias("_fast_day"))
    flagged = events.join(
        inhuman, (F.col("device_token") == F.col("_fast_device")) & (F.col("ingest_date") == F.col("_fast_day")), "left"
    )
    return flagged.withColumn(
        "bot_reason",
        F.when(F.col("user_agent").rlike(HEADLESS_UA), F.lit("headless_browser"))
        .when(F.col("user_agent").rlike(CRAWLER_UA), F.lit("crawler_user_agent"))
        .when(F.col("_fast_device").isNotNull(), F.lit("inhuman_timing")),
    ).drop("_fast_device", "_fast_day")


def sessionize(engine, events, gap_minutes: int):
    """Add ``session_id``: a device's events split where the inactivity gap exceeds ``gap_minutes``.

    The id is a hash of the device token and the session's first event time, so it is stable across reruns and
    engines and does not depend on which day's batch first saw the session.
    """
    F, W = engine.F, engine.Window
    order = W.partitionBy("device_token").orderBy(F.col("event_time"), F.col("event_id"))
    micros = F.unix_micros(F.col("event_time"))
    prev = F.lag(micros).over(order)
    is_start = prev.isNull() | ((micros - prev) > F.lit(gap_minutes * 60 * 1_000_000))
    # The latest session start at or before each event, over the same window: one sort, no second partitioning.
    running = order.rowsBetween(W.unboundedPreceding, W.currentRow)
    starts = events.withColumn("_start_us", F.when(is_start, micros))
    with_start = starts.withColumn("_session_us", F.max(F.col("_start_us")).over(running))
    return with_start.withColumn(
        "session_id",
        F.substring(F.sha2(F.concat_ws("|", F.col("device_token"), F.col("_session_us").cast("string")), 256), 1, 32),
    ).drop("_start_us", "_session_us")


def sessions_from_events(engine, events):
    """One row per session, from all of its (sessionized) events."""
    F, W = engine.F, engine.Window
    first_w = W.partitionBy("session_id").orderBy(F.col("event_time"), F.col("event_id"))
    firsts = (
        events.withColumn("_rn", F.row_number().over(first_w))
        .where(F.col("_rn") == 1)
        .select("session_id", "client_session_id", "channel", "device", "platform")
    )
    micros = F.unix_micros(F.col("event_time"))
    agg = events.groupBy("session_id").agg(
        F.min("device_token").alias("device_token"),
        F.max("user_token").alias("user_token"),
        F.min("event_time").alias("session_start"),
        F.max("event_time").alias("session_end"),
        ((F.max(micros) - F.min(micros)) / F.lit(1_000_000.0)).alias("duration_s"),
        F.count(F.lit(1)).cast("bigint").alias("event_count"),
        count_of(F, "page_view").alias("page_views"),
        count_of(F, "product_view").alias("product_views"),
        count_of(F, "search").alias("searches"),
        count_of(F, "add_to_cart").alias("add_to_carts"),
        count_of(F, "purchase").alias("purchases"),
        amount_of(F, "purchase", "total_amount").alias("revenue"),
    )
    return (
        agg.join(firsts, "session_id", "inner")
        .withColumn("session_date", F.to_date(F.col("session_start")))
        .withColumn("converted", F.col("purchases") > F.lit(0))
    )
