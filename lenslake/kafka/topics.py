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
    """{(topic, partition): (earliest, end)}: the end offset is the offset after the last message.

    The broker's ListOffsets answer is checked by reading from the offset before it to the end of the partition:
    a broker that answers the last record *batch*'s base offset + 1 instead of the last record's offset + 1 (Tansu
    0.x with memory storage does; Apache Kafka does not) would otherwise make a batch of 500 events look like one.
    On a correct broker the check reads one message per partition and changes nothing.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(kafka_config(settings, **{"group.id": "lenslake-offset-probe", "enable.auto.commit": False,
                                                  "enable.partition.eof": True, "fetch.max.bytes": 8_388_608}))
    try:
        listed = {}
        for tp in partitions:
            listed[(tp.topic, tp.partition)] = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
        ends = dict(listed)
        probe = [TopicPartition(t, p, high - 1) for (t, p), (low, high) in listed.items() if high > low]
        if probe:
            consumer.assign(probe)
            pending = {(tp.topic, tp.partition) for tp in probe}
            import time

            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for msg in consumer.consume(10_000, 0.5):
                    key = (msg.topic(), msg.partition())
                    if msg.error():
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            pending.discard(key)
                        continue
                    low, high = ends[key]
                    ends[key] = (low, max(high, msg.offset() + 1))
            if pending:
                raise TimeoutError(f"could not read to the end of {sorted(pending)} within {timeout:.0f} s")
        return ends
    finally:
        consumer.close()


def missing_topics(settings, timeout: float = 30.0) -> list[str]:
    from confluent_kafka.admin import AdminClient

    found = AdminClient(kafka_config(settings)).list_topics(timeout=timeout).topics
    return [name for name in topics(settings).values() if name not in found]
