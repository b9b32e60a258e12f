"""The Avro schema registry: Confluent's rules (subjects, versions, global ids, compatibility modes), immutable stored
versions, the `lenslake schema` commands, and the event and feed contracts derived from what is registered.

Every test registers into a registry of its own under tmp_path (empty, or a copy of the repo's); none writes to the
repo's registry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lenslake.contracts.registry import (
    PACKAGE_DIR,
    IncompatibleSchemaError,
    Registry,
    SchemaParseError,
    TamperedSchemaError,
    _pointer_path,
    incompatibilities,
    parse,
)

FEEDS = {  # subject → landing file of generate_world
    "lenslake.feeds.product": "catalog/products.ndjson",
    "lenslake.feeds.customer": "customers/customers.ndjson",
    "lenslake.feeds.prescription": "customers/prescriptions.ndjson",
    "lenslake.feeds.service_history": "customers/service_history.ndjson",
    "lenslake.feeds.consent": "customers/consent.ndjson",
}
CATALOG_FEEDS = {  # subject → the catalog feed kind whose daily files it checks (lenslake.catalog.feeds)
    "lenslake.feeds.media": "media", "lenslake.feeds.relation": "relations", "lenslake.feeds.price": "prices",
    "lenslake.feeds.stock": "inventory",
}
EVENT_TYPES = ("add_to_cart", "failed_login", "login", "logout", "page_view", "product_view", "purchase",
               "remove_from_cart", "return", "scroll", "search", "session_end", "session_start", "time_on_page",
               "wishlist_add")


def lens(*props: dict, name: str = "lens", id_type="string") -> dict:
    """A small test record: an id and a nested `properties` record with the given fields."""
    return {
        "type": "record", "name": name, "namespace": "lenslake.test",
        "fields": [{"name": "id", "type": id_type},
                   {"name": "properties", "type": {"type": "record", "name": f"{name}_properties", "fields": list(props)}}],
    }


POWER = {"name": "power", "type": "double"}
POWER_WITH_DEFAULT = {"name": "power", "type": "double", "default": 0.0}
OPTIONAL_POWER = {"name": "power", "type": ["null", "double"], "default": None}
OPTIONAL_POWER_AS_TEXT = {"name": "power", "type": ["null", "string"], "default": None}
POWER_AS_TEXT = {"name": "power", "type": "string"}
LENS_TYPE = {"name": "lens_type", "type": "string"}
OPTIONAL_COATING = {"name": "coating", "type": ["null", "string"], "default": None}


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "registry")


@pytest.fixture
def repo_copy(tmp_path, monkeypatch) -> Registry:
    """A copy of the repo's registry, made the settings' registry for the test."""
    root = tmp_path / "registry-copy"
    shutil.copytree(PACKAGE_DIR, root)
    monkeypatch.setenv("LENSLAKE_REGISTRY_DIR", str(root))
    return Registry(root)


def with_mode(registry: Registry, mode: str, *history: dict) -> Registry:
    registry.set_compatibility("lenslake.test.lens", mode)
    for schema in history:
        registry.register(schema)
    return registry


def reasons(engine, lines) -> list[str | None]:
    """The first broken rule of each line (None: valid), in line order, as the bronze validation finds them."""
    from lenslake.transforms.bronze import parse_events
    from tests.conftest import lines_table

    parsed = parse_events(engine, engine.from_arrow(lines_table(lines))).select("source_line", "reject_reason")
    return [r["reject_reason"] for r in sorted(engine.to_arrow(parsed).to_pylist(), key=lambda r: r["source_line"])]


def refusal(registry: Registry, schema: dict) -> str:
    with pytest.raises(IncompatibleSchemaError) as e:
        registry.register(schema)
    return str(e.value)


# --- the seven modes -------------------------------------------------------------------------------------------------


def test_backward_accepts_a_new_field_with_a_default_and_refuses_one_without(registry):
    with_mode(registry, "BACKWARD", lens(POWER))
    assert registry.register(lens(POWER, OPTIONAL_COATING)).version == 2
    message = refusal(registry, lens(POWER, OPTIONAL_COATING, LENS_TYPE))
    assert "subject lenslake.test.lens (compatibility BACKWARD)" in message
    assert "version 2" in message and "the new schema cannot read data written with version 2" in message
    assert "field properties.lens_type: reader_field_missing_default_value" in message
    assert [r.version for r in registry.versions("lenslake.test.lens")] == [1, 2]


def test_forward_accepts_a_new_required_field_and_refuses_removing_one_old_readers_need(registry):
    with_mode(registry, "FORWARD", lens(POWER))
    assert registry.register(lens(POWER, LENS_TYPE)).version == 2
    message = refusal(registry, lens(LENS_TYPE))
    assert "(compatibility FORWARD)" in message and "version 2 cannot read data written with the new schema" in message
    assert "field properties.power: reader_field_missing_default_value" in message


def test_full_accepts_an_optional_field_and_refuses_a_type_change(registry):
    with_mode(registry, "FULL", lens(POWER))
    assert registry.register(lens(POWER, OPTIONAL_COATING)).version == 2
    message = refusal(registry, lens(POWER_AS_TEXT, OPTIONAL_COATING))
    assert "(compatibility FULL)" in message
    assert "field properties.power: type_mismatch (reader type: string not compatible with writer type: double)" in message
    # FULL checks both directions: each side's failure is named
    assert "the new schema cannot read" in message and "version 2 cannot read" in message


def test_none_checks_nothing_but_still_refuses_what_is_not_a_usable_schema(registry):
    with_mode(registry, "NONE", lens(POWER))
    assert registry.register(lens(POWER_AS_TEXT, LENS_TYPE)).version == 2  # every other mode refuses this
    with pytest.raises(SchemaParseError, match="union .* is not supported"):
        registry.register(lens({"name": "power", "type": ["null", "double", "string"], "default": None}))


# v1 has an optional field, v2 drops it, v3 brings it back with another type: v3 is compatible with v2 (nothing in
# common) but not with v1, whose data carries the old type. Only the transitive modes look back that far.
OPTIONAL_FIELD_HISTORY = (lens(OPTIONAL_POWER), lens())
RETYPED_RETURN = lens(OPTIONAL_POWER_AS_TEXT)


@pytest.mark.parametrize("mode", ["BACKWARD", "FULL"])
def test_plain_modes_compare_with_the_latest_version_only(registry, mode):
    with_mode(registry, mode, *OPTIONAL_FIELD_HISTORY)
    report = registry.check(RETYPED_RETURN)
    assert report.compatible and report.checked == (2,)
    assert registry.register(RETYPED_RETURN).version == 3


@pytest.mark.parametrize("mode", ["BACKWARD_TRANSITIVE", "FULL_TRANSITIVE"])
def test_transitive_modes_compare_with_every_version(registry, mode):
    with_mode(registry, mode, *OPTIONAL_FIELD_HISTORY)
    report = registry.check(RETYPED_RETURN)
    assert not report.compatible and report.checked == (1, 2)
    assert [c.version for c in report.conflicts] == [1] * len(report.conflicts)
    message = refusal(registry, RETYPED_RETURN)
    assert f"(compatibility {mode})" in message and "incompatible with version 1" in message
    assert "field properties.power: missing_union_branch (reader union lacking writer type" in message


def test_backward_transitive_and_full_transitive_accept_a_change_compatible_with_every_version(registry):
    with_mode(registry, "BACKWARD_TRANSITIVE", *OPTIONAL_FIELD_HISTORY)
    assert registry.register(lens(OPTIONAL_COATING)).version == 3
    registry.set_compatibility("lenslake.test.other", "FULL_TRANSITIVE")
    registry.register(lens(POWER, name="other"))
    assert registry.register(lens(POWER, OPTIONAL_COATING, name="other")).version == 2
    assert "missing_union_branch" in refusal(registry, lens(OPTIONAL_POWER_AS_TEXT, name="other"))


# v1 readers need `power`; v2 gives it a default, so v2 readers can do without; v3 drops it.
DEFAULTED_FIELD_HISTORY = (lens(POWER), lens(POWER_WITH_DEFAULT))


def test_forward_compares_with_the_latest_version_only(registry):
    with_mode(registry, "FORWARD", *DEFAULTED_FIELD_HISTORY)
    assert registry.register(lens()).version == 3


def test_forward_transitive_compares_with_every_version(registry):
    with_mode(registry, "FORWARD_TRANSITIVE", *DEFAULTED_FIELD_HISTORY)
    message = refusal(registry, lens())
    assert "(compatibility FORWARD_TRANSITIVE)" in message
    assert "version 1 cannot read data written with the new schema" in message
    assert "field properties.power: reader_field_missing_default_value" in message
    assert "version 2" not in message
    assert registry.register(lens(POWER_WITH_DEFAULT, OPTIONAL_COATING)).version == 3


def test_a_mode_must_be_one_of_the_seven(registry):
    with pytest.raises(Exception, match="unknown compatibility mode 'SIDEWAYS'"):
        registry.set_compatibility("lenslake.test.lens", "sideways")


def test_the_checkers_locations_map_to_field_paths():
    reader = parse(lens(POWER, LENS_TYPE))
    assert _pointer_path(reader, "/fields/1/type/fields/1") == "properties.lens_type"
    assert _pointer_path(reader, "/fields/0/type") == "id"
    # a nullable field made required: Avro's checker loses the location, the field walk does not
    problems = incompatibilities(parse(lens(POWER)), parse(lens(OPTIONAL_POWER)))
    assert [(p.field, p.rule) for p in problems] == [("properties.power", "type_mismatch")]


# --- constraint attributes: what the contracts validate with, which Avro's checker ignores ----------------------------

PATTERN_CHANGED = ({**LENS_TYPE, "pattern": "^[a-z]+$"}, {**LENS_TYPE, "pattern": "^[a-z_]+$"}, "stricter_pattern")
TIGHTENED = [  # (v1's field, v2's field, rule): v2's contract refuses a value v1's allows
    (LENS_TYPE, {**LENS_TYPE, "pattern": "^[a-z]+$"}, "stricter_pattern"),
    ({**POWER, "minimum": -20}, {**POWER, "minimum": -10}, "stricter_minimum"),
    (POWER, {**POWER, "maximum": 10}, "stricter_maximum"),
    ({**POWER, "maximum": 20}, {**POWER, "maximum": 10}, "stricter_maximum"),
    (LENS_TYPE, {**LENS_TYPE, "minLength": 2}, "stricter_minLength"),
    ({**LENS_TYPE, "maxLength": 20}, {**LENS_TYPE, "maxLength": 10}, "stricter_maxLength"),
    ({**LENS_TYPE, "enum": ["single_vision", "progressive"]}, {**LENS_TYPE, "enum": ["single_vision"]}, "stricter_enum"),
    (LENS_TYPE, {**LENS_TYPE, "format": "date-time"}, "stricter_format"),
]


@pytest.mark.parametrize("v1, v2, rule", [*TIGHTENED, PATTERN_CHANGED])
def test_backward_refuses_a_version_whose_constraints_refuse_what_the_old_ones_allowed(registry, v1, v2, rule):
    with_mode(registry, "BACKWARD", lens(v1))
    message = refusal(registry, lens(v2))
    assert f"the new schema cannot read data written with version 1: field properties.{v2['name']}: {rule} (" in message
    assert registry.versions("lenslake.test.lens")[-1].version == 1


@pytest.mark.parametrize("v1, v2, rule", TIGHTENED)
def test_loosening_a_constraint_is_backward_compatible_and_forward_incompatible(registry, v1, v2, rule):
    with_mode(registry, "BACKWARD", lens(v2))
    assert registry.register(lens(v1)).version == 2
    registry.set_compatibility("lenslake.test.other", "FORWARD")
    registry.register(lens(v2, name="other"))
    message = refusal(registry, lens(v1, name="other"))
    assert f"version 1 cannot read data written with the new schema: field properties.{v2['name']}: {rule} (" in message


def test_a_changed_pattern_is_refused_both_ways_and_needs_mode_none():
    """A wider pattern cannot be told from a narrower one in general: any change is refused, in both directions."""
    old, new, _ = PATTERN_CHANGED
    assert [p.rule for p in incompatibilities(parse(lens(new)), parse(lens(old)))] == ["stricter_pattern"]
    assert [p.rule for p in incompatibilities(parse(lens(old)), parse(lens(new)))] == ["stricter_pattern"]


def test_constraints_are_compared_inside_arrays_of_records_and_nullable_fields(repo_copy):
    """The repo's purchase contract: a stricter bound on each item's quantity, and a pattern on the nullable phone."""
    doc = repo_copy.latest("lenslake.events.purchase").document
    props = next(f for f in doc["fields"] if f["name"] == "properties")["type"]["fields"]
    item = next(f for f in props if f["name"] == "items")["type"]["items"]
    next(f for f in item["fields"] if f["name"] == "quantity")["maximum"] = 10
    next(f for f in props if f["name"] == "phone")["pattern"] = "^[0-9]{7,20}$"
    report = repo_copy.check(doc)
    assert not report.compatible
    assert [(p.field, p.rule) for c in report.conflicts for p in c.problems] == [
        ("properties.items[].quantity", "stricter_maximum"), ("properties.phone", "stricter_pattern")]
    assert "the reader's maximum is 10, the writer's contract's 20" in report.summary()


# --- versions, ids, immutability ------------------------------------------------------------------------------------


def test_ids_are_global_increasing_and_never_reused_across_subjects(registry):
    a1 = registry.register(lens(POWER, name="alpha"))
    b1 = registry.register(lens(POWER, name="beta"))
    a2 = registry.register(lens(POWER, OPTIONAL_COATING, name="alpha"))
    assert [(r.subject, r.version, r.id) for r in (a1, b1, a2)] == [
        ("lenslake.test.alpha", 1, 1), ("lenslake.test.beta", 1, 2), ("lenslake.test.alpha", 2, 3)]
    reopened = Registry(registry.root)  # the state is on disk
    b2 = reopened.register(lens(POWER, OPTIONAL_COATING, name="beta"))
    assert (b2.version, b2.id) == (2, 4)
    assert reopened.by_id(2).subject == "lenslake.test.beta" and reopened.by_id(3) == a2
    assert reopened.subjects() == ["lenslake.test.alpha", "lenslake.test.beta"]


def test_registering_an_identical_schema_returns_its_version_without_a_new_id(registry):
    v1 = registry.register(lens(POWER))
    v2 = registry.register(lens(POWER, OPTIONAL_COATING))
    reordered_keys = json.loads(json.dumps(lens(POWER)), object_pairs_hook=lambda kv: dict(reversed(kv)))
    assert registry.register(reordered_keys) == v1
    assert registry.register(json.dumps(lens(POWER, OPTIONAL_COATING), indent=8)) == v2
    assert registry.check(lens(POWER)).existing == v1
    assert registry.register(lens({"name": "power", "type": "double", "default": 0.0}, name="fresh")).id == 3


def test_a_change_to_a_constraint_attribute_is_a_new_version_with_the_same_avro_fingerprint(registry):
    v1 = registry.register(lens({**POWER, "minimum": -20}))
    v2 = registry.register(lens({**POWER, "minimum": -30}))
    assert (v1.version, v2.version) == (1, 2)
    assert v1.fingerprint == v2.fingerprint and v1.sha256 != v2.sha256


def test_a_registered_file_edited_afterwards_is_detected_naming_the_file(repo_copy):
    path = repo_copy.latest("lenslake.events.purchase").path
    path.write_text(path.read_text().replace('"^O[0-9]{10}$"', '"^O[0-9]{12}$"'))
    with pytest.raises(TamperedSchemaError, match=r"subjects/lenslake\.events\.purchase/v1\.avsc was edited"):
        Registry(repo_copy.root)


def test_reformatting_a_registered_file_is_not_an_edit(repo_copy):
    path = repo_copy.latest("lenslake.events.scroll").path
    path.write_text(json.dumps(json.loads(path.read_text())))
    Registry(repo_copy.root).verify()


def test_a_missing_registered_file_is_detected(repo_copy):
    repo_copy.latest("lenslake.feeds.consent").path.unlink()
    with pytest.raises(TamperedSchemaError, match=r"lenslake\.feeds\.consent/v1\.avsc of lenslake\.feeds\.consent v1 .* missing"):
        Registry(repo_copy.root)


# --- the repo's registry and what is derived from it -----------------------------------------------------------------


def test_every_repo_schema_is_registered_as_version_one_with_its_mode():
    """Events: BACKWARD_TRANSITIVE, since app versions in the wild keep sending every older version, so a new
    reader must read them all. Feeds: FULL, since the exporting systems and our readers upgrade independently."""
    registry = Registry(PACKAGE_DIR)
    expected = [f"lenslake.events.{t}" for t in EVENT_TYPES] + list(FEEDS) + list(CATALOG_FEEDS)
    assert [(s, registry.latest(s).version, registry.latest(s).id, registry.compatibility(s)) for s in expected] == [
        (s, 1, i, "BACKWARD_TRANSITIVE" if s.startswith("lenslake.events.") else "FULL")
        for i, s in enumerate(expected, start=1)]
    assert sorted(registry.subjects()) == sorted(expected) and registry.default_compatibility == "BACKWARD"
    for subject in expected:
        reg = registry.latest(subject)
        assert reg.path == PACKAGE_DIR / "subjects" / subject / "v1.avsc" and reg.parsed.fullname == subject


def test_every_registered_event_version_is_a_contract_that_compiles(engine):
    from lenslake.contracts.events import contracts, envelope_rules, event_fields
    from tests.conftest import make_event

    assert sorted(contracts()) == [(t, 1) for t in EVENT_TYPES]
    assert [r.column for r in envelope_rules()] == [
        "schema", "schema_version", "event_id", "event_time", "session_id", "anonymous_id", "user_id", "channel",
        "device", "platform", "user_agent", "ip", "page_url"]
    purchase = {r.column: r for r in contracts()[("purchase", 1)].fields}
    assert purchase["order_id"].pattern == "^O[0-9]{10}$" and purchase["email"].pii == "email"
    assert purchase["currency"].enum == ("EUR", "USD", "GBP") and purchase["items"].json_type == "array"
    assert purchase["phone"].has_default and purchase["phone"].default is None and not purchase["phone"].required
    assert contracts()[("search", 1)].fields[0].free_text
    assert len({r.column for r in event_fields()}) == len(event_fields())
    # the compiled rules run in the engine: a valid event of every type passes, a broken one is named
    lines = [make_event(t) for t in ("page_view", "product_view", "search", "add_to_cart", "purchase", "login", "logout")]
    lines.append(make_event("add_to_cart", lens_option="tinted"))
    assert reasons(engine, lines) == [None] * 7 + ["not_in_enum@$.properties.lens_option"]


def test_contracts_follow_the_registry_the_settings_name(repo_copy, engine):
    """A new version registered in another registry is a contract as soon as the settings point there."""
    from lenslake.contracts.events import contracts, event_fields
    from tests.conftest import make_event

    v1 = repo_copy.latest("lenslake.events.purchase").document
    v2 = json.loads(json.dumps(v1))
    props = v2["fields"][-1]["type"]["fields"]
    props.append({"name": "lens_type", "type": ["null", {"type": "enum", "name": "lens_type",
                                                         "symbols": ["single_vision", "progressive", "bifocal"]}],
                  "default": None, "doc": "the lens the frames were ordered with"})
    assert repo_copy.register(v2).version == 2

    assert (("purchase", 2) in contracts()) and (("purchase", 1) in contracts())
    lens_type = {r.column: r for r in event_fields()}["lens_type"]
    assert (lens_type.path, lens_type.enum, lens_type.has_default, lens_type.default) == (
        "$.properties.lens_type", ("single_vision", "progressive", "bifocal"), True, None)

    def v2_event(**props):
        return {**make_event("purchase", **props), "schema_version": 2}

    lines = [make_event("purchase"), v2_event(lens_type="progressive"), v2_event(lens_type="monocle"), v2_event()]
    assert reasons(engine, lines) == [None, None, "not_in_enum@$.properties.lens_type", None]


def test_without_the_override_the_repo_registry_is_used(monkeypatch):
    from lenslake.contracts.events import contracts
    from lenslake.contracts.registry import registry_dir

    monkeypatch.delenv("LENSLAKE_REGISTRY_DIR", raising=False)
    assert registry_dir() == PACKAGE_DIR
    assert ("purchase", 2) not in contracts() and ("purchase", 1) in contracts()


# --- feeds ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("world")
    generate_world(root, days=1, users=200, seed=1, events=2000)
    return root / "landing"


@pytest.mark.parametrize("subject", list(FEEDS))
def test_every_synthetic_feed_record_validates_against_its_schema(world, subject):
    import fastavro
    import jsonschema

    from lenslake.contracts.avro import json_schema

    reg = Registry(PACKAGE_DIR).latest(subject)
    avro_schema = fastavro.parse_schema(reg.document)
    constraints = jsonschema.Draft202012Validator(json_schema(reg.parsed))
    records = [json.loads(line) for line in (world / FEEDS[subject]).read_text().splitlines()]
    assert len(records) >= 100
    assert [r for r in records if not fastavro.validation.validate(r, avro_schema, raise_errors=False)] == []
    assert [(e.message, list(e.path)) for r in records for e in constraints.iter_errors(r)] == []
    # ... and neither check is vacuous: the key field breaking its pattern, or missing
    key = next(iter(records[0]))
    assert not constraints.is_valid({**records[0], key: "X-1"})
    assert not fastavro.validation.validate({**records[0], key: None}, avro_schema, raise_errors=False)


def test_every_catalog_feed_is_checked_against_its_registered_record_and_follows_a_new_version(repo_copy):
    """The catalog's feed contracts come from the registry the settings name: a FULL-compatible v2 of the price
    record (an optional field) is in the price feed's contract at once, and the other feeds are untouched."""
    from lenslake.catalog.feeds import SUBJECTS, feed_schema

    assert {SUBJECTS[k]: k for k in CATALOG_FEEDS.values()} == CATALOG_FEEDS
    for subject, kind in CATALOG_FEEDS.items():
        record = repo_copy.latest(subject).document
        schema = feed_schema(kind)
        assert list(schema["properties"]) == [f["name"] for f in record["fields"]] + ["updated_at"]
        assert schema["properties"]["sku"]["pattern"] == "^(OF|SG|LN|CL|AC)[0-9]{6}$"  # the product feed's
    v2 = repo_copy.latest("lenslake.feeds.price").document
    v2["fields"].append({"name": "promo_label", "type": ["null", "string"], "default": None, "maxLength": 40})
    assert repo_copy.register(v2).version == 2
    assert feed_schema("prices")["properties"]["promo_label"]["maxLength"] == 40
    assert "promo_label" not in feed_schema("inventory")["properties"]


def test_feed_schemas_mark_personal_and_health_data():
    registry = Registry(PACKAGE_DIR)
    customer = {f.name: f.other_props for f in registry.latest("lenslake.feeds.customer").parsed.fields}
    assert {k: v["x-pii"] for k, v in customer.items() if "x-pii" in v} == {
        "user_id": "user", "first_name": "name", "last_name": "name", "email": "email", "phone": "phone",
        "date_of_birth": "birth_date", "street": "street_address", "postcode": "postcode"}
    prescription = registry.latest("lenslake.feeds.prescription").parsed
    assert prescription.other_props["x-sensitive"] == "health"
    assert {f.name for f in prescription.fields if f.other_props.get("x-sensitive") == "health"} == {
        "sph", "cyl", "axis", "add", "pd", "exam_date", "prescriber"}


# --- the command line -------------------------------------------------------------------------------------------------


@pytest.fixture
def cli(repo_copy):
    from typer.testing import CliRunner

    from lenslake.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["schema", *args])


def test_schema_list_shows_subject_mode_latest_version_and_id(cli):
    result = cli("list")
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines()[1:]]
    assert ["lenslake.events.purchase", "BACKWARD_TRANSITIVE", "1", "7"] in rows
    assert ["lenslake.feeds.consent", "FULL", "1", "20"] in rows and ["lenslake.feeds.stock", "FULL", "1", "24"] in rows
    assert len(rows) == 24


def test_schema_show_prints_a_version(cli):
    result = cli("show", "lenslake.feeds.prescription", "--version", "1")
    assert result.exit_code == 0
    assert "lenslake.feeds.prescription v1 (id 18)" in result.output
    assert '"x-sensitive": "health"' in result.output
    missing = cli("show", "lenslake.feeds.prescription", "--version", "9")
    assert missing.exit_code == 1 and "refused: subject lenslake.feeds.prescription has no version 9" in missing.output


@pytest.mark.parametrize("field", ["violations", "reject_reason", "source_file", "kafka_offset", "coupon_token"])
def test_an_event_field_named_like_a_column_ingestion_adds_is_refused(repo_copy, field):
    """A new event field named like a column the ingest adds beside the event's own (lineage, validation, tokens)
    would be overwritten on the way to bronze: refused at registration, naming it, and nothing is registered."""
    doc = repo_copy.latest("lenslake.events.purchase").document
    props = doc["fields"][-1]["type"]["fields"]
    clash = {**doc, "fields": [*doc["fields"][:-1], {"name": "properties", "type": {
        **doc["fields"][-1]["type"], "fields": [*props, {"name": field, "type": ["null", "string"], "default": None}]}}]}
    with pytest.raises(SchemaParseError, match=f"{field} would clash with the columns ingestion adds"):
        repo_copy.register(clash)
    assert [r.version for r in repo_copy.versions("lenslake.events.purchase")] == [1]


def test_the_reserved_names_cover_every_column_bronze_and_silver_add_beside_the_event_fields():
    """The refusal above is only as good as its list: a column added to bronze or silver later must join it."""
    from lenslake.contracts.avro import WORKING_COLUMNS
    from lenslake.contracts.events import event_fields
    from lenslake.tables import table_spec

    fields = {rule.column for rule in event_fields()}
    added = {c.name for t in ("bronze.events", "silver.events", "silver.bot_events")
             for c in table_spec(t).columns} - fields
    assert {c for c in added if not c.endswith("_token")} <= WORKING_COLUMNS


def test_schema_check_and_register_accept_a_compatible_version_and_refuse_an_incompatible_one(cli, repo_copy, tmp_path):
    doc = repo_copy.latest("lenslake.events.purchase").document
    props = doc["fields"][-1]["type"]["fields"]
    good, bad = tmp_path / "good.avsc", tmp_path / "bad.avsc"
    good.write_text(json.dumps({**doc, "fields": [*doc["fields"][:-1], {"name": "properties", "type": {
        **doc["fields"][-1]["type"], "fields": [*props, {"name": "coupon", "type": ["null", "string"], "default": None}]}}]}))
    bad.write_text(json.dumps({**doc, "fields": [*doc["fields"][:-1], {"name": "properties", "type": {
        **doc["fields"][-1]["type"], "fields": [*props, {"name": "lens_type", "type": "string"}]}}]}))

    checked = cli("check", str(good))
    assert checked.exit_code == 0 and "compatible with lenslake.events.purchase under BACKWARD" in checked.output
    registered = cli("register", str(good))
    assert registered.exit_code == 0 and "registered lenslake.events.purchase v2 (id 25)" in registered.output
    assert "already registered: lenslake.events.purchase v2 (id 25)" in cli("register", str(good)).output

    for command in ("check", "register"):
        refused = cli(command, str(bad))
        assert refused.exit_code == 1
        lines = [line for line in refused.output.splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("refused: subject lenslake.events.purchase (compatibility BACKWARD_TRANSITIVE)")
        assert "field properties.lens_type: reader_field_missing_default_value" in lines[0]
    assert [r.version for r in Registry(repo_copy.root).versions("lenslake.events.purchase")] == [1, 2]


def test_schema_check_refuses_a_file_that_is_not_a_schema(cli, tmp_path):
    not_json = tmp_path / "notes.avsc"
    not_json.write_text("record lens { string id; }")
    result = cli("check", str(not_json))
    assert result.exit_code == 1 and f"refused: {not_json} is not JSON" in result.output
    assert cli("check", str(tmp_path / "absent.avsc")).exit_code == 1


def test_schema_mode_shows_and_sets_a_subjects_mode(cli, repo_copy):
    assert cli("mode", "lenslake.feeds.product").output.split() == ["lenslake.feeds.product", "FULL"]
    assert cli("mode", "lenslake.feeds.product", "full_transitive").exit_code == 0
    assert Registry(repo_copy.root).compatibility("lenslake.feeds.product") == "FULL_TRANSITIVE"
    refused = cli("mode", "lenslake.feeds.product", "SIDEWAYS")
    assert refused.exit_code == 1 and "refused: unknown compatibility mode 'SIDEWAYS'" in refused.output


def test_a_refusal_reaches_the_shell_as_one_line_and_exit_code_one(repo_copy, tmp_path, capsys, monkeypatch):
    from lenslake.cli import main

    bad = tmp_path / "bad.avsc"
    bad.write_text('{"type": "record", "name": "nameless_namespace", "fields": []}')
    monkeypatch.setattr("sys.argv", ["lenslake", "schema", "register", str(bad)])
    assert main() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["refused: nameless_namespace: record 'nameless_namespace' needs a namespace (its fullname is the subject)"]
