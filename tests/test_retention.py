"""Retention: expired rows are purged and vacuumed; the check fails before and passes after."""

import datetime as dt

import pyarrow as pa

from lenslake.delta import DeltaStore
from lenslake.privacy.retention import check_retention, purge_expired, retention_column
from lenslake.settings import get_settings
from lenslake.tables import table_spec


def _quarantine_rows(days):
    spec = table_spec("bronze.events_quarantine")
    rows = [{"quarantine_id": f"q{i}", "reason_code": "missing_field", "ingest_date": d, "source": "file",
             "payload": '{"x":1}', "quarantined_at": dt.datetime.combine(d, dt.time(1), tzinfo=dt.timezone.utc)}
            for i, d in enumerate(days)]
    return pa.Table.from_pylist(rows, schema=spec.arrow_schema)


def test_expired_rows_are_purged_and_vacuumed_and_the_check_says_so(tmp_path):
    now = dt.datetime(2026, 11, 20, 6, tzinfo=dt.timezone.utc)
    settings = get_settings(data_root=tmp_path / "lake", as_of=now, retention_vacuum_hours=0,
                            retention_overrides="bronze.events_quarantine=14")
    store = DeltaStore(settings.tables_dir)
    old_days = [dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
    young_days = [dt.date(2026, 11, 10), dt.date(2026, 11, 19)]
    for d in old_days + young_days:
        store.replace_partitions("bronze.events_quarantine", _quarantine_rows([d]),
                                 {"ingest_date": d, "source": "file"})
    assert retention_column(table_spec("bronze.events_quarantine")) == "ingest_date"

    before = {c.table: c for c in check_retention(settings)}
    assert not before["bronze.events_quarantine"].passed
    assert "2 rows older than 14 days" in before["bronze.events_quarantine"].detail

    results = {r.table: r for r in purge_expired(settings)}
    assert results["bronze.events_quarantine"].rows_purged == 2
    assert results["bronze.events_quarantine"].files_vacuumed == 2
    left = store.read("bronze.events_quarantine", columns=["ingest_date"]).column(0).to_pylist()
    assert sorted(left) == young_days
    # the purged files are gone from disk: no older version can be read back
    parquet = list(store.path("bronze.events_quarantine").rglob("*.parquet"))
    assert len(parquet) == 2
    assert [c.detail for c in check_retention(settings) if not c.passed] == []
    # a purge's log names dates, never a personal value
    log = "".join(p.read_text() for p in (store.path("bronze.events_quarantine") / "_delta_log").glob("*.json"))
    assert "ingest_date < '2026-11-06'" in log


def test_removed_files_within_the_vacuum_window_are_kept_and_the_check_tolerates_them(tmp_path):
    now = dt.datetime(2026, 11, 20, 6, tzinfo=dt.timezone.utc)
    settings = get_settings(data_root=tmp_path / "lake", as_of=now, retention_vacuum_hours=24,
                            retention_overrides="bronze.events_quarantine=14")
    store = DeltaStore(settings.tables_dir)
    for d in (dt.date(2026, 10, 1), dt.date(2026, 11, 19)):
        store.replace_partitions("bronze.events_quarantine", _quarantine_rows([d]), {"ingest_date": d, "source": "file"})
    results = {r.table: r for r in purge_expired(settings)}
    assert results["bronze.events_quarantine"].rows_purged == 1
    assert results["bronze.events_quarantine"].files_vacuumed == 0  # removed just now: inside the window
    assert store.count("bronze.events_quarantine") == 1
    assert all(c.passed for c in check_retention(settings))


def test_the_purge_job_runs_through_dagster(tmp_path):
    from orchestration.definitions import defs
    from orchestration.resources import Lakehouse

    now = dt.datetime(2026, 11, 20, 6, tzinfo=dt.timezone.utc)
    settings = get_settings(data_root=tmp_path / "lake", as_of=now)
    store = DeltaStore(settings.tables_dir)
    store.replace_partitions("bronze.events_quarantine", _quarantine_rows([dt.date(2025, 1, 1)]),
                             {"ingest_date": dt.date(2025, 1, 1), "source": "file"})
    job = defs.resolve_job_def("purge_job")
    result = job.execute_in_process(resources={"lakehouse": Lakehouse(data_root=str(settings.data_root),
                                                                      as_of=now.isoformat())},
                                    run_config={"ops": {"purge_expired_rows": {"config": {"vacuum_hours": 0}}}})
    assert result.success
    assert store.count("bronze.events_quarantine") == 0
    schedule = defs.resolve_schedule_def("purge_schedule")
    assert schedule.job_name == "purge_job"
