"""The code location loads, and its graph is what the snapshot says (a graph change is a reviewed diff)."""

import dagster as dg

from orchestration.definitions import defs

EXPECTED_ASSETS = {
    "bronze/events": ([], "bronze"),
    "bronze/events_quarantine": ([], "bronze"),
    "bronze/kafka_events": ([], "bronze"),
    "silver/events": (["bronze/events", "bronze/kafka_events"], "silver"),
    "silver/bot_events": (["bronze/events", "bronze/kafka_events"], "silver"),
    "silver/sessions": (["silver/events"], "silver"),
    "gold/daily_kpis": (["silver/events"], "gold"),
    "gold/daily_funnel": (["silver/sessions"], "gold"),
    "catalog/products": ([], "catalog"),
    **{f"catalog/{t}": (["catalog/products"], "catalog")
       for t in ("eyewear_attributes", "media", "taxonomy_nodes", "product_relations", "prices", "inventory",
                 "feed_quarantine", "invalidations")},
    "gold/catalog_quality": (["catalog/eyewear_attributes", "catalog/feed_quarantine", "catalog/inventory",
                             "catalog/media", "catalog/prices", "catalog/products"], "catalog"),
    "privacy/user_keys": ([], "profiles"),
    "profiles/customers": (["privacy/user_keys"], "profiles"),
    "profiles/prescriptions": (["privacy/user_keys"], "profiles"),
    "profiles/service_history": ([], "profiles"),
    "profiles/feed_quarantine": ([], "profiles"),
    "privacy/consent_ledger": ([], "profiles"),
    "privacy/current_consent": (["privacy/consent_ledger"], "profiles"),
    "profiles/behaviour": (["profiles/customers", "silver/events"], "profiles"),
    "profiles/marketing_audience": (["privacy/current_consent", "profiles/customers"], "profiles"),
    "vectors/product_embeddings": (["catalog/eyewear_attributes", "catalog/products"], "vectors"),
    "vectors/content_embeddings": (["catalog/products", "silver/events"], "vectors"),
    "vectors/user_embeddings": (["silver/events", "vectors/product_embeddings"], "vectors"),
    "vectors/product_segments": (["vectors/product_embeddings"], "vectors"),
}
EXPECTED_CHECKS = {
    "bronze/events:landed_lines_reconcile",
    "bronze/kafka_events:kafka_messages_reconcile",
    "bronze/events:gx_events_suite",
    "silver/events:gx_events_suite",
    "silver/sessions:gx_sessions_suite",
    "gold/daily_kpis:gx_daily_kpis_suite",
    "gold/daily_funnel:gx_daily_funnel_suite",
    "gold/daily_kpis:daily_kpis_contract_schema",
    "gold/daily_funnel:daily_funnel_contract_schema",
    "gold/daily_kpis:daily_kpis_freshness",
    "gold/daily_funnel:daily_funnel_freshness",
    # the product database's quality metrics: a contracted gold table like the others
    "gold/catalog_quality:gx_catalog_quality_suite",
    "gold/catalog_quality:catalog_quality_contract_schema",
    "gold/catalog_quality:catalog_quality_freshness",
    # referential integrity of the product database (blocking)
    "catalog/inventory:inventory_rows_have_a_product",
    "catalog/prices:price_rows_have_a_product",
    "catalog/eyewear_attributes:attribute_rows_have_a_product",
    "catalog/media:media_rows_have_a_product",
    "catalog/product_relations:relations_join_two_products",
    "catalog/taxonomy_nodes:taxonomy_edges_point_at_nodes",
    # what the core catalog tables hold after a run (blocking)
    *{f"catalog/{t}:gx_{t}_suite" for t in ("products", "prices", "inventory", "media", "product_relations")},
    # profiles: people feeds reconcile, only declared fields are stored (blocking)
    "profiles/feed_quarantine:people_feeds_reconcile",
    "profiles/customers:profiles_minimization",
    "profiles/marketing_audience:no_audience_without_consent",
    # the product vectors are valid and in step with the product master (blocking)
    *{f"vectors/product_embeddings:embedding_{c}"
      for c in ("dimension", "finite", "unit_norm", "unique_ids", "consistent_with_catalog")},
    # content vectors (descriptions, search queries) are valid and in step with their sources (blocking)
    *{f"vectors/content_embeddings:content_embedding_{c}"
      for c in ("dimension", "finite", "unit_norm", "unique_ids", "consistent_with_sources")},
    # user vectors are valid and exist only for users with personalization consent (blocking)
    *{f"vectors/user_embeddings:user_embedding_{c}" for c in ("dimension", "finite", "unit_norm")},
    "vectors/user_embeddings:no_vector_without_consent",
}
# Catalog feed days are applied in order on top of the previous day's state (type-2 prices, stock), one run applying
# every pending day: not partitions that could run out of order.
UNPARTITIONED = {"bronze/kafka_events", "gold/catalog_quality"} | {k for k in EXPECTED_ASSETS if k.startswith(("catalog/", "profiles/", "privacy/", "vectors/"))}
# Freshness is a warning: a late table is still served, and nothing downstream waits for it.
WARNINGS = {"gold/daily_kpis:daily_kpis_freshness", "gold/daily_funnel:daily_funnel_freshness",
            "gold/catalog_quality:catalog_quality_freshness"}


def test_the_asset_graph_matches_its_snapshot():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(EXPECTED_ASSETS)
    for key, (deps, group) in EXPECTED_ASSETS.items():
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert sorted(p.to_user_string() for p in node.parent_keys) == deps, key
        assert node.group_name == group
        # the Kafka ingest runs to the end offsets seen at its start, whatever the day; the rest is daily
        assert (node.partitions_def is None) == (key in UNPARTITIONED), key
    checks = {f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS


def test_gates_between_layers_are_blocking_checks():
    graph = defs.resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        assert graph.get_check_spec(check_key).blocking == (name not in WARNINGS), name


def test_job_schedule_and_sensor_are_defined():
    job = defs.resolve_job_def("daily_events_job")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("daily_events_job_schedule")
    assert schedule.job_name == "daily_events_job"
    assert defs.resolve_sensor_def("landing_day_sensor").job_name == "daily_events_job"
    assert defs.resolve_sensor_def("kafka_lag_sensor").job_name == "kafka_ingest_job"
    assert defs.resolve_sensor_def("catalog_change_sensor").job_name == "vectors_job"
    assert defs.resolve_sensor_def("user_vectors_sensor").job_name == "user_vectors_job"
    assert defs.resolve_sensor_def("content_vectors_sensor").job_name == "content_vectors_job"
    assert {k.to_user_string() for k in defs.resolve_job_def("content_vectors_job").asset_layer.selected_asset_keys} \
        == {"vectors/content_embeddings"}
    assert {k.to_user_string() for k in defs.resolve_job_def("user_vectors_job").asset_layer.selected_asset_keys} \
        == {"vectors/user_embeddings", "vectors/product_segments"}
    daily = defs.resolve_job_def("daily_events_job")
    assert "bronze/kafka_events" not in {k.to_user_string() for k in daily.asset_layer.selected_asset_keys}


def test_the_landing_sensor_requests_each_new_day_once(settings):
    from orchestration.resources import Lakehouse

    sensor = defs.resolve_sensor_def("landing_day_sensor")
    lakehouse = Lakehouse(data_root=str(settings.data_root))
    for day in ("2026-11-16", "2026-11-17"):
        folder = settings.events_landing_dir / day
        folder.mkdir(parents=True)
        (folder / "events-000.ndjson").write_text("{}\n")
    with dg.build_sensor_context(resources={"lakehouse": lakehouse}) as ctx:
        first = list(sensor(ctx))
        assert [r.partition_key for r in first] == ["2026-11-16", "2026-11-17"]
        cursor = ctx.cursor
    with dg.build_sensor_context(cursor=cursor, resources={"lakehouse": lakehouse}) as ctx:
        second = list(sensor(ctx))
        assert all(isinstance(r, dg.SkipReason) for r in second)


def test_the_daily_schedule_asks_for_the_day_that_just_ended():
    import datetime as dt

    schedule = defs.resolve_schedule_def("daily_events_job_schedule")
    tick = dt.datetime(2026, 11, 17, 2, 0, tzinfo=dt.timezone.utc)
    with dg.build_schedule_context(scheduled_execution_time=tick) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-16"]
