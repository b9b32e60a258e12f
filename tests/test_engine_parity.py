"""The same world through both engines gives the same silver and gold tables, row for row, value for value."""

import shutil

import pytest

from lenslake.delta import DeltaStore
from lenslake.engine import get_engine
from lenslake.settings import get_settings
from lenslake.tables import catalogue
from tests.test_silver_gold import run_days, two_days  # noqa: F401  (fixture)

# The tables the events pipeline writes (gold.catalog_quality is the catalog job's, written by Python, not an engine).
COMPARED = [name for name in catalogue() if name.split(".")[0] in ("silver", "gold") and name != "gold.catalog_quality"]


def canonical(table, key):
    rows = []
    for r in table.to_pylist():
        rows.append({k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()})
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in key))


def run_world(tmp_path, landing, engine_name, key_file, days):
    settings = get_settings(data_root=tmp_path / engine_name, engine=engine_name, key_file=key_file)
    shutil.copytree(landing, settings.landing_dir)
    engine = get_engine(settings)
    run_days(engine, settings, days)
    return DeltaStore(settings.tables_dir)


def assert_same_tables(duck, spark):
    for name in COMPARED:
        spec = catalogue()[name]
        a, b = duck.read(name), spark.read(name)
        assert a.schema == b.schema, name
        assert a.num_rows == b.num_rows and a.num_rows > 0, name
        assert canonical(a, spec.key) == canonical(b, spec.key), name


@pytest.mark.spark
def test_duckdb_and_spark_write_identical_silver_and_gold(tmp_path, settings, two_days):  # noqa: F811
    key_file = tmp_path / "shared-keys.json"
    duck = run_world(tmp_path, settings.landing_dir, "duckdb", key_file, two_days)
    spark = run_world(tmp_path, settings.landing_dir, "spark", key_file, two_days)
    assert_same_tables(duck, spark)


@pytest.mark.spark
def test_both_engines_agree_on_a_generated_world_with_its_dirt(tmp_path):
    """Bots, duplicates, late events, invalid and malformed lines: the same silver, gold and quarantine."""
    from lenslake.synth.world import generate_world

    world = tmp_path / "world"
    generate_world(world, days=3, users=1_000, events=12_000, seed=5)
    key_file = tmp_path / "shared-keys.json"
    days = sorted(p.name for p in (world / "landing" / "events").iterdir())
    duck = run_world(tmp_path, world / "landing", "duckdb", key_file, days)
    spark = run_world(tmp_path, world / "landing", "spark", key_file, days)
    assert_same_tables(duck, spark)
    quarantine = [duck.read("bronze.events_quarantine"), spark.read("bronze.events_quarantine")]
    keep = ["quarantine_id", "reason_code", "field_path", "violations", "payload"]
    assert canonical(quarantine[0].select(keep), ["quarantine_id"]) == canonical(quarantine[1].select(keep), ["quarantine_id"])


def test_a_spark_connect_address_nothing_answers_at_is_refused_at_once(tmp_path):
    """The Spark Connect client would retry for many minutes, deaf to SIGTERM: the engine refuses at once, naming
    the address and what to do."""
    from lenslake.engine import SparkEngine  # (get_engine would hand back a session an earlier test started)
    from lenslake.kafka.broker import free_port

    port = free_port()
    with pytest.raises(RuntimeError, match=f"cannot reach the Spark Connect server at 127.0.0.1:{port} .*LENSLAKE_SPARK_REMOTE"):
        SparkEngine(get_settings(data_root=tmp_path, engine="spark", spark_remote=f"sc://127.0.0.1:{port}/;user_id=x"))
