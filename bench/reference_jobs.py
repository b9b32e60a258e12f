"""Reference jobs for the pipeline benchmark: the same core work without validation, tokens, Delta or Dagster.

Read the landing NDJSON → keep JSON objects → dedupe by event id → drop crawler/headless user agents →
30-minute sessionizing (window lag + running sum) → daily funnel by channel and device. Three ways:
plain DuckDB SQL (the floor), the PySpark DataFrame API on SQLFrame/DuckDB, and the same code on Spark local.
"""

from __future__ import annotations

import glob
import time
from pathlib import Path

BOT_UA = r"(?i)(bot|crawler|spider|slurp|python-requests|curl/|wget|headlesschrome|phantomjs)"
FIELDS = {"event_id": "$.event_id", "event_type": "$.schema", "event_time": "$.event_time", "device": "$.anonymous_id",
          "channel": "$.channel", "device_class": "$.device", "user_agent": "$.user_agent"}


def plain_duckdb_sql(landing: Path) -> tuple[float, int]:
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    files = sorted(glob.glob(str(landing / "*" / "*.ndjson")))
    paths = ", ".join(f"'{f}'" for f in files)
    extract = ", ".join(f"'{p}'" for p in FIELDS.values())
    cols = ", ".join(f"j[{i + 1}] AS {name}" for i, name in enumerate(FIELDS))
    rows = con.sql(f"""
        WITH raw AS (SELECT line FROM read_csv([{paths}], columns={{'line': 'VARCHAR'}}, delim=chr(31), quote='',
                                               escape='', header=false, auto_detect=false)),
        parsed AS (SELECT {cols} FROM (SELECT json_extract_string(line, [{extract}]) AS j FROM raw WHERE json_valid(line))),
        dedup AS (SELECT * EXCLUDE rn FROM (SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY event_time) rn FROM parsed) WHERE rn = 1),
        human AS (SELECT *, TRY_CAST(event_time AS TIMESTAMPTZ) AS ts FROM dedup WHERE regexp_matches(event_time, '^[0-9]{4}-[0-9]{2}-[0-9]{2}T') AND NOT regexp_matches(user_agent, '{BOT_UA}')),
        gaps AS (SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS s
                 FROM human WINDOW w AS (PARTITION BY device ORDER BY ts)),
        sess AS (SELECT *, sum(s) OVER (PARTITION BY device ORDER BY ts ROWS UNBOUNDED PRECEDING) AS seq FROM gaps),
        per_session AS (SELECT device, seq, min(ts)::DATE AS d, first(channel ORDER BY ts) AS channel, first(device_class ORDER BY ts) AS dc,
                        max(CASE WHEN event_type = 'product_view' THEN 1 ELSE 0 END) AS pv,
                        max(CASE WHEN event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS ac,
                        max(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS pu
                        FROM sess GROUP BY device, seq)
        SELECT d, channel, dc, count(*) sessions, sum(pv), sum(ac), sum(pu) FROM per_session GROUP BY ALL
    """).fetchall()
    con.close()
    return time.perf_counter() - t, len(rows)


def pyspark_api_job(engine, landing: Path) -> tuple[float, int]:
    """The same steps in the PySpark DataFrame API, on whichever engine is given (timed from session ready)."""
    from lenslake.engine import read_raw_lines

    F, W = engine.F, engine.Window
    t = time.perf_counter()
    files = [(Path(f), f) for f in sorted(glob.glob(str(landing / "*" / "*.ndjson")))]
    if engine.name == "spark":
        lines = engine.session.read.text([str(p) for p, _ in files]).withColumnRenamed("value", "line")
        lines = lines.where(F.col("line").startswith("{"))
    else:
        lines = engine.from_arrow(read_raw_lines(files)).where(F.col("is_json"))
    df = engine.json_fields(lines, "line", FIELDS).where(
        F.col("event_id").isNotNull() & F.col("event_time").rlike(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))
    w = W.partitionBy("event_id").orderBy("event_time")
    df = df.withColumn("rn", F.row_number().over(w)).where(F.col("rn") == 1)
    df = df.where(~F.col("user_agent").rlike(BOT_UA)).withColumn("ts", F.to_timestamp("event_time"))
    o = W.partitionBy("device").orderBy("ts")
    us = F.unix_micros(F.col("ts"))
    df = df.withColumn("s", F.when(F.lag(us).over(o).isNull() | ((us - F.lag(us).over(o)) > F.lit(30 * 60 * 10**6)), 1).otherwise(0))
    df = df.withColumn("seq", F.sum("s").over(o.rowsBetween(W.unboundedPreceding, W.currentRow)))
    flag = lambda t: F.max(F.when(F.col("event_type") == t, 1).otherwise(0))  # noqa: E731
    sessions = df.groupBy("device", "seq").agg(
        F.to_date(F.min("ts")).alias("d"), F.min("channel").alias("channel"), F.min("device_class").alias("dc"),
        flag("product_view").alias("pv"), flag("add_to_cart").alias("ac"), flag("purchase").alias("pu"))
    out = sessions.groupBy("d", "channel", "dc").agg(F.count(F.lit(1)).alias("sessions"), F.sum("pv"), F.sum("ac"), F.sum("pu"))
    n = engine.to_arrow(out).num_rows
    engine.release()
    return time.perf_counter() - t, n
