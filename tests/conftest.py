import datetime as dt
import json
import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture
def settings(tmp_path):
    from lenslake.settings import get_settings

    return get_settings(data_root=tmp_path / "lake", engine="duckdb")


@pytest.fixture
def engine(settings):
    from lenslake.engine import get_engine

    e = get_engine(settings)
    yield e
    e.release()


@pytest.fixture
def keys(settings):
    from lenslake.privacy.keys import load_keys

    return load_keys(settings)


_counter = iter(range(10**9))


def make_event(event_type="page_view", *, time="2026-11-16T10:00:00.000Z", device="d_1", user="U0000001",
               ua="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", ip="198.51.100.23", event_id=None, **props):
    """A valid raw event (a dict), with type-specific defaults that satisfy its contract."""
    defaults = {
        "page_view": {"page_type": "home"},
        "product_view": {"sku": "OF000001", "category": "optical_frames", "list_price": 120.0},
        "search": {"query": "round frames 52-18-140", "results_count": 12},
        "add_to_cart": {"sku": "OF000001", "quantity": 1, "unit_price": 120.0},
        "purchase": {"order_id": "O0000000001", "items": [{"sku": "OF000001", "quantity": 1, "unit_price": 120.0}],
                     "item_count": 1, "total_amount": 120.0, "currency": "EUR", "email": "jane@example.com",
                     "phone": "+44 20 7946 0000", "customer_name": "Jane Example", "shipping_street": "1 Test Street",
                     "shipping_city": "London", "shipping_postcode": "N1 1AA", "shipping_country": "GB"},
        "login": {"method": "password", "email": "jane@example.com"},
        "logout": {},
    }
    properties = {**defaults.get(event_type, {}), **props}
    return {
        "schema": event_type, "schema_version": 1, "event_id": event_id or f"{next(_counter):032x}",
        "event_time": time, "session_id": "cs_test", "anonymous_id": device, "user_id": user, "channel": "email",
        "device": "desktop", "platform": "web", "user_agent": ua, "ip": ip, "page_url": "/", "properties": properties,
    }


def lines_table(lines, source_file="landing/events/2026-11-16/events-000.ndjson"):
    """Raw lines (dicts are JSON-encoded) as the engine module's Arrow table of landing lines."""
    import tempfile
    from pathlib import Path

    from lenslake.engine import read_raw_lines

    text = "\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n"
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.ndjson"
        p.write_text(text)
        return read_raw_lines([(p, source_file)], dt.date(2026, 11, 16))


@pytest.fixture(scope="session")
def broker():
    """A real Kafka-protocol broker (Tansu, memory storage) on a free loopback port, shared by the Kafka tests;
    each test uses its own topic prefix."""
    from lenslake.kafka.broker import local_broker

    with local_broker() as bootstrap:
        yield bootstrap


ACCESS_NOW = dt.datetime(2026, 11, 17, 6, tzinfo=dt.timezone.utc)
CATALOG_DAYS = ("2026-11-15", "2026-11-16")


@pytest.fixture(scope="session")
def policy_lake(tmp_path_factory):
    """One small lake for the access-policy tests (`lenslake sql` and the API): a day of events through the Dagster
    events job (bronze, silver, published gold) and the first of two catalog feed days applied (the second is left
    for tests that change a price: `apply_pending(..., days=[CATALOG_DAYS[1]])`)."""
    import numpy as np

    from lenslake.catalog.apply import apply_pending
    from lenslake.delta import DeltaStore
    from lenslake.settings import get_settings
    from lenslake.synth.catalog import build_catalog
    from lenslake.synth.feeds import write_catalog_feeds
    from orchestration.runner import dagster_instance, run_events_job
    from tests.test_silver_gold import land

    root = tmp_path_factory.mktemp("access") / "lake"
    settings = get_settings(data_root=root, engine="duckdb", as_of=ACCESS_NOW)
    land(settings, "2026-11-16", [make_event("page_view"), make_event("purchase"), make_event("login"),
                                  '{"broken json', {"schema": "page_view"}])
    assert run_events_job(settings, instance=dagster_instance(settings)).success
    write_catalog_feeds(root, np.random.default_rng(7), build_catalog(np.random.default_rng(7), 60),
                        [dt.date.fromisoformat(d) for d in CATALOG_DAYS], seed=7)
    apply_pending(DeltaStore(settings.tables_dir), root, ACCESS_NOW, days=[CATALOG_DAYS[0]])
    return settings
