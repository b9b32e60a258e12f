"""The Confluent wire format with ids from the project's schema registry, and JSON events → Avro records.

A message value is ``0x00`` (magic byte), the writer schema's registry id as 4 bytes big-endian, then the record
in Avro binary (``fastavro.schemaless_writer``/``schemaless_reader``; parsed schemas cached per id). This is what
Confluent's serializers write, so a Kafka Connect sink or ksqlDB reading these topics through a Confluent-compatible
registry with the same ids decodes them too.

``decode`` never raises on bad bytes: it returns ``(record, None, "")`` or ``(None, reason, detail)`` with a reason
code from ``lenslake.contracts.reasons``: ``unknown_schema_id`` (the id is not in the registry) or
``undecodable_payload`` (shorter than the header, a magic byte other than 0, Avro bytes the schema cannot read, or
bytes left over after the record).

Producing from the generator's JSON lines (``EventEncoder``): an event names its contract (``schema`` +
``schema_version`` → subject ``lenslake.events.<schema>``, that version's id). Avro can only carry what fits the
schema's types, so a JSON event that does not fit is refused at the source, as Confluent's Avro serializer refuses
it in a real producer: a line that is not JSON (``malformed_json``), an event naming no registered contract
(``unknown_schema``), a required field absent (``missing_required_field``), a value outside an Avro enum
(``not_in_enum``), a value of the wrong type (``wrong_type``). fastavro itself would silently truncate a float
written to a ``long`` field and turn ``true`` into 1, so numbers and booleans are type-checked before encoding.
Everything Avro can carry travels, including values that break the constraints Avro does not express (patterns,
ranges, lengths): those are the consumer's validation to quarantine, as on the landing-file path.
"""

from __future__ import annotations

import io
import re
import struct
import threading

MAGIC = 0
HEADER = struct.Struct(">bI")
EVENT_SUBJECT_PREFIX = "lenslake.events."

_NUMERIC = {"int": (int,), "long": (int,), "float": (int, float), "double": (int, float), "boolean": (bool,)}


class WireError(ValueError):
    """An event that cannot be put on the wire; ``reason`` is a reason code, ``field`` the field path ('' if none)."""

    def __init__(self, reason: str, detail: str, field: str = ""):
        super().__init__(detail)
        self.reason, self.detail, self.field = reason, detail, field


class Codec:
    """Encoder and decoder over one registry (parsed schemas cached per id; thread-safe for reading)."""

    def __init__(self, registry):
        self.registry = registry
        self._parsed: dict[int, object] = {}
        self._ids: dict[tuple[str, int], int] = {}
        self._checks: dict[int, tuple] = {}
        self._subject_of: dict[int, str] = {}
        self._lock = threading.Lock()
        from fastavro import schemaless_reader  # bound once: an import statement per message costs ~2 µs

        self._read = schemaless_reader
        for subject in registry.subjects():
            if subject.startswith(EVENT_SUBJECT_PREFIX):
                for reg in registry.versions(subject):
                    self._ids[(subject.removeprefix(EVENT_SUBJECT_PREFIX), reg.version)] = reg.id

    # -- schemas ------------------------------------------------------------------------------------------------

    def schema_id(self, event_type: str, version: int) -> int | None:
        """The registry id of an event contract, or None when no such contract is registered."""
        return self._ids.get((event_type, version))

    def event_schema_ids(self) -> list[int]:
        """The registry ids of every registered event contract version."""
        return sorted(set(self._ids.values()))

    def parsed(self, schema_id: int):
        """The fastavro-parsed schema of a registry id (KeyError when the registry has no such id)."""
        schema = self._parsed.get(schema_id)
        if schema is None:
            with self._lock:
                schema = self._parsed.get(schema_id)
                if schema is None:
                    import fastavro

                    from lenslake.contracts.registry import UnknownSubjectError

                    try:
                        reg = self.registry.by_id(schema_id)
                    except UnknownSubjectError:
                        raise KeyError(schema_id) from None
                    schema = fastavro.parse_schema(reg.document)
                    self._checks[schema_id] = _plan(reg.document)
                    self._subject_of[schema_id] = reg.subject
                    self._parsed[schema_id] = schema
        return schema

    def subject(self, schema_id: int) -> str:
        self.parsed(schema_id)
        return self._subject_of[schema_id]

    # -- the wire -----------------------------------------------------------------------------------------------

    def encode(self, record: dict, schema_id: int) -> bytes:
        """A record as a Confluent wire-format value; WireError when the record does not fit the schema."""
        from fastavro import schemaless_writer

        try:
            schema = self.parsed(schema_id)
        except KeyError:
            raise WireError("unknown_schema", f"schema id {schema_id} is not in the registry") from None
        _check(record, self._checks[schema_id])
        buf = io.BytesIO()
        buf.write(HEADER.pack(MAGIC, schema_id))
        try:
            schemaless_writer(buf, schema, record)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
            raise _refusal(e) from None
        return buf.getvalue()

    def decode(self, value: bytes | None) -> tuple[dict | None, str | None, str]:
        """(record, None, "") or (None, reason code, detail); never raises on bad bytes."""
        if value is None or len(value) < HEADER.size:
            return None, "undecodable_payload", f"{0 if value is None else len(value)} bytes: shorter than the 5-byte header"
        magic, schema_id = HEADER.unpack_from(value)
        if magic != MAGIC:
            return None, "undecodable_payload", f"magic byte {magic}, expected {MAGIC}"
        try:
            schema = self.parsed(schema_id)
        except KeyError:
            return None, "unknown_schema_id", f"schema id {schema_id} is not in the registry"
        buf = io.BytesIO(value)
        buf.seek(HEADER.size)
        try:
            record = self._read(buf, schema, None)
        except Exception as e:  # noqa: BLE001  (any failure to read Avro bytes: EOFError, UnicodeDecodeError, …)
            return None, "undecodable_payload", f"schema id {schema_id}: {type(e).__name__}: {e}"[:500]
        if buf.tell() != len(value):
            return None, "undecodable_payload", (f"schema id {schema_id}: {len(value) - buf.tell()} bytes left "
                                                 f"after the record")
        return record, None, ""

    def encode_event(self, event: dict) -> tuple[int, bytes]:
        """(schema id, wire value) of a JSON event naming its contract; WireError (with its reason) if refused."""
        name, version = event.get("schema"), event.get("schema_version")
        schema_id = self._ids.get((name, version)) if isinstance(name, str) and type(version) is int else None
        if schema_id is None:
            raise WireError("unknown_schema", f"no registered contract {name!r} version {version!r}", "schema")
        return schema_id, self.encode(event, schema_id)


def _plan(doc: dict) -> tuple:
    """What ``_check`` verifies in a record, field by field: (name, kind, payload), kind being "types" (allowed
    Python types of a number or boolean), "enum" (its symbols), "record" or "array" (of records; a nested plan)."""
    plan = []
    for f in doc.get("fields", ()):
        ftype = f["type"]
        if isinstance(ftype, list):
            branches = [t for t in ftype if t != "null"]
            ftype = branches[0] if len(branches) == 1 else None
        kind = ftype if isinstance(ftype, str) else (ftype or {}).get("type")
        if kind in _NUMERIC:
            plan.append((f["name"], "types", _NUMERIC[kind]))
        elif kind == "enum":
            plan.append((f["name"], "enum", frozenset(ftype["symbols"])))
        elif kind == "record":
            plan.append((f["name"], "record", _plan(ftype)))
        elif kind == "array" and isinstance(ftype["items"], dict) and ftype["items"].get("type") == "record":
            plan.append((f["name"], "array", _plan(ftype["items"])))
    return tuple(plan)


def _check(node: dict, plan: tuple, prefix: str = "") -> None:
    """Refuse numbers and booleans of the wrong Python type (fastavro would coerce 2.7 → 2 and True → 1) and values
    outside an enum (fastavro's own error inside a nullable union does not say which). Absent and null values are
    left to fastavro (a default, or a missing value)."""
    get = node.get
    for name, kind, payload in plan:
        value = get(name)
        if value is None:
            continue
        if kind == "types":
            if type(value) not in payload:
                raise WireError("wrong_type", f"{prefix}{name}: {type(value).__name__} {value!r:.40} where "
                                              f"{'/'.join(t.__name__ for t in payload)} is declared", prefix + name)
        elif kind == "enum":
            if type(value) is not str or value not in payload:
                raise WireError("not_in_enum" if type(value) is str else "wrong_type",
                                f"{prefix}{name}: {value!r:.40} is not one of {sorted(payload)}", prefix + name)
        elif kind == "record":
            if type(value) is dict:
                _check(value, payload, f"{prefix}{name}.")
        elif type(value) is list:
            for item in value:
                if type(item) is dict:
                    _check(item, payload, f"{prefix}{name}[].")


_MISSING = re.compile(r"no value and no default for (\S+)")
_FIELD = re.compile(r"on field (\S+)")


def _refusal(e: Exception) -> WireError:
    message = str(e)
    if m := _MISSING.search(message):
        return WireError("missing_required_field", message, m.group(1))
    if isinstance(e, ValueError) and "is not in list" in message:
        return WireError("not_in_enum", f"{message.removesuffix(' is not in list')} is not one of the enum's symbols")
    m = _FIELD.search(message)
    return WireError("wrong_type", message, m.group(1) if m else "")


# -- module-level helpers over the registry the settings name ---------------------------------------------------

_codecs: dict = {}


def codec(settings=None) -> Codec:
    """The codec of the registry these settings name (cached per registry directory and index file state)."""
    from lenslake.contracts.registry import INDEX_FILE, Registry, registry_dir

    root = registry_dir(settings).resolve()
    try:
        st = (root / INDEX_FILE).stat()
        key = (str(root), st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        key = (str(root), 0, 0)
    found = _codecs.get(key)
    if found is None:
        found = _codecs[key] = Codec(Registry(root))
    return found


def encode(record: dict, schema_id: int) -> bytes:
    return codec().encode(record, schema_id)


def decode(value: bytes) -> tuple[dict | None, str | None, str]:
    return codec().decode(value)
