"""Schema evolution end to end: a producer moves to v2 of an event while others stay on v1, in the same day and
later days; the tables evolve without rewriting old data, and a breaking v3 is refused before any data flows."""

import datetime as dt
import json
import shutil

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from lenslake.contracts.registry import PACKAGE_DIR, IncompatibleSchemaError, Registry
from lenslake.delta import DeltaStore
from lenslake.settings import get_settings
from orchestration.runner import dagster_instance, run_events_job
from tests.conftest import make_event

SEARCH = "lenslake.events.search"
DAY1, DAY2 = "2026-11-16", "2026-11-17"


def search_v2(v1: dict) -> dict:
    """v2 adds an optional field (null when absent) and a field with a default (false when absent)."""
    v2 = json.loads(json.dumps(v1))
    props = next(f for f in v2["fields"] if f["name"] == "properties")["type"]["fields"]
    props.append({"name": "filters", "type": ["null", "string"], "default": None, "maxLength": 500,
                  "doc": "facet filters applied with the search, e.g. shape:round"})
    props.append({"name": "autocomplete_used", "type": "boolean", "default": False,
                  "doc": "the query was picked from the autocomplete list"})
    return v2


def land(settings, day: str, events: list[dict]) -> None:
    folder = settings.events_landing_dir / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events-000.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n")


def v2(event: dict, **props) -> dict:
    return {**event, "schema_version": 2, "properties": {**event["properties"], **props}}


def files(store: DeltaStore, table: str, column: str, day: str) -> set[str]:
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(str(store.path(table))).get_add_actions(flatten=True)).to_pylist()
    return {a["path"] for a in actions if str(a[f"partition.{column}"]) == day}


def raw(store: DeltaStore, table: str, column: str, day: str) -> list:
    """Values as stored in the Delta files, without the defaults the readers apply."""
    from deltalake import DeltaTable

    t = DeltaTable(str(store.path(table))).to_pyarrow_dataset().to_table(filter=ds.field(column) == dt.date.fromisoformat(day))
    return t.column("autocomplete_used").to_pylist() if "autocomplete_used" in t.column_names else [None] * t.num_rows


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    root = tmp_path_factory.mktemp("evolution")
    registry_dir = root / "registry"
    shutil.copytree(PACKAGE_DIR, registry_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("LENSLAKE_REGISTRY_DIR", str(registry_dir))
    settings = get_settings(data_root=root / "lake", engine="duckdb", registry_dir=registry_dir)
    store, instance = DeltaStore(settings.tables_dir), dagster_instance(settings)

    def at(day, hour, minute=0):
        return f"{day}T{hour:02d}:{minute:02d}:00.000Z"

    # Day 1: every producer on v1.
    land(settings, DAY1, [make_event("page_view", time=at(DAY1, 10), device="d_1"),
                          make_event("search", time=at(DAY1, 10, 1), device="d_1"),
                          make_event("search", time=at(DAY1, 11), device="d_2")])
    assert run_events_job(settings, [DAY1], instance=instance).success
    before = {
        "bronze_files": files(store, "bronze.events", "ingest_date", DAY1),
        "silver_files": files(store, "silver.events", "event_date", DAY1),
        "gold": store.read("gold.daily_kpis").to_pylist(),
        "funnel": store.read("gold.daily_funnel").to_pylist(),
    }

    # The app moves to v2; the web stays on v1. Registered before any v2 event lands.
    registry = Registry(registry_dir)
    v1 = registry.latest(SEARCH).document
    assert registry.register(search_v2(v1)).version == 2
    # A breaking v3 (results_count becomes a string) is refused at registration: nothing is registered.
    v3 = search_v2(v1)
    props = next(f for f in v3["fields"] if f["name"] == "properties")["type"]["fields"]
    next(f for f in props if f["name"] == "results_count")["type"] = "string"
    with pytest.raises(IncompatibleSchemaError) as refused:
        registry.register(v3)

    s = make_event("search", time=at(DAY2, 9), device="d_3")
    land(settings, DAY2, [
        make_event("search", time=at(DAY2, 9), device="d_4"),  # web, v1
        v2(s, filters="shape:round", autocomplete_used=True),  # app, v2 with both fields
        v2(make_event("search", time=at(DAY2, 9, 5), device="d_3")),  # v2 leaving both out: null and the default
        v2(make_event("search", time=at(DAY2, 9, 6), device="d_3"), autocomplete_used="yes"),  # wrong type
        {**make_event("search", time=at(DAY2, 9, 7), device="d_3"), "schema_version": 3},  # not registered
    ])
    assert run_events_job(settings, [DAY2], instance=instance).success
    yield settings, store, registry, before, str(refused.value)
    mp.undo()


def test_a_breaking_version_is_refused_at_registration_naming_field_and_rule(evolved):
    _, _, registry, _, refusal = evolved
    assert "properties.results_count" in refusal and "BACKWARD" in refusal
    assert [r.version for r in registry.versions(SEARCH)] == [1, 2]


def test_v1_and_v2_events_of_the_same_day_both_reach_bronze_and_silver(evolved):
    _, store, _, _, _ = evolved
    day2 = store.read("bronze.events").filter(ds.field("ingest_date") == dt.date(2026, 11, 17))
    assert sorted(zip(day2.column("schema_version").to_pylist(), day2.column("filters").to_pylist(),
                      day2.column("autocomplete_used").to_pylist()), key=str) == sorted(
        [(1, None, None), (2, "shape:round", True), (2, None, None)], key=str)
    silver = store.read("silver.events").filter(ds.field("event_date") == dt.date(2026, 11, 17))
    assert sorted(zip(silver.column("schema_version").to_pylist(), silver.column("autocomplete_used").to_pylist())) == [
        (1, False), (2, False), (2, True)]


def test_invalid_and_unregistered_versions_are_quarantined_with_their_reason(evolved):
    _, store, _, _, _ = evolved
    q = store.read("bronze.events_quarantine").filter(ds.field("ingest_date") == dt.date(2026, 11, 17))
    assert sorted(zip(q.column("reason_code").to_pylist(), q.column("field_path").to_pylist())) == [
        ("unknown_schema", "$.schema"), ("wrong_type", "$.properties.autocomplete_used")]


def test_the_delta_schema_evolves_without_rewriting_old_data(evolved):
    _, store, _, before, _ = evolved
    for table in ("bronze.events", "silver.events"):
        assert {"filters", "autocomplete_used"} <= set(store.columns(table))
    assert files(store, "bronze.events", "ingest_date", DAY1) == before["bronze_files"]
    assert files(store, "silver.events", "event_date", DAY1) == before["silver_files"]


def test_old_rows_read_the_default_in_silver_while_delta_keeps_their_nulls(evolved):
    _, store, _, _, _ = evolved
    assert raw(store, "silver.events", "event_date", DAY1) == [None, None, None]
    day1 = store.read("silver.events").filter(ds.field("event_date") == dt.date(2026, 11, 16))
    assert day1.column("autocomplete_used").to_pylist() == [False, False, False]
    assert day1.column("filters").to_pylist() == [None, None, None]  # an optional field's default is null
    # Bronze keeps what was sent: v1 rows have no value.
    bronze1 = store.read("bronze.events").filter(ds.field("ingest_date") == dt.date(2026, 11, 16))
    assert bronze1.column("autocomplete_used").to_pylist() == [None, None, None]


def test_gold_is_unchanged_for_the_old_rows(evolved):
    _, store, _, before, _ = evolved
    kpis = [r for r in store.read("gold.daily_kpis").to_pylist() if str(r["event_date"]) == DAY1]
    assert kpis == before["gold"]
    funnel = [r for r in store.read("gold.daily_funnel").to_pylist() if str(r["session_date"]) == DAY1]
    assert funnel == [r for r in before["funnel"] if str(r["session_date"]) == DAY1]
