"""Kafka topics → bronze.events + bronze.events_quarantine, exactly once (source 'kafka').

The Delta log, not the broker, says where to resume. Each of the two tables records, in the same commit as its
rows, the next offset to read of every topic-partition as a Delta application transaction (app id
``kafka:<group>:<topic>:<partition>``, version = next offset; the ``txn`` action Spark Structured Streaming writes
for idempotent Delta sinks). A run:

1. reads each table's recorded position per partition (absent: the group's committed offset, else the earliest
   held) and starts from the lower of the two; it stops at the end offsets seen when the run starts
   (``topics.end_offsets``: earliest and end both checked by reading, as a broker can answer them wrong);
2. decodes the messages into Arrow, the contract's fields as columns (``lenslake.kafka.records``: arrow-avro in a
   decoder process for large runs, fastavro record by record for small ones), which meet the landing path's bronze
   rules, tokens and scrubbing with their Kafka position as lineage (no JSON round trip); bytes that cannot be
   decoded are quarantined sealed, with their reason (``unknown_schema_id``, ``undecodable_payload``) and position;
3. lets each table skip the rows below its own recorded position (a run killed between the two commits leaves
   bronze ahead of quarantine: the rerun re-reads from quarantine's position and bronze skips what it holds), then
   appends them in ONE commit carrying the new positions of every partition;
4. only after both commits, commits the consumer group's offsets (for ``lenslake kafka status`` and lag; never
   read back as the position while the tables record one).

Nothing is dropped silently: per partition, messages read = bronze + quarantined rows made from them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lenslake.kafka.config import kafka_config, topics

BRONZE, QUARANTINE = "bronze.events", "bronze.events_quarantine"
BATCH = 10_000
# Chunks read ahead of the one being written: the reading never waits for the writer until this many are queued.
READ_AHEAD = 2
# Test hook: SIGKILL this process at a named point ("during_consume", "after_bronze", "after_quarantine"; ":N" for
# its N-th passage, e.g. "after_bronze:2" in the second chunk).
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
    suppressed: int = 0  # events of erased users, dropped (lenslake.privacy.governance: a replay never restores them)
    bronze_written: int = 0  # of those, appended (the rest the table held already)
    quarantine_written: int = 0

    @property
    def start(self) -> int:
        return min(self.bronze_position, self.quarantine_position)

    @property
    def reconciled(self) -> bool:
        return self.read == self.bronze + self.quarantined + self.suppressed

    @property
    def empty_offsets(self) -> int:
        """Offsets in [start, end) that held no message: transaction markers or compaction on Apache Kafka; on the
        plain topics lenslake creates, none, so any would be the broker's loss."""
        return self.end - self.start - self.read


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
    def suppressed(self) -> int:
        return sum(p.suppressed for p in self.partitions)

    @property
    def reconciled(self) -> bool:
        return all(p.reconciled for p in self.partitions)

    @property
    def lag_before(self) -> int:
        return sum(p.end - p.start for p in self.partitions)

    @property
    def empty_offsets(self) -> int:
        return sum(p.empty_offsets for p in self.partitions)

    def summary(self) -> str:
        if self.idle:
            return self.message
        return (f"{self.read:,} messages read from {len(self.partitions)} partitions: {self.accepted:,} to bronze, "
                f"{self.quarantined:,} quarantined" + (f", {self.suppressed:,} of erased users dropped" if self.suppressed else "")
                + (f", {self.empty_offsets:,} offsets held no message" if self.empty_offsets else "")
                + f" ({self.seconds:.1f} s)")


_kill_counts: dict[str, int] = {}


def _kill_point(name: str) -> None:
    """SIGKILL here when the test hook names this point ("name", or "name:N" for its N-th passage)."""
    wanted = os.environ.get(KILL_AT_ENV)
    if not wanted or wanted.split(":")[0] != name:
        return
    _kill_counts[name] = _kill_counts.get(name, 0) + 1
    if _kill_counts[name] == int(wanted.split(":")[1] if ":" in wanted else 1):
        os.kill(os.getpid(), signal.SIGKILL)


def ingest_kafka(engine, store, settings, *, timeout: float = 60.0) -> KafkaIngestResult:
    """Consume every family topic from the last ingested position to the end offsets seen now into bronze; idle
    (a result saying so) without ``settings.kafka_bootstrap``. ``timeout``: seconds without progress before giving
    up (what was committed stays; a rerun goes on from there).

    Messages are written in chunks of ``settings.kafka_ingest_chunk_messages``: each chunk is one commit per table
    recording where every partition stands, so memory stays bounded and a crash loses at most a chunk's work."""
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
        ids = [app_id(group, tp.topic, tp.partition) for tp in parts]
        recorded = {t: store.app_versions(t, ids) for t in (BRONZE, QUARANTINE)}
        for tp in parts:
            key = (tp.topic, tp.partition)
            low, end = ends[key]
            fallback = committed.get(key, -1)
            fallback = fallback if fallback >= 0 else low
            aid = app_id(group, *key)
            b, q = (recorded[t][aid] for t in (BRONZE, QUARANTINE))
            plan.append(PartitionIngest(tp.topic, tp.partition, fallback if b is None else b,
                                        fallback if q is None else q, end))
        result = KafkaIngestResult(partitions=plan)
        todo = [p for p in plan if p.start < p.end]
        # Where each table stands, moved forward by every chunk it commits.
        held = {name: {(p.topic, p.partition): getattr(p, attr) for p in plan}
                for name, attr in ((BRONZE, "bronze_position"), (QUARANTINE, "quarantine_position"))}
        by_key = {(p.topic, p.partition): p for p in plan}

        def write(reached, raw, decoding):
            fields, undecodable = _decoded(settings, raw, decoding)
            events, quarantine, suppressed = _to_bronze(engine, settings, raw, fields, undecodable)
            _count(by_key, raw, events, quarantine, suppressed)
            for name, rows in ((BRONZE, events), (QUARANTINE, quarantine)):
                _commit_chunk(store, group, name, rows, held[name], reached, by_key, result)

        # Three stages overlap: this thread reads ahead while a decoder process turns the chunks' Avro into Arrow
        # (arrow-avro, lenslake.kafka.records) and a writer thread validates and commits them one by one, in order
        # (DuckDB and delta-rs work outside the GIL). At most READ_AHEAD chunks wait for the writer, so memory
        # stays bounded. Small runs decode record by record on the writer thread: a process costs more to start
        # than they take.
        messages = sum(p.end - p.start for p in todo)
        parallel = settings.kafka_decode_processes > 0 and messages >= settings.kafka_parallel_decode_min_messages
        with contextlib.ExitStack() as stages:
            stages.enter_context(_cyclic_gc_paused())
            writer = stages.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-writer"))
            decoder = stages.enter_context(_Decoders(settings)) if parallel else None
            in_flight = deque()
            for reached, raw in _consume(consumer, todo, _even_chunks(messages, settings.kafka_ingest_chunk_messages),
                                         timeout):
                decoding = decoder.submit(raw) if decoder else None
                while len(in_flight) >= READ_AHEAD:
                    in_flight.popleft().result()
                in_flight.append(writer.submit(write, reached, raw, decoding))
            while in_flight:
                in_flight.popleft().result()
        # Only now, with both tables committed: the group's offsets (what status and lag show). A run killed after
        # its Delta commits left the group behind the tables: this catches it up without a Delta commit.
        _commit_group(consumer, plan, committed)
        if not todo:
            result.message = "nothing new"
        unreconciled = [f"{p.topic}[{p.partition}]" for p in plan if not p.reconciled]
        if unreconciled:
            raise RuntimeError(f"messages read != bronze + quarantined in {', '.join(unreconciled)}")
        result.seconds = time.perf_counter() - started
        return result
    finally:
        consumer.close()


def _even_chunks(messages: int, most: int) -> int:
    """The size of chunks of equal size, none above ``most``: no small last chunk left alone at the end."""
    chunks = max(1, -(-messages // most))
    return max(1, -(-messages // chunks))


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector while messages are read and written: a chunk holds half a million
    values in growing lists, which every full collection walks again (reading 1M messages took 5.3 s with it,
    2.2 s without: the bare loop's time). Nothing the ingest makes forms reference cycles; what others make is
    collected when it resumes."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _commit_chunk(store, group, name, rows, held, reached, by_key, result) -> None:
    """Append a chunk's rows the table does not hold yet, in one commit recording the partitions' new positions."""
    moved = {key: pos for key, pos in reached.items() if pos > held[key]}
    if not moved:
        return  # the table holds this chunk already (a rerun after a crash between the two commits)
    rows = _skip_held(rows, held)
    written_attr = "bronze_written" if name == BRONZE else "quarantine_written"
    counts = _per_partition(rows)
    for key in reached:
        p = by_key[key]
        setattr(p, written_attr, getattr(p, written_attr) + counts.get(key, 0))
    result.writes.append(store.append(name, rows, app_versions={app_id(group, *key): pos for key, pos in moved.items()}))
    if name == QUARANTINE and rows.num_rows:
        for c in pc.value_counts(rows.column("reason_code")).to_pylist():
            result.reasons[str(c["values"])] = result.reasons.get(str(c["values"]), 0) + c["counts"]
    held.update(moved)
    _kill_point("after_bronze" if name == BRONZE else "after_quarantine")


def _commit_group(consumer, plan: list[PartitionIngest], committed: dict) -> None:
    """Commit the group's offsets where they differ from where both tables now stand."""
    from confluent_kafka import TopicPartition

    behind = [TopicPartition(p.topic, p.partition, p.end) for p in plan
              if p.end > 0 and committed.get((p.topic, p.partition)) != p.end]
    if behind:
        consumer.commit(offsets=behind, asynchronous=False)


HANDOFF_PREFIX = "lenslake-decoded-"


def _handoff_root() -> str:
    """Shared memory (/dev/shm) when it has room for a few decoded chunks, else the temporary folder. Folders left
    by an ingest that was killed (its process gone) are removed first."""
    root = "/dev/shm"
    if not (os.path.isdir(root) and os.access(root, os.W_OK) and shutil.disk_usage(root).free > 2 << 30):
        root = tempfile.gettempdir()
    _remove_stale_handoffs(Path(root))
    return root


def _remove_stale_handoffs(root: Path) -> None:
    for folder in root.glob(f"{HANDOFF_PREFIX}*"):
        pid = folder.name.removeprefix(HANDOFF_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class _Decoders:
    """Decoder processes (spawned) turning chunks of message values into Arrow with arrow-avro. A chunk one of them
    does not finish within ``kafka_decode_timeout_seconds`` (arrow-avro never returns on a block that ends with
    bytes left after its last record) stops the processes; that chunk and the rest decode record by record."""

    def __init__(self, settings):
        from lenslake.kafka.records import warm_up

        self.settings = settings
        # Decoded chunks come back as files in shared memory (lenslake.kafka.records.write_handoff); a folder of
        # this process's, removed when it stops (and by the next ingest if this one was killed).
        self.handoff = tempfile.mkdtemp(prefix=f"{HANDOFF_PREFIX}{os.getpid()}-", dir=_handoff_root())
        # The scrubber and the decoding get ready in the decoder while this process reads the first chunk.
        self.pool = multiprocessing.get_context("spawn").Pool(settings.kafka_decode_processes, initializer=warm_up,
                                                              initargs=(settings,))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
            shutil.rmtree(self.handoff, ignore_errors=True)

    def submit(self, raw: list):
        from lenslake.kafka.records import decode_in_process

        if self.pool is None:
            return None
        # One Arrow buffer crosses to the process (pickling a list pickles every bytes object under the GIL).
        values = pa.array([m[3] for m in raw], pa.binary())
        return self, self.pool.apply_async(decode_in_process, (self.settings, values, self.handoff))


def _decoded(settings, raw: list, decoding) -> tuple[pa.Table, list]:
    """A chunk's records as contract fields, and its undecodable messages: from the decoder process when one took
    it and answers in time, else record by record here."""
    from lenslake.kafka.records import decode_batch, read_handoff
    from lenslake.privacy.scrub import get_scrubber

    if decoding is not None:
        decoders, pending = decoding
        if decoders.pool is not None:  # (stopped on an earlier chunk: this one's answer will never come)
            try:
                fields, undecodable, scrubbed = pending.get(settings.kafka_decode_timeout_seconds)
                fields = read_handoff(fields) if isinstance(fields, str) else fields
                get_scrubber().remember(scrubbed)
                return fields, undecodable
            except multiprocessing.TimeoutError:
                import logging

                logging.getLogger(__name__).warning(
                    "the Avro decoder process gave no answer in %.0f s: stopped; decoding record by record from here",
                    settings.kafka_decode_timeout_seconds)
                decoders.stop()
    return decode_batch(settings, [m[3] for m in raw], fast=False)


def _consume(consumer, todo: list[PartitionIngest], chunk_size: int, timeout: float):
    """Read [start, end) of each partition, yielding chunks of about ``chunk_size`` messages:
    (the next offset reached per partition read in the chunk, the messages as (topic, partition, offset, value))."""
    from confluent_kafka import KafkaError, TopicPartition

    if not todo:
        return
    ends = {(p.topic, p.partition): p.end for p in todo}
    consumer.assign([TopicPartition(p.topic, p.partition, p.start) for p in todo])
    pending = set(ends)
    reached: dict = {}
    raw = []
    last_progress = time.monotonic()
    while pending:
        batch = consumer.consume(min(BATCH, chunk_size), 0.5)
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
                        reached[key] = ends[key]
                    continue
                raise RuntimeError(f"consuming {key}: {msg.error()}")
            offset = msg.offset()
            if offset >= ends[key]:
                pending.discard(key)
                reached[key] = ends[key]
                continue
            raw.append((key[0], key[1], offset, msg.value()))
            reached[key] = offset + 1
            if offset >= ends[key] - 1:
                pending.discard(key)
                reached[key] = ends[key]
        _kill_point("during_consume")
        if len(raw) >= chunk_size or not pending:
            yield reached, raw
            reached, raw = {}, []
    consumer.unassign()


def _to_bronze(engine, settings, raw: list, fields: pa.Table, undecodable: list) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Decoded records through the bronze rules (lineage: topic, partition, offset), plus the undecodable messages
    as sealed quarantine rows; and the positions of erased users' events, dropped."""
    import orjson

    from lenslake.kafka.wire import codec
    from lenslake.privacy.governance import split_suppressed
    from lenslake.privacy.keys import load_keys
    from lenslake.transforms import bronze as bronze_t

    if not raw:  # a chunk that only moved positions (the end of a partition with gaps)
        from lenslake.tables import table_spec

        empty = table_spec(BRONZE).arrow_schema.empty_table()
        return empty, table_spec(QUARANTINE).arrow_schema.empty_table(), empty.select(["kafka_topic", "kafka_partition"])
    keys = load_keys(settings)
    today = settings.now().date()
    n, record = fields.num_rows, fields.column("record")
    lineage = {"kafka_topic": pa.array([m[0] for m in raw], pa.string()),
               "kafka_partition": pa.array([m[1] for m in raw], pa.int32()),
               "kafka_offset": pa.array([m[2] for m in raw], pa.int64())}
    for name, values in lineage.items():
        fields = fields.append_column(name, pc.take(values, record))
    fields = (fields.append_column("source_file", pa.nulls(n, pa.string()))
              .append_column("source_line", pa.nulls(n, pa.int64()))
              .append_column("ingest_date", pa.repeat(pa.scalar(today, pa.date32()), n)))
    fields, suppressed = split_suppressed(fields, settings, user_column="user_id")
    decode = codec(settings).decode

    def payload_of(i: int) -> str:  # a rejected record as the JSON line a landing file would hold
        return orjson.dumps(decode(raw[i][3])[0]).decode()

    try:
        events, quarantine = bronze_t.bronze_from_fields(engine, fields, keys, payload_of, source="kafka")
    finally:
        engine.release()
    if undecodable:
        rows = []
        for i, reason in undecodable:
            t, p, o, value = raw[i]
            value = value or b""
            rows.append(bronze_t.sealed_row(value, value.decode("utf-8", errors="replace"), reason,
                                            {"kafka_topic": t, "kafka_partition": p, "kafka_offset": o,
                                             "ingest_date": today}, keys))
        quarantine = pa.concat_tables([quarantine, bronze_t.finish_quarantine(rows, "kafka")])
    return events, quarantine, suppressed.select(["kafka_topic", "kafka_partition"])


def _per_partition(rows: pa.Table) -> dict[tuple[str, int], int]:
    """How many rows each (topic, partition) holds: one grouping, not a scan per partition."""
    if rows.num_rows == 0:
        return {}
    counts = rows.select(["kafka_topic", "kafka_partition"]).group_by(["kafka_topic", "kafka_partition"]).aggregate(
        [([], "count_all")])
    return {(t, p): n for t, p, n in zip(counts.column("kafka_topic").to_pylist(),
                                         counts.column("kafka_partition").to_pylist(),
                                         counts.column("count_all").to_pylist())}


def _skip_held(rows: pa.Table, positions: dict[tuple[str, int], int]) -> pa.Table:
    """The rows at or past their partition's recorded position (what the table does not hold yet); rows of a
    partition without a position are not kept. Each row's position is looked up by index, in one pass."""
    if rows.num_rows == 0:
        return rows
    topics = pc.dictionary_encode(rows.column("kafka_topic")).combine_chunks()
    names = topics.dictionary.to_pylist()
    partition = rows.column("kafka_partition").to_numpy().astype(np.int64)
    # position[topic index, partition]; "never" where none is recorded
    never = np.iinfo(np.int64).max
    position = np.full((len(names), int(partition.max()) + 1), never, dtype=np.int64)
    for t, name in enumerate(names):
        for (topic, p), at in positions.items():
            if topic == name and p < position.shape[1]:
                position[t, p] = at
    keep = rows.column("kafka_offset").to_numpy() >= position[topics.indices.to_numpy(), partition]
    # Usually every row is new: then no copy (a filter copies every column of the chunk).
    return rows if keep.all() else rows.filter(pa.array(keep))


def _count(by_key, raw, events, quarantine, suppressed) -> None:
    """Add a chunk's messages read and rows made to each partition's tally."""
    from collections import Counter

    read = Counter((m[0], m[1]) for m in raw)
    bronze, quarantined, suppressed = (_per_partition(rows) for rows in (events, quarantine, suppressed))
    for key, p in by_key.items():
        p.read += read.get(key, 0)
        p.bronze += bronze.get(key, 0)
        p.quarantined += quarantined.get(key, 0)
        p.suppressed += suppressed.get(key, 0)
