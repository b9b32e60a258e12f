"""Benchmark: a generated world's events produced to Kafka, then consumed into bronze, beside a bare consumer loop.

    .venv/bin/python bench/bench_kafka.py [--events 1000000] [--days 7] [--bootstrap host:port]

Stages, in one run on the same topics:
1. produce: JSON parsing, Avro encoding (Confluent wire format), the idempotent producer, every delivery report;
2. bare loop: a plain ``confluent-kafka`` consumer, batched ``Consumer.consume(num_messages=10000)``, values only
   touched (``len``), from the beginning to the end offsets, in a fresh process of its own: the floor of reading the
   messages;
3. ingest: ``ingest_kafka`` into an empty lake, in its own process as a run would (consumer set-up, end-offset probe,
   Avro decoding, validation, tokenization, the Delta commits and the offset commit all count);
4. files: the landing-file path (``ingest_landing_days``) on the same world's files, for comparison.
Without --bootstrap a throwaway Tansu broker is started. Peak memory is each child's max RSS; CPU is its process
tree's user + system time, start-up included (a stage cannot take less wall time than its CPU time / cores).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fresh import run_fresh  # noqa: E402

CHILD = {
    # Both readers run in a fresh process of their own (bench.fresh): inside this process, which has just generated
    # and produced the world, the bare loop ran 2.2x slower (5.0 s instead of 2.2 s for 1M messages).
    "bare": (
        "from lenslake.settings import get_settings; from bench.bench_kafka import bare_loop\n"
        "s = get_settings(); n, secs = bare_loop(s, s.kafka_consumer_group + '-bare'); out = {'read': n, 'seconds': secs}"
    ),
    "ingest": (
        "from lenslake.settings import get_settings; from lenslake.delta import DeltaStore; "
        "from lenslake.engine import get_engine; from lenslake.kafka.ingest import ingest_kafka\n"
        "s = get_settings(); t = time.perf_counter(); e = get_engine(s)\n"
        "r = ingest_kafka(e, DeltaStore(s.tables_dir), s); secs = time.perf_counter() - t\n"
        "out = {'read': r.read, 'bronze': r.accepted, 'quarantined': r.quarantined, 'seconds': secs, "
        "'reconciled': r.reconciled}"
    ),
    "files": (
        "from lenslake.settings import get_settings; from lenslake.delta import DeltaStore; "
        "from lenslake.engine import get_engine; from lenslake.pipeline import ingest_landing_days, landing_days\n"
        "s = get_settings(); t = time.perf_counter(); e = get_engine(s)\n"
        "r = ingest_landing_days(e, DeltaStore(s.tables_dir), s, landing_days(s)); secs = time.perf_counter() - t\n"
        "c = r.counts; out = {'read': c['landed'], 'bronze': c['accepted'], 'quarantined': c['quarantined'], "
        "'seconds': secs}"
    ),
}


def run_child(kind: str, env: dict) -> dict:
    return run_fresh(CHILD[kind], kind, env)


def bare_loop(settings, group: str) -> tuple[int, float]:
    """Every message of the event topics, from the beginning to the end offsets, values touched."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from lenslake.kafka.config import kafka_config, topics
    from lenslake.kafka.topics import end_offsets

    consumer = Consumer(kafka_config(settings, **{"group.id": group, "enable.auto.commit": False,
                                                  "enable.partition.eof": True}))
    metadata = consumer.list_topics(timeout=30).topics
    parts = [TopicPartition(name, p, 0) for name in topics(settings).values() for p in metadata[name].partitions]
    ends = {k: high for k, (low, high) in end_offsets(settings, parts).items()}
    t = time.perf_counter()
    consumer.assign(parts)
    pending = {k for k, end in ends.items() if end > 0}
    n = size = 0
    while pending:
        for msg in consumer.consume(num_messages=10_000, timeout=1.0):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard((msg.topic(), msg.partition()))
                continue
            n += 1
            size += len(msg.value())
            if msg.offset() >= ends[(msg.topic(), msg.partition())] - 1:
                pending.discard((msg.topic(), msg.partition()))
    seconds = time.perf_counter() - t
    consumer.close()
    return n, seconds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--bootstrap")
    args = p.parse_args()

    from lenslake.kafka.broker import local_broker
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics
    from lenslake.settings import get_settings
    from lenslake.synth.world import generate_world

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        t = time.perf_counter()
        manifest = generate_world(root / "world", days=args.days, events=args.events, start=dt.date(2026, 11, 1))
        print(f"world: {manifest['totals']['lines']:,} landing lines, generated in {time.perf_counter() - t:.1f} s")
        bootstrap = args.bootstrap or stack.enter_context(local_broker())
        prefix = f"bench{int(time.time())}.events."
        settings = get_settings(data_root=root / "world", kafka_bootstrap=bootstrap, kafka_topic_prefix=prefix)
        create_topics(settings)

        report = publish_landing(settings)
        produce_rate = report.produced / report.seconds
        print(f"1. produce : {report.produced:>9,} events in {report.seconds:6.2f} s = {produce_rate:>9,.0f} events/s "
              f"(delivered {report.delivered:,})")

        env = {"LENSLAKE_DATA_ROOT": str(root / "lake"), "LENSLAKE_ENGINE": "duckdb",
               "LENSLAKE_KAFKA_BOOTSTRAP": bootstrap, "LENSLAKE_KAFKA_TOPIC_PREFIX": prefix}
        bare = run_child("bare", env)
        n, secs = bare["read"], bare["seconds"]
        bare_rate = n / secs
        print(f"2. bare    : {n:>9,} messages in {secs:6.2f} s = {bare_rate:>9,.0f} messages/s "
              f"(confluent-kafka consume(10000), values touched; process CPU {bare['cpu_s']:.1f} s)")

        ingest = run_child("ingest", env)
        ingest_rate = ingest["read"] / ingest["seconds"]
        print(f"3. ingest  : {ingest['read']:>9,} messages in {ingest['seconds']:6.2f} s = {ingest_rate:>9,.0f} "
              f"messages/s → {ingest['bronze']:,} bronze + {ingest['quarantined']:,} quarantined "
              f"(reconciled {ingest['reconciled']}), peak {ingest['peak_mb']:,.0f} MB, process tree CPU {ingest['cpu_s']:.1f} s")
        print(f"   ingest / bare loop: {ingest_rate / bare_rate:.0%}")

        files = run_child("files", {"LENSLAKE_DATA_ROOT": str(root / "world"), "LENSLAKE_ENGINE": "duckdb"})
        files_rate = files["read"] / files["seconds"]
        print(f"4. files   : {files['read']:>9,} lines    in {files['seconds']:6.2f} s = {files_rate:>9,.0f} lines/s "
              f"→ {files['bronze']:,} bronze + {files['quarantined']:,} quarantined, peak {files['peak_mb']:,.0f} MB, "
              f"CPU {files['cpu_s']:.1f} s")


if __name__ == "__main__":
    main()
