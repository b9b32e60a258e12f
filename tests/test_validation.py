"""Validation at the door: every landed line becomes a bronze row or a quarantine row with a reason."""

import datetime as dt
import json

import pytest

from lenslake.transforms.bronze import bronze_from_lines
from tests.conftest import lines_table, make_event



def split(engine, keys, lines):
    events, quarantine = bronze_from_lines(engine, lines_table(lines), keys)
    return events, quarantine


def test_valid_events_of_every_kind_reach_bronze_typed(engine, keys):
    lines = [make_event(t) for t in ("page_view", "product_view", "search", "add_to_cart", "purchase", "login", "logout")]
    events, quarantine = split(engine, keys, lines)
    assert events.num_rows == 7 and quarantine.num_rows == 0
    purchase = [r for r in events.to_pylist() if r["event_type"] == "purchase"][0]
    assert purchase["total_amount"] == 120.0 and purchase["item_count"] == 1
    assert purchase["event_time"] == dt.datetime(2026, 11, 16, 10, tzinfo=dt.timezone.utc)
    assert purchase["ip_prefix"] == "198.51.100.0/24"


def test_every_field_of_every_event_type_reaches_bronze_with_the_value_it_landed_with(engine, keys, tmp_path):
    """Generated lines of every registered event type: each field that is kept in clear (PII becomes tokens, free
    text is scrubbed) holds in bronze the value its line carried. A field overwritten on the way fails here, as a
    return's ``reason`` was, by the rule column of the same name, until 2026-11-24."""
    from lenslake.contracts.events import event_fields, event_types
    from lenslake.synth.world import generate_world
    from lenslake.tables import RENAMES

    generate_world(tmp_path, days=1, users=300, events=20_000, start=dt.date(2026, 11, 16), seed=3)
    landed = (tmp_path / "landing" / "events" / "2026-11-16" / "events-000.ndjson").read_text().splitlines()
    by_type: dict = {}
    for line in landed:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if len(by_type.setdefault(doc.get("schema"), [])) < 3:
            by_type[doc["schema"]].append(line)
    events, _ = split(engine, keys, [line for lines in by_type.values() for line in lines])
    assert set(events.column("event_type").to_pylist()) == set(event_types())

    docs = {d["event_id"]: d for d in map(json.loads, (line for lines in by_type.values() for line in lines))}
    compared = 0
    for row in events.to_pylist():
        doc = docs[row["event_id"]]
        for rule in event_fields():
            if rule.pii or rule.free_text:
                continue
            value = doc
            for part in rule.path.split(".")[1:]:
                value = value.get(part) if isinstance(value, dict) else None
            got = row[RENAMES.get(rule.column, rule.column)]
            if rule.column == "event_time":
                got = got.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            elif isinstance(value, (dict, list)):
                got = json.loads(got)
            assert got == value, (doc["schema"], rule.column, got, value)
            compared += value is not None
    assert compared > 300


@pytest.mark.parametrize(
    "mutate, reason, path",
    [
        (lambda e: e["properties"].pop("sku"), "missing_required_field", "$.properties.sku"),
        (lambda e: e["properties"].update(quantity="two"), "wrong_type", "$.properties.quantity"),
        (lambda e: e["properties"].update(unit_price=-5), "out_of_range", "$.properties.unit_price"),
        (lambda e: e["properties"].update(sku="XX12"), "pattern_mismatch", "$.properties.sku"),
        (lambda e: e.update(device="toaster"), "not_in_enum", "$.device"),
        (lambda e: e.update(event_time="16/11/2026 10:00"), "pattern_mismatch", "$.event_time"),
        (lambda e: e.update(schema="add_to_krat"), "unknown_schema", "$.schema"),
        (lambda e: e.update(schema_version=99), "unknown_schema", "$.schema"),
        (lambda e: e.pop("event_id"), "missing_required_field", "$.event_id"),
    ],
)
def test_each_contract_violation_is_quarantined_with_its_reason_and_path(engine, keys, mutate, reason, path):
    bad = make_event("add_to_cart")
    mutate(bad)
    events, quarantine = split(engine, keys, [make_event("page_view"), bad])
    assert events.num_rows == 1 and quarantine.num_rows == 1
    row = quarantine.to_pylist()[0]
    assert (row["reason_code"], row["field_path"]) == (reason, path)
    assert row["source_line"] == 2


def test_all_violations_of_a_line_are_listed(engine, keys):
    bad = make_event("add_to_cart", quantity="two", unit_price=-1)
    _, quarantine = split(engine, keys, [bad])
    assert set(quarantine.column("violations")[0].as_py().split(";")) == {
        "wrong_type@$.properties.quantity", "out_of_range@$.properties.unit_price"}


def test_quarantined_payload_keeps_no_clear_pii(engine, keys):
    bad = make_event("purchase", currency="XXX", email="secret.person@example.org", customer_name="Secret Person")
    _, quarantine = split(engine, keys, [bad])
    payload = quarantine.column("payload")[0].as_py()
    assert "secret.person@example.org" not in payload and "Secret Person" not in payload
    assert "198.51.100.23" not in payload
    assert json.loads(payload)["properties"]["email"].startswith("t1_")


def test_malformed_lines_are_sealed_with_a_masked_preview(engine, keys):
    from lenslake.privacy.tokens import unseal

    raw = '{"schema": "login", "email": "leak.me@example.com", "ip": "203.0.113.9"'  # truncated
    _, quarantine = split(engine, keys, [raw, '{"a": 1} trailing', "[1, 2]"])
    assert quarantine.num_rows == 3
    assert set(quarantine.column("reason_code").to_pylist()) == {"malformed_json"}
    row = [r for r in quarantine.to_pylist() if r["source_line"] == 1][0]
    assert "leak.me" not in row["payload_preview"] and "203.0.113.9" not in row["payload_preview"]
    position = f"{row['source_file']}:{row['source_line']}".encode()
    assert unseal(row["payload_encrypted"], row["payload_key_id"], keys.encryption, position).decode() == raw


def test_pii_fields_become_tokens_that_join_across_events(engine, keys):
    lines = [make_event("login", email="a@example.com"), make_event("purchase", email="a@example.com")]
    events, _ = split(engine, keys, lines)
    tokens = set(events.column("email_token").to_pylist())
    assert len(tokens) == 1 and next(iter(tokens)).startswith("t1_")
    assert "email" not in events.column_names and "ip" not in events.column_names


def test_tokens_in_bulk_are_the_tokens_one_by_one(keys):
    from lenslake.privacy.tokens import token, tokens

    values = ["a@example.com", "", "Zoë Ångström", "+44 20 7946 0958", "198.51.100.7", "x" * 500, "日本語"]
    bulk = tokens(values, keys.token)
    assert bulk.to_pylist() == [token(v, keys.token) for v in values]
    assert len(set(bulk.to_pylist())) == len(values) and tokens([], keys.token).to_pylist() == []
