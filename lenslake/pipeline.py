"""The event pipeline's steps, one function per table layer and day; Dagster assets are thin wrappers of these.

Partitions: bronze is partitioned by the day a line was ingested and its source, so re-running a day replaces
exactly what that run wrote. Silver is keyed by event id and dated by event time, so a late event merges into its
own day: a silver run for ingest day D rewrites the event dates D's events touch (plus the next day, whose sessions
may continue one that crossed midnight), sessionizing with a look-back over the day before.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc

from lenslake.delta import DeltaStore
from lenslake.engine import Engine, read_raw_lines
from lenslake.privacy.keys import load_keys
from lenslake.settings import Settings
from lenslake.tables import table_spec
from lenslake.transforms import bronze as bronze_t
from lenslake.transforms import gold as gold_t
from lenslake.transforms import silver as silver_t

ONE_DAY = dt.timedelta(days=1)


@dataclass
class StepResult:
    """What a step did: written tables, counts for metadata and reconciliation."""

    writes: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        md = dict(self.counts)
        for w in self.writes:
            md[f"{w.table} rows"] = w.rows
            md[f"{w.table} version"] = w.version
        return md


def landing_days(settings: Settings) -> list[str]:
    root = settings.events_landing_dir
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.ndjson")))


def landing_files(settings: Settings, day: str) -> list[tuple[Path, str]]:
    folder = settings.events_landing_dir / day
    return [(p, str(p.relative_to(settings.data_root))) for p in sorted(folder.glob("*.ndjson"))]


def ingest_landing_day(engine: Engine, store: DeltaStore, settings: Settings, day: str) -> StepResult:
    """Landing NDJSON of one day → bronze.events + bronze.events_quarantine (source 'file')."""
    date = dt.date.fromisoformat(day)
    lines = read_raw_lines(landing_files(settings, day))
    events, quarantine = bronze_t.bronze_from_lines(engine, lines, load_keys(settings), ingest_date=date, source="file")
    part = {"ingest_date": date, "source": "file"}
    try:
        w_events = store.replace_partitions("bronze.events", events, part)
    finally:
        engine.release()
    w_quarantine = store.replace_partitions("bronze.events_quarantine", quarantine, part)
    reasons = Counter(quarantine.column("reason_code").to_pylist())
    landed = lines.num_rows
    if landed != w_events.rows + w_quarantine.rows:
        raise RuntimeError(f"{day}: {landed} lines landed but {w_events.rows} + {w_quarantine.rows} were written")
    return StepResult(
        [w_events, w_quarantine],
        {"landed": landed, "accepted": w_events.rows, "quarantined": w_quarantine.rows, "reasons": dict(sorted(reasons.items()))},
    )


def _between(F, column: str, lo: dt.date, hi: dt.date):
    return (F.col(column) >= F.lit(lo)) & (F.col(column) <= F.lit(hi))


def _silver_event_columns() -> list[str]:
    return table_spec("silver.events").column_names


def build_silver_day(engine: Engine, store: DeltaStore, settings: Settings, day: str) -> StepResult:
    """Bronze rows ingested on ``day`` → silver.events, silver.bot_events, silver.sessions."""
    try:
        return _build_silver_day(engine, store, settings, day)
    finally:
        engine.release()


def _build_silver_day(engine: Engine, store: DeltaStore, settings: Settings, day: str) -> StepResult:
    F = engine.F
    date = dt.date.fromisoformat(day)
    bronze = engine.read_delta(store.path("bronze.events"), table_spec("bronze.events").arrow_schema, f"ingest_date = DATE '{day}'")
    silver_path, silver_schema = store.path("silver.events"), table_spec("silver.events").arrow_schema
    bronze_rows = engine.count(bronze)

    batch = silver_t.dedupe_events(engine, bronze)
    seen = engine.read_delta(silver_path, silver_schema, f"ingest_date <> DATE '{day}'").select("event_id")
    seen_bots = engine.read_delta(store.path("silver.bot_events"), table_spec("silver.bot_events").arrow_schema, f"ingest_date <> DATE '{day}'").select("event_id")
    seen_ids = seen.unionByName(seen_bots).select(F.col("event_id").alias("_seen_id"))
    batch = batch.join(seen_ids, F.col("event_id") == F.col("_seen_id"), "left").where(F.col("_seen_id").isNull()).drop("_seen_id")
    classified = silver_t.classify_bots(engine, batch)

    bots = classified.where(F.col("bot_reason").isNotNull()).select(*table_spec("silver.bot_events").column_names)
    w_bots = store.replace_partitions("silver.bot_events", engine.to_arrow(bots), {"ingest_date": date})
    humans = engine.to_arrow(
        classified.where(F.col("bot_reason").isNull()).withColumn("event_date", F.to_date(F.col("event_time"))).drop("bot_reason")
    )
    counts = {
        "bronze_rows": bronze_rows,
        "duplicates_removed": bronze_rows - humans.num_rows - w_bots.rows,
        "bots_removed": w_bots.rows,
        "bot_reasons": dict(sorted(Counter(engine.to_arrow(bots.select("bot_reason")).column(0).to_pylist()).items())),
        "new_events": humans.num_rows,
    }
    if humans.num_rows == 0:
        return StepResult([w_bots], counts)

    lo, hi = pc.min(humans.column("event_date")).as_py(), pc.max(humans.column("event_date")).as_py()
    rewrite = (lo, hi + ONE_DAY)
    context = engine.read_delta(
        silver_path,
        silver_schema,
        f"event_date BETWEEN DATE '{lo - ONE_DAY}' AND DATE '{hi + ONE_DAY}' AND ingest_date <> DATE '{day}'",
    ).drop("session_id")
    keep = [c for c in _silver_event_columns() if c != "session_id"]
    new = engine.from_arrow(humans).select(*keep)
    combined = silver_t.sessionize(engine, new.unionByName(context.select(*keep)), settings.session_gap_minutes)
    rewritten = combined.where(_between(F, "event_date", *rewrite))
    w_events = store.replace_partitions("silver.events", engine.to_arrow(rewritten), {"event_date": rewrite})

    # Sessions starting on [lo-1, hi+1]: every one of their events lies in [lo-1, hi+2].
    s_lo, s_hi = lo - ONE_DAY, hi + ONE_DAY
    around = engine.read_delta(silver_path, silver_schema, f"event_date BETWEEN DATE '{s_lo}' AND DATE '{s_hi + ONE_DAY}'")
    sessions = silver_t.sessions_from_events(engine, around).where(
        _between(F, "session_date", s_lo, s_hi)
    )
    w_sessions = store.replace_partitions("silver.sessions", engine.to_arrow(sessions), {"session_date": (s_lo, s_hi)})
    counts["event_dates_rewritten"] = f"{rewrite[0]}..{rewrite[1]}"
    return StepResult([w_bots, w_events, w_sessions], counts)


def affected_dates(engine: Engine, store: DeltaStore, day: str) -> tuple[dt.date, dt.date] | None:
    """The event-date range the silver run of ingest ``day`` wrote (None when it wrote no events)."""
    t = store.read("silver.events", columns=["event_date"], filter=pc.field("ingest_date") == dt.date.fromisoformat(day))
    if t.num_rows == 0:
        return None
    return pc.min(t.column(0)).as_py(), pc.max(t.column(0)).as_py()


def build_gold_day(engine: Engine, store: DeltaStore, settings: Settings, day: str) -> StepResult:
    """Recompute the gold days that ingest ``day`` touched: KPIs by event date, funnel by session date."""
    try:
        return _build_gold_day(engine, store, settings, day)
    finally:
        engine.release()


def _build_gold_day(engine: Engine, store: DeltaStore, settings: Settings, day: str) -> StepResult:
    F = engine.F
    rng = affected_dates(engine, store, day)
    if rng is None:
        return StepResult([], {"dates": "none"})
    lo, hi = rng[0], rng[1] + ONE_DAY
    events = engine.read_delta(
        store.path("silver.events"), table_spec("silver.events").arrow_schema, f"event_date BETWEEN DATE '{lo}' AND DATE '{hi}'"
    )
    w_kpis = store.replace_partitions("gold.daily_kpis", engine.to_arrow(gold_t.daily_kpis(engine, events)), {"event_date": (lo, hi)})
    s_lo = lo - ONE_DAY
    sessions = engine.read_delta(
        store.path("silver.sessions"), table_spec("silver.sessions").arrow_schema, f"session_date BETWEEN DATE '{s_lo}' AND DATE '{hi}'"
    )
    funnel = gold_t.daily_funnel(engine, sessions.where(F.col("channel").isNotNull() & F.col("device").isNotNull()))
    w_funnel = store.replace_partitions("gold.daily_funnel", engine.to_arrow(funnel), {"session_date": (s_lo, hi)})
    return StepResult([w_kpis, w_funnel], {"event_dates": f"{lo}..{hi}", "session_dates": f"{s_lo}..{hi}"})
