"""A generated world through Dagster, reconciled exactly against the generator's truth manifest."""

import datetime as dt
import os
from collections import Counter

import pytest

from lenslake.delta import DeltaStore
from lenslake.privacy.canary import scan_data_root
from orchestration.runner import dagster_instance, run_events_job
from lenslake.settings import get_settings

TABLES = ["bronze.events", "bronze.events_quarantine", "silver.events", "silver.bot_events", "silver.sessions",
          "gold.daily_kpis", "gold.daily_funnel"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("world")
    manifest = generate_world(root, days=2, users=2_000, events=20_000, seed=11)
    # "Now" for the freshness checks: 06:00 UTC the morning after the world's last day.
    last_day = dt.date.fromisoformat(max(manifest["days_detail"]))
    as_of = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(6), tzinfo=dt.timezone.utc)
    settings = get_settings(data_root=root, engine="duckdb", as_of=as_of)
    instance = dagster_instance(settings)
    result = run_events_job(settings, instance=instance)
    return settings, manifest, result, instance


def counts_by(table, column):
    return Counter(str(v) for v in table.column(column).to_pylist())


def test_the_run_succeeds_with_every_check_passing(world):
    _, _, result, _ = world
    assert result.success
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(evaluations) == 10 and all(ev.passed for ev in evaluations)


def test_every_landed_line_is_a_bronze_row_or_a_quarantine_row(world):
    settings, manifest, _, _ = world
    store = DeltaStore(settings.tables_dir)
    bronze = counts_by(store.read("bronze.events", columns=["ingest_date"]), "ingest_date")
    quarantine = store.read("bronze.events_quarantine", columns=["ingest_date", "reason_code"])
    q = counts_by(quarantine, "ingest_date")
    for day, detail in manifest["days_detail"].items():
        assert bronze[day] + q[day] == detail["lines"], day
        assert bronze[day] == detail["valid_lines"], day
    reasons = Counter(quarantine.column("reason_code").to_pylist())
    assert reasons["malformed_json"] == manifest["totals"]["malformed_lines"]
    assert sum(reasons.values()) - reasons["malformed_json"] == manifest["totals"]["invalid_lines"]


def test_duplicates_and_bots_removed_equal_the_manifest(world):
    settings, manifest, _, _ = world
    store, totals = DeltaStore(settings.tables_dir), manifest["totals"]
    silver = store.read("silver.events", columns=["event_id", "event_type", "event_date"])
    assert silver.num_rows == totals["human_events"] == len(set(silver.column("event_id").to_pylist()))
    assert dict(counts_by(silver, "event_type")) == totals["human_events_by_type"]
    assert dict(counts_by(silver, "event_date")) == totals["human_events_by_date"]
    bots = store.read("silver.bot_events", columns=["bot_reason"])
    assert bots.num_rows == totals["bot_events"]
    assert dict(counts_by(bots, "bot_reason")) == totals["bot_events_by_kind"]
    bronze = store.read("bronze.events", columns=["event_id"]).num_rows
    assert bronze - silver.num_rows - bots.num_rows == totals["duplicate_lines"]


def test_gold_revenue_and_orders_match_the_manifest(world):
    settings, manifest, _, _ = world
    kpis = DeltaStore(settings.tables_dir).read("gold.daily_kpis").to_pylist()
    assert sum(r["orders"] for r in kpis) == manifest["totals"]["purchases"]
    assert round(sum(r["revenue"] for r in kpis), 2) == pytest.approx(manifest["totals"]["revenue"], abs=0.05)


def test_rerunning_a_day_changes_no_counts(world):
    settings, manifest, _, instance = world
    store = DeltaStore(settings.tables_dir)
    before = {t: store.read(t).num_rows for t in TABLES}
    first_day = sorted(manifest["days_detail"])[0]
    assert run_events_job(settings, [first_day], instance=instance).success
    assert {t: store.read(t).num_rows for t in TABLES} == before


# This world runs the events job only: the people feeds under landing/customers/ are not ingested, so they are
# still as delivered (clear); everything that was ingested, the event landing files included, is scanned.
NOT_INGESTED = ("landing/customers",)


def test_no_planted_pii_value_is_stored_in_clear_once_ingested_landing_files_included(world):
    settings, manifest, _, _ = world
    assert len(manifest["pii"]["emails"]) > 100 and manifest["pii"]["ips"]
    assert not list(settings.events_landing_dir.rglob("*.ndjson"))  # the event files are kept only encrypted
    hits = scan_data_root(settings.data_root, not_ingested=NOT_INGESTED)
    assert hits == [], hits[:10]


def test_the_canary_finds_a_planted_value_where_one_leaks(world, tmp_path):
    """The scan itself can fail: a value copied into a file of the lake is reported."""
    settings, manifest, _, _ = world
    leak = settings.data_root / "tables" / "leak.txt"
    leak.write_text(f"oops {manifest['pii']['emails'][0]} oops")
    try:
        assert [h.kind for h in scan_data_root(settings.data_root, not_ingested=NOT_INGESTED)] == ["emails"]
    finally:
        leak.unlink()


def test_the_analyst_notebook_runs_over_the_gold_tables(world, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    settings, _, _, _ = world
    monkeypatch.setenv("LENSLAKE_DATA_ROOT", str(settings.data_root))
    nb = nbformat.read("notebooks/daily_funnel.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_gold_tables_keep_their_contract_and_a_late_table_is_a_warning(world):
    from expectations.contract_checks import contract_check_results

    settings, _, _, _ = world
    store = DeltaStore(settings.tables_dir)
    week_later = get_settings(data_root=settings.data_root, as_of=settings.now() + dt.timedelta(days=7))
    for table in ("gold.daily_kpis", "gold.daily_funnel"):
        schema, fresh = contract_check_results(table, store, settings)
        assert schema.passed and schema.metadata["differences"].value == "none"
        assert fresh.passed
        schema, stale = contract_check_results(table, store, week_later)
        assert schema.passed and not stale.passed
        assert stale.severity.value == "WARN" and stale.metadata["age_hours"].value == 7 * 24 + 6
