"""Blue-green publishing of gold: readers see the published version, a version is published only once checked,
the flip is atomic, rollback flips back. Real Delta tables throughout."""

import datetime as dt
import json
import os
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from lenslake import publish
from lenslake.delta import DeltaStore
from lenslake.publish import Check, publishing, read_published
from lenslake.tables import table_spec

# The gold tables the daily events job writes (gold.catalog_quality is the catalog job's: tests/test_catalog.py).
EVENT_GOLD = ("gold.daily_kpis", "gold.daily_funnel")

KPIS = "gold.daily_kpis"


@pytest.fixture
def store(settings):
    return DeltaStore(settings.tables_dir)


def kpi_rows(day: str, orders: int) -> pa.Table:
    """One gold.daily_kpis row for the day; ``orders`` marks which write it came from."""
    row = {}
    for f in table_spec(KPIS).arrow_schema:
        row[f.name] = dt.date.fromisoformat(day) if f.name == "event_date" else 0
    row["orders"] = orders
    return pa.Table.from_pylist([row])


def write_day(store, day: str, orders: int):
    return store.replace_partitions(KPIS, kpi_rows(day, orders), {"event_date": dt.date.fromisoformat(day)})


def cycle(store, days: dict[str, int], *, passed=True, run_id="run"):
    """One publication cycle: write the days, check, publish when the check passed."""
    with publishing(store, [KPIS], run_id=run_id) as pub:
        write = None
        for day, orders in days.items():
            write = write_day(store, day, orders)
        return pub.publish(KPIS, write, [Check("gx_daily_kpis_suite", passed)])


def orders_by_day(table: pa.Table) -> dict[str, int]:
    return {str(r["event_date"]): r["orders"] for r in table.to_pylist()}


def published(store) -> dict[str, int]:
    return orders_by_day(read_published(store, KPIS))


def test_readers_keep_the_published_version_while_a_new_one_is_written_and_checked(store):
    assert cycle(store, {"2026-11-16": 1}).published
    with publishing(store, [KPIS], run_id="second") as pub:
        write_day(store, "2026-11-16", 2)
        write = write_day(store, "2026-11-17", 2)
        assert orders_by_day(store.read(KPIS)) == {"2026-11-16": 2, "2026-11-17": 2}  # written: the latest version
        assert published(store) == {"2026-11-16": 1}  # ...but readers still see the published one
        outcome = pub.publish(KPIS, write, [Check("gx_daily_kpis_suite", True)])
    assert outcome.published and outcome.published_version == write.version == store.version(KPIS)
    assert published(store) == {"2026-11-16": 2, "2026-11-17": 2}


def test_a_failed_check_keeps_the_old_version_and_the_next_good_write_does_not_publish_the_bad_rows(store):
    good = cycle(store, {"2026-11-16": 1})
    bad = cycle(store, {"2026-11-16": 666, "2026-11-17": 666}, passed=False, run_id="bad-run")
    assert not bad.published and bad.published_version == good.published_version
    assert "gx_daily_kpis_suite failed" in bad.note
    assert published(store) == {"2026-11-16": 1}
    assert publish.load_pointer(store, KPIS).history[-1]["action"] == "reject"

    after = cycle(store, {"2026-11-18": 3})
    assert after.published
    assert published(store) == {"2026-11-16": 1, "2026-11-18": 3}  # no 666 anywhere
    assert orders_by_day(store.read(KPIS)) == published(store)  # latest == published again


def test_a_new_tables_failed_first_write_is_never_published(store):
    bad = cycle(store, {"2026-11-16": 666}, passed=False)
    assert not bad.published and bad.published_version is None
    with pytest.raises(publish.NotPublished, match="no version is published"):
        read_published(store, KPIS)
    assert cycle(store, {"2026-11-17": 2}).published
    assert published(store) == {"2026-11-17": 2}


def test_a_table_written_before_publishing_is_adopted_as_published(store):
    write_day(store, "2026-11-16", 1)
    assert not cycle(store, {"2026-11-16": 666}, passed=False).published
    assert published(store) == {"2026-11-16": 1}
    assert publish.load_pointer(store, KPIS).history[0]["action"] == "adopt"


def test_rollback_flips_back_and_readers_see_the_earlier_rows(store):
    first = cycle(store, {"2026-11-16": 1})
    second = cycle(store, {"2026-11-16": 2, "2026-11-17": 2})
    assert published(store) == {"2026-11-16": 2, "2026-11-17": 2}

    pointer = publish.rollback(store, KPIS, reason="bad revenue")
    assert pointer.version == first.published_version
    assert published(store) == {"2026-11-16": 1}
    actions = [(e["action"], e["version"]) for e in pointer.history]
    assert ("publish", second.published_version) in actions and actions[-1] == ("rollback", first.published_version)

    # The next run writes on top of the rolled-back version: the rolled-back rows do not come back.
    assert cycle(store, {"2026-11-18": 3}).published
    assert published(store) == {"2026-11-16": 1, "2026-11-18": 3}


def test_rolling_back_past_a_cycle_that_set_a_rejected_write_aside_restores_the_right_rows(store):
    cycle(store, {"2026-11-16": 1})
    cycle(store, {"2026-11-16": 2})
    cycle(store, {"2026-11-16": 666}, passed=False)
    cycle(store, {"2026-11-17": 4})  # restores to the second version, then writes
    publish.rollback(store, KPIS)
    publish.rollback(store, KPIS)
    assert published(store) == {"2026-11-16": 1}
    assert cycle(store, {"2026-11-18": 5}).published
    assert published(store) == {"2026-11-16": 1, "2026-11-18": 5}


def migrate(store, migration_id="m9999"):
    """What a migration of lenslake/migrations commits: a CHECK constraint, tagged with its id."""
    from deltalake import CommitProperties

    publish._delta(store, KPIS).alter.add_constraint(
        {"orders_not_negative": "orders >= 0"},
        commit_properties=CommitProperties(custom_metadata={"lenslake.migration": migration_id}))


def constraints(store) -> list[str]:
    return [k for k in publish._delta(store, KPIS).metadata().configuration if k.startswith("delta.constraints.")]


def test_a_migration_of_the_published_version_survives_the_next_write_and_is_published_with_it(store):
    cycle(store, {"2026-11-16": 1})
    migrate(store)
    assert cycle(store, {"2026-11-17": 2}).published
    assert "delta.constraints.orders_not_negative" in constraints(store)
    assert published(store) == {"2026-11-16": 1, "2026-11-17": 2}
    assert "RESTORE" not in [c["operation"] for c in publish._delta(store, KPIS).history()]


def test_a_rejected_write_after_a_migration_is_set_aside_and_the_migration_kept(store):
    cycle(store, {"2026-11-16": 1})
    migrate(store)
    cycle(store, {"2026-11-16": 666}, passed=False)
    assert cycle(store, {"2026-11-17": 2}).published
    assert "delta.constraints.orders_not_negative" in constraints(store)
    assert published(store) == {"2026-11-16": 1, "2026-11-17": 2}


def test_a_migration_on_top_of_a_rejected_write_stops_the_next_cycle_with_a_clear_error(store):
    cycle(store, {"2026-11-16": 1})
    cycle(store, {"2026-11-16": 666}, passed=False)
    migrate(store, "m0042")
    with pytest.raises(publish.PublishError, match="migration m0042 was committed on top of unpublished writes"):
        cycle(store, {"2026-11-17": 2})
    assert published(store) == {"2026-11-16": 1}


def test_rollback_with_no_earlier_version_is_a_clear_error(store):
    with pytest.raises(publish.PublishError, match="nothing is published"):
        publish.rollback(store, KPIS)
    cycle(store, {"2026-11-16": 1})
    with pytest.raises(publish.PublishError, match="nothing to roll back to"):
        publish.rollback(store, KPIS)
    cycle(store, {"2026-11-16": 2})
    publish.rollback(store, KPIS)
    with pytest.raises(publish.PublishError, match="nothing to roll back to"):
        publish.rollback(store, KPIS)
    with pytest.raises(publish.PublishError, match="unknown table 'gold.nope'"):
        publish.rollback(store, "gold.nope")
    with pytest.raises(publish.PublishError, match="unknown table 'silver.events'"):
        publish.rollback(store, "silver.events")


def test_a_rollback_during_a_run_is_not_undone_by_the_runs_publish(store):
    first = cycle(store, {"2026-11-16": 1})
    cycle(store, {"2026-11-16": 2})
    with publishing(store, [KPIS], run_id="late") as pub:
        write = write_day(store, "2026-11-17", 3)
        publish.rollback(store, KPIS)  # an operator, meanwhile
        with pytest.raises(publish.PublishConflict, match="moved"):
            pub.publish(KPIS, write, [Check("gx", True)])
    assert publish.published_version(store, KPIS) == first.published_version
    assert published(store) == {"2026-11-16": 1}


def test_the_pointer_is_replaced_whole_through_a_synced_temp_file_in_its_folder(store, monkeypatch):
    cycle(store, {"2026-11-16": 1})
    path = publish.pointer_path(store, KPIS)
    replaced, synced = [], []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_fsync(fd):
        synced.append(fd)
        return real_fsync(fd)

    def spy_replace(src, dst):
        # At the moment of the flip the temp file is complete, fsynced, and beside the pointer.
        assert synced and os.path.dirname(src) == str(path.parent) and str(dst) == str(path)
        replaced.append(json.loads(Path(src).read_text())["version"])
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    out = cycle(store, {"2026-11-17": 2})
    assert replaced[-1] == out.published_version == json.loads(path.read_text())["version"]
    assert path.stat().st_mode & 0o777 == 0o644  # readable by the services that read the tables

    # A flip that fails before the rename leaves the old pointer, complete, and no temp file behind.
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        cycle(store, {"2026-11-18": 3})
    assert path.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix == ".tmp") == []


def test_concurrent_readers_never_see_a_partial_pointer_during_many_flips(store):
    a = cycle(store, {"2026-11-16": 1}).published_version
    b = cycle(store, {"2026-11-16": 2}).published_version
    path, done, seen, errors = publish.pointer_path(store, KPIS), threading.Event(), set(), []

    def flipper():
        try:
            for i in range(300):
                publish.publish(store, KPIS, a if i % 2 else b, reason=f"flip {i}")
        finally:
            done.set()

    def reader():
        reads = 0
        while not done.is_set() or reads < 10:
            try:
                seen.add(json.loads(path.read_text())["version"])
                if reads % 25 == 0:
                    assert published(store) in ({"2026-11-16": 1}, {"2026-11-16": 2})
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            reads += 1

    threads = [threading.Thread(target=flipper)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert seen == {a, b}


def test_vacuum_keeps_the_published_version_and_every_rollback_target(store):
    cycle(store, {"2026-11-16": 1})
    cycle(store, {"2026-11-16": 2})
    cycle(store, {"2026-11-16": 666}, passed=False)
    cycle(store, {"2026-11-17": 3})  # set the rejected version aside, then published
    assert len(publish.retained_versions(store, KPIS)) == 3
    plain = publish._delta(store, KPIS).vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)
    deleted = publish.vacuum(store, KPIS, retention_hours=0, dry_run=False, enforce_retention_duration=False)
    assert len(deleted) == 1 and len(plain) == 2  # only the rejected write's file goes; a plain vacuum takes more
    assert published(store) == {"2026-11-16": 2, "2026-11-17": 3}
    publish.rollback(store, KPIS)
    assert published(store) == {"2026-11-16": 2}
    publish.rollback(store, KPIS)
    assert published(store) == {"2026-11-16": 1}


def test_duckdb_queries_the_published_snapshot_not_the_latest(store):
    import duckdb

    cycle(store, {"2026-11-16": 1, "2026-11-17": 1})
    cycle(store, {"2026-11-16": 666}, passed=False)
    con = duckdb.connect()
    assert publish.register_duckdb(con, store) == {KPIS: publish.published_version(store, KPIS)}
    assert con.execute("SELECT sum(orders) FROM gold.daily_kpis").fetchall() == [(2,)]


def test_only_failed_blocking_checks_of_error_severity_stop_publication():
    import dagster as dg

    key = dg.AssetKey(["gold", "daily_kpis"])
    checks = [
        Check("a", True), Check("b", False, blocking=False),
        dg.AssetCheckResult(check_name="c", asset_key=key, passed=False, severity=dg.AssetCheckSeverity.WARN),
        dg.AssetCheckResult(check_name="d", asset_key=key, passed=False),
        Check("e", False),
    ]
    assert publish.failed_blocking(checks) == ["d", "e"]
    assert publish.failed_blocking(checks[:3]) == []


def test_status_lists_published_and_latest_versions(store):
    cycle(store, {"2026-11-16": 1})
    cycle(store, {"2026-11-16": 2})
    cycle(store, {"2026-11-16": 666}, passed=False)
    rows = {s.table: s for s in publish.status(store)}
    kpis = rows[KPIS]
    assert kpis.published == publish.published_version(store, KPIS) < kpis.latest == store.version(KPIS)
    assert kpis.rollback_to is not None and kpis.last["action"] == "reject"
    assert rows["gold.daily_funnel"].published is None and rows["gold.daily_funnel"].latest == -1


# --- the CLI ---------------------------------------------------------------------------------------------------------


def test_publish_status_and_rollback_on_the_command_line(settings, store, monkeypatch, capsys):
    import sys

    from typer.testing import CliRunner

    from lenslake.cli import app, main

    first = cycle(store, {"2026-11-16": 1}).published_version
    second = cycle(store, {"2026-11-16": 2}).published_version
    env = {"LENSLAKE_DATA_ROOT": str(settings.data_root)}
    runner = CliRunner()

    out = runner.invoke(app, ["publish", "status"], env=env)
    assert out.exit_code == 0, out.output
    line = next(x for x in out.stdout.splitlines() if x.startswith(KPIS))
    assert f"published=v{second}" in line and f"rollback_to=v{first}" in line
    assert "gold.daily_funnel" in out.stdout and "published=none" in out.stdout

    out = runner.invoke(app, ["publish", "rollback", KPIS, "--reason", "bad revenue"], env=env)
    assert out.exit_code == 0 and f"v{second} → v{first}" in out.stdout
    assert published(store) == {"2026-11-16": 1}

    out = runner.invoke(app, ["publish", "rollback", KPIS], env=env)
    assert out.exit_code == 1 and "nothing to roll back to" in out.stderr

    # Through the real entry point: one line on stderr, no traceback.
    monkeypatch.setenv("LENSLAKE_DATA_ROOT", str(settings.data_root))
    monkeypatch.setattr(sys, "argv", ["lenslake", "publish", "rollback", "gold.nope"])
    assert main() == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "unknown table 'gold.nope'" in err and "Traceback" not in err


# --- the gold asset through Dagster --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lenslake.settings import get_settings
    from lenslake.synth.world import generate_world
    from orchestration.runner import dagster_instance, run_events_job

    root = tmp_path_factory.mktemp("world")
    manifest = generate_world(root, days=2, users=500, events=3_000, seed=7)
    settings = get_settings(data_root=root, engine="duckdb")
    instance = dagster_instance(settings)
    result = run_events_job(settings, instance=instance)
    assert result.success
    return settings, manifest, instance, result


def _sorted(table: pa.Table, keys) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def _run_gold(settings, instance, day):
    import dagster as dg

    from assets.gold import gold_tables
    from orchestration.resources import Lakehouse

    lakehouse = Lakehouse(data_root=str(settings.data_root), engine_name=settings.engine)
    return dg.materialize([gold_tables], partition_key=day, resources={"lakehouse": lakehouse}, instance=instance,
                          raise_on_error=False)


def _published_metadata(result, table):
    key = table.split(".")
    mats = [e.materialization for e in result.get_asset_materialization_events() if e.asset_key.path == key]
    return mats[-1].metadata["published_version"].value


def test_the_gold_job_publishes_each_table_once_its_checks_pass(world):
    settings, _, _, result = world
    store = DeltaStore(settings.tables_dir)
    for table in EVENT_GOLD:
        version = store.version(table)
        assert publish.published_version(settings, table) == version >= 0
        assert _published_metadata(result, table) == version
        keys = list(table_spec(table).key)
        assert _sorted(read_published(settings, table), keys).equals(_sorted(store.read(table), keys))


def test_a_gold_run_whose_check_fails_leaves_the_published_version_and_the_next_run_publishes(world, monkeypatch):
    import dagster as dg

    import assets.gold as gold_module

    settings, manifest, instance, _ = world
    store = DeltaStore(settings.tables_dir)
    day = min(manifest["days_detail"])
    before = {t: publish.published_version(settings, t) for t in EVENT_GOLD}
    funnel_rows = read_published(settings, "gold.daily_funnel")
    real = gold_module.gx_check_result

    def funnel_fails(table, written):
        result = real(table, written)
        if table != "gold.daily_funnel":
            return result
        return dg.AssetCheckResult(check_name=result.check_name, asset_key=result.asset_key, passed=False)

    monkeypatch.setattr(gold_module, "gx_check_result", funnel_fails)
    failed = _run_gold(settings, instance, day)
    assert not failed.success
    assert publish.published_version(settings, "gold.daily_funnel") == before["gold.daily_funnel"]
    assert store.version("gold.daily_funnel") > before["gold.daily_funnel"]  # written, not published
    assert read_published(settings, "gold.daily_funnel").equals(funnel_rows)
    assert _published_metadata(failed, "gold.daily_funnel") == before["gold.daily_funnel"]
    kpis_now = publish.published_version(settings, "gold.daily_kpis")
    assert kpis_now == store.version("gold.daily_kpis") > before["gold.daily_kpis"]  # its checks passed

    monkeypatch.setattr(gold_module, "gx_check_result", real)
    assert _run_gold(settings, instance, day).success
    for table in EVENT_GOLD:
        keys = list(table_spec(table).key)
        assert publish.published_version(settings, table) == store.version(table)
        assert _sorted(read_published(settings, table), keys).equals(_sorted(store.read(table), keys))
