"""Silver and gold on small hand-made days: dedupe, bots, sessions across midnight, late events, reruns."""

import json
from collections import Counter

import pytest

from lenslake import pipeline
from lenslake.delta import DeltaStore
from lenslake.tables import table_spec
from tests.conftest import make_event


def land(settings, day, events):
    folder = settings.events_landing_dir / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events-000.ndjson").write_text("\n".join(json.dumps(e) if isinstance(e, dict) else e for e in events) + "\n")


STEPS = (pipeline.ingest_landing_days, pipeline.build_silver, pipeline.build_gold)


def run_days(engine, settings, days):
    """Day by day, in order, as daily runs do."""
    store = DeltaStore(settings.tables_dir)
    out = {}
    for step in STEPS:
        for d in days:
            out[(step.__name__, d)] = step(engine, store, settings, [d]).counts
    return store, out


@pytest.fixture
def two_days(settings):
    t = lambda day, hm: f"2026-11-{day}T{hm}:00.000Z"  # noqa: E731
    first = make_event("page_view", time=t(16, "23:40"), device="d_a")
    day1 = [
        first, dict(first),  # a duplicate copy
        make_event("product_view", time=t(16, "23:50"), device="d_a"),
        make_event("page_view", time=t(16, "10:00"), device="d_b"),
        make_event("page_view", time=t(16, "11:00"), device="d_b"),  # > 30 min later: a new session
        make_event("page_view", time=t(16, "12:00"), device="d_bot", user=None, ua="Mozilla/5.0 (compatible; Googlebot/2.1)"),
        make_event("page_view", time=t(16, "12:00"), device="d_hl", user=None, ua="Mozilla/5.0 HeadlessChrome/120"),
    ]
    # An inhuman device: 60 events, 300 ms apart, ordinary browser user agent.
    day1 += [make_event("product_view", time=f"2026-11-16T13:00:{i // 3:02d}.{(i % 3) * 300:03d}Z", device="d_fast", user=None)
             for i in range(60)]
    day2 = [
        make_event("add_to_cart", time=t(17, "00:05"), device="d_a"),  # continues d_a's session across midnight
        make_event("purchase", time=t(17, "00:10"), device="d_a", total_amount=240.5),
        make_event("page_view", time=t(16, "23:59"), device="d_late"),  # late: belongs to the 16th
        dict(first),  # the duplicate arrives again a day later
    ]
    land(settings, "2026-11-16", day1)
    land(settings, "2026-11-17", day2)
    return ["2026-11-16", "2026-11-17"]


def test_duplicates_and_bots_never_reach_silver(engine, settings, two_days):
    store, counts = run_days(engine, settings, two_days)
    silver = store.read("silver.events")
    assert silver.num_rows == len(set(silver.column("event_id").to_pylist())) == 7
    bots = Counter(store.read("silver.bot_events").column("bot_reason").to_pylist())
    assert bots == {"crawler_user_agent": 1, "headless_browser": 1, "inhuman_timing": 60}
    assert counts[("build_silver", "2026-11-16")]["duplicates_removed"] == 1
    assert counts[("build_silver", "2026-11-17")]["duplicates_removed"] == 1


def test_a_session_crossing_midnight_stays_whole_and_late_events_join_their_own_day(engine, settings, two_days):
    store, _ = run_days(engine, settings, two_days)
    sessions = store.read("silver.sessions").to_pylist()
    by_device = Counter(s["event_count"] for s in sessions)
    assert len(sessions) == 4  # d_a (across midnight), d_b twice, d_late
    a = [s for s in sessions if s["event_count"] == 4][0]
    assert str(a["session_date"]) == "2026-11-16" and a["converted"] and a["revenue"] == 240.5
    assert by_device[1] == 3
    late = [r for r in store.read("silver.events").to_pylist() if r["event_time"].minute == 59]
    assert str(late[0]["event_date"]) == "2026-11-16" and str(late[0]["ingest_date"]) == "2026-11-17"


def test_gold_kpis_and_funnel_count_human_activity(engine, settings, two_days):
    store, _ = run_days(engine, settings, two_days)
    kpis = {str(r["event_date"]): r for r in store.read("gold.daily_kpis").to_pylist()}
    assert kpis["2026-11-16"]["events"] == 5 and kpis["2026-11-17"]["events"] == 2
    assert kpis["2026-11-17"]["orders"] == 1 and kpis["2026-11-17"]["revenue"] == 240.5
    funnel = store.read("gold.daily_funnel").to_pylist()
    assert sum(r["sessions"] for r in funnel) == 4
    assert sum(r["purchase_sessions"] for r in funnel) == 1


def test_rerunning_a_day_changes_no_counts(engine, settings, two_days):
    store, _ = run_days(engine, settings, two_days)
    tables = ["bronze.events", "bronze.events_quarantine", "silver.events", "silver.bot_events", "silver.sessions",
              "gold.daily_kpis", "gold.daily_funnel"]
    before = {t: store.read(t).num_rows for t in tables}
    gold_before = sorted(map(str, store.read("gold.daily_kpis").to_pylist()))
    run_days(engine, settings, ["2026-11-16"])
    assert {t: store.read(t).num_rows for t in tables} == before
    assert sorted(map(str, store.read("gold.daily_kpis").to_pylist())) == gold_before


def test_a_run_over_a_range_of_days_equals_day_by_day_runs(engine, settings, tmp_path, two_days):
    import shutil

    from lenslake.settings import get_settings

    by_day, _ = run_days(engine, settings, two_days)
    ranged = get_settings(data_root=tmp_path / "ranged", engine="duckdb", key_file=settings.resolved_key_file)
    shutil.copytree(settings.landing_dir, ranged.landing_dir)  # kept encrypted once ingested: its landing key too
    (ranged.data_root / "keys").mkdir(parents=True)
    shutil.copy(settings.data_root / "keys" / "landing-keys.json", ranged.data_root / "keys")
    store = DeltaStore(ranged.tables_dir)
    for step in STEPS:
        step(engine, store, ranged, two_days)
    for table in ("silver.events", "silver.bot_events", "silver.sessions", "gold.daily_kpis", "gold.daily_funnel"):
        key = table_spec(table).key
        rows = lambda s: sorted(map(str, s.read(table).sort_by([(k, "ascending") for k in key]).to_pylist()))  # noqa: E731
        assert rows(store) == rows(by_day), table
