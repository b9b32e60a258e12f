"""Table migrations: idempotent operations on real Delta tables, a runner that records what it applied, the CLI."""

import dataclasses
import datetime as dt
import hashlib
import textwrap

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lenslake.delta import DeltaStore
from lenslake.migrations import MIGRATIONS_TABLE, MigrationContext, MigrationError, Migrator, load_scripts
from lenslake.tables import C, TableSpec, catalogue, table_spec

D1, D2, D3 = dt.date(2026, 11, 16), dt.date(2026, 11, 17), dt.date(2026, 11, 18)
TABLE = "scratch.frames"
BASE = (
    C("sku", "string", "product", nullable=False),
    C("sold_on", "date", "day of sale", nullable=False),
    C("category", "string", "frame category"),
    C("units", "int64", "units sold", nullable=False),
)
V1 = TableSpec(TABLE, "frames sold per day (a scratch table for these tests)", BASE, partition_by=("sold_on",))


def frames(day=D1, n=3, **columns):
    data = {"sku": [f"OF{day:%d}{i:04d}" for i in range(n)], "sold_on": [day] * n,
            "category": (["optical", None, "sun"] * n)[:n], "units": pa.array(range(n), pa.int64())}
    return pa.table({**data, **columns})


@pytest.fixture
def store(tmp_path):
    return DeltaStore(tmp_path / "tables")


@pytest.fixture
def declare(monkeypatch):
    """Declare (or re-declare) a table in the catalogue for one test, as a change of lenslake/tables.py would."""

    def declare(spec):
        monkeypatch.setitem(catalogue(), spec.name, spec)
        return spec

    return declare


@pytest.fixture
def frames_table(store, declare):
    """scratch.frames with 9 rows over 3 days, created under its first declared shape."""
    declare(V1)
    for day in (D1, D2, D3):
        store.append(TABLE, frames(day))
    return store


def delta(store, name=TABLE, version=None):
    return DeltaTable(str(store.path(name)), version=version)


def rows(store, name=TABLE):
    return sorted(store.read(name).to_pylist(), key=lambda r: (r["sold_on"], r["sku"]))


# --- operations ----------------------------------------------------------------------------------------------------


def test_add_column_adds_a_nullable_column_old_rows_read_null_and_a_second_add_commits_nothing(frames_table, declare):
    store = frames_table
    declare(dataclasses.replace(V1, columns=BASE + (C("lens_index", "double", "refractive index of the lens"),)))
    ctx = MigrationContext(store, "0042")
    version = store.version(TABLE)

    ctx.add_column(TABLE, "lens_index", "double", "refractive index of the lens")

    field = pa.schema(delta(store).schema().to_arrow()).field("lens_index")
    assert field.type == pa.float64() and field.nullable and field.metadata == {b"comment": b"refractive index of the lens"}
    assert [r["lens_index"] for r in rows(store)] == [None] * 9
    assert store.version(TABLE) == version + 1 and ctx.changed
    assert store.history(TABLE, 1)[0]["lenslake.migration"] == "0042"
    # writers cast to the declared schema: with the column in the table they write it
    store.append(TABLE, frames(D3, 1, sku=["NEW"], lens_index=[1.67]))
    assert [r["lens_index"] for r in rows(store) if r["sku"] == "NEW"] == [1.67]

    again = MigrationContext(store, "0042")
    assert "already exists" in again.add_column(TABLE, "lens_index", "double", "refractive index of the lens")
    assert not again.changed and store.version(TABLE) == version + 2


def test_add_column_refuses_a_column_the_catalogue_does_not_declare(frames_table):
    with pytest.raises(MigrationError, match="declare column 'coating'"):
        MigrationContext(frames_table, "0001").add_column(TABLE, "coating", "string", "lens coating")
    assert "coating" not in delta(frames_table).schema().to_arrow().names


def test_add_constraint_is_recorded_in_the_table_properties_and_a_violating_append_is_refused(frames_table):
    store = frames_table
    ctx = MigrationContext(store, "0002")
    ctx.add_constraint(TABLE, "units_non_negative", "units >= 0")

    assert delta(store).metadata().configuration["delta.constraints.units_non_negative"] == "units >= 0"
    version = store.version(TABLE)
    with pytest.raises(ValueError, match="rows break the table's CHECK constraints") as refused:
        store.append(TABLE, frames(D1, 1, sku=["SECRET-SKU"], units=pa.array([-1], pa.int64())))
    assert "SECRET-SKU" not in str(refused.value)  # delta-rs's preview of the rows is withheld
    assert store.version(TABLE) == version and store.count(TABLE) == 9


def test_adding_a_constraint_again_commits_nothing_even_when_delta_rs_rewrote_the_expression(frames_table):
    store = frames_table
    MigrationContext(store, "0002").add_constraint(TABLE, "units_small", "units BETWEEN 0 AND 100")
    stored = delta(store).metadata().configuration["delta.constraints.units_small"]
    assert stored == "units >= 0 AND units <= 100"  # delta-rs simplifies what it stores
    version = store.version(TABLE)

    again = MigrationContext(store, "0002")
    assert "nothing to do" in again.add_constraint(TABLE, "units_small", "units BETWEEN 0 AND 100")
    assert not again.changed and store.version(TABLE) == version
    with pytest.raises(MigrationError, match="already has a constraint 'units_small'"):
        MigrationContext(store, "0003").add_constraint(TABLE, "units_small", "units <= 10")


def test_a_constraint_existing_rows_break_is_not_added_and_the_rows_are_not_shown(frames_table):
    store = frames_table
    version = store.version(TABLE)
    with pytest.raises(MigrationError, match="existing rows break units_positive") as error:
        MigrationContext(store, "0002").add_constraint(TABLE, "units_positive", "units > 0")
    assert "OF16" not in str(error.value)
    assert store.version(TABLE) == version
    assert not any(k.startswith("delta.constraints.") for k in delta(store).metadata().configuration)


def test_rename_adds_the_new_column_backfilled_with_the_old_values_in_every_row_and_keeps_the_old(frames_table, declare):
    store = frames_table
    declare(dataclasses.replace(V1, columns=BASE + (C("frame_category", "string", "frame category (was category)"),)))
    before = rows(store)

    MigrationContext(store, "0003").rename_column(TABLE, "category", "frame_category")

    after = rows(store)
    assert [r["frame_category"] for r in after] == [r["category"] for r in before]  # nulls stay null
    assert [r["category"] for r in after] == [r["category"] for r in before]  # the old column is kept
    assert [h["operation"] for h in store.history(TABLE, 2)] == ["UPDATE", "ADD COLUMN"]
    assert store.history(TABLE, 1)[0]["operationParameters"]["predicate"] == "frame_category IS NULL AND category IS NOT NULL"

    store.append(TABLE, frames(D3, 1, sku=["NEW"], category=pa.nulls(1, pa.string()), frame_category=["sun"]))
    version = store.version(TABLE)
    again = MigrationContext(store, "0003")
    assert "nothing to backfill" in again.rename_column(TABLE, "category", "frame_category")
    assert not again.changed and store.version(TABLE) == version
    assert [r["frame_category"] for r in rows(store) if r["sku"] == "NEW"] == ["sun"]


def test_repartition_rewrites_the_snapshot_in_one_commit_with_the_same_rows_and_none_of_the_old_files(frames_table, declare):
    store = frames_table
    MigrationContext(store, "0004").add_constraint(TABLE, "units_non_negative", "units >= 0")
    old = delta(store)
    old_files, old_schema, version, before = set(old.file_uris()), old.schema().to_arrow(), old.version(), rows(store)

    MigrationContext(store, "0005").repartition(TABLE, ("category",))

    new = delta(store)
    assert new.metadata().partition_columns == ["category"]
    assert new.version() == version + 1 and store.history(TABLE, 1)[0]["lenslake.migration"] == "0005"
    assert rows(store) == before and store.count(TABLE) == 9
    assert pa.schema(new.schema().to_arrow()) == pa.schema(old_schema)  # nullability kept
    assert old_files.isdisjoint(new.file_uris())
    assert all("/category=" in uri for uri in new.file_uris())
    assert new.metadata().configuration["delta.constraints.units_non_negative"] == "units >= 0"
    assert delta(store, version=version).to_pyarrow_table().num_rows == 9  # time travel still reads the old files

    again = MigrationContext(store, "0005")
    assert "already partitioned" in again.repartition(TABLE, ["category"])
    assert not again.changed and store.version(TABLE) == version + 1
    # once the catalogue declares the new partitioning, writers append to it
    declare(dataclasses.replace(V1, partition_by=("category",)))
    store.append(TABLE, frames(D1, 1, sku=["NEW"]))
    assert store.count(TABLE) == 10


def test_repartition_to_no_partitions_unpartitions_the_table(frames_table):
    # write_deltalake(partition_by=None) would keep the old partitioning: the operation passes []
    MigrationContext(frames_table, "0006").repartition(TABLE, ())
    assert delta(frames_table).metadata().partition_columns == []
    assert frames_table.count(TABLE) == 9


def test_operations_on_a_table_not_created_yet_do_nothing_and_say_so(store, declare):
    declare(dataclasses.replace(V1, columns=BASE + (C("frame_category", "string", "frame category"),)))
    ctx = MigrationContext(store, "0007")
    ctx.add_column(TABLE, "frame_category", "string", "frame category")
    ctx.add_constraint(TABLE, "units_non_negative", "units >= 0")
    ctx.rename_column(TABLE, "category", "frame_category")
    ctx.repartition(TABLE, ("category",))
    assert len(ctx.notes) == 4 and all("does not exist yet" in n for n in ctx.notes)
    assert not ctx.changed and not store.exists(TABLE)


def test_a_table_declaring_constraints_is_created_with_them_so_its_first_write_is_checked(store, declare):
    declare(dataclasses.replace(V1, constraints=(("units_non_negative", "units >= 0"),)))
    with pytest.raises(ValueError, match="CHECK constraints"):
        store.append(TABLE, frames(D1, 2, units=pa.array([1, -5], pa.int64())))
    assert store.count(TABLE) == 0
    written = store.append(TABLE, frames(D1, 2))
    assert written.rows == 2 and store.count(TABLE) == 2
    with pytest.raises(ValueError, match="nothing was merged"):
        store.merge(TABLE, frames(D1, 1, units=pa.array([-1], pa.int64())), on=("sku",))
    assert [r["units"] for r in rows(store)] == [0, 1]
    config = delta(store).metadata().configuration
    assert config["delta.constraints.units_non_negative"] == "units >= 0"
    assert config["delta.dataSkippingStatsColumns"] == "sku,sold_on,category,units"


# --- the runner ----------------------------------------------------------------------------------------------------


def script(directory, filename, body, description=None):
    """Write a migration script m<id>_<slug>.py declaring ID, DESCRIPTION and up(ctx) with ``body``."""
    directory.mkdir(parents=True, exist_ok=True)
    id_ = filename[1:5]
    text = f'ID = "{id_}"\nDESCRIPTION = "{description or filename[6:-3].replace("_", " ")}"\n\n\ndef up(ctx):\n'
    text += textwrap.indent(textwrap.dedent(body).strip() or "pass", "    ") + "\n"
    path = directory / filename
    path.write_text(text)
    return path


@pytest.fixture
def scripts(tmp_path, declare):
    """Three migrations of scratch.frames, written out of order: a column, a constraint, a repartition."""
    declare(dataclasses.replace(V1, columns=BASE + (C("lens_index", "double", "refractive index"),)))
    d = tmp_path / "versions"
    script(d, "m0003_partition_frames_by_category.py", 'ctx.repartition("scratch.frames", ("category",))')
    script(d, "m0001_add_lens_index.py", 'ctx.add_column("scratch.frames", "lens_index", "double", "refractive index")')
    script(d, "m0002_units_non_negative.py", 'ctx.add_constraint("scratch.frames", "units_non_negative", "units >= 0")')
    return d


def recorded(store):
    return sorted(store.read(MIGRATIONS_TABLE).to_pylist(), key=lambda r: r["applied_at"])


def test_up_applies_pending_migrations_in_id_order_and_records_each_with_its_checksum(frames_table, scripts):
    store = frames_table
    applied = Migrator(store, scripts).up()

    assert [a.id for a in applied] == ["0001", "0002", "0003"]
    records = recorded(store)
    assert [r["id"] for r in records] == ["0001", "0002", "0003"]
    for r in records:
        path = next(scripts.glob(f"m{r['id']}_*.py"))
        assert r["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert r["outcome"] == "applied" and r["duration_ms"] >= 0 and r["applied_at"].tzinfo is not None
    assert records[1]["description"] == "units non negative"
    assert "scratch.frames constraint units_non_negative added (units >= 0)" in records[1]["notes"]
    table = delta(store)
    assert table.metadata().partition_columns == ["category"] and "lens_index" in table.schema().to_arrow().names
    assert [h.get("lenslake.migration") for h in store.history(TABLE, 3)] == ["0003", "0002", "0001"]
    assert [s.state for s in Migrator(store, scripts).status()] == ["applied"] * 3


def test_running_up_again_applies_nothing_and_moves_no_table_version(frames_table, scripts):
    store = frames_table
    Migrator(store, scripts).up()
    versions = store.version(TABLE), store.version(MIGRATIONS_TABLE)

    assert Migrator(store, scripts).up() == []
    assert (store.version(TABLE), store.version(MIGRATIONS_TABLE)) == versions
    assert len(recorded(store)) == 3


def test_a_failing_migration_is_not_recorded_and_stops_the_later_ones(frames_table, scripts):
    store = frames_table
    bad = script(scripts, "m0002_units_non_negative.py", 'ctx.add_constraint("scratch.frames", "units_positive", "units > 0")')

    with pytest.raises(MigrationError, match=r"migration 0002 \(units non negative\) failed: .*existing rows break units_positive"):
        Migrator(store, scripts).up()

    assert [r["id"] for r in recorded(store)] == ["0001"]
    assert delta(store).metadata().partition_columns == ["sold_on"]  # 0003 did not run
    assert [(s.id, s.state) for s in Migrator(store, scripts).status()] == [
        ("0001", "applied"), ("0002", "pending"), ("0003", "pending")]

    script(scripts, bad.name, 'ctx.add_constraint("scratch.frames", "units_non_negative", "units >= 0")',
           description="units non negative")
    assert [a.id for a in Migrator(store, scripts).up()] == ["0002", "0003"]


def test_status_reports_a_script_changed_since_it_was_applied_and_up_refuses_to_run(frames_table, scripts):
    store = frames_table
    Migrator(store, scripts).up()
    path = next(scripts.glob("m0002_*.py"))
    path.write_text(path.read_text().replace("units >= 0", "units >= 1"))
    script(scripts, "m0004_nothing.py", "")

    assert [(s.id, s.state) for s in Migrator(store, scripts).status()] == [
        ("0001", "applied"), ("0002", "changed"), ("0003", "applied"), ("0004", "pending")]
    with pytest.raises(MigrationError, match=r"differ from their scripts: 0002 \(changed\)"):
        Migrator(store, scripts).up()
    assert len(recorded(store)) == 3
    next(scripts.glob("m0003_*.py")).unlink()
    assert [s.state for s in Migrator(store, scripts).status()] == ["applied", "changed", "missing", "pending"]


def test_a_migration_of_a_table_not_created_yet_is_recorded_as_a_no_op_with_a_note(store, scripts):
    applied = Migrator(store, scripts).up()
    assert [a.outcome for a in applied] == ["no-op"] * 3
    assert all("does not exist yet" in r["notes"] for r in recorded(store))
    assert not store.exists(TABLE)


def test_scripts_must_be_named_by_id_and_declare_it(tmp_path):
    script(tmp_path / "a", "m0001_first.py", "")
    (tmp_path / "a" / "m0001_first.py").write_text('ID = "0002"\nDESCRIPTION = "x"\n\n\ndef up(ctx):\n    pass\n')
    with pytest.raises(MigrationError, match="declares ID '0002'"):
        load_scripts(tmp_path / "a")
    script(tmp_path / "b", "m01_short.py", "")
    with pytest.raises(MigrationError, match="m<4 digits>_<slug>.py"):
        load_scripts(tmp_path / "b")


# --- the repo's own migrations ---------------------------------------------------------------------------------------

GOLD_CONSTRAINTS = (
    ("counts_non_negative", "events >= 0 AND sessions >= 0 AND orders >= 0"),
    ("conversion_rate_non_negative", "conversion_rate >= 0"),
)


def kpis(day=D1, **overrides):
    spec = table_spec("gold.daily_kpis")
    row = {c.name: 0 for c in spec.columns} | {"event_date": day, "events": 10, "sessions": 2, "orders": 1,
                                                 "conversion_rate": 0.5} | overrides
    return pa.Table.from_pylist([row], schema=spec.arrow_schema)


def test_the_repo_migrations_load_in_order_with_one_line_descriptions():
    scripts = load_scripts()
    assert scripts and [s.id for s in scripts] == sorted(s.id for s in scripts)
    assert scripts[0].id == "0001" and "CHECK constraints" in scripts[0].description


def test_m0001_brings_a_gold_table_created_before_its_constraints_to_the_declared_ones(store, declare):
    spec = declare(dataclasses.replace(table_spec("gold.daily_kpis"), constraints=()))
    store.append("gold.daily_kpis", kpis())  # created before the catalogue declared constraints
    declare(dataclasses.replace(spec, constraints=GOLD_CONSTRAINTS))

    (applied,) = Migrator(store).up()

    config = delta(store, "gold.daily_kpis").metadata().configuration
    assert {k: v for k, v in config.items() if k.startswith("delta.constraints.")} == {
        f"delta.constraints.{name}": expression for name, expression in GOLD_CONSTRAINTS}
    assert applied.outcome == "applied" and any("gold.daily_funnel does not exist yet" in n for n in applied.notes)
    with pytest.raises(ValueError, match="CHECK constraints"):
        store.append("gold.daily_kpis", kpis(D2, conversion_rate=-0.1))


def test_m0001_refuses_a_gold_table_whose_spec_declares_no_constraints(store, declare):
    declare(dataclasses.replace(table_spec("gold.daily_kpis"), constraints=()))
    store.append("gold.daily_kpis", kpis())
    with pytest.raises(MigrationError, match="gold.daily_kpis declares no constraints"):
        Migrator(store).up()
    assert store.read(MIGRATIONS_TABLE).num_rows == 0


# --- the command line ------------------------------------------------------------------------------------------------


def test_migrate_status_and_up_through_the_entry_point(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path)}

    def lenslake(*args):
        return subprocess.run([sys.executable, "-m", "lenslake.cli", "migrate", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    status = lenslake("status")
    assert status.returncode == 0 and status.stdout.splitlines()[0].startswith("0001  pending  -")
    up = lenslake("up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("0001  no-op") and "1 migration applied" in up.stdout
    status = lenslake("status")
    assert status.stdout.startswith("0001  applied  20") and "1 applied, 0 pending" in status.stdout
    again = lenslake("up")
    assert again.returncode == 0 and again.stdout.strip() == "nothing to apply: every migration is applied"


def test_migrate_up_failing_exits_non_zero_with_one_clear_line(tmp_path, monkeypatch, declare):
    from typer.testing import CliRunner

    from lenslake import cli
    from lenslake.migrations import runner

    declare(V1)
    DeltaStore(tmp_path / "lake" / "tables").append(TABLE, frames())
    d = tmp_path / "versions"
    script(d, "m0001_units_positive.py", 'ctx.add_constraint("scratch.frames", "units_positive", "units > 0")')
    script(d, "m0002_later.py", "")
    monkeypatch.setattr(runner, "VERSIONS_DIR", d)
    env = {"LENSLAKE_DATA_ROOT": str(tmp_path / "lake")}

    result = CliRunner().invoke(cli.app, ["migrate", "up"], env=env)

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: migration 0001 (units positive) failed")
    assert "Traceback" not in result.output
    status = CliRunner().invoke(cli.app, ["migrate", "status"], env=env)
    assert [line.split()[:2] for line in status.stdout.splitlines()[:2]] == [["0001", "pending"], ["0002", "pending"]]
