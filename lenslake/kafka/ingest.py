"""Kafka topics → bronze.events + bronze.events_quarantine, exactly once (source 'kafka').

The Delta log, not the broker, says where to resume. Each of the two tables records, in the same commit as its
rows, the next offset to read of every topic-partition as a Delta application transaction (app id
``kafka:<group>:<topic>:<partition>``, version = next offset; the ``txn`` action Spark Structured Streaming writes
for idempotent Delta sinks). A run:

1. reads each table's recorded position per partition (absent: the group's committed offset, else the earliest
   held) and starts from the lower of the two; it stops at the end offsets seen when the run starts
   (``topics.end_offsets``: checked, since a broker's ListOffsets answer can be wrong);
2. decodes every message (``wire.decode``): a record becomes a JSON line that goes through the landing path's
   bronze transform with its Kafka position as lineage; bytes that cannot be decoded are quarantined sealed, with
   their reason (``unknown_schema_id``, ``undecodable_payload``) and position;
3. lets each table skip the rows below its own recorded position (a run killed between the two commits leaves
   bronze ahead of quarantine: the rerun re-reads from quarantine's position and bronze skips what it holds), then
   appends them in ONE commit carrying the new positions of every partition;
4. only after both commits, commits the consumer group's offsets (for ``lenslake kafka status`` and lag; never
   read back as the position while the tables record one).

Nothing is dropped silently: per partition, messages read = bronze + quarantined rows made from them.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.kafka.config import kafka_config, topics

BRONZE, QUARANTINE = "bronze.events", "bronze.events_quarantine"
BATCH = 10_000
# Test hook: SIGKILL this process at a named point ("during_consume", "after_bronze", "after_quarantine").
KILL_AT_ENV = "LENSLAKE_TEST_KILL_AT"


def app_id(group: str, topic: str, partition: int) -> str:
    return f"kafka:{group}:{topic}:{partition}"


@dataclass
class PartitionIngest:
    topic: str
    partition: int
    bronze_position: int  # next offset bronze held before this run
    quarantine_position: int  # next offset quarantine held before this run
    end: int  # end offset seen when the run started: where both tables stand after it
    read: int = 0  # messages read in [min(positions), end)
    bronze: int = 0  # bronze rows made from them
    quarantined: int = 0  # quarantine rows made from them
    bronze_written: int = 0  # of those, appended (the rest the table held already)
    quarantine_written: int = 0

    @property
    def start(self) -> int:
        return min(self.bronze_position, self.quarantine_position)

    @property
    def reconciled(self) -> bool:
        return self.read == self.bronze + self.quarantined


@dataclass
class KafkaIngestResult:
    idle: bool = False
    message: str = ""
    partitions: list[PartitionIngest] = field(default_factory=list)
    writes: list = field(default_factory=list)  # WriteResult of each Delta commit made
    reasons: dict = field(default_factory=dict)  # reason code → quarantine rows written
    seconds: float = 0.0

    @property
    def read(self) -> int:
        return sum(p.read for p in self.partitions)

    @property
    def accepted(self) -> int:
        return sum(p.bronze_written for p in self.partitions)

    @property
    def quarantined(self) -> int:
        return sum(p.quarantine_written for p in self.partitions)

    @property
    def reconciled(self) -> bool:
        return all(p.reconciled for p in self.partitions)

    @property
    def lag_before(self) -> int:
        return sum(p.end - p.start for p in self.partitions)

    def summary(self) -> str:
        if self.idle:
            return self.message
        return (f"{self.read:,} messages read from {len(self.partitions)} partitions: {self.accepted:,} to bronze, "
                f"{self.quarantined:,} quarantined ({self.seconds:.1f} s)")


def _kill_point(name: str) -> None:
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def ingest_kafka(engine, store, settings, *, timeout: float = 60.0) -> KafkaIngestResult:
    """Consume every family topic from the last ingested position to the end offsets seen now into bronze; idle
    (a result saying so) without ``settings.kafka_bootstrap``. ``timeout``: seconds without progress before giving
    up (nothing is committed then; a rerun starts over from the same positions)."""
    if not settings.kafka_bootstrap:
        return KafkaIngestResult(idle=True, message="Kafka is not configured (no LENSLAKE_KAFKA_BOOTSTRAP): nothing to ingest")
    from confluent_kafka import Consumer, TopicPartition

    from lenslake.kafka.topics import end_offsets

    started = time.perf_counter()
    group = settings.kafka_consumer_group
    consumer = Consumer(kafka_config(settings, **{"group.id": group, "enable.auto.commit": False,
                                                  "auto.offset.reset": "earliest", "enable.partition.eof": True}))
    try:
        metadata = consumer.list_topics(timeout=timeout).topics
        parts = [TopicPartition(name, p) for name in topics(settings).values() if name in metadata
                 for p in sorted(metadata[name].partitions)]
        if not parts:
            return KafkaIngestResult(message="no event topics on the broker yet (lenslake kafka init)")
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(parts, timeout=timeout)}
        ends = end_offsets(settings, parts, timeout)
        plan = []
        for tp in parts:
            key = (tp.topic, tp.partition)
            low, end = ends[key]
            fallback = committed.get(key, -1)
            fallback = fallback if fallback >= 0 else low
            aid = app_id(group, *key)
            b, q = (store.app_version(t, aid) for t in (BRONZE, QUARANTINE))
            plan.append(PartitionIngest(tp.topic, tp.partition, fallback if b is None else b,
                                        fallback if q is None else q, end))
        result = KafkaIngestResult(partitions=plan)
        todo = [p for p in plan if p.start < p.end]
        if not todo:
            # a run killed after its Delta commits left the group behind the tables: catch it up (no Delta commit)
            _commit_group(consumer, plan, committed)
            result.message = "nothing new"
            result.seconds = time.perf_counter() - started
            return result

        decoded, undecodable = _consume(consumer, todo, settings, timeout)
        events, quarantine = _to_bronze(engine, settings, decoded, undecodable)
        _count(plan, decoded, undecodable, events, quarantine)

        for name, rows, pos_attr, written_attr in ((BRONZE, events, "bronze_position", "bronze_written"),
                                                   (QUARANTINE, quarantine, "quarantine_position", "quarantine_written")):
            if all(getattr(p, pos_attr) >= p.end for p in plan):
                continue  # the table holds everything already: no commit at all
            rows = _skip_held(rows, {(p.topic, p.partition): getattr(p, pos_attr) for p in plan})
            for p in plan:
                setattr(p, written_attr, _rows_of(rows, p.topic, p.partition))
            versions = {app_id(group, p.topic, p.partition): max(p.end, getattr(p, pos_attr)) for p in plan}
            result.writes.append(store.append(name, rows, app_versions=versions))
            if name == QUARANTINE and rows.num_rows:
                result.reasons = dict(sorted((str(c["values"]), c["counts"])
                                             for c in pc.value_counts(rows.column("reason_code")).to_pylist()))
            _kill_point("after_bronze" if name == BRONZE else "after_quarantine")

        # Only now, with both tables committed: the group's offsets (what status and lag show).
        _commit_group(consumer, plan, committed)
        unreconciled = [f"{p.topic}[{p.partition}]" for p in plan if not p.reconciled]
        if unreconciled:
            raise RuntimeError(f"messages read != bronze + quarantined in {', '.join(unreconciled)}")
        result.seconds = time.perf_counter() - started
        return result
    finally:
        consumer.close()


def _commit_group(consumer, plan: list[PartitionIngest], committed: dict) -> None:
    """Commit the group's offsets where they differ from where both tables now stand."""
    from confluent_kafka import TopicPartition

    behind = [TopicPartition(p.topic, p.partition, p.end) for p in plan
              if p.end > 0 and committed.get((p.topic, p.partition)) != p.end]
    if behind:
        consumer.commit(offsets=behind, asynchronous=False)


def _consume(consumer, todo: list[PartitionIngest], settings, timeout: float):
    """Read [start, end) of each partition: (decoded records as (topic, partition, offset, JSON line), undecodable
    messages as (topic, partition, offset, value, reason))."""
    import orjson
    from confluent_kafka import KafkaError, TopicPartition

    from lenslake.kafka.wire import codec

    decode, dumps = codec(settings).decode, orjson.dumps
    ends = {(p.topic, p.partition): p.end for p in todo}
    consumer.assign([TopicPartition(p.topic, p.partition, p.start) for p in todo])
    pending = set(ends)
    decoded, undecodable = [], []
    last_progress = time.monotonic()
    while pending:
        batch = consumer.consume(BATCH, 0.5)
        if not batch:
            if time.monotonic() - last_progress > timeout:
                raise TimeoutError(f"no message for {timeout:.0f} s before the end of {sorted(pending)}")
            continue
        last_progress = time.monotonic()
        for msg in batch:
            key = (msg.topic(), msg.partition())
            if key not in pending:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    # at the broker's end: done if that is at or past the end seen at the start (gaps: markers)
                    if msg.offset() >= ends[key]:
                        pending.discard(key)
                    continue
                raise RuntimeError(f"consuming {key}: {msg.error()}")
            offset = msg.offset()
            if offset >= ends[key]:
                pending.discard(key)
                continue
            record, reason, _detail = decode(msg.value())
            if record is not None:
                decoded.append((key[0], key[1], offset, dumps(record).decode()))
            else:
                undecodable.append((key[0], key[1], offset, msg.value() or b"", reason))
            if offset >= ends[key] - 1:
                pending.discard(key)
        _kill_point("during_consume")
    consumer.unassign()
    return decoded, undecodable


def _to_bronze(engine, settings, decoded, undecodable) -> tuple[pa.Table, pa.Table]:
    """Decoded records through the landing path's bronze transform (lineage: topic, partition, offset), plus the
    undecodable messages as sealed quarantine rows."""
    from lenslake.privacy.keys import load_keys
    from lenslake.transforms import bronze as bronze_t

    keys = load_keys(settings)
    today = settings.now().date()
    n = len(decoded)
    lines = pa.table({
        "line": pa.array([d[3] for d in decoded], pa.string()),
        "is_json": pa.array([True] * n, pa.bool_()),  # an Avro record serialized as JSON is always an object
        "source_file": pa.nulls(n, pa.string()),
        "source_line": pa.nulls(n, pa.int64()),
        "ingest_date": pa.array([today] * n, pa.date32()),
        "kafka_topic": pa.array([d[0] for d in decoded], pa.string()),
        "kafka_partition": pa.array([d[1] for d in decoded], pa.int32()),
        "kafka_offset": pa.array([d[2] for d in decoded], pa.int64()),
    })
    try:
        events, quarantine = bronze_t.bronze_from_lines(engine, lines, keys, source="kafka")
    finally:
        engine.release()
    if undecodable:
        rows = [bronze_t.sealed_row(value, value.decode("utf-8", errors="replace"), reason,
                                    {"kafka_topic": t, "kafka_partition": p, "kafka_offset": o, "ingest_date": today}, keys)
                for t, p, o, value, reason in undecodable]
        quarantine = pa.concat_tables([quarantine, bronze_t.finish_quarantine(rows, "kafka")])
    return events, quarantine


def _mask(rows: pa.Table, topic: str, partition: int):
    return pc.and_(pc.equal(rows.column("kafka_topic"), topic),
                   pc.equal(rows.column("kafka_partition"), pa.scalar(partition, pa.int32())))


def _rows_of(rows: pa.Table, topic: str, partition: int) -> int:
    if rows.num_rows == 0:
        return 0
    return int(pc.sum(pc.fill_null(_mask(rows, topic, partition), False).cast(pa.int64())).as_py() or 0)


def _skip_held(rows: pa.Table, positions: dict[tuple[str, int], int]) -> pa.Table:
    """The rows at or past their partition's recorded position (what the table does not hold yet)."""
    if rows.num_rows == 0:
        return rows
    keep = None
    for (topic, partition), position in positions.items():
        m = pc.and_(_mask(rows, topic, partition), pc.greater_equal(rows.column("kafka_offset"), position))
        keep = m if keep is None else pc.or_(keep, m)
    return rows.filter(pc.fill_null(keep, False))


def _count(plan, decoded, undecodable, events, quarantine) -> None:
    from collections import Counter

    read = Counter((t, p) for t, p, *_ in decoded) + Counter((t, p) for t, p, *_ in undecodable)
    for p in plan:
        p.read = read.get((p.topic, p.partition), 0)
        p.bronze = _rows_of(events, p.topic, p.partition)
        p.quarantined = _rows_of(quarantine, p.topic, p.partition)
