"""Topic administration: create the family topics (idempotently) and report offsets and consumer lag."""

from __future__ import annotations

from dataclasses import dataclass

from lenslake.kafka.config import kafka_config, topics


@dataclass(frozen=True)
class TopicResult:
    topic: str
    status: str  # "created" or "exists"
    partitions: int  # what the topic has now
    declared: int  # what the settings declare

    def __str__(self) -> str:
        note = "" if self.partitions == self.declared else f" (settings declare {self.declared}: left unchanged)"
        return f"{self.topic}: {self.status}, {self.partitions} partitions{note}"


def create_topics(settings, timeout: float = 30.0) -> list[TopicResult]:
    """Create every family topic with the declared partitions, replication and ``retention.ms``.

    Idempotent: a topic that exists already is reported as it is, never altered or an error.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka_config(settings))
    names = list(topics(settings).values())
    existing = admin.list_topics(timeout=timeout).topics
    wanted = [NewTopic(name, num_partitions=settings.kafka_partitions,
                       replication_factor=settings.kafka_replication_factor,
                       config={"retention.ms": str(settings.kafka_retention_ms)})
              for name in names if name not in existing]
    created = set()
    for name, future in (admin.create_topics(wanted, request_timeout=timeout).items() if wanted else ()):
        try:
            future.result(timeout)
            created.add(name)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # created meanwhile by someone else: fine
                raise
    metadata = _wait_for_topics(admin, names, timeout, {n: settings.kafka_partitions for n in created})
    return [TopicResult(name, "created" if name in created else "exists", len(metadata[name].partitions),
                        settings.kafka_partitions) for name in names]


def _wait_for_topics(admin, names: list[str], timeout: float, partitions: dict[str, int]):
    """Metadata once every topic is visible, those just created with all their partitions (creation propagates
    asynchronously)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = admin.list_topics(timeout=timeout).topics
        if all(n in found and found[n].error is None and len(found[n].partitions) >= partitions.get(n, 1)
               for n in names) or time.monotonic() > deadline:
            missing = [n for n in names if n not in found]
            if missing:
                raise RuntimeError(f"topics not visible after {timeout:.0f} s: {', '.join(missing)}")
            return found
        time.sleep(0.1)


@dataclass(frozen=True)
class PartitionStatus:
    topic: str
    partition: int
    low: int  # earliest offset still held (retention)
    end: int  # end offset: the next offset to be written
    committed: int | None  # the consumer group's committed offset, None when it has none

    @property
    def lag(self) -> int:
        """Messages the group has not consumed yet (from the earliest held offset when it has committed nothing)."""
        return self.end - (self.committed if self.committed is not None else self.low)


def status(settings, group: str | None = None, timeout: float = 30.0) -> list[PartitionStatus]:
    """Per topic and partition: earliest and end offsets, and the group's committed offset and lag."""
    from confluent_kafka import Consumer, TopicPartition

    group = group or settings.kafka_consumer_group
    consumer = Consumer(kafka_config(settings, **{"group.id": group, "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(timeout=timeout).topics
        parts = [TopicPartition(name, p) for name in topics(settings).values() if name in metadata
                 for p in sorted(metadata[name].partitions)]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(parts, timeout=timeout)} if parts else {}
    finally:
        consumer.close()
    ends = end_offsets(settings, parts, timeout)
    rows = []
    for tp in parts:
        low, high = ends[(tp.topic, tp.partition)]
        offset = committed.get((tp.topic, tp.partition), -1001)
        rows.append(PartitionStatus(tp.topic, tp.partition, low, high, offset if offset >= 0 else None))
    return rows


def end_offsets(settings, partitions, timeout: float = 30.0) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (earliest, end)}: the earliest offset still held and the offset after the last message,
    as the broker's ListOffsets answers them, then checked by reading (``checked_offsets``)."""
    from confluent_kafka import Consumer

    consumer = Consumer(kafka_config(settings, **{"group.id": "lenslake-offset-probe", "enable.auto.commit": False,
                                                  "enable.partition.eof": True, "auto.offset.reset": "earliest",
                                                  "fetch.max.bytes": 8_388_608}))
    try:
        listed = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
                  for tp in partitions}
        return checked_offsets(consumer, listed, timeout)
    finally:
        consumer.close()


def checked_offsets(consumer, listed: dict[tuple[str, int], tuple[int, int]],
                    timeout: float = 30.0) -> dict[tuple[str, int], tuple[int, int]]:
    """The broker's (earliest, end) per partition, corrected by what reading the partition shows.

    Tansu 0.x with memory storage picks both answers by the write *time* of record batches, not by offset: its end
    offset can be the last batch's base offset + 1 instead of the last record's offset + 1 (a batch of 500 events
    looks like one), and its earliest offset is a later batch's base whenever write times do not follow offsets
    (say, after the clock steps back). A consumer group with nothing committed starts at the earliest offset, so a
    wrong one would silently skip the first batches. Both are read, not trusted: from the offset before the end to
    the partition's end, and from offset 0 to the first message where the earliest is above 0. On Apache Kafka the
    first read changes nothing; the second finds offset 0 out of range (retention moved the start), which resets
    to the same earliest offset.
    """
    last = _read(consumer, {key: high - 1 for key, (low, high) in listed.items() if high > 0}, to_end=True,
                 timeout=timeout)
    first = _read(consumer, {key: 0 for key, (low, high) in listed.items() if low > 0}, to_end=False, timeout=timeout)
    return {key: (min(low, first.get(key, low)), max(high, last.get(key, high - 1) + 1))
            for key, (low, high) in listed.items()}


def _read(consumer, starts: dict, *, to_end: bool, timeout: float) -> dict[tuple[str, int], int]:
    """Read each partition from its start offset ({(topic, partition): offset}) to its end (``to_end``: the last
    offset read) or to its first message (that message's offset); a partition with nothing there is left out."""
    import time

    from confluent_kafka import KafkaError, TopicPartition

    seen = {}
    if not starts:
        return seen
    consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
    pending, deadline = set(starts), time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 0.5):
            key = (msg.topic(), msg.partition())
            if key not in pending:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(key)
                continue
            seen[key] = max(seen.get(key, msg.offset()), msg.offset())
            if not to_end:
                pending.discard(key)
                consumer.pause([TopicPartition(*key)])
    consumer.unassign()
    if pending:
        raise TimeoutError(f"could not read {sorted(pending)} within {timeout:.0f} s")
    return seen


def missing_topics(settings, timeout: float = 30.0) -> list[str]:
    """The family topics the settings name that the broker does not have."""
    from confluent_kafka.admin import AdminClient

    found = AdminClient(kafka_config(settings)).list_topics(timeout=timeout).topics
    return [name for name in topics(settings).values() if name not in found]
