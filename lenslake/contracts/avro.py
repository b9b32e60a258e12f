"""JSON-Schema-shaped contracts derived from registered Avro records.

The Avro schemas in the registry are the single source of every contract. Avro says what a field's type is, whether
it may be null (``["null", T]``), its enum symbols and its default; what Avro cannot express is kept on the field as
an extra attribute named by its JSON Schema keyword (``pattern``, ``minimum``, ``maximum``, ``minLength``,
``maxLength``, ``minItems``, ``maxItems``, ``format``, ``enum`` for strings whose values are not Avro names) or by
our own ``x-`` keywords (``x-pii``: the kind of personal data; ``x-free-text``: typed by a person, may hold anything;
``x-sensitive``: special-category data such as health). ``doc`` becomes ``description``.

From a parsed record this module derives what the validation compiler reads (``field_specs``, ``event_parts``) and a
whole JSON Schema document (``json_schema``) for validating JSON records with ``jsonschema``. A field is required when
its type does not admit null and it has no default: a producer may leave out a field with a default, which then
reads as its default (in silver), as an Avro reader would fill it in. Only unions of null and one other type are supported: a schema that uses more is
refused at registration (``lint``), because no contract could be derived from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Extra field attributes carried over as JSON Schema keywords (and checked for shape in lint()).
NUMBER_KEYWORDS = ("minimum", "maximum")
COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems")
KEYWORDS = ("pattern", *NUMBER_KEYWORDS, *COUNT_KEYWORDS, "format", "enum")
EXTENSIONS = ("x-pii", "x-free-text", "x-sensitive")

# Avro type → JSON type.
JSON_TYPES = {
    "string": "string",
    "bytes": "string",
    "fixed": "string",
    "enum": "string",
    "int": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "array": "array",
    "map": "object",
    "record": "object",
}
EVENT_NAMESPACE = "lenslake.events"
FEED_NAMESPACE = "lenslake.feeds"
ENVELOPE_KEYS = ("schema", "schema_version", "properties")


class ContractDerivationError(ValueError):
    """A registered (or proposed) schema from which no contract can be derived."""


def unwrap(schema) -> tuple[Any, bool]:
    """(the non-null type, whether null is allowed) of a field type; only ``[null, T]`` unions are supported."""
    if schema.type != "union":
        return schema, schema.type == "null"
    branches = [s for s in schema.schemas if s.type != "null"]
    if len(branches) != 1:
        raise ContractDerivationError(
            f"union {[s.type for s in schema.schemas]} is not supported: a field is one type, optionally nullable"
        )
    return branches[0], len(branches) < len(schema.schemas)


def type_spec(schema) -> dict:
    """The JSON Schema of a (non-union) Avro type."""
    if schema.type not in JSON_TYPES:
        raise ContractDerivationError(f"Avro type {schema.type!r} has no JSON counterpart")
    spec: dict[str, Any] = {"type": JSON_TYPES[schema.type]}
    if schema.type == "enum":
        spec["enum"] = list(schema.symbols)
    elif schema.type == "array":
        spec["items"] = nullable_spec(*unwrap(schema.items))
    elif schema.type == "map":
        spec["additionalProperties"] = nullable_spec(*unwrap(schema.values))
    elif schema.type == "record":
        spec.update(object_spec(schema))
    return spec


def nullable_spec(schema, nullable: bool) -> dict:
    spec = type_spec(schema)
    if nullable:
        spec["type"] = [spec["type"], "null"]
        if "enum" in spec:
            spec["enum"] = [*spec["enum"], None]
    return spec


def field_spec(field) -> dict:
    """One record field as a JSON Schema property (its constraints, PII marks, description and default)."""
    schema, nullable = unwrap(field.type)
    spec = type_spec(schema)
    props = field.other_props
    for key in (*KEYWORDS, *EXTENSIONS):
        if key in props:
            spec[key] = list(props[key]) if key == "enum" else props[key]
    if nullable:
        spec["type"] = [spec["type"], "null"]
        if "enum" in spec:
            spec["enum"] = [*spec["enum"], None]
    if field.doc:
        spec["description"] = field.doc
    if field.has_default:
        spec["default"] = field.default
    return spec


def field_specs(record) -> tuple[dict[str, dict], list[str]]:
    """({field name: JSON Schema}, required field names) of a record, in field order."""
    specs = {f.name: field_spec(f) for f in record.fields}
    return specs, [f.name for f in record.fields if not unwrap(f.type)[1] and not f.has_default]


def object_spec(record) -> dict:
    specs, required = field_specs(record)
    spec: dict[str, Any] = {"properties": specs, "required": required}
    for key in EXTENSIONS:
        if key in record.other_props:
            spec[key] = record.other_props[key]
    if record.doc:
        spec["description"] = record.doc
    return spec


def json_schema(record, *, version: int | None = None) -> dict:
    """A JSON Schema (draft 2020-12) document equivalent to a record schema (plus its constraint attributes).

    For an event record and a registry version, ``schema`` and ``schema_version`` are pinned to the record's name
    and that version (events are self-describing).
    """
    doc: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": record.fullname,
        "type": "object",
        **object_spec(record),
    }
    if record.namespace == EVENT_NAMESPACE:
        doc["properties"]["schema"] = {**doc["properties"]["schema"], "const": record.name}
        if version is not None:
            doc["properties"]["schema_version"] = {**doc["properties"]["schema_version"], "const": version}
    return doc


@dataclass(frozen=True)
class EventParts:
    """An event record split the way the validation compiler reads it."""

    name: str  # the event type (the record's name)
    envelope: dict[str, dict]  # top-level fields but `properties`, in order
    envelope_required: frozenset[str]
    properties: dict[str, dict]  # the fields of the nested `properties` record, in order
    properties_required: frozenset[str]


# Columns the ingest adds beside each event's fields, in its working frames and in bronze and silver: an event field
# of the same name would be overwritten (a return's ``reason`` once was, by the rule column then named so).
WORKING_COLUMNS = frozenset({
    "line", "is_json", "record", "violations", "reject_reason", "source", "source_file", "source_line", "ingest_date",
    "event_date", "kafka_topic", "kafka_partition", "kafka_offset", "event_type", "client_session_id", "ip_prefix",
    "bot_reason",
})


def event_parts(record) -> EventParts:
    if record.type != "record" or record.namespace != EVENT_NAMESPACE:
        raise ContractDerivationError(f"{record.fullname} is not an event record (namespace {EVENT_NAMESPACE})")
    specs, required = field_specs(record)
    missing = [k for k in ENVELOPE_KEYS if k not in specs]
    if missing:
        raise ContractDerivationError(f"event record {record.fullname} lacks the field(s) {', '.join(missing)}")
    props_type, props_nullable = unwrap(record.fields_dict["properties"].type)
    if props_type.type != "record" or props_nullable:
        raise ContractDerivationError(f"event record {record.fullname}: `properties` must be a (non-null) record")
    if specs["schema"]["type"] != "string" or specs["schema_version"]["type"] != "integer":
        raise ContractDerivationError(f"event record {record.fullname}: `schema` must be a string, `schema_version` an int")
    props, props_required = field_specs(props_type)
    clashes = sorted(k for k in (*specs, *props) if k in WORKING_COLUMNS or k.endswith("_token"))
    if clashes:
        raise ContractDerivationError(
            f"event record {record.fullname}: field(s) {', '.join(clashes)} would clash with the columns ingestion "
            "adds beside the event's own (lineage, validation, tokens): rename them")
    return EventParts(
        name=record.name,
        envelope={k: v for k, v in specs.items() if k != "properties"},
        envelope_required=frozenset(required) - {"properties"},
        properties=props,
        properties_required=frozenset(props_required),
    )


def lint(record) -> None:
    """Refuse a schema no contract can be derived from: records only, [null, T] unions, well-formed constraints."""
    if record.type != "record":
        raise ContractDerivationError(f"only record schemas can be registered, not {record.type!r}")
    if not record.namespace:
        raise ContractDerivationError(f"record {record.name!r} needs a namespace (its fullname is the subject)")
    _lint_record(record, record.name)
    if record.namespace == EVENT_NAMESPACE:
        event_parts(record)


def _lint_record(record, path: str) -> None:
    for field in record.fields:
        where = f"{path}.{field.name}"
        try:
            schema, _ = unwrap(field.type)
        except ContractDerivationError as e:
            raise ContractDerivationError(f"field {where}: {e}") from None
        _lint_attributes(field.other_props, schema, where)
        while schema.type in ("array", "map"):
            schema, _ = unwrap(schema.items if schema.type == "array" else schema.values)
        if schema.type == "record":
            _lint_record(schema, where)


def _lint_attributes(props: dict, schema, where: str) -> None:
    if "pattern" in props:
        try:
            re.compile(props["pattern"])
        except (re.error, TypeError) as e:
            raise ContractDerivationError(f"field {where}: pattern {props['pattern']!r} is not a regular expression ({e})") from None
    for key in NUMBER_KEYWORDS:
        if key in props and (isinstance(props[key], bool) or not isinstance(props[key], (int, float))):
            raise ContractDerivationError(f"field {where}: {key} must be a number")
    for key in COUNT_KEYWORDS:
        if key in props and (isinstance(props[key], bool) or not isinstance(props[key], int) or props[key] < 0):
            raise ContractDerivationError(f"field {where}: {key} must be a non-negative integer")
    if "enum" in props and (schema.type != "string" or not isinstance(props["enum"], list)
                            or not all(isinstance(v, str) for v in props["enum"])):
        raise ContractDerivationError(f"field {where}: an enum attribute is a list of strings on a string field")
    if "x-pii" in props and not (isinstance(props["x-pii"], str) and props["x-pii"]):
        raise ContractDerivationError(f"field {where}: x-pii names the kind of personal data (a string)")
    if "x-free-text" in props and not isinstance(props["x-free-text"], bool):
        raise ContractDerivationError(f"field {where}: x-free-text is true or false")
