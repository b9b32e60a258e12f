"""Kafka ingestion's foundation against a real broker (Tansu, started here): topics, the wire format, the producer.

Every test uses its own topic prefix on the one broker, so tests never see each other's messages; the demo test lets the
demo start its own, as `make demo` does.
"""

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import uuid

import pytest

_prefix = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small generated world (two days), shared by the tests that only read it."""
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("kafka-world")
    manifest = generate_world(root, days=2, users=400, events=4000, start=dt.date(2026, 11, 1), seed=7)
    return root, manifest


@pytest.fixture
def kafka_settings(broker, world):
    from lenslake.settings import get_settings

    return get_settings(data_root=world[0], kafka_bootstrap=broker, kafka_partitions=3,
                        kafka_topic_prefix=f"t{next(_prefix)}.events.")


def read_all(settings):
    """Every message of the family topics, read partition by partition from the start to the end (a plain consumer)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from lenslake.kafka.config import topics

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    metadata = consumer.list_topics(timeout=10).topics
    parts = [TopicPartition(t, p, 0) for t in topics(settings).values() for p in metadata[t].partitions]
    consumer.assign(parts)
    pending, messages = {(tp.topic, tp.partition) for tp in parts}, []
    import time

    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 0.5):
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                pending.discard((msg.topic(), msg.partition()))
            else:
                messages.append((msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))
    consumer.close()
    assert not pending, f"never reached the end of {pending}"
    return messages


def landed_lines(root):
    return [line for path in sorted((root / "landing" / "events").glob("*/*.ndjson"))
            for line in path.read_bytes().splitlines()]


# --- topics -----------------------------------------------------------------------------------------------------------


def test_init_creates_the_family_topics_with_their_partitions_and_rerunning_changes_nothing(kafka_settings):
    from confluent_kafka.admin import AdminClient, ConfigResource

    from lenslake.kafka.topics import create_topics

    first = create_topics(kafka_settings)
    assert [r.topic for r in first] == [f"{kafka_settings.kafka_topic_prefix}{f}"
                                        for f in ("clickstream", "session", "conversion", "authentication")]
    assert {(r.status, r.partitions) for r in first} == {("created", 3)}
    again = create_topics(kafka_settings)
    assert {(r.status, r.partitions) for r in again} == {("exists", 3)}

    admin = AdminClient({"bootstrap.servers": kafka_settings.kafka_bootstrap})
    metadata = admin.list_topics(timeout=10).topics
    for r in again:
        assert len(metadata[r.topic].partitions) == 3
        config = admin.describe_configs([ConfigResource("topic", r.topic)])
        entries = next(iter(config.values())).result(10)
        assert entries["retention.ms"].value == str(kafka_settings.kafka_retention_ms)


# --- the wire format ----------------------------------------------------------------------------------------------


def _expected_record(event, schema):
    """What an Avro reader returns for a JSON event: absent fields with defaults filled in, doubles as floats."""
    def fill(value, avro_type):
        if isinstance(avro_type, list):
            branch = next((t for t in avro_type if t != "null"), "null")
            return None if value is None else fill(value, branch)
        kind = avro_type if isinstance(avro_type, str) else avro_type["type"]
        if kind == "record":
            return {f["name"]: fill(value.get(f["name"], f.get("default")), f["type"]) for f in avro_type["fields"]}
        if kind == "array":
            return [fill(v, avro_type["items"]) for v in value]
        if kind in ("double", "float"):
            return float(value)
        return value

    return fill(event, schema)


def test_every_event_type_of_a_generated_world_round_trips_through_the_wire_format(world):
    import orjson

    from lenslake.kafka.wire import HEADER, WireError, codec

    c = codec()
    seen = set()
    for line in landed_lines(world[0]):
        try:
            event = orjson.loads(line)
            schema_id, value = c.encode_event(event)
        except (orjson.JSONDecodeError, WireError):
            continue
        assert value[0] == 0 and HEADER.unpack_from(value)[1] == schema_id
        record, reason, detail = c.decode(value)
        assert reason is None, detail
        assert record == _expected_record(event, c.registry.by_id(schema_id).document)
        assert c.subject(schema_id) == f"lenslake.events.{event['schema']}"
        seen.add(event["schema"])
    from lenslake.kafka.config import FAMILY_OF_TYPE

    assert seen == set(FAMILY_OF_TYPE)


def test_the_module_level_encode_and_decode_use_the_settings_registry(world):
    from lenslake.kafka.wire import codec, decode, encode

    event = json.loads(next(line for line in landed_lines(world[0]) if b'"schema":"purchase"' in line
                            and b'"schema_version":1,' in line))
    schema_id = codec().schema_id("purchase", 1)
    record, reason, _ = decode(encode(event, schema_id))
    assert reason is None and record["properties"]["order_id"] == event["properties"]["order_id"]


def test_an_unknown_schema_id_and_garbage_bytes_are_named_by_their_reasons(world):
    import struct

    from lenslake.kafka.wire import codec

    c = codec()
    event = json.loads(next(line for line in landed_lines(world[0]) if b'"schema":"page_view"' in line
                            and b'"schema_version":1,' in line))
    _, good = c.encode_event(event)
    unknown = struct.pack(">bI", 0, 999_999) + good[5:]
    record, reason, detail = c.decode(unknown)
    assert (record, reason) == (None, "unknown_schema_id") and "999999" in detail
    for bad, why in [(b"", "shorter"), (b"\x00\x00\x00", "shorter"), (b"\x01" + good[1:], "magic byte 1"),
                     (line := json.dumps(event).encode(), "magic byte"), (good[:-3], "schema id"),
                     (good + b"\x00\x01", "left after the record"), (None, "shorter")]:
        record, reason, detail = c.decode(bad)
        assert (record, reason) == (None, "undecodable_payload"), (bad, detail)
        assert why in detail
    assert line  # the JSON text of an event is not an Avro message


def test_a_batch_decodes_to_the_same_contract_fields_in_bulk_and_record_by_record(world):
    """``records.decode_batch``: arrow-avro in bulk and fastavro record by record give the same table (the
    fields as the JSON text the landing path extracts), and the same reasons for bad values. (A record followed by
    extra bytes is left out of the bulk run: arrow-avro never returns on it, which the ingest guards with a
    timeout, tested in test_kafka_ingest.)"""
    import struct

    import orjson

    from lenslake.kafka.records import decode_batch
    from lenslake.kafka.wire import WireError, codec

    c = codec()
    values, events = [], []
    for line in landed_lines(world[0]):
        try:
            event = orjson.loads(line)
            values.append(c.encode_event(event)[1])
            events.append(event)
        except (orjson.JSONDecodeError, WireError):
            continue
    good = values[0]
    bad = [b"", None, b"\x01" + good[1:], struct.pack(">bI", 0, 999_999) + good[5:], good[:-3]]
    batch = values[:1000] + bad + values[1000:]
    fast, fast_bad = decode_batch(None, batch, fast=True)
    slow, slow_bad = decode_batch(None, batch, fast=False)
    assert fast.sort_by("record").equals(slow.sort_by("record"))
    assert sorted(fast_bad) == sorted(slow_bad) == [(1000, "undecodable_payload"), (1001, "undecodable_payload"),
                                                    (1002, "undecodable_payload"), (1003, "unknown_schema_id"),
                                                    (1004, "undecodable_payload")]
    assert fast.num_rows == len(values)
    rows = {r["record"]: r for r in fast.to_pylist()}
    for i in (0, 999, 1005, len(batch) - 1):
        event = events[i if i < 1000 else i - len(bad)]
        row = rows[i]
        assert (row["event_id"], row["schema"], row["schema_version"]) == (event["event_id"], event["schema"],
                                                                           str(event["schema_version"]))
        for name, value in event.get("properties", {}).items():
            if isinstance(value, (str, int)) and not isinstance(value, bool) and name in row:
                assert row[name] == str(value), name


def test_the_producer_refuses_what_avro_cannot_carry_and_says_why(world):
    import copy

    from lenslake.kafka.wire import WireError, codec

    c = codec()
    event = json.loads(next(line for line in landed_lines(world[0]) if b'"schema":"add_to_cart"' in line
                            and b'"schema_version":1,' in line))
    assert c.encode_event(event)

    def refusal(change):
        broken = copy.deepcopy(event)
        change(broken)
        with pytest.raises(WireError) as e:
            c.encode_event(broken)
        return e.value.reason, e.value.field

    assert refusal(lambda e: e["properties"].update(quantity="two")) == ("wrong_type", "properties.quantity")
    assert refusal(lambda e: e["properties"].update(quantity=2.5)) == ("wrong_type", "properties.quantity")  # not 2
    assert refusal(lambda e: e["properties"].update(quantity=True)) == ("wrong_type", "properties.quantity")  # not 1
    assert refusal(lambda e: e.update(device="smartwatch")) == ("not_in_enum", "device")
    assert refusal(lambda e: e.pop("session_id")) == ("missing_required_field", "session_id")
    assert refusal(lambda e: e.update(schema="add_to_crat")) == ("unknown_schema", "schema")
    assert refusal(lambda e: e.update(schema_version=99)) == ("unknown_schema", "schema")
    # Constraints Avro does not express travel; the consumer's validation quarantines them.
    negative = copy.deepcopy(event)
    negative["properties"]["unit_price"] = -5.0
    assert c.encode_event(negative)


# --- producing ----------------------------------------------------------------------------------------------------


@pytest.fixture
def published(kafka_settings):
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics

    create_topics(kafka_settings)
    report = publish_landing(kafka_settings, workers=2)
    return kafka_settings, report


def test_a_published_world_reads_back_exactly_reconciled_with_the_manifest(published, world):
    from lenslake.kafka.wire import codec

    settings, report = published
    root, manifest = world
    totals, by_kind = manifest["totals"], {}
    for day in manifest["days_detail"].values():
        for kind, n in day["invalid_by_kind"].items():
            by_kind[kind] = by_kind.get(kind, 0) + n

    # what the producer refused is exactly the manifest's unencodable lines, by reason
    assert report.ok and report.failed == 0 and report.delivered == report.produced
    assert {k: n for k, n in report.refused.items() if n} == {k: n for k, n in {
        "malformed_json": totals["malformed_lines"],
        "unknown_schema": by_kind["unknown_schema_name"] + by_kind["unknown_schema_version"],
        "not_in_enum": by_kind["enum_violation"],
        "missing_required_field": by_kind["missing_required_field"],
        "wrong_type": by_kind["quantity_as_word"],
    }.items() if n}
    assert report.lines == totals["lines"] == report.produced + report.refused_total
    encodable_invalid = sum(by_kind[k] for k in ("negative_amount", "malformed_event_time", "bad_sku_pattern"))
    assert report.produced == totals["valid_lines"] + encodable_invalid

    # a plain consumer reads back exactly what was produced, per type and per topic
    messages = read_all(settings)
    c = codec()
    by_type, by_topic, records = {}, {}, []
    for topic, partition, offset, key, value in messages:
        record, reason, detail = c.decode(value)
        assert reason is None, detail
        by_type[record["schema"]] = by_type.get(record["schema"], 0) + 1
        by_topic[topic] = by_topic.get(topic, 0) + 1
        assert key == record["session_id"].encode()
        records.append((partition, offset, topic, record))
    assert len(messages) == report.produced
    assert by_type == dict(report.by_type) and by_topic == dict(report.by_topic)
    for event_type, human in totals["human_events_by_type"].items():
        assert by_type.get(event_type, 0) >= human  # plus bots, duplicates and invalid-but-encodable lines

    # each session's events of one topic sit in one partition, in the order they were landed
    import orjson

    from lenslake.kafka.config import FAMILY_OF_TYPE

    per_session = {}
    for partition, offset, topic, record in sorted(records, key=lambda r: (r[2], r[0], r[1])):
        per_session.setdefault((topic, record["session_id"]), []).append((partition, record))
    for (topic, session), items in per_session.items():
        assert len({p for p, _ in items}) == 1, f"session {session} split over partitions of {topic}"
    # and within its partition, offsets follow the landing order of what the producer accepted
    order = {}
    for line in landed_lines(root):
        try:
            event = orjson.loads(line)
            c.encode_event(event)
        except Exception:  # noqa: BLE001, S112  (refused at the source)
            continue
        topic = settings.kafka_topic_prefix + FAMILY_OF_TYPE[event["schema"]]
        order.setdefault((topic, event["session_id"]), []).append(event["event_id"])
    assert {k: [r["event_id"] for _, r in v] for k, v in per_session.items()} == order


def test_status_shows_end_offsets_committed_offsets_and_lag(published):
    from confluent_kafka import Consumer, TopicPartition

    from lenslake.kafka.topics import status

    settings, report = published
    rows = status(settings)
    assert len(rows) == 4 * 3
    assert sum(r.end for r in rows) == report.produced
    for topic, n in report.by_topic.items():
        assert sum(r.end for r in rows if r.topic == topic) == n
    # nothing consumed yet: no committed offset (a broker may also answer 0, the same position), all of it lag
    assert [r for r in rows if not (r.committed in (None, 0) and r.low == 0 and r.lag == r.end)] == []

    # a consumer of the group commits the first half of one partition
    first = max(rows, key=lambda r: r.end)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.kafka_consumer_group,
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(first.topic, first.partition, first.end // 2)], asynchronous=False)
    consumer.close()
    after = {(r.topic, r.partition): r for r in status(settings)}
    row = after[(first.topic, first.partition)]
    assert (row.committed, row.lag) == (first.end // 2, first.end - first.end // 2)


def test_offsets_a_broker_answers_wrong_are_corrected_by_reading_the_partition(published):
    """Tansu picks the earliest and end offsets by batch write time: an earliest offset past the first batch would
    make a new consumer group skip it, an end at a batch's base + 1 would hide the rest of the batch."""
    from confluent_kafka import Consumer

    from lenslake.kafka.config import kafka_config
    from lenslake.kafka.topics import checked_offsets, status

    settings, report = published
    truth = {(r.topic, r.partition): (r.low, r.end) for r in status(settings)}
    assert all(low == 0 and end > 2 for low, end in truth.values())
    assert sum(end for _, end in truth.values()) == report.produced
    wrong = {}
    for n, (key, (low, end)) in enumerate(sorted(truth.items())):
        wrong[key] = [(end // 2, end), (0, 1), (end - 1, end - 1), (low, end)][n % 4]  # late start, early end, both
    consumer = Consumer(kafka_config(settings, **{"group.id": "test-probe", "enable.partition.eof": True,
                                                  "auto.offset.reset": "earliest"}))
    try:
        assert checked_offsets(consumer, wrong, timeout=30) == truth
    finally:
        consumer.close()


# --- the command line ---------------------------------------------------------------------------------------------


def lenslake(*args, env):
    return subprocess.run([sys.executable, "-m", "lenslake.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_the_kafka_commands_without_a_bootstrap_are_one_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LENSLAKE_KAFKA_BOOTSTRAP"} | {"LENSLAKE_DATA_ROOT": str(tmp_path)}
    for args in (["kafka", "init"], ["kafka", "status"], ["generate", "--days", "1", "--to", "kafka"]):
        out = lenslake(*args, env=env)
        assert out.returncode != 0, args
        assert "LENSLAKE_KAFKA_BOOTSTRAP" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "landing").exists()  # refused before generating anything


def test_the_kafka_commands_with_no_broker_at_the_bootstrap_are_one_clear_error(tmp_path):
    """Nothing listens at the address: one line naming it and what to check, not librdkafka's connection-refused
    line every few milliseconds (hundreds of them before the timeout) nor a KafkaError's repr."""
    from lenslake.kafka.broker import free_port

    env = os.environ | {"LENSLAKE_DATA_ROOT": str(tmp_path), "LENSLAKE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    for args in (["kafka", "init", "--timeout", "2"], ["kafka", "status", "--timeout", "2"]):
        out = lenslake(*args, env=env)
        assert out.returncode == 1, args
        assert out.stderr.startswith(f"error: cannot reach the Kafka broker at {env['LENSLAKE_KAFKA_BOOTSTRAP']} ("), out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr[:2000]


def test_generate_to_kafka_then_init_and_status_from_the_command_line(broker, tmp_path):
    prefix = f"cli{next(_prefix)}."
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path), "LENSLAKE_KAFKA_BOOTSTRAP": broker,
           "LENSLAKE_KAFKA_TOPIC_PREFIX": prefix, "LENSLAKE_KAFKA_PARTITIONS": "2"}
    out = lenslake("kafka", "init", env=env)
    assert out.returncode == 0 and out.stdout.count(": created, 2 partitions") == 4, out
    out = lenslake("kafka", "init", env=env)
    assert out.returncode == 0 and out.stdout.count(": exists, 2 partitions") == 4, out
    out = lenslake("generate", "--days", "1", "--users", "200", "--events", "1500", "--start", "2026-11-01",
                   "--to", "kafka", env=env)
    assert out.returncode == 0, out.stderr
    produced = int(out.stdout.split(" produced")[0].rsplit(" ", 1)[-1].replace(",", ""))
    assert f"{produced:,} delivered, 0 failed" in out.stdout, out
    # the published events left the landing zone (the file path must not ingest them again); kept for reconciling
    assert not any((tmp_path / "landing" / "events").glob("*/*.ndjson"))
    # kept there only encrypted (lenslake.privacy.landing): every line of them was delivered
    assert not any((tmp_path / "synth" / "sent-to-kafka").glob("*/*.ndjson"))
    assert len(list((tmp_path / "synth" / "sent-to-kafka").glob("*/*.ndjson.enc"))) == 1
    out = lenslake("kafka", "status", env=env)
    assert out.returncode == 0, out
    lines = [line for line in out.stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 8 and all(line.split()[4] == "-" for line in lines), out  # no committed offsets yet
    assert sum(int(line.split()[3]) for line in lines) == produced, out
    assert f"total: end {produced:,}, lag {produced:,}" in out.stdout, out


def test_the_demo_through_kafka_runs_to_gold_and_leaves_no_lag(tmp_path):
    """`DEMO_SOURCE=kafka make demo` in small: with no bootstrap set, the demo starts its own throwaway broker, as
    `make demo` does (not the broker the other tests share); the world's events go through the topics (and out of
    the landing zone), are ingested into bronze by the Dagster asset, and silver and gold run for the ingest day."""
    import json

    from lenslake.delta import DeltaStore

    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path), "LENSLAKE_KAFKA_PARTITIONS": "2",
           "GX_ANALYTICS_ENABLED": "false"}
    for name in ("LENSLAKE_AS_OF", "LENSLAKE_KAFKA_BOOTSTRAP", "LENSLAKE_KAFKA_TOPIC_PREFIX"):
        env.pop(name, None)
    out = lenslake("demo", "--source", "kafka", "--days", "2", "--users", "300", "--events", "2500", env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert "a throwaway local broker (Tansu, memory storage)" in out.stdout
    manifest = json.loads((tmp_path / "synth" / "manifest.json").read_text())
    produced = int(out.stdout.split(" produced")[0].rsplit(" ", 1)[-1].replace(",", ""))
    assert f"total: end {produced:,}, lag 0" in out.stdout
    assert not any((tmp_path / "landing" / "events").glob("*/*.ndjson"))
    # After the demo every planted value is absent from every file but the generator's manifest: the raw landing
    # files (catalog and people feeds) and the events sent to Kafka are kept only encrypted.
    from lenslake.privacy.canary import scan_data_root

    assert not any((tmp_path / "synth" / "sent-to-kafka").rglob("*.ndjson"))
    assert scan_data_root(tmp_path) == []

    store = DeltaStore(tmp_path / "tables")
    sources = store.read("bronze.events", columns=["source"]).column("source").to_pylist()
    # (It failed once in a clean-clone CI run, 2702 rows for 2703 valid lines, on the broker every test shared then,
    # and passed on every rerun and in 180 runs of the same ingest since: the quarantine's reasons and the demo's
    # Kafka lines, messages read against the lag at start, say where the line went if it happens again.)
    reasons = store.read("bronze.events_quarantine", columns=["reason_code"]).column(0).to_pylist()
    kafka_lines = [line for line in out.stdout.splitlines() if "kafka" in line.lower() or "messages read" in line]
    assert set(sources) == {"kafka"} and len(sources) == manifest["totals"]["valid_lines"], (
        len(sources), manifest["totals"], sorted(set(reasons)), kafka_lines)
    assert store.count("silver.events") > 0 and store.count("gold.daily_kpis") > 0
    assert "PASS  gold/daily_kpis:daily_kpis_contract_schema" in out.stdout
