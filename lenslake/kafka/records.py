"""Kafka message values (Confluent wire format) → one Arrow table of contract fields, without a JSON round trip.

A batch of values is split by its 5-byte header (vectorized): values too short for it, with another magic byte or
with a schema id the registry does not hold are undecodable at once. The records of each schema id are decoded
into Arrow in one of two ways:

* ``fast``: the bodies (the values without their header) are laid out as an Avro object container file in memory,
  blocks of records after a header carrying the writer schema, and read by arrow-avro (``polars-avro``: Rust, no
  per-record Python). A group it cannot read (bytes that are not its schema's Avro) is decoded again the slow way,
  which finds the bad records and their reasons. arrow-avro never returns on a block that ends with bytes left
  after its last record, so this way runs in a decoder process the caller can stop (``lenslake.kafka.ingest``);
* ``slow``: ``fastavro`` record by record (``wire.Codec.decode``, exact reasons), then to Arrow: small batches, and
  the fallback.

Either way the records become the columns the landing path extracts from a JSON line (``parse_events``): one
string column per contract field holding the value's JSON text (numbers and booleans as JSON writes them, arrays
and nested records as JSON), so both paths meet the same compiled rules (``transforms.bronze.with_violations``).
``record`` is each row's index in the batch, for lineage and for the payload of a rejected record.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lenslake.kafka.wire import HEADER, MAGIC, codec

BLOCK_RECORDS = 4096  # records per Avro block: one block's error sends only its group to the slow way
GROUP_RECORDS = 65_536  # records per arrow-avro read


def decode_in_process(settings, values: pa.BinaryArray, handoff: str):
    """What a decoder process does with a chunk: ``decode_batch`` the fast way, then scrub the chunk's distinct free
    text (``x-free-text`` fields: search queries) there, on its own core. The ingest process takes the results into
    its scrubber's cache (``Scrubber.remember``), so its scrubbing, after validation as on the landing path, finds
    them done. Returns (fields, or the path of the file ``write_handoff`` put them in, in ``handoff``; undecodable;
    scrubbed texts)."""
    from lenslake.contracts.events import event_fields
    from lenslake.privacy.scrub import get_scrubber

    fields, bad = decode_batch(settings, values.to_pylist(), fast=True)
    texts = set()
    for rule in event_fields():
        if rule.free_text:
            texts.update(v for v in pc.unique(fields.column(rule.column)).to_pylist() if v is not None)
    scrubbed = get_scrubber().scrub_many(sorted(texts)) if texts else []
    try:
        return write_handoff(fields, handoff), bad, scrubbed
    except OSError:  # no room in the folder: the table goes back through the pipe instead
        return fields, bad, scrubbed


def write_handoff(table: pa.Table, folder: str) -> str:
    """Write a decoded chunk as an Arrow IPC file in ``folder`` (shared memory where the system has room) for the
    ingest process to map: far cheaper than pickling it through the pool's pipe, which the receiving process
    reads in small pieces under its GIL. Returns the file's path."""
    fd, path = tempfile.mkstemp(suffix=".arrow", dir=folder)
    os.close(fd)
    try:
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    except BaseException:
        os.unlink(path)
        raise
    return path


def read_handoff(path: str) -> pa.Table:
    """A chunk written by ``write_handoff``, mapped without a copy; the file is removed at once (the mapping keeps
    the data for as long as the table lives)."""
    try:
        return pa.ipc.open_file(pa.memory_map(path)).read_all()
    finally:
        os.unlink(path)


def warm_up(settings) -> None:
    """A decoder process's start, while the ingest reads the first chunk: pause the cyclic garbage collector, load
    the scrubber, and ready the decoding (the registry's event schemas parsed for both readers, arrow-avro loaded):
    about a second the first chunk would otherwise wait for. A failure here is left to the first chunk to raise,
    with its reason (an initializer that raises makes the pool respawn it forever)."""
    import gc
    import logging

    from lenslake.contracts.events import event_fields
    from lenslake.privacy.scrub import get_scrubber

    gc.disable()  # the process lives for one ingest; its chunk lists are what full collections would walk again
    try:
        get_scrubber().load()
        event_fields()
        c = codec(settings)
        for schema_id in c.event_schema_ids():
            c.parsed(schema_id)
            arrow_schema(c, schema_id)
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).warning("the decoder process could not get ready ahead", exc_info=True)


def decode_batch(settings, values: list, *, fast: bool) -> tuple[pa.Table, list[tuple[int, str]]]:
    """(a table of contract fields with a ``record`` column, [(index, reason code)] of the undecodable values)."""
    from lenslake.contracts.events import event_fields

    c = codec(settings)
    rules = event_fields()  # (read once: it checks the registry's state on disk)
    groups, bad = _split_by_schema(c, values)
    tables = []
    for schema_id, indices in groups.items():
        for start in range(0, len(indices), GROUP_RECORDS):
            part = indices[start:start + GROUP_RECORDS]
            records = _decode_fast(c, schema_id, values, part) if fast else None
            if records is None:
                records, part, failed = _decode_slow(c, schema_id, values, part)
                bad.extend(failed)
            tables.append(_flatten(records, part, rules))
    return (pa.concat_tables(tables) if tables else _fields_schema(rules).empty_table()), bad


def _split_by_schema(c, values: list) -> tuple[dict[int, np.ndarray], list[tuple[int, str]]]:
    """The indices of the values of each registered schema id, and the values that cannot be decoded at all."""
    lengths = np.fromiter((len(v) if v is not None else 0 for v in values), np.int64, len(values))
    data = np.frombuffer(b"".join(v[:HEADER.size] for v in values if v is not None), np.uint8)
    # Where each value's first (up to) 5 bytes start in `data`.
    starts = np.concatenate(([0], np.cumsum(np.minimum(lengths, HEADER.size))[:-1])) if len(values) else lengths
    whole = lengths >= HEADER.size
    bad = [(int(i), "undecodable_payload") for i in np.flatnonzero(~whole)]
    idx = np.flatnonzero(whole)
    heads = data[starts[idx][:, None] + np.arange(HEADER.size)] if len(idx) else np.zeros((0, HEADER.size), np.uint8)
    magic_ok = heads[:, 0] == MAGIC
    bad += [(int(i), "undecodable_payload") for i in idx[~magic_ok]]
    idx, heads = idx[magic_ok], heads[magic_ok]
    ids = heads[:, 1:].astype(np.uint32) @ np.array([1 << 24, 1 << 16, 1 << 8, 1], np.uint32)
    groups = {}
    for schema_id in np.unique(ids).tolist():
        members = idx[ids == schema_id]
        try:
            c.parsed(schema_id)
        except KeyError:
            bad += [(int(i), "unknown_schema_id") for i in members]
            continue
        groups[schema_id] = members
    return groups, bad


def _decode_fast(c, schema_id: int, values: list, indices: np.ndarray) -> pa.Table | None:
    """The records at ``indices`` through arrow-avro; None when arrow-avro cannot read them."""
    from polars_avro import AvroError

    bodies = [values[i][HEADER.size:] for i in indices.tolist()]
    sync = os.urandom(16)
    parts = [_ocf_header(c, schema_id, sync)]
    for start in range(0, len(bodies), BLOCK_RECORDS):
        block = b"".join(bodies[start:start + BLOCK_RECORDS])
        parts += [_zigzag(min(BLOCK_RECORDS, len(bodies) - start)), _zigzag(len(block)), block, sync]
    try:
        table = _read_container(b"".join(parts))
    except (AvroError, ValueError, OSError):
        return None
    return table if table.num_rows == len(indices) else None


def _decode_slow(c, schema_id: int, values: list, indices: np.ndarray) -> tuple[pa.Table, np.ndarray, list]:
    """The records at ``indices`` through fastavro one by one: (the records read, their indices, [(index, reason)]
    of the bad ones, with exact reasons)."""
    records, kept, bad = [], [], []
    for i in indices.tolist():
        record, reason, _detail = c.decode(values[i])
        if record is None:
            bad.append((i, reason))
        else:
            records.append(record)
            kept.append(i)
    return pa.Table.from_pylist(records, schema=arrow_schema(c, schema_id)), np.array(kept, np.int64), bad


def _read_container(data: bytes) -> pa.Table:
    from polars_avro._avro_rs import AvroSource  # read_avro's own source, for Arrow batches without a polars frame

    source = AvroSource([lambda: contextlib.nullcontext(io.BytesIO(data))], False, False)
    batches = [pa.record_batch(b) for b in source.batch_iter(GROUP_RECORDS, None)]
    return pa.Table.from_batches(batches) if batches else pa.record_batch(source.schema()).schema.empty_table()


@functools.cache
def _arrow_schema(document: str) -> pa.Schema:
    return _read_container(_ocf_header_of(document, b"\0" * 16)).schema


def arrow_schema(c, schema_id: int) -> pa.Schema:
    """The Arrow schema arrow-avro reads a registry schema as (enums as dictionaries, unions as nullable)."""
    return _arrow_schema(_writer_schema(c, schema_id))


def _ocf_header(c, schema_id: int, sync: bytes) -> bytes:
    return _ocf_header_of(_writer_schema(c, schema_id), sync)


def _writer_schema(c, schema_id: int) -> str:
    return json.dumps(c.registry.by_id(schema_id).document)


def _ocf_header_of(document: str, sync: bytes) -> bytes:
    meta = {b"avro.schema": document.encode(), b"avro.codec": b"null"}
    out = bytearray(b"Obj\x01") + _zigzag(len(meta))
    for k, v in meta.items():
        out += _zigzag(len(k)) + k + _zigzag(len(v)) + v
    return bytes(out + _zigzag(0) + sync)


def _zigzag(n: int) -> bytes:
    """An Avro long: zigzag, then a little-endian base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# --- records → contract fields ----------------------------------------------------------------------------------


def _fields_schema(rules) -> pa.Schema:
    return pa.schema([*(pa.field(r.column, pa.string()) for r in rules), pa.field("record", pa.int64())])


def _flatten(table: pa.Table, indices: np.ndarray, rules) -> pa.Table:
    """Decoded records of one schema → the contract field columns (``rules``: ``event_fields()``) as JSON text,
    absent fields null, + ``record``."""
    n = table.num_rows
    props = table.column("properties").combine_chunks() if "properties" in table.column_names else None
    prop_names = {props.type.field(i).name for i in range(props.type.num_fields)} if props is not None else set()
    columns = {}
    for rule in rules:
        parts = rule.path.split(".")[1:]
        if len(parts) == 1 and parts[0] in table.column_names:
            value = table.column(parts[0]).combine_chunks()
        elif len(parts) == 2 and parts[0] == "properties" and parts[1] in prop_names:
            value = pc.struct_field(props, parts[1])
        else:
            columns[rule.column] = pa.nulls(n, pa.string())
            continue
        columns[rule.column] = _as_json_text(value)
    columns["record"] = pa.array(indices, pa.int64())
    return pa.table(columns, schema=_fields_schema(rules))


def _as_json_text(value: pa.Array) -> pa.Array:
    """A column as ``json_extract_string`` gives it from a JSON line: strings as they are, numbers and booleans as
    their JSON text, arrays and records as JSON."""
    t = value.type
    if pa.types.is_dictionary(t):
        return pc.cast(value.dictionary_decode(), pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pc.cast(value, pa.string())
    if pa.types.is_nested(t):
        import duckdb

        with duckdb.connect() as con:
            con.register("t", pa.table({"v": value}))
            return con.sql("SELECT to_json(v)::VARCHAR FROM t").to_arrow_table().column(0).combine_chunks()
    return pc.cast(value, pa.string())
