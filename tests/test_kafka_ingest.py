"""Kafka → bronze, exactly once, against a real broker (Tansu, started here).

Every test has its own topic prefix on the one broker and its own lake, so tests never see each other's data.
"""

import datetime as dt
import itertools
import os
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

_prefix = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small generated world (two days), published by the tests that need it."""
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("kafka-ingest-world")
    manifest = generate_world(root, days=2, users=300, events=3000, start=dt.date(2026, 11, 1), seed=11)
    return root, manifest


@pytest.fixture
def kafka_settings(broker, tmp_path):
    from lenslake.settings import get_settings

    return get_settings(data_root=tmp_path / "lake", engine="duckdb", kafka_bootstrap=broker, kafka_partitions=3,
                        kafka_topic_prefix=f"i{next(_prefix)}.events.")


@pytest.fixture
def store(kafka_settings):
    from lenslake.delta import DeltaStore

    return DeltaStore(kafka_settings.tables_dir)


@pytest.fixture
def engine(kafka_settings):
    from lenslake.engine import get_engine

    e = get_engine(kafka_settings)
    yield e
    e.release()


def world_files(root: Path) -> list[Path]:
    return sorted((root / "landing" / "events").glob("*/*.ndjson"))


@pytest.fixture
def published(kafka_settings, world):
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics

    create_topics(kafka_settings)
    report = publish_landing(kafka_settings, world_files(world[0]), workers=1)
    assert report.ok, report.summary()
    return report


def file_event_ids(settings, store, engine, world) -> Counter:
    """Event ids of the world's landing files ingested through the file path (source 'file') into ``store``, run
    twice (a rerun replaces its own partitions)."""
    import pyarrow.compute as pc

    from lenslake.pipeline import ingest_landing_days, landing_days

    # a copy, not a link: the ingest keeps the files it read only encrypted, and the world is shared by other tests
    shutil.copytree(world[0] / "landing" / "events", settings.events_landing_dir)
    for _ in range(2):
        ingest_landing_days(engine, store, settings, landing_days(settings))
    t = store.read("bronze.events", columns=["event_id", "source"])
    return Counter(t.filter(pc.equal(t.column("source"), "file")).column("event_id").to_pylist())


def kafka_rows(store, name, columns=("kafka_topic", "kafka_partition", "kafka_offset")):
    import pyarrow.compute as pc

    t = store.read(name, columns=["source", *columns])
    return t.filter(pc.equal(t.column("source"), "kafka"))


def per_partition(table) -> dict:
    return Counter(zip(table.column("kafka_topic").to_pylist(), table.column("kafka_partition").to_pylist()))


def produced_per_partition(settings) -> dict:
    from lenslake.kafka.topics import status

    return {(r.topic, r.partition): r.end for r in status(settings) if r.end}


def assert_exactly_once(settings, store):
    """Every produced message is in exactly one of bronze and quarantine, once; the group committed the ends."""
    bronze, quarantine = kafka_rows(store, "bronze.events"), kafka_rows(store, "bronze.events_quarantine")
    positions = [*zip(*(bronze.column(c).to_pylist() for c in ("kafka_topic", "kafka_partition", "kafka_offset"))),
                 *zip(*(quarantine.column(c).to_pylist() for c in ("kafka_topic", "kafka_partition", "kafka_offset")))]
    assert len(positions) == len(set(positions)), "a message is in the lake twice"
    ends = produced_per_partition(settings)
    assert dict(per_partition(bronze) + per_partition(quarantine)) == ends  # consumed = bronze + quarantined
    assert set(positions) == {(t, p, o) for (t, p), end in ends.items() for o in range(end)}  # nothing lost
    return bronze, quarantine, kafka_rows(store, "bronze.events", ["event_id"]).column("event_id").to_pylist()


# --- ingesting --------------------------------------------------------------------------------------------------------


def test_without_a_bootstrap_the_ingest_is_idle(tmp_path):
    from lenslake.delta import DeltaStore
    from lenslake.kafka.ingest import ingest_kafka
    from lenslake.settings import get_settings

    settings = get_settings(data_root=tmp_path, engine="duckdb", kafka_bootstrap=None)
    result = ingest_kafka(None, DeltaStore(settings.tables_dir), settings)
    assert result.idle and "LENSLAKE_KAFKA_BOOTSTRAP" in result.message and not result.writes
    assert not (tmp_path / "tables").exists()


def test_a_published_world_is_ingested_once_reconciled_with_the_manifest(kafka_settings, store, engine, published,
                                                                          world):
    from lenslake.kafka.ingest import app_id, ingest_kafka
    from lenslake.kafka.topics import status

    manifest = world[1]
    result = ingest_kafka(engine, store, kafka_settings)
    assert result.reconciled and result.read == published.produced
    assert all(p.read == p.bronze + p.quarantined for p in result.partitions)
    bronze, quarantine, event_ids = assert_exactly_once(kafka_settings, store)

    # valid events: what the manifest calls valid (every refused line was invalid); quarantine: the encodable rest
    assert bronze.num_rows == manifest["totals"]["valid_lines"] == result.accepted
    assert quarantine.num_rows == published.produced - manifest["totals"]["valid_lines"] == result.quarantined
    assert sum(result.reasons.values()) == quarantine.num_rows
    ingested = store.read("bronze.events", columns=["ingest_date", "source", "source_file", "user_token"])
    assert set(ingested.column("ingest_date").to_pylist()) == {kafka_settings.now().date()}
    assert set(ingested.column("source").to_pylist()) == {"kafka"}
    assert set(ingested.column("source_file").to_pylist()) == {None}
    assert all(t is None or t.startswith("t") for t in ingested.column("user_token").to_pylist())  # PII tokenized

    # each table recorded every partition's next offset; the group's offsets were committed after
    ends = {(r.topic, r.partition): r for r in status(kafka_settings)}
    for (topic, partition), row in ends.items():
        aid = app_id(kafka_settings.kafka_consumer_group, topic, partition)
        assert store.app_version("bronze.events", aid) == row.end
        assert store.app_version("bronze.events_quarantine", aid) == row.end
        assert row.committed == row.end and row.lag == 0

    # nothing new: no commit at all
    versions = (store.version("bronze.events"), store.version("bronze.events_quarantine"))
    again = ingest_kafka(engine, store, kafka_settings)
    assert again.read == 0 and not again.writes and again.message == "nothing new"
    assert (store.version("bronze.events"), store.version("bronze.events_quarantine")) == versions

    # the same world through landing files into the same tables: the same events, and the Kafka rows stay
    assert Counter(event_ids) == file_event_ids(kafka_settings, store, engine, world)
    assert kafka_rows(store, "bronze.events").num_rows == bronze.num_rows


def test_decoding_in_a_separate_process_gives_the_same_lake(broker, tmp_path, world):
    """Large runs decode Avro in a decoder process (here forced, with chunks of 1,000): the same exactly-once
    outcome as decoding in the ingest process."""
    from lenslake.delta import DeltaStore
    from lenslake.engine import get_engine
    from lenslake.kafka.ingest import ingest_kafka
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics
    from lenslake.settings import get_settings

    settings = get_settings(data_root=tmp_path / "lake", engine="duckdb", kafka_bootstrap=broker, kafka_partitions=3,
                            kafka_topic_prefix=f"i{next(_prefix)}.events.", kafka_parallel_decode_min_messages=0,
                            kafka_ingest_chunk_messages=1000)
    create_topics(settings)
    report = publish_landing(settings, world_files(world[0]), workers=1)
    store, engine = DeltaStore(settings.tables_dir), get_engine(settings)
    try:
        result = ingest_kafka(engine, store, settings)
        assert result.reconciled and result.read == report.produced
        bronze, quarantine, event_ids = assert_exactly_once(settings, store)
        assert bronze.num_rows == world[1]["totals"]["valid_lines"]
        assert Counter(event_ids) == file_event_ids(settings, store, engine, world)
        assert_same_values_as_files(store)
    finally:
        engine.release()


def assert_same_values_as_files(store):
    """Every bronze row from Kafka holds the values the same event holds when it came from a landing file: the Avro
    records went to typed columns without a JSON round trip, through the same rules, tokens and scrubbing."""
    import pyarrow.compute as pc

    t = store.read("bronze.events")
    lineage = {"ingest_date", "source", "source_file", "source_line", "kafka_topic", "kafka_partition", "kafka_offset"}
    values = [c for c in t.column_names if c not in lineage]

    def rows(source):
        part = t.filter(pc.equal(t.column("source"), source)).select(values)
        return sorted(part.to_pylist(), key=lambda r: (r["event_id"], repr(sorted(r.items()))))

    from_kafka, from_files = rows("kafka"), rows("file")
    assert len(from_kafka) == len(from_files) > 0
    for a, b in zip(from_kafka, from_files):
        assert a == b


def test_new_messages_are_ingested_from_where_the_tables_stand(kafka_settings, store, engine, world):
    from lenslake.kafka.ingest import ingest_kafka
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics

    create_topics(kafka_settings)
    first, second = world_files(world[0])[:1], world_files(world[0])[1:]
    r1 = publish_landing(kafka_settings, first, workers=1)
    a = ingest_kafka(engine, store, kafka_settings)
    assert a.read == r1.produced
    r2 = publish_landing(kafka_settings, second, workers=1)
    b = ingest_kafka(engine, store, kafka_settings)
    assert b.read == r2.produced and b.reconciled
    assert_exactly_once(kafka_settings, store)


@pytest.mark.parametrize("decoder", ["in-process", "arrow-avro"])
def test_garbage_and_an_unknown_schema_id_are_quarantined_with_their_reasons_and_positions(kafka_settings, store,
                                                                                             engine, world, decoder):
    """Undecodable bytes of every kind, decoded record by record in the ingest process and by arrow-avro in a
    decoder process. arrow-avro never returns on a record followed by extra bytes: the decoder process is stopped
    after ``kafka_decode_timeout_seconds`` and the chunk decoded record by record, losing nothing."""
    import orjson
    from confluent_kafka import Producer

    from lenslake.kafka.ingest import ingest_kafka
    from lenslake.kafka.topics import create_topics
    from lenslake.kafka.wire import codec
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import unseal
    from lenslake.transforms.bronze import position

    create_topics(kafka_settings)
    topic = kafka_settings.kafka_topic_prefix + "clickstream"
    event = next(orjson.loads(line) for path in world_files(world[0]) for line in path.read_bytes().splitlines()
                 if b'"schema":"page_view"' in line and b'"schema_version":1,' in line)
    _, good = codec(kafka_settings).encode_event(event)
    values = [good, b"not avro at all", struct.pack(">bI", 0, 999_999) + good[5:], good[:-3], good, good + b"\x00\x02"]
    if decoder == "arrow-avro":
        kafka_settings = kafka_settings.model_copy(update={"kafka_parallel_decode_min_messages": 0,
                                                           "kafka_decode_timeout_seconds": 10.0})
    producer = Producer({"bootstrap.servers": kafka_settings.kafka_bootstrap})
    for v in values:
        producer.produce(topic, v, partition=1)
    assert producer.flush(30) == 0

    result = ingest_kafka(engine, store, kafka_settings)
    assert result.read == 6 and result.reconciled
    assert result.reasons == {"undecodable_payload": 3, "unknown_schema_id": 1}
    q = store.read("bronze.events_quarantine")
    rows = sorted(q.to_pylist(), key=lambda r: r["kafka_offset"])
    assert [(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"], r["reason_code"]) for r in rows] == [
        (topic, 1, 1, "undecodable_payload"), (topic, 1, 2, "unknown_schema_id"), (topic, 1, 3, "undecodable_payload"),
        (topic, 1, 5, "undecodable_payload")]
    keys = load_keys(kafka_settings)
    for r, raw in zip(rows, [*values[1:4], values[5]]):
        assert r["source"] == "kafka" and r["payload"] is None and r["source_file"] is None
        assert unseal(r["payload_encrypted"], r["payload_key_id"], keys.encryption, position(r).encode()) == raw
    b = store.read("bronze.events")
    assert sorted(b.column("kafka_offset").to_pylist()) == [0, 4]  # the same event twice: bronze keeps duplicates
    assert set(b.column("kafka_partition").to_pylist()) == {1}
    assert_exactly_once(kafka_settings, store)


# --- crash safety -------------------------------------------------------------------------------------------------


def run_ingest(settings, kill_at=None):
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(settings.data_root), "LENSLAKE_ENGINE": "duckdb",
           "LENSLAKE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "LENSLAKE_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
           "LENSLAKE_KAFKA_INGEST_CHUNK_MESSAGES": str(settings.kafka_ingest_chunk_messages),
           "GX_ANALYTICS_ENABLED": "false"}
    env.pop("LENSLAKE_TEST_KILL_AT", None)
    if kill_at:
        env["LENSLAKE_TEST_KILL_AT"] = kill_at
    code = ("from lenslake.settings import get_settings; from lenslake.delta import DeltaStore; "
            "from lenslake.engine import get_engine; from lenslake.kafka.ingest import ingest_kafka; "
            "s = get_settings(); r = ingest_kafka(get_engine(s), DeltaStore(s.tables_dir), s); print(r.summary())")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.parametrize("kill_at", ["after_bronze", "after_quarantine", "during_consume"])
def test_killed_with_sigkill_then_rerun_nothing_is_duplicated_or_lost(kafka_settings, store, engine, published, world,
                                                                      kill_at):
    from lenslake.kafka.topics import status

    killed = run_ingest(kafka_settings, kill_at)
    assert killed.returncode == -9, killed.stderr
    if kill_at == "during_consume":
        assert not store.exists("bronze.events")
    else:
        assert store.exists("bronze.events")
        # killed before the offset commit: the group has committed nothing
        assert all(r.committed is None for r in status(kafka_settings))
    if kill_at == "after_bronze":
        assert kafka_rows(store, "bronze.events").num_rows == world[1]["totals"]["valid_lines"]
        assert not store.exists("bronze.events_quarantine")

    bronze_version = store.version("bronze.events")
    rerun = run_ingest(kafka_settings)
    assert rerun.returncode == 0, rerun.stderr
    if kill_at == "after_quarantine":
        assert store.version("bronze.events") == bronze_version  # held everything: no commit
    bronze, quarantine, event_ids = assert_exactly_once(kafka_settings, store)
    assert bronze.num_rows == world[1]["totals"]["valid_lines"]
    assert quarantine.num_rows == published.produced - world[1]["totals"]["valid_lines"]
    # the same events as an uninterrupted ingest: those of the landing files, each as often as it was landed
    assert Counter(event_ids) == file_event_ids(kafka_settings, store, engine, world)
    assert all(r.committed == r.end for r in status(kafka_settings))


def test_chunked_ingest_killed_in_its_second_chunk_resumes_exactly_once(broker, tmp_path, world):
    """Chunks of 1,000 messages: one commit per table per chunk. Killed after bronze's second commit, bronze holds
    two chunks and quarantine one; the rerun goes on from quarantine's position and bronze skips what it holds."""
    from lenslake.delta import DeltaStore
    from lenslake.engine import get_engine
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics, status
    from lenslake.settings import get_settings

    settings = get_settings(data_root=tmp_path / "lake", engine="duckdb", kafka_bootstrap=broker, kafka_partitions=3,
                            kafka_topic_prefix=f"i{next(_prefix)}.events.", kafka_ingest_chunk_messages=1000)
    create_topics(settings)
    report = publish_landing(settings, world_files(world[0]), workers=1)
    assert report.ok and report.produced > 2500
    store = DeltaStore(settings.tables_dir)

    killed = run_ingest(settings, "after_bronze:2")
    assert killed.returncode == -9, killed.stderr
    held = kafka_rows(store, "bronze.events").num_rows + kafka_rows(store, "bronze.events_quarantine").num_rows
    assert 0 < held < report.produced
    # two bronze commits (versions 0 and 1), one quarantine commit: killed right after bronze's second
    assert (store.version("bronze.events"), store.version("bronze.events_quarantine")) == (1, 0)
    assert all(r.committed is None for r in status(settings))

    rerun = run_ingest(settings)
    assert rerun.returncode == 0, rerun.stderr
    bronze, quarantine, event_ids = assert_exactly_once(settings, store)
    assert bronze.num_rows == world[1]["totals"]["valid_lines"]
    engine = get_engine(settings)
    try:
        assert Counter(event_ids) == file_event_ids(settings, store, engine, world)
        assert_same_values_as_files(store)
    finally:
        engine.release()


# --- encryption in transit --------------------------------------------------------------------------------------------


def test_over_tls_13_only_the_world_is_ingested_and_plaintext_and_tls_12_are_refused(tmp_path, world):
    """Tansu behind a TLS 1.3-only terminator (stunnel4), advertising the TLS port: produce and ingest over TLS with
    the settings alone; a plaintext client and a TLS 1.2 client are refused."""
    import socket
    import ssl

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from lenslake.delta import DeltaStore
    from lenslake.engine import get_engine
    from lenslake.kafka.broker import local_tls_broker
    from lenslake.kafka.ingest import ingest_kafka
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics, status
    from lenslake.settings import get_settings

    with local_tls_broker(tmp_path / "tls") as (bootstrap, files):
        settings = get_settings(data_root=tmp_path / "lake", engine="duckdb", kafka_bootstrap=bootstrap,
                                kafka_partitions=2, kafka_security_protocol="SSL", kafka_ssl_ca_location=files.ca)
        create_topics(settings)
        report = publish_landing(settings, world_files(world[0]), workers=1)
        assert report.ok
        store, engine = DeltaStore(settings.tables_dir), get_engine(settings)
        try:
            result = ingest_kafka(engine, store, settings)
        finally:
            engine.release()
        assert result.reconciled and result.read == report.produced
        assert result.accepted == world[1]["totals"]["valid_lines"]
        assert_exactly_once(settings, store)
        assert all(r.lag == 0 for r in status(settings))

        # plaintext Kafka to the same address: no answer
        with pytest.raises(KafkaException):
            AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=3)
        # TLS 1.2 at most: the handshake is refused; a default client negotiates TLS 1.3
        host, port = bootstrap.split(":")
        old = ssl.create_default_context(cafile=str(files.ca))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((host, int(port)), timeout=5) as raw, pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname=host)
        modern = ssl.create_default_context(cafile=str(files.ca))
        with socket.create_connection((host, int(port)), timeout=5) as raw, \
                modern.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() == "TLSv1.3"


# --- erasure --------------------------------------------------------------------------------------------------------


def test_a_replayed_topic_does_not_bring_an_erased_user_back(kafka_settings, store, engine, published, world):
    """Erase a user after ingesting; publish the same events again (new offsets, as a replay would): the erased
    user's events are dropped and counted (read = bronze + quarantined + suppressed), everyone else's land again."""
    import orjson
    import pyarrow.compute as pc

    from lenslake.kafka.ingest import ingest_kafka
    from lenslake.kafka.producer import publish_landing
    from lenslake.privacy.erasure import erase_users
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import token

    assert ingest_kafka(engine, store, kafka_settings).reconciled
    def user_of(line):
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None  # the world's malformed lines
        return doc.get("user_id") if isinstance(doc, dict) else None

    users = Counter(user_of(line) for path in world_files(world[0]) for line in path.read_bytes().splitlines())
    user = next(u for u, n in users.most_common() if isinstance(u, str) and n >= 5)
    user_token = token(user, load_keys(kafka_settings).token)
    assert user_token in store.read("bronze.events", columns=["user_token"]).column(0).to_pylist()

    erase_users(kafka_settings, [user])
    bronze = store.read("bronze.events", columns=["user_token"])
    assert user_token not in bronze.column(0).to_pylist()
    before = bronze.num_rows

    replay = publish_landing(kafka_settings, world_files(world[0]), workers=1)
    result = ingest_kafka(engine, store, kafka_settings)
    assert result.reconciled and result.read == replay.produced
    suppressed = sum(p.suppressed for p in result.partitions)
    assert suppressed > 0
    after = store.read("bronze.events", columns=["user_token"])
    assert user_token not in after.column(0).to_pylist()
    assert after.num_rows - before == result.accepted
    assert pc.sum(pc.equal(after.column(0), user_token).cast("int64")).as_py() in (None, 0)


def test_a_chunk_keeps_only_the_rows_at_or_past_each_partitions_recorded_position():
    """What a table already holds is skipped per partition (a rerun after a crash between the two tables' commits),
    rows of a partition without a recorded position are not written, and per-partition counts add up."""
    import pyarrow as pa

    from lenslake.kafka.ingest import _per_partition, _skip_held

    rows = pa.table({"kafka_topic": ["a", "a", "a", "b", "b", "c"], "kafka_partition": pa.array([0, 0, 1, 0, 3, 0], pa.int32()),
                     "kafka_offset": pa.array([5, 6, 2, 9, 1, 0], pa.int64()), "value": list("uvwxyz")})
    kept = _skip_held(rows, {("a", 0): 6, ("a", 1): 0, ("b", 0): 10, ("b", 3): 1})
    assert kept.column("value").to_pylist() == ["v", "w", "y"]
    assert _skip_held(rows.slice(0, 3), {("a", 0): 0, ("a", 1): 0}).num_rows == 3
    assert _per_partition(rows) == {("a", 0): 2, ("a", 1): 1, ("b", 0): 1, ("b", 3): 1, ("c", 0): 1}
    assert _per_partition(rows.slice(0, 0)) == {}


def test_decoded_chunks_come_back_through_a_mapped_file_that_is_gone_once_read(tmp_path, settings):
    """The decoder process hands a chunk over as an Arrow file (shared memory where there is room): read back whole
    and removed at once; a folder it cannot write to sends the table back through the pipe instead; folders left
    by a killed ingest are removed, a live one's are not."""
    import os

    import pyarrow as pa

    from lenslake.kafka.ingest import HANDOFF_PREFIX, _remove_stale_handoffs
    from lenslake.kafka.records import decode_in_process, read_handoff, write_handoff

    table = pa.table({"a": ["x", None, "zé"], "record": pa.array([0, 1, 2], pa.int64())})
    path = write_handoff(table, str(tmp_path))
    assert os.path.exists(path) and read_handoff(path).equals(table) and not os.path.exists(path)

    fields, bad, scrubbed = decode_in_process(settings, pa.array([], pa.binary()), str(tmp_path / "no-such-folder"))
    assert isinstance(fields, pa.Table) and fields.num_rows == 0 and bad == [] and scrubbed == []

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live = tmp_path / f"{HANDOFF_PREFIX}{dead.stdout.strip()}-a", tmp_path / f"{HANDOFF_PREFIX}{os.getpid()}-b"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "chunk.arrow").write_bytes(b"x")
    _remove_stale_handoffs(tmp_path)
    assert not stale.exists() and live.exists()
