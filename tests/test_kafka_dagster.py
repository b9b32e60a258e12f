"""The Kafka ingest in Dagster: the asset (idle without a bootstrap), its metadata, and the lag sensor."""

import datetime as dt
import itertools

import dagster as dg

from orchestration.definitions import defs

_prefix = itertools.count()


def test_lag_decision():
    from jobs import lag_decision

    assert lag_decision(0, 100, None, 1000.0, 60) is None  # nothing to read
    assert "threshold" in lag_decision(100, 100, 999.0, 1000.0, 60)  # at the threshold: now
    assert lag_decision(5, 100, 999.0, 1000.0, 60) is None  # small lag, ingested a second ago: wait
    assert "no ingest for 1 min" in lag_decision(5, 100, 900.0, 1000.0, 60)  # small lag, waited long enough
    assert lag_decision(5, 100, None, 1000.0, 60) is not None  # never requested


def run_kafka_job(instance, data_root):
    from orchestration.resources import Lakehouse

    job = defs.resolve_job_def("kafka_ingest_job")
    return job.execute_in_process(instance=instance, resources={"lakehouse": Lakehouse(data_root=str(data_root))},
                                  raise_on_error=False)


def materialization(result, key="bronze/kafka_events"):
    [m] = [e.event_specific_data.materialization for e in result.all_events
           if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]
    assert m.asset_key.to_user_string() == key
    return {k: v.value for k, v in m.metadata.items()}


def check_results(result):
    return {e.event_specific_data.check_name: e.event_specific_data.passed for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}


def test_without_a_bootstrap_the_asset_is_idle_and_the_sensor_skips(tmp_path, monkeypatch):
    from orchestration.resources import Lakehouse

    monkeypatch.delenv("LENSLAKE_KAFKA_BOOTSTRAP", raising=False)
    with dg.instance_for_test() as instance:
        result = run_kafka_job(instance, tmp_path)
        assert result.success
        md = materialization(result)
        assert md["idle"] is True and "LENSLAKE_KAFKA_BOOTSTRAP" in md["message"]
    assert not (tmp_path / "tables").exists()
    sensor = defs.resolve_sensor_def("kafka_lag_sensor")
    with dg.build_sensor_context(resources={"lakehouse": Lakehouse(data_root=str(tmp_path))}) as ctx:
        skip = sensor(ctx)
    assert isinstance(skip, dg.SkipReason) and "not configured" in skip.skip_message


def test_the_sensor_fails_its_tick_with_one_clear_line_when_the_broker_cannot_be_reached(tmp_path, monkeypatch):
    import pytest

    from lenslake.kafka.broker import free_port
    from orchestration.resources import Lakehouse

    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("LENSLAKE_KAFKA_BOOTSTRAP", address)
    sensor = defs.resolve_sensor_def("kafka_lag_sensor")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources={"lakehouse": Lakehouse(data_root=str(tmp_path))}) as ctx:
            with pytest.raises(Exception, match=f"cannot reach the Kafka broker at {address}"):
                sensor(ctx)


def test_the_sensor_starts_an_ingest_run_on_lag_and_the_run_records_offsets_and_lag(broker, tmp_path, monkeypatch):
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics, status
    from lenslake.settings import get_settings
    from lenslake.synth.world import generate_world
    from orchestration.resources import Lakehouse

    world = tmp_path / "world"
    manifest = generate_world(world, days=1, users=200, events=1200, start=dt.date(2026, 11, 1), seed=5)
    prefix = f"d{next(_prefix)}.events."
    for name, value in {"LENSLAKE_KAFKA_BOOTSTRAP": broker, "LENSLAKE_KAFKA_TOPIC_PREFIX": prefix,
                        "LENSLAKE_KAFKA_PARTITIONS": "2", "LENSLAKE_KAFKA_LAG_THRESHOLD": "500",
                        "LENSLAKE_KAFKA_MAX_INTERVAL_MINUTES": "10", "LENSLAKE_ENGINE": "duckdb"}.items():
        monkeypatch.setenv(name, value)
    lake = tmp_path / "lake"
    settings = get_settings(data_root=lake)
    create_topics(settings)
    files = sorted((world / "landing" / "events").glob("*/*.ndjson"))
    report = publish_landing(settings, files, workers=1)
    assert report.ok and report.produced >= 500

    sensor = defs.resolve_sensor_def("kafka_lag_sensor")
    lakehouse = Lakehouse(data_root=str(lake))
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources={"lakehouse": lakehouse}) as ctx:
            request = sensor(ctx)
            cursor = ctx.cursor
        assert isinstance(request, dg.RunRequest)
        assert int(request.tags["lenslake/kafka_lag"]) == report.produced
        assert "threshold" in request.tags["lenslake/why"]

        result = run_kafka_job(instance, lake)
        assert result.success and check_results(result) == {"kafka_messages_reconcile": True}
        md = materialization(result)
        assert md["messages_read"] == report.produced == md["dagster/row_count"] + md["quarantined"]
        assert md["dagster/row_count"] == manifest["totals"]["valid_lines"]
        assert md["lag_at_start"] == report.produced == sum(md["lag_per_partition"].values())
        assert md["offsets_without_message"] == 0 and "| empty offsets |" in md["partitions"]
        ends = {f"{r.topic}[{r.partition}]": r.end for r in status(settings)}
        assert md["offsets_ingested"] == {k: [0, end] for k, end in ends.items() if end}
        assert all(r.lag == 0 for r in status(settings))

        # caught up: the sensor skips
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lakehouse": lakehouse}) as ctx:
            skip = sensor(ctx)
        assert isinstance(skip, dg.SkipReason) and skip.skip_message.startswith("lag 0")

        # a little lag, below the threshold: waits for the interval, then asks anyway
        assert _publish_few(settings, files) == 10
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lakehouse": lakehouse}) as ctx:
            wait = sensor(ctx)
        assert isinstance(wait, dg.SkipReason) and "threshold 500" in wait.skip_message
        long_ago = str(float(cursor) - 11 * 60)
        with dg.build_sensor_context(instance=instance, cursor=long_ago, resources={"lakehouse": lakehouse}) as ctx:
            late = sensor(ctx)
        assert isinstance(late, dg.RunRequest) and "no ingest for 10 min" in late.tags["lenslake/why"]


def _publish_few(settings, files, n=10):
    """Publish the first ``n`` valid events of the world again (new messages: new offsets)."""
    import orjson
    from confluent_kafka import Producer

    from lenslake.kafka.config import kafka_config, topic_of_type
    from lenslake.kafka.wire import codec

    c, by_type = codec(settings), topic_of_type(settings)
    producer = Producer(kafka_config(settings))
    sent = 0
    for line in files[0].read_bytes().splitlines():
        try:
            event = orjson.loads(line)
            _, value = c.encode_event(event)
        except Exception:  # noqa: BLE001  (the world's invalid lines: skipped)
            continue
        producer.produce(by_type[event["schema"]], value)
        sent += 1
        if sent == n:
            break
    assert producer.flush(30) == 0
    return sent
