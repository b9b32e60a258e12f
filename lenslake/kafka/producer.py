"""The event producer: JSON events → Avro (Confluent wire format) → the family topics, keyed by session id.

The same producer serves ``lenslake generate --to kafka`` now and the collector later. It is idempotent
(``enable.idempotence``: no duplicates or reordering from retries, ``acks=all``), batches (``linger.ms``,
``batch.size``) and partitions keys with murmur2, as the Java client does, so a session's events land in the same
partition whichever client produced them. Every message gets a delivery report; ``EventProducer.close`` waits for
all of them and the report is ``ok`` only when delivered == produced.

What Avro cannot carry is refused here, at the source, and counted by reason (``lenslake.kafka.wire`` says which
and why): lines that are not JSON, events naming no registered contract, and events that do not fit their Avro
types. So ``lines = produced + refused``; the consumer sees only what was produced, and reconciles with the
manifest through this report. A sample of refusals (reason, field, where) is kept in the report.
"""

from __future__ import annotations

import os
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lenslake.kafka.config import kafka_config, topic_of_type

REFUSAL_SAMPLE = 20

PRODUCER_DEFAULTS = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "partitioner": "murmur2_random",  # the Java client's: same key, same partition, whoever produces
    "message.timeout.ms": 120_000,
}


@dataclass
class ProduceReport:
    lines: int = 0
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    refused: Counter = field(default_factory=Counter)  # reason code → lines refused at the source
    by_type: Counter = field(default_factory=Counter)  # event type → messages produced
    by_topic: Counter = field(default_factory=Counter)
    refusal_sample: list[dict] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def ok(self) -> bool:
        """Every produced message delivered, none failed, every line accounted for."""
        return (self.failed == 0 and self.delivered == self.produced
                and self.lines == self.produced + self.refused_total)

    def summary(self) -> str:
        refused = ", ".join(f"{n:,} {reason}" for reason, n in self.refused.most_common()) or "none"
        rate = self.produced / self.seconds if self.seconds else 0.0
        return (f"{self.lines:,} lines: {self.produced:,} produced, {self.delivered:,} delivered, {self.failed:,} failed; "
                f"refused at the source: {refused} ({self.seconds:.1f} s, {rate:,.0f} events/s)")


class EventProducer:
    """Produce JSON event lines to their topics. Use as a context manager, or call ``close()`` for the report."""

    def __init__(self, settings, **overrides):
        from confluent_kafka import Producer

        from lenslake.kafka.wire import codec

        self.settings = settings
        self.codec = codec(settings)
        self.report = ProduceReport()
        self._topics = topic_of_type(settings)
        self._producer = Producer(kafka_config(settings, **PRODUCER_DEFAULTS, **overrides, on_delivery=self._delivered))
        self._by_id: Counter = Counter()
        self._started = time.perf_counter()

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.report.delivered += 1
        else:
            self.report.failed += 1
            if len(self.report.delivery_errors) < REFUSAL_SAMPLE:
                self.report.delivery_errors.append(f"{msg.topic()}: {err}")

    def _refuse(self, reason: str, detail: str, field_path: str, where: str) -> None:
        self.report.refused[reason] += 1
        if len(self.report.refusal_sample) < REFUSAL_SAMPLE:
            self.report.refusal_sample.append({"reason": reason, "field": field_path, "detail": detail[:200],
                                               "where": where})

    def produce_lines(self, lines: Iterable[bytes | str], source: str = "") -> None:
        """Encode and produce each line (``source`` names where they came from, for the refusal sample)."""
        self._produce(enumerate(lines, 1), source)

    def produce_file(self, path: Path, shard: int = 0, shards: int = 1) -> None:
        """Produce a file's lines; with ``shards`` > 1 only the sessions of shard ``shard`` (see ``shard_of``). A
        landing file kept encrypted once ingested (``*.enc``) is decrypted (authenticated whole) first."""
        from lenslake.privacy.landing import read_bytes

        lines = read_bytes(Path(path), self.settings).splitlines()
        pairs = enumerate(lines, 1)
        if shards > 1:
            pairs = ((n, line) for n, line in pairs if shard_of(line, shards) == shard)
        self._produce(pairs, str(path))

    def _produce(self, pairs: Iterable[tuple[int, bytes | str]], source: str) -> None:
        import orjson

        from lenslake.kafka.wire import WireError

        encode_event, topics, produce, poll = self.codec.encode_event, self._topics, self._producer.produce, self._producer.poll
        by_id, loads, decode_error = self._by_id, orjson.loads, orjson.JSONDecodeError
        count = 0
        for count, (n, line) in enumerate(pairs, 1):
            try:
                event = loads(line)
            except decode_error as e:
                self._refuse("malformed_json", str(e), "", f"{source}:{n}")
                continue
            if not isinstance(event, dict):
                self._refuse("malformed_json", "not a JSON object", "", f"{source}:{n}")
                continue
            try:
                schema_id, value = encode_event(event)
            except WireError as e:
                self._refuse(e.reason, e.detail, e.field, f"{source}:{n}")
                continue
            topic = topics.get(event["schema"])
            if topic is None:  # registered, but in no family of FAMILIES: a new event type needs its family first
                self._refuse("unknown_schema", f"event type {event['schema']!r} belongs to no topic family",
                             "schema", f"{source}:{n}")
                continue
            key = event.get("session_id")
            while True:
                try:
                    produce(topic, value, key.encode() if isinstance(key, str) else None)
                    break
                except BufferError:  # the local queue is full: serve delivery reports until there is room
                    poll(0.05)
            by_id[schema_id] += 1
            if count % 10_000 == 0:
                poll(0)
        self.report.lines += count

    def close(self, timeout: float = 120.0) -> ProduceReport:
        """Wait for every delivery report (up to ``timeout`` s) and return the report (closing twice is harmless)."""
        if self._producer is None:
            return self.report
        remaining = self._producer.flush(timeout)
        report = self.report
        report.produced = sum(self._by_id.values())
        for schema_id, count in self._by_id.items():
            event_type = self.codec.subject(schema_id).rsplit(".", 1)[-1]
            report.by_type[event_type] += count
            report.by_topic[self._topics[event_type]] += count
        if remaining:
            report.delivery_errors.append(f"{remaining} messages still undelivered after {timeout:.0f} s")
        report.seconds = time.perf_counter() - self._started
        self._producer = None  # destroy the client now (it holds our delivery callback: a reference cycle)
        return report

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_SESSION_KEYS = (b'"session_id":"', b'"session_id": "')


def shard_of(line: bytes, shards: int) -> int:
    """Which of ``shards`` producer processes handles a line: by CRC-32 of its session id's JSON text, found without
    parsing the line, so that all of a session's lines go through one process, in file order. A line with no
    session id to be found (not JSON, or the field missing) goes to shard 0."""
    for marker in _SESSION_KEYS:
        i = line.find(marker)
        if i >= 0:
            start = i + len(marker)
            return zlib.crc32(line[start:line.find(b'"', start)]) % shards
    return 0


def landing_files(settings) -> list[Path]:
    """The generated world's event files, day by day."""
    return sorted(Path(settings.events_landing_dir).glob("*/*.ndjson"))


def _produce_shard(settings, files: list[Path], shard: int, shards: int, overrides: dict) -> ProduceReport:
    producer = EventProducer(settings, **overrides)
    for path in files:
        producer.produce_file(path, shard, shards)
    return producer.close()


def merge(reports: list[ProduceReport]) -> ProduceReport:
    out = ProduceReport()
    for r in reports:
        out.lines += r.lines
        out.produced += r.produced
        out.delivered += r.delivered
        out.failed += r.failed
        out.refused.update(r.refused)
        out.by_type.update(r.by_type)
        out.by_topic.update(r.by_topic)
        out.refusal_sample.extend(r.refusal_sample[: REFUSAL_SAMPLE - len(out.refusal_sample)])
        out.delivery_errors.extend(r.delivery_errors)
    return out


def publish_landing(settings, files: Iterable[Path] | None = None, *, workers: int | None = None,
                    **overrides) -> ProduceReport:
    """Produce every event line of the landing zone (or of ``files``) to the topics; the report after flushing.

    JSON parsing and Avro encoding are Python work, so with ``workers`` > 1 (default: up to 2, one per core) the
    lines are split by session between producer processes (``shard_of``): each session still goes through one
    idempotent producer in file order, so its events stay in order within their partition.
    """
    files = landing_files(settings) if files is None else [Path(f) for f in files]
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    if workers == 1:
        report = _produce_shard(settings, files, 0, 1, overrides)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked child would inherit no librdkafka threads but any lock they held
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_produce_shard, settings, files, w, workers, overrides) for w in range(workers)]
            report = merge([f.result() for f in futures])
    report.seconds = time.perf_counter() - started
    return report
