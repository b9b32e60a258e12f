"""A file-backed Avro schema registry, modelled on Confluent Schema Registry, whose state lives in the repo.

Layout of a registry directory (the repo's is ``lenslake/contracts/registry/``, shipped with the package)::

    registry.json                        next_id, the default compatibility mode, and per subject its mode and
                                         versions [{version, id, fingerprint, sha256, file}]
    subjects/<subject>/v<N>.avsc         the registered schemas, immutable

Behaviour follows Confluent's:

* the subject is the record's fullname (RecordNameStrategy: one topic carries several event types), e.g.
  ``lenslake.events.purchase``;
* versions are numbered 1, 2, … per subject; ids are global, increasing and never reused; registering a schema
  identical to a version of its subject returns that version;
* ``fingerprint`` is the SHA-256 of the Avro Parsing Canonical Form (what Avro readers care about); ``sha256``
  hashes the whole schema as canonical JSON, so that a change to ``doc``, a default or a constraint attribute
  (``pattern``, ``x-pii``, …) is a new version too: contracts are derived from those attributes;
* a new version must be compatible with the subject's history under the subject's mode, checked by Apache Avro's
  own ``ReaderWriterCompatibilityChecker``. BACKWARD: the new schema reads data written with the old one; FORWARD:
  the old reads the new; FULL: both. Plain modes compare with the latest version, ``*_TRANSITIVE`` with every
  version; NONE checks nothing. The constraint attributes the contracts validate with (``pattern``, ``minimum``,
  ``maxLength``, …), which Avro's checker ignores, are held to the same directions: BACKWARD refuses a new version
  that tightens one (it would quarantine what producers of the old one send), FORWARD one that loosens one;
* registered versions are immutable: every stored file is checked against its recorded hashes when a registry is
  opened, and an edited one is an error naming the file.

Tests and tools register into a copy (``LENSLAKE_REGISTRY_DIR``), never into the repo's registry by accident: the
CLI's ``lenslake schema register`` is the one deliberate way to add a version to it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).parent / "registry"
INDEX_FILE = "registry.json"
MODES = ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE")
DEFAULT_MODE = "BACKWARD"


class RegistryError(Exception):
    """Anything the registry refuses; the message is one line meant for a person."""


class SchemaParseError(RegistryError):
    """The text is not a schema the registry accepts (not Avro, not a record, nothing derivable from it)."""


class UnknownSubjectError(RegistryError, LookupError):
    """No such subject, version or id."""


class TamperedSchemaError(RegistryError):
    """A stored schema file no longer matches what was registered."""


class IncompatibleSchemaError(RegistryError):
    """The schema breaks the subject's compatibility mode; ``report`` says against which version and why."""

    def __init__(self, report: CompatibilityReport):
        self.report = report
        super().__init__(report.summary())


# --- hashing --------------------------------------------------------------------------------------------------------


def fingerprint(parsed) -> str:
    """SHA-256 (hex) of the Avro Parsing Canonical Form: names, types, symbols, field order; not docs or attributes."""
    return parsed.fingerprint("sha256").hex()


def content_sha256(parsed) -> str:
    """SHA-256 (hex) of the whole schema as canonical JSON (sorted keys): every attribute, doc and default counts."""
    text = json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document(schema: str | dict | Path) -> Any:
    """A schema given as JSON text, a dict or a file path, as a JSON document."""
    if isinstance(schema, dict):
        return schema
    try:
        return json.loads(schema.read_text(encoding="utf-8") if isinstance(schema, Path) else schema)
    except json.JSONDecodeError as e:
        raise SchemaParseError(f"{schema if isinstance(schema, Path) else 'the schema'} is not JSON: {e}") from None


def parse(schema: str | dict | Path):
    """Parse a schema given as JSON text, a dict or a file path; refuse what the platform cannot use."""
    import avro.errors
    import avro.schema

    from lenslake.contracts.avro import ContractDerivationError, lint

    try:
        parsed = avro.schema.parse(json.dumps(document(schema)))
    except (avro.errors.AvroException, TypeError) as e:
        raise SchemaParseError(f"not a valid Avro schema: {e}") from None
    try:
        lint(parsed)
    except ContractDerivationError as e:
        raise SchemaParseError(f"{getattr(parsed, 'fullname', 'schema')}: {e}") from None
    return parsed


def dumps(doc: Any) -> str:
    """A schema as stored: two-space JSON, with lists of plain values (enum symbols, unions) kept on one line."""

    def render(value, indent: str) -> str:
        inner = indent + "  "
        if isinstance(value, dict) and value:
            items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {render(v, inner)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + indent + "}"
        if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            return "[\n" + ",\n".join(inner + render(v, inner) for v in value) + "\n" + indent + "]"
        return json.dumps(value, ensure_ascii=False)

    return render(doc, "") + "\n"


# --- what the registry holds ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    version: int
    id: int
    fingerprint: str
    sha256: str
    path: Path

    @functools.cached_property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def document(self) -> dict:
        return json.loads(self.text)

    @functools.cached_property
    def parsed(self):
        import avro.schema

        return avro.schema.parse(self.text)

    def __str__(self) -> str:
        return f"{self.subject} v{self.version} (id {self.id})"


@dataclass(frozen=True)
class Problem:
    """One incompatibility: the field it concerns (dotted path, '' for the record itself), the checker's rule and message."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"field {self.field or '(the record)'}: {self.rule} ({self.message})"


@dataclass(frozen=True)
class Conflict:
    version: int
    reader: str  # "new" or f"v{N}": which side reads
    problems: tuple[Problem, ...]

    def __str__(self) -> str:
        side = (f"the new schema cannot read data written with version {self.version}" if self.reader == "new"
                else f"version {self.version} cannot read data written with the new schema")
        return f"{side}: " + "; ".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class CompatibilityReport:
    subject: str
    mode: str
    compatible: bool
    checked: tuple[int, ...] = ()  # the versions compared with
    conflicts: tuple[Conflict, ...] = ()
    existing: RegisteredSchema | None = None  # the identical version, if the schema is registered already
    new_subject: bool = False

    @property
    def messages(self) -> list[str]:
        if self.existing:
            return [f"identical to {self.existing}"]
        if self.new_subject:
            return [f"new subject {self.subject}: nothing to check against"]
        if self.mode == "NONE":
            return [f"{self.subject} has compatibility NONE: nothing checked"]
        if self.compatible:
            versions = ", ".join(map(str, self.checked))
            return [f"compatible with {self.subject} under {self.mode} (checked against version(s) {versions})"]
        return [f"incompatible with version {c.version}: {c}" for c in self.conflicts]

    def summary(self) -> str:
        if self.compatible:
            return self.messages[0]
        return f"subject {self.subject} (compatibility {self.mode}) refuses the schema: " + "; ".join(self.messages)


# --- compatibility --------------------------------------------------------------------------------------------------


def _verdict(reader, writer):
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    return result.compatibility is not SchemaCompatibilityType.incompatible, result


def incompatibilities(reader, writer) -> list[Problem]:
    """Why ``reader`` cannot read, or its contract would refuse, what ``writer`` wrote, field by field; [] when Avro's
    checker finds them compatible and no constraint attribute is tightened (``constraint_problems``).

    The verdicts are the checker's. It reports locations as JSON pointers (``/fields/13/type/fields/2/type``), but
    resets them to ``/`` when the writer's side is a union and the reader's is not (a nullable field made required)
    and returns them as an unordered set beside an unordered set of messages. So the field path is found by walking
    both schemas pair by pair and asking the checker about each pair: each problem carries its own field, rule and
    message (``_pointer_path`` maps a location only as a last resort).
    """
    ok, result = _verdict(reader, writer)
    problems = [] if ok else _explain(reader, writer, "")
    if not ok and not problems:  # the walk should always find it; never hide a refusal behind an empty explanation
        problems = [Problem(_pointer_path(reader, loc), rule.value, "; ".join(sorted(result.messages)))
                    for rule, loc in zip(result.incompatibilities, sorted(result.locations))]
    return problems + constraint_problems(reader, writer)


# What the contract derives its validation rules from, beside the Avro type (``lenslake.contracts.avro``).
_LOWER_BOUNDS = ("minimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "maxLength", "maxItems")


def constraint_problems(reader, writer, path: str = "") -> list[Problem]:
    """Where ``reader``'s constraint attributes would refuse a value that ``writer``'s allow, for every field both
    have (nested records, arrays and nullable unions included).

    Avro's checker does not look at these attributes, yet the contracts validate with them: a version that tightens
    one would quarantine data its producers were told was valid. As in Confluent's JSON Schema rules, the reader is
    stricter where it adds or changes a ``pattern`` or ``format``, adds or raises a lower bound (``minimum``,
    ``minLength``, ``minItems``), adds or lowers an upper bound, or adds an ``enum`` or drops some of its values.
    Whether a changed pattern accepts everything the old one did cannot be decided in general, so any change counts;
    a deliberate one goes through a subject whose mode is NONE for that version.
    """
    out = []
    for r in reader.schemas if reader.type == "union" else [reader]:
        for w in writer.schemas if writer.type == "union" else [writer]:
            if not _same_kind(r, w):
                continue
            if r.type == "record":
                for f in r.fields:
                    sub = f"{path}.{f.name}" if path else f.name
                    wf = _writer_field(w, f)
                    if wf is not None:
                        out.extend(Problem(sub, rule, message) for rule, message in _tightened(f.props, wf.props))
                        out.extend(constraint_problems(f.type, wf.type, sub))
            elif r.type == "array":
                out.extend(constraint_problems(r.items, w.items, f"{path}[]"))
            elif r.type == "map":
                out.extend(constraint_problems(r.values, w.values, f"{path}{{}}"))
    return out


def _writer_field(writer, field):
    """The writer's field that ``field`` (a reader's) reads: by name, else by one of its aliases."""
    return writer.fields_dict.get(field.name) or next(
        (writer.fields_dict[a] for a in field.props.get("aliases") or () if a in writer.fields_dict), None)


def _tightened(reader: dict, writer: dict):
    """(rule, message) for each constraint attribute of ``reader`` that refuses some value ``writer``'s allow."""
    for key in ("pattern", "format"):
        if key in reader and reader[key] != writer.get(key):
            was = f"{key} {writer[key]!r}" if key in writer else f"no {key}"
            yield f"stricter_{key}", f"the reader requires {key} {reader[key]!r}, the writer's contract {was}"
    for key in _LOWER_BOUNDS + _UPPER_BOUNDS:
        if key not in reader:
            continue
        if key not in writer or ((reader[key] > writer[key]) if key in _LOWER_BOUNDS else (reader[key] < writer[key])):
            was = writer[key] if key in writer else "none"
            yield f"stricter_{key}", f"the reader's {key} is {reader[key]}, the writer's contract's {was}"
    if "enum" in reader:
        if "enum" not in writer:
            yield "stricter_enum", f"the reader allows only {len(reader['enum'])} values, the writer's contract any"
        elif dropped := [v for v in writer["enum"] if v not in reader["enum"]]:
            yield "stricter_enum", f"the reader's enum lacks {', '.join(map(repr, dropped))}"


def _same_kind(a, b) -> bool:
    if a.type != b.type:
        return False
    return a.type not in ("record", "enum", "fixed") or a.name == b.name


def _explain(reader, writer, path: str) -> list[Problem]:
    if _verdict(reader, writer)[0]:
        return []
    if writer.type == "union" or reader.type == "union":
        branches = writer.schemas if writer.type == "union" else [writer]
        out = []
        for branch in branches:
            if _verdict(reader, branch)[0]:
                continue
            match = next((r for r in reader.schemas if _same_kind(r, branch)), None) if reader.type == "union" else (
                reader if _same_kind(reader, branch) else None)
            out.extend(_explain(match, branch, path) if match is not None else [_leaf(reader, branch, path)])
        return out
    if reader.type == writer.type == "record":
        out = []
        if reader.name != writer.name:
            out.append(_leaf(reader, writer, path))
        for f in reader.fields:
            sub = f"{path}.{f.name}" if path else f.name
            w = _writer_field(writer, f)
            if w is None:
                if not f.has_default:
                    out.append(Problem(sub, "reader_field_missing_default_value",
                                       f"the reader's field {f.name!r} has no default and the writer has no such field"))
            else:
                out.extend(_explain(f.type, w.type, sub))
        return out
    if reader.type == writer.type == "array":
        return _explain(reader.items, writer.items, f"{path}[]")
    if reader.type == writer.type == "map":
        return _explain(reader.values, writer.values, f"{path}{{}}")
    return [_leaf(reader, writer, path)]


def _leaf(reader, writer, path: str) -> Problem:
    _, result = _verdict(reader, writer)
    rule = result.incompatibilities[0].value if result.incompatibilities else "incompatible"
    return Problem(path, rule, "; ".join(sorted(result.messages)))


def _pointer_path(schema, pointer: str) -> str:
    """The checker's location (``/fields/1/type/fields/3/type``) as a field path (``properties.lens_type``)."""
    parts, names, node = [p for p in pointer.split("/") if p], [], schema
    i = 0
    while i < len(parts):
        if node is not None and node.type == "union":
            node = next((s for s in node.schemas if s.type != "null"), None)
        if parts[i] == "fields" and i + 1 < len(parts) and node is not None and node.type == "record":
            f = node.fields[int(parts[i + 1])]
            names.append(f.name)
            node, i = f.type, i + 2
        elif parts[i] == "items" and node is not None and node.type == "array":
            names[-1:] = [f"{names[-1]}[]"] if names else ["[]"]
            node, i = node.items, i + 1
        else:
            i += 1
    return ".".join(names)


def _directions(mode: str) -> tuple[bool, bool]:
    """(new reads old, old reads new) for a mode."""
    base = mode.removesuffix("_TRANSITIVE")
    return base in ("BACKWARD", "FULL"), base in ("FORWARD", "FULL")


# --- the registry ---------------------------------------------------------------------------------------------------


@dataclass
class _Index:
    next_id: int = 1
    compatibility: str = DEFAULT_MODE
    subjects: dict[str, dict] = field(default_factory=dict)


class Registry:
    """The registry in directory ``root`` (created on first registration if empty)."""

    def __init__(self, root: Path | str, *, verify: bool = True):
        self.root = Path(root)
        self._index = self._load()
        if verify:
            self.verify()

    # reading

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def _load(self) -> _Index:
        if not self.index_path.exists():
            if self.root.exists() and any(self.root.glob("subjects/*/*.avsc")):
                raise RegistryError(f"{self.index_path} is missing but {self.root / 'subjects'} holds schemas")
            return _Index()
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
            index = _Index(int(raw["next_id"]), raw.get("compatibility", DEFAULT_MODE), raw.get("subjects", {}))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise RegistryError(f"{self.index_path} is not a registry index: {e}") from None
        for subject, entry in index.subjects.items():
            if entry.get("compatibility", index.compatibility) not in MODES:
                raise RegistryError(f"{self.index_path}: subject {subject} has unknown mode {entry['compatibility']!r}")
        return index

    def _entry(self, subject: str, version: dict) -> RegisteredSchema:
        return RegisteredSchema(subject, int(version["version"]), int(version["id"]), version["fingerprint"],
                                version["sha256"], self.root / version["file"])

    def verify(self) -> None:
        """Every registered version's file exists and still hashes to what was recorded; ids are unique."""
        import avro.schema

        seen: dict[int, str] = {}
        for subject in self.subjects():
            for reg in self.versions(subject):
                if reg.id in seen or reg.id >= self._index.next_id:
                    raise RegistryError(f"{self.index_path}: id {reg.id} of {reg} is reused or not below next_id")
                seen[reg.id] = subject
                if not reg.path.is_file():
                    raise TamperedSchemaError(f"registered schema file {reg.path} of {reg} is missing")
                try:
                    parsed = avro.schema.parse(reg.path.read_text(encoding="utf-8"))
                except Exception as e:  # noqa: BLE001  (any parse failure means the file was changed)
                    raise TamperedSchemaError(f"registered schema file {reg.path} of {reg} no longer parses: {e}") from None
                if parsed.fullname != subject:
                    raise TamperedSchemaError(f"registered schema file {reg.path} names {parsed.fullname}, not {subject}")
                if fingerprint(parsed) != reg.fingerprint or content_sha256(parsed) != reg.sha256:
                    raise TamperedSchemaError(
                        f"registered schema file {reg.path} was edited after registration as {reg}: registered versions "
                        f"are immutable, register the change as a new version instead"
                    )

    def subjects(self) -> list[str]:
        return sorted(s for s, e in self._index.subjects.items() if e.get("versions"))

    def versions(self, subject: str) -> list[RegisteredSchema]:
        entry = self._index.subjects.get(subject)
        if not entry or not entry.get("versions"):
            raise UnknownSubjectError(f"no subject {subject!r} in the registry at {self.root}")
        return [self._entry(subject, v) for v in entry["versions"]]

    def latest(self, subject: str) -> RegisteredSchema:
        return self.versions(subject)[-1]

    def get(self, subject: str, version: int | None = None) -> RegisteredSchema:
        if version is None:
            return self.latest(subject)
        for reg in self.versions(subject):
            if reg.version == version:
                return reg
        raise UnknownSubjectError(f"subject {subject} has no version {version}")

    def by_id(self, schema_id: int) -> RegisteredSchema:
        for subject in self.subjects():
            for reg in self.versions(subject):
                if reg.id == schema_id:
                    return reg
        raise UnknownSubjectError(f"no schema with id {schema_id} in the registry at {self.root}")

    @property
    def default_compatibility(self) -> str:
        return self._index.compatibility

    def compatibility(self, subject: str) -> str:
        entry = self._index.subjects.get(subject) or {}
        return entry.get("compatibility") or self._index.compatibility

    # checking and writing

    def set_compatibility(self, subject: str, mode: str) -> str:
        mode = mode.upper()
        if mode not in MODES:
            raise RegistryError(f"unknown compatibility mode {mode!r}; one of {', '.join(MODES)}")
        self._subject_entry(subject)["compatibility"] = mode
        self._save()
        return mode

    def check(self, schema: str | dict | Path) -> CompatibilityReport:
        """Would ``register`` accept this schema? (the report says against which versions, and what breaks)"""
        return self._check(parse(schema))

    def _check(self, parsed) -> CompatibilityReport:
        subject = parsed.fullname
        mode = self.compatibility(subject)
        try:
            history = self.versions(subject)
        except UnknownSubjectError:
            return CompatibilityReport(subject, mode, True, new_subject=True)
        digest = content_sha256(parsed)
        same = next((reg for reg in history if reg.sha256 == digest), None)
        if same:
            return CompatibilityReport(subject, mode, True, existing=same)
        if mode == "NONE":
            return CompatibilityReport(subject, mode, True)
        against = history if mode.endswith("_TRANSITIVE") else history[-1:]
        new_reads_old, old_reads_new = _directions(mode)
        conflicts = []
        for reg in reversed(against):
            if new_reads_old and (problems := incompatibilities(parsed, reg.parsed)):
                conflicts.append(Conflict(reg.version, "new", tuple(problems)))
            if old_reads_new and (problems := incompatibilities(reg.parsed, parsed)):
                conflicts.append(Conflict(reg.version, f"v{reg.version}", tuple(problems)))
        return CompatibilityReport(subject, mode, not conflicts, tuple(r.version for r in against), tuple(conflicts))

    def register(self, schema: str | dict | Path) -> RegisteredSchema:
        """Register a schema under its fullname; the identical schema returns its existing version."""
        doc = document(schema)
        parsed = parse(doc)
        report = self._check(parsed)
        if report.existing:
            return report.existing
        if not report.compatible:
            raise IncompatibleSchemaError(report)
        subject = parsed.fullname
        entry = self._subject_entry(subject)
        version = max((int(v["version"]) for v in entry["versions"]), default=0) + 1
        rel = Path("subjects") / subject / f"v{version}.avsc"
        path = self.root / rel
        if path.exists():
            raise RegistryError(f"{path} exists but is not in {self.index_path}: refusing to overwrite it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(doc), encoding="utf-8")
        record = {"version": version, "id": self._index.next_id, "fingerprint": fingerprint(parsed),
                  "sha256": content_sha256(parsed), "file": rel.as_posix()}
        entry["versions"].append(record)
        self._index.next_id += 1
        self._save()
        return self._entry(subject, record)

    def _subject_entry(self, subject: str) -> dict:
        """A subject's entry, created with the default mode (fixed from then on, as Confluent's subject config)."""
        return self._index.subjects.setdefault(subject, {"compatibility": self._index.compatibility, "versions": []})

    def _save(self) -> None:
        doc = {
            "next_id": self._index.next_id,
            "compatibility": self._index.compatibility,
            "subjects": {s: {"compatibility": self.compatibility(s), "versions": self._index.subjects[s]["versions"]}
                         for s in sorted(self._index.subjects)},
        }
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.index_path)


def registry_dir(settings=None) -> Path:
    """The registry directory of these settings: ``LENSLAKE_REGISTRY_DIR``, else the one in the package."""
    if settings is None:
        # the environment variable itself: this runs for every table lookup, and building settings costs ~5 ms
        configured = os.environ.get("LENSLAKE_REGISTRY_DIR")
        return Path(configured) if configured else PACKAGE_DIR
    return Path(settings.registry_dir) if settings.registry_dir else PACKAGE_DIR


def registry_for(settings=None) -> Registry:
    return Registry(registry_dir(settings))

