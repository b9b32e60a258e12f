"""The event pipeline's steps, one function per layer; Dagster assets are thin wrappers of these.

Each step takes a list of ingest days (one day, or a single-run backfill's range) and leaves the tables exactly as
running the days one by one, in order, would: one plan per run instead of one per day.

Partitions: bronze is partitioned by the day a line was ingested and its source, so re-running a day replaces
exactly what that run wrote. Silver is keyed by event id and dated by event time, so a late event merges into its
own day: a silver run rewrites the event dates its new events touch (plus the next day, whose sessions may continue
one that crossed midnight), sessionizing with a look-back over the day before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore
from lenslake.engine import Engine, read_raw_lines
from lenslake.privacy import landing
from lenslake.privacy.governance import drop_suppressed
from lenslake.privacy.keys import load_keys
from lenslake.settings import Settings
from lenslake.tables import table_spec
from lenslake.transforms import bronze as bronze_t
from lenslake.transforms import gold as gold_t
from lenslake.transforms import silver as silver_t

ONE_DAY = dt.timedelta(days=1)
# What identifies one landed row in bronze, whatever its source.
ROW_IDENTITY = ("source", "source_file", "source_line", "kafka_topic", "kafka_partition", "kafka_offset")
# Told (table, rows) as soon as a step's rows of a table are final, before they are written: the Dagster assets
# start that table's checks then, on a thread beside the writes (expectations.factory.ChecksBeside).
RowsReady = Callable[[str, pa.Table], None]


def _no_one(table: str, rows: pa.Table) -> None:
    pass


@dataclass
class StepResult:
    """What a step did: the Delta writes and counts for metadata and reconciliation."""

    writes: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    written: dict = field(default_factory=dict)  # table → the Arrow rows this step wrote (gold's checks read these)

    def write(self, table: str):
        return next((w for w in self.writes if w.table == table), None)


def landing_days(settings: Settings) -> list[str]:
    """Days with landing files, clear (not ingested yet) or kept encrypted once ingested: both can be (re)run."""
    root = settings.events_landing_dir
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and landing.listing(p))


def landing_files(settings: Settings, day: str) -> list[tuple[Path, str]]:
    """A day's files (clear or encrypted) with the clear name relative to the data root (``source_file``)."""
    folder = settings.events_landing_dir / day
    return [(p, str(landing.clear_path(p).relative_to(settings.data_root))) for p in landing.listing(folder)]


def _dates(days) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(d) if isinstance(d, str) else d for d in days)


def _sql_dates(dates) -> str:
    return ", ".join(f"DATE '{d}'" for d in dates)


def _tally(values) -> dict[str, int]:
    """How many times each value occurs (vectorized), keys as text, sorted."""
    counts = pc.value_counts(values).to_pylist()
    return dict(sorted((str(c["values"]), c["counts"]) for c in counts))


def ingest_landing_days(engine: Engine, store: DeltaStore, settings: Settings, days,
                        rows_ready: RowsReady = _no_one) -> StepResult:
    """Landing NDJSON of the days → bronze.events + bronze.events_quarantine (source 'file')."""
    dates = _dates(days)
    files = {d: landing_files(settings, str(d)) for d in dates}
    lines = pa.concat_tables([read_raw_lines(files[d], d, settings) for d in dates])
    # Erased users never come back: their lines are dropped before bronze (lenslake.privacy.governance).
    lines, suppressed = drop_suppressed(lines, settings)
    try:
        events, quarantine = bronze_t.bronze_from_lines(engine, lines, load_keys(settings), source="file")
    finally:
        engine.release()
    part = {"ingest_date": dates, "source": "file"}
    rows_ready("bronze.events", events)
    w_events = store.replace_partitions("bronze.events", events, part)
    w_quarantine = store.replace_partitions("bronze.events_quarantine", quarantine, part)
    if lines.num_rows != w_events.rows + w_quarantine.rows:
        raise RuntimeError(f"{lines.num_rows} lines landed but {w_events.rows} + {w_quarantine.rows} were written")
    # Committed: the files this run read are kept only encrypted from now on (a rerun decrypts them).
    landing.encrypt_files([p for d in dates for p, _ in files[d]], settings)
    landed, accepted, quarantined = (_tally(t.column("ingest_date")) for t in (lines, events, quarantine))
    per_day = {str(d): {"landed": landed.get(str(d), 0), "accepted": accepted.get(str(d), 0),
                        "quarantined": quarantined.get(str(d), 0)} for d in dates}
    return StepResult(
        [w_events, w_quarantine],
        counts={"landed": lines.num_rows, "accepted": w_events.rows, "quarantined": w_quarantine.rows,
                "suppressed": suppressed,
                "reasons": _tally(quarantine.column("reason_code")), "per_day": per_day},
    )


def build_silver(engine: Engine, store: DeltaStore, settings: Settings, days,
                 rows_ready: RowsReady = _no_one) -> StepResult:
    """Bronze rows ingested on the days → silver.events, silver.bot_events, silver.sessions."""
    try:
        return _build_silver(engine, store, settings, _dates(days), rows_ready)
    finally:
        engine.release()


def _read(engine, store, table, where):
    spec = table_spec(table)
    return engine.read_delta(store.path(table), spec.arrow_schema, where, spec.defaults)


def _between(F, column: str, lo: dt.date, hi: dt.date):
    return (F.col(column) >= F.lit(lo)) & (F.col(column) <= F.lit(hi))


def _build_silver(engine: Engine, store: DeltaStore, settings: Settings, dates: list[dt.date],
                  rows_ready: RowsReady) -> StepResult:
    F = engine.F
    these = f"ingest_date IN ({_sql_dates(dates)})"
    bronze = _read(engine, store, "bronze.events", these)
    bronze_rows = store.count("bronze.events", {"ingest_date": dates})

    # Dedupe and bot classification run on a narrow projection (one row per landed line); the wide rows of the
    # survivors are joined back once, so no full-width intermediate is ever materialized.
    row_key = F.concat_ws("|", *[F.col(c).cast("string") for c in ROW_IDENTITY])
    narrow = bronze.select(row_key.alias("_row"), "event_id", "event_type", "event_time", "device_token", "user_agent",
                           "ingest_date", "source", "source_file", "source_line")
    batch = silver_t.dedupe_events(engine, narrow)
    # An event already in silver from another ingest day is a duplicate too.
    seen = _read(engine, store, "silver.events", f"NOT ({these})").select("event_id").unionByName(
        _read(engine, store, "silver.bot_events", f"NOT ({these})").select("event_id")
    )
    seen = seen.select(F.col("event_id").alias("_seen_id"))
    batch = batch.join(seen, F.col("event_id") == F.col("_seen_id"), "left").where(F.col("_seen_id").isNull()).drop("_seen_id")
    classified = engine.checkpoint(silver_t.classify_bots(engine, batch))

    bots = engine.to_arrow(classified.where(F.col("bot_reason").isNotNull()).select(*table_spec("silver.bot_events").column_names))
    w_bots = store.replace_partitions("silver.bot_events", bots, {"ingest_date": dates})
    human = classified.where(F.col("bot_reason").isNull()).withColumn("event_date", F.to_date(F.col("event_time")))
    span = engine.to_arrow(human.agg(F.count(F.lit(1)).alias("n"), F.min("event_date").alias("lo"), F.max("event_date").alias("hi")))
    n_humans, lo, hi = (span.column(c)[0].as_py() for c in ("n", "lo", "hi"))
    counts = {
        "bronze_rows": bronze_rows,
        "duplicates_removed": bronze_rows - n_humans - bots.num_rows,
        "bots_removed": bots.num_rows,
        "bot_reasons": _tally(bots.column("bot_reason")),
        "new_events": n_humans,
    }
    if n_humans == 0:
        return StepResult([w_bots], counts)

    # Sessionize the new events with the stored ones around them (the day before as look-back), narrow again:
    # only device, time and id take part; the session ids are then joined to the full rows by event id.
    rewrite = (lo, hi + ONE_DAY)
    context = _read(engine, store, "silver.events",
                    f"event_date BETWEEN DATE '{lo - ONE_DAY}' AND DATE '{hi + ONE_DAY}' AND NOT ({these})")
    timeline = ["event_id", "device_token", "event_time"]
    sessions_of = engine.checkpoint(
        silver_t.sessionize(engine, human.select(*timeline).unionByName(context.select(*timeline)), settings.session_gap_minutes)
        .select(F.col("event_id").alias("_sid_event"), "session_id")
    )
    columns = table_spec("silver.events").column_names
    # The kept rows' session ids ride on the narrow key, so the full-width bronze rows are joined once.
    kept = (human.select(F.col("_row").alias("_kept"), F.col("event_id").alias("_kept_event"))
            .join(sessions_of, F.col("_kept_event") == F.col("_sid_event"), "inner").select("_kept", "session_id"))
    new_rows = (
        bronze.join(kept, row_key == F.col("_kept"), "inner")
        .withColumn("event_date", F.to_date(F.col("event_time")))
    )
    old_rows = (context.drop("session_id").where(_between(F, "event_date", *rewrite))
                .join(sessions_of, F.col("event_id") == F.col("_sid_event"), "inner"))
    rewritten = engine.to_arrow(new_rows.select(*columns).unionByName(old_rows.select(*columns)))
    rows_ready("silver.events", rewritten)
    w_events = store.replace_partitions("silver.events", rewritten, {"event_date": rewrite})

    # Sessions starting on [lo-1, hi+1]: every one of their events lies in [lo-1, hi+2].
    s_lo, s_hi = lo - ONE_DAY, hi + ONE_DAY
    around = _read(engine, store, "silver.events", f"event_date BETWEEN DATE '{s_lo}' AND DATE '{s_hi + ONE_DAY}'")
    sessions = silver_t.sessions_from_events(engine, around).where(_between(F, "session_date", s_lo, s_hi))
    sessions = engine.to_arrow(sessions)
    rows_ready("silver.sessions", sessions)
    w_sessions = store.replace_partitions("silver.sessions", sessions, {"session_date": (s_lo, s_hi)})
    counts["event_dates_rewritten"] = f"{rewrite[0]}..{rewrite[1]}"
    return StepResult([w_bots, w_events, w_sessions], counts)


def affected_dates(store: DeltaStore, days) -> tuple[dt.date, dt.date] | None:
    """The event-date range holding events first ingested on the days (None when there are none)."""
    t = store.read("silver.events", columns=["event_date"], filter=pc.field("ingest_date").isin(_dates(days)))
    if t.num_rows == 0:
        return None
    return pc.min(t.column(0)).as_py(), pc.max(t.column(0)).as_py()


def build_gold(engine: Engine, store: DeltaStore, settings: Settings, days) -> StepResult:
    """Recompute the gold days the ingest days touched: KPIs by event date, funnel by session date."""
    try:
        return _build_gold(engine, store, days)
    finally:
        engine.release()


def _build_gold(engine: Engine, store: DeltaStore, days) -> StepResult:
    F = engine.F
    rng = affected_dates(store, days)
    if rng is None:
        return StepResult([], {"event_dates": "none"})
    lo, hi = rng[0], rng[1] + ONE_DAY
    events = _read(engine, store, "silver.events", f"event_date BETWEEN DATE '{lo}' AND DATE '{hi}'")
    events = _without_withdrawn_analytics(engine, store, events)
    kpis = engine.to_arrow(gold_t.daily_kpis(engine, events))
    w_kpis = store.replace_partitions("gold.daily_kpis", kpis, {"event_date": (lo, hi)})
    s_lo = lo - ONE_DAY
    sessions = _without_withdrawn_analytics(engine, store, _read(engine, store, "silver.sessions",
                                                                 f"session_date BETWEEN DATE '{s_lo}' AND DATE '{hi}'"))
    funnel = gold_t.daily_funnel(engine, sessions.where(F.col("channel").isNotNull() & F.col("device").isNotNull()))
    funnel = engine.to_arrow(funnel)
    w_funnel = store.replace_partitions("gold.daily_funnel", funnel, {"session_date": (s_lo, hi)})
    return StepResult([w_kpis, w_funnel], {"event_dates": f"{lo}..{hi}", "session_dates": f"{s_lo}..{hi}"},
                      {"gold.daily_kpis": kpis, "gold.daily_funnel": funnel})


def _without_withdrawn_analytics(engine: Engine, store: DeltaStore, df):
    """Analytics excludes the rows of users whose analytics consent in force is withdrawn (privacy.current_consent,
    lenslake.privacy.consent); without consent tables nothing is excluded. Anonymous rows (no user token) stay."""
    from lenslake.privacy.consent import withdrawn_users

    withdrawn = withdrawn_users(store, "analytics")
    if not withdrawn:
        return df
    F = engine.F
    out = engine.from_arrow(pa.table({"_withdrawn": pa.array(sorted(withdrawn), pa.string())}))
    return df.join(out, F.col("user_token") == F.col("_withdrawn"), "left").where(F.col("_withdrawn").isNull()).drop("_withdrawn")
