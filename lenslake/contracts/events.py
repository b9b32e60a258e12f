"""Event contracts derived from the Avro schemas in the schema registry, and the validation compiled from them.

Every registered version of every ``lenslake.events.<type>`` subject is a contract: an event whose ``schema`` is
"purchase" and ``schema_version`` is 2 is checked against version 2 of ``lenslake.events.purchase``
(``lenslake.contracts.registry``). Each event record carries the envelope at top level (the same fields in every
event schema) and its own fields in a nested ``properties`` record; ``lenslake.contracts.avro`` derives from it the
JSON-Schema-shaped field specs this module compiles. From them come:

* the flat list of fields every event row can carry (``event_fields()``): the bronze table's event columns;
* per-field rules (required, type, enum, pattern, range, length) compiled into engine expressions
  (``violation_columns()``), so that valid events never pass through per-row Python.

The registry is the one named by the settings at call time (``LENSLAKE_REGISTRY_DIR``, default: the package's);
what is derived from it is cached per registry directory and index file state.

Values are checked on their JSON text as extracted by the engine (``json_extract_string`` / ``get_json_object``):
a number sent as a string (``"3"``) therefore passes an integer check. That is deliberate leniency, documented
in the README.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lenslake.contracts.reasons import check_reason

# JSON type → (Arrow type name used by the table catalogue, lexical check on the extracted text).
JSON_TYPES = {
    "string": ("string", None),
    "integer": ("int64", r"^-?[0-9]+$"),
    "number": ("double", r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"),
    "boolean": ("bool", r"^(true|false)$"),
    "array": ("string", r"^\["),
    "object": ("string", r"^\{"),
}


@dataclass(frozen=True)
class FieldRule:
    """One field of an event contract and the rules that apply to it."""

    column: str  # the column it becomes (the field's own name; PII fields become <kind>_token)
    path: str  # JSON path in the raw event
    json_type: str
    required: bool = False
    nullable: bool = False
    enum: tuple | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pii: str | None = None  # kind of PII (email, phone, name, street_address, ip, device, user)
    free_text: bool = False
    description: str = ""
    has_default: bool = False  # the Avro field has a default: what rows written before the field existed read
    default: Any = field(default=None, hash=False)

    @property
    def arrow_type(self) -> str:
        return JSON_TYPES[self.json_type][0]


@dataclass(frozen=True)
class EventContract:
    name: str
    version: int
    fields: tuple[FieldRule, ...] = field(default_factory=tuple)  # the fields under `properties`
    envelope: tuple[FieldRule, ...] = field(default_factory=tuple)  # the top-level fields


def _rule(column: str, path: str, spec: dict, required: bool) -> FieldRule:
    types = spec.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    nullable = "null" in types
    json_type = next((t for t in types if t != "null"), "string")
    enum = spec.get("enum")
    return FieldRule(
        column=column,
        path=path,
        json_type=json_type,
        required=required,
        nullable=nullable,
        enum=tuple(v for v in enum if v is not None) if enum else None,
        pattern=spec.get("pattern"),
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
        min_length=spec.get("minLength"),
        max_length=spec.get("maxLength"),
        pii=spec.get("x-pii"),
        free_text=bool(spec.get("x-free-text")),
        description=spec.get("description", ""),
        has_default="default" in spec,
        default=spec.get("default"),
    )


@dataclass(frozen=True)
class _Derived:
    contracts: dict[tuple[str, int], EventContract]
    envelope: tuple[FieldRule, ...]
    fields: tuple[FieldRule, ...]


def registry_state() -> tuple[str, tuple[int, int]]:
    """The registry directory the settings name now, and the state of its index (a registration changes it)."""
    from lenslake.contracts.registry import INDEX_FILE, registry_dir

    root = registry_dir().resolve()
    try:
        st = (root / INDEX_FILE).stat()
        return str(root), (st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return str(root), (0, 0)


def _derived() -> _Derived:
    return _derive(*registry_state())


@functools.cache
def _derive(root: str, _state: tuple[int, int]) -> _Derived:
    from lenslake.contracts.avro import EVENT_NAMESPACE, event_parts
    from lenslake.contracts.registry import Registry

    registry = Registry(Path(root))
    contracts: dict[tuple[str, int], EventContract] = {}
    for subject in registry.subjects():
        if not subject.startswith(EVENT_NAMESPACE + "."):
            continue
        for reg in registry.versions(subject):
            parts = event_parts(reg.parsed)
            envelope = tuple(_rule(n, f"$.{n}", s, n in parts.envelope_required) for n, s in parts.envelope.items())
            fields = tuple(
                _rule(n, f"$.properties.{n}", s, n in parts.properties_required) for n, s in parts.properties.items()
            )
            contracts[(parts.name, reg.version)] = EventContract(parts.name, reg.version, fields, envelope)
    if not contracts:
        raise LookupError(f"the schema registry at {root} has no {EVENT_NAMESPACE}.* subject: no event contracts")

    # The envelope: the top-level fields every contract has, identically (in every schema today).
    first = next(iter(contracts.values()))
    common = tuple(r for r in first.envelope if all(r in c.envelope for c in contracts.values()))

    # Every column over all contracts, envelope first. An envelope column that some contract lacks or defines
    # differently is not required of every row.
    seen: dict[str, FieldRule] = {r.column: r for r in common}
    for contract in contracts.values():
        for rule in (*contract.envelope, *contract.fields):
            prior = seen.get(rule.column)
            if prior and (prior.json_type, prior.pii) != (rule.json_type, rule.pii):
                raise ValueError(f"field {rule.column!r} has conflicting types across event contracts")
            if prior is None and rule in contract.envelope:
                rule = dataclasses.replace(rule, required=False)
            seen.setdefault(rule.column, rule)
    return _Derived(contracts, common, tuple(seen.values()))


def envelope_rules() -> tuple[FieldRule, ...]:
    """The envelope: the top-level fields every event contract shares (``properties`` aside)."""
    return _derived().envelope


def contracts() -> dict[tuple[str, int], EventContract]:
    """Every registered (event name, version) → its contract."""
    return _derived().contracts


def event_types() -> list[str]:
    return sorted({name for name, _ in contracts()})


def event_fields() -> tuple[FieldRule, ...]:
    """The union of all fields over all contracts, one per column, envelope first (the raw event's columns)."""
    return _derived().fields


def token_column(pii_kind: str) -> str:
    return f"{pii_kind}_token"


def violation_columns(F, *, schema_col: str = "schema", version_col: str = "schema_version"):
    """Engine expressions, one per rule, each ``'<reason>@<path>'`` when the rule is broken and null otherwise.

    They expect one string column per field of ``event_fields()`` (the extracted JSON text), named by the field.
    """
    checks = []
    known = None
    for (name, version) in contracts():
        cond = (F.col(schema_col) == F.lit(name)) & (F.col(version_col) == F.lit(str(version)))
        known = cond if known is None else known | cond
    unknown = ~known | F.col(schema_col).isNull() | F.col(version_col).isNull()
    checks.append(F.when(unknown, F.lit(f"{check_reason('unknown_schema')}@$.schema")))
    common = envelope_rules()
    for rule in common:
        checks.extend(_rule_checks(F, rule, applies=None))
    for (name, version), contract in contracts().items():
        applies = (F.col(schema_col) == F.lit(name)) & (F.col(version_col) == F.lit(str(version)))
        own = [rule for rule in contract.envelope if rule not in common] + list(contract.fields)
        checks.extend(_rule_checks(F, rule, applies=applies) for rule in own)
    return [c for group in checks for c in (group if isinstance(group, list) else [group])]


def _rule_checks(F, rule: FieldRule, applies):
    col = F.col(rule.column)
    out = []

    def when(cond, code):
        cond = cond if applies is None else (applies & cond)
        out.append(F.when(cond, F.lit(f"{check_reason(code)}@{rule.path}")))

    if rule.required and not rule.nullable:
        when(col.isNull(), "missing_required_field")
    present = col.isNotNull()
    lexical = JSON_TYPES[rule.json_type][1]
    if lexical:
        when(present & ~col.rlike(lexical), "wrong_type")
    if rule.enum:
        when(present & ~col.isin(*rule.enum), "not_in_enum")
    if rule.pattern:
        when(present & ~col.rlike(rule.pattern), "pattern_mismatch")
    if rule.json_type in ("integer", "number") and (rule.minimum is not None or rule.maximum is not None):
        # Cast only what is lexically a number: Spark's ANSI mode raises on casting 'one'.
        numeric = F.when(col.rlike(lexical), col).cast("double")
        bad = None
        if rule.minimum is not None:
            bad = numeric < F.lit(float(rule.minimum))
        if rule.maximum is not None:
            over = numeric > F.lit(float(rule.maximum))
            bad = over if bad is None else (bad | over)
        when(present & col.rlike(lexical) & bad, "out_of_range")
    if rule.json_type == "string" and (rule.min_length is not None or rule.max_length is not None):
        length = F.length(col)
        bad = None
        if rule.min_length is not None:
            bad = length < F.lit(rule.min_length)
        if rule.max_length is not None:
            over = length > F.lit(rule.max_length)
            bad = over if bad is None else (bad | over)
        when(present & bad, "invalid_length")
    return out
