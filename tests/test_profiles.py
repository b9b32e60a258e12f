"""Profiles and their privacy: feeds reconcile, envelope encryption bound to user and field, one audited accessor,
crypto-shredding, the consent ledger and its enforcement, minimization, flagged attributes and their backfill."""

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cryptography.exceptions import InvalidTag

from lenslake.delta import DeltaStore
from lenslake.privacy.keys import load_keys
from lenslake.privacy.tokens import token

NOW = "2026-11-18T00:00:00+00:00"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("profiles") / "lake"
    generate_world(root, days=1, users=200, seed=5, start=dt.date(2026, 11, 16), events=1500, products=150)
    return root


@pytest.fixture
def lake(world, tmp_path):
    """A fresh copy of the generated world's landing zone (tests change the feeds) with its own key file."""
    from lenslake.settings import get_settings

    root = tmp_path / "lake"
    shutil.copytree(world / "landing" / "customers", root / "landing" / "customers")
    settings = get_settings(data_root=root, engine="duckdb", as_of=NOW)
    return settings, DeltaStore(settings.tables_dir)


def feed_docs(settings, feed):
    """A feed's lines as landed: clear before its ingest, kept only encrypted after it (lenslake.privacy.landing)."""
    from lenslake.privacy import landing
    from lenslake.profiles.feeds import landed_path

    return [json.loads(x) for x in landing.read_bytes(landed_path(settings.data_root, feed), settings).splitlines()]


def ingest(settings, store):
    from lenslake.profiles.build import ingest_all

    return ingest_all(store, settings)


def tok(settings, user_id):
    return token(user_id, load_keys(settings).token)


def test_feed_counts_reconcile_and_bad_lines_are_quarantined_encrypted(lake):
    settings, store = lake
    path = settings.data_root / "landing" / "customers" / "customers.ndjson"
    docs = feed_docs(settings, "customers")
    bad_email = {**docs[0], "user_id": "U9999991", "email": "not-an-email"}
    bad_enum = {**docs[1], "user_id": "U9999992", "face_shape": "triangle"}
    again = {**docs[2], "city": "Later City"}  # a later line for the same user supersedes the first
    with path.open("a") as f:
        f.write("\n".join([json.dumps(bad_email), json.dumps(bad_enum), "{not json", json.dumps(again)]) + "\n")
    reports = ingest(settings, store)
    r = reports["customers"]
    assert (r.lines, r.quarantined, r.superseded) == (len(docs) + 4, 3, 1)
    assert r.lines == r.stored + r.superseded + r.quarantined
    assert store.count("profiles.customers") == r.stored == len(docs)
    assert all(x.reconciles for x in reports.values())
    q = {row["source_line"]: row for row in store.read("profiles.feed_quarantine").to_pylist()}
    assert q[len(docs) + 1]["reason_code"] == "pattern_mismatch" and q[len(docs) + 1]["field_path"] == "$.email"
    assert q[len(docs) + 2]["reason_code"] == "not_in_enum"
    assert q[len(docs) + 3]["reason_code"] == "malformed_json"
    assert q[len(docs) + 1]["user_token"] == tok(settings, "U9999991")
    assert all("not-an-email" not in (row["payload_preview"] + row["payload_encrypted"]) for row in q.values())
    stored = {x["user_token"]: x for x in store.read("profiles.customers").to_pylist()}
    assert stored[tok(settings, docs[2]["user_id"])]["city"] == "Later City"
    # the same files again: nothing changes
    version = store.version("profiles.customers")
    assert all(x.skipped for x in ingest(settings, store).values())
    assert store.version("profiles.customers") == version and store.count("profiles.feed_quarantine") == 3


def test_ciphertexts_differ_per_user_and_field_and_open_only_under_their_binding(lake):
    from lenslake.privacy.encryption import associated_data, open_value, seal_value, user_keys

    settings, store = lake
    ingest(settings, store)
    docs = feed_docs(settings, "customers")[:2]
    a, b = (tok(settings, d["user_id"]) for d in docs)
    keys = user_keys(store, settings, [a, b])
    assert keys[a] != keys[b]
    rows = {x["user_token"]: x for x in store.read("profiles.customers").to_pylist()}
    ra = rows[a]
    assert open_value(keys[a], ra["email_enc"], associated_data("profiles.customers", "email", a)) == docs[0]["email"]
    assert open_value(keys[a], ra["date_of_birth_enc"], associated_data("profiles.customers", "date_of_birth", a)) == docs[0]["date_of_birth"]
    # the same value sealed for two users, or for two fields, gives different ciphertexts
    same = "same@example.com"
    c1 = seal_value(keys[a], same, associated_data("profiles.customers", "email", a))
    c2 = seal_value(keys[b], same, associated_data("profiles.customers", "email", b))
    c3 = seal_value(keys[a], same, associated_data("profiles.customers", "phone", a))
    assert len({c1, c2, c3}) == 3
    with pytest.raises(InvalidTag):  # moved to another field of the same user
        open_value(keys[a], ra["email_enc"], associated_data("profiles.customers", "phone", a))
    with pytest.raises(InvalidTag):  # moved to another user, even opened with that user's own binding and key
        open_value(keys[b], ra["email_enc"], associated_data("profiles.customers", "email", b))
    with pytest.raises(InvalidTag):  # right key, associated data naming another user
        open_value(keys[a], ra["email_enc"], associated_data("profiles.customers", "email", b))


def test_the_accessor_allows_and_denies_by_role_and_purpose_and_logs_every_call(lake):
    from lenslake.privacy.accessor import AccessDenied, decrypt_profile_fields

    settings, store = lake
    ingest(settings, store)
    rx_user = feed_docs(settings, "prescriptions")[0]["user_id"]
    customer = next(d for d in feed_docs(settings, "customers") if d["user_id"] == rx_user)
    t = tok(settings, rx_user)
    call = dict(caller="alice", user_token=t)
    got = decrypt_profile_fields(store, settings, role="customer_service", purpose="service", fields=["email", "phone"], **call)
    assert got == {"email": customer["email"], "phone": customer["phone"]}
    rx = decrypt_profile_fields(store, settings, role="optometrist", purpose="eye_care", fields=["prescription"], **call)
    assert set(rx["prescription"]) == {"OD", "OS"} and rx["prescription"]["OD"]["sph"] is not None
    denied = [("customer_service", "eye_care", ["prescription"]),  # role may not act for the purpose
              ("optometrist", "eye_care", ["email"]),  # field not declared for the purpose
              ("analyst", "analytics", ["date_of_birth"]),  # unknown role
              ("customer_service", "service", ["prescription"])]  # prescriptions are not declared for service
    for role, purpose, fields in denied:
        with pytest.raises(AccessDenied):
            decrypt_profile_fields(store, settings, role=role, purpose=purpose, fields=fields, **call)
    sar = decrypt_profile_fields(store, settings, role="privacy_officer", purpose="privacy",
                                 fields=["name", "date_of_birth", "prescription"], **call)
    assert sar["name"] == f"{customer['first_name']} {customer['last_name']}"
    log = store.read("privacy.access_log").to_pylist()
    assert [r["outcome"] for r in sorted(log, key=lambda r: r["accessed_at"])].count("denied") == 4
    assert len(log) == 3 + len(denied)
    assert all(r["caller"] == "alice" and r["user_token"] == t and r["fields"] for r in log)
    assert {r["role"] for r in log if r["outcome"] == "granted"} == {"customer_service", "optometrist", "privacy_officer"}
    assert {op["operation"] for op in store.history("privacy.access_log")} <= {"WRITE", "CREATE TABLE", "ADD CONSTRAINT"}


def test_shredding_a_users_key_makes_every_ciphertext_of_theirs_unreadable(lake):
    from lenslake.privacy.accessor import decrypt_profile_fields
    from lenslake.privacy.encryption import KeyUnavailable, shred_user_keys, user_keys

    settings, store = lake
    ingest(settings, store)
    gone, kept = (tok(settings, d["user_id"]) for d in feed_docs(settings, "prescriptions")[::2][:2])
    wrapped = next(r["wrapped_key"] for r in store.read("privacy.user_keys").to_pylist() if r["user_token"] == gone)
    assert shred_user_keys(store, settings, [gone]) == 1
    assert shred_user_keys(store, settings, [gone]) == 0
    assert gone not in user_keys(store, settings, [gone, kept]) and kept in user_keys(store, settings, [kept])
    with pytest.raises(KeyUnavailable):
        decrypt_profile_fields(store, settings, caller="bob", role="optometrist", purpose="eye_care",
                               user_token=gone, fields=["prescription"])
    assert decrypt_profile_fields(store, settings, caller="bob", role="optometrist", purpose="eye_care",
                                  user_token=kept, fields=["prescription"])["prescription"]
    assert [r["outcome"] for r in store.read("privacy.access_log").to_pylist() if r["user_token"] == gone] == ["unavailable"]
    # no file of the key table (any version) still holds the wrapped key: old versions were vacuumed
    folder = store.path("privacy.user_keys")
    assert not any(wrapped.encode() in p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert all(wrapped not in pq.read_table(p).column("wrapped_key").to_pylist() for p in folder.glob("*.parquet"))


def test_consent_ledger_is_append_only_and_the_latest_decision_is_in_force(lake):
    from lenslake.privacy.consent import consented_users, current_consent, record_consent, withdrawn_users

    settings, store = lake
    at = lambda h: dt.datetime(2026, 11, 10, h, tzinfo=dt.timezone.utc)  # noqa: E731
    now = dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc)
    grant = {"user_token": "t1_a", "purpose": "marketing", "granted": True, "recorded_at": at(9), "source": "signup"}
    withdraw = {**grant, "granted": False, "recorded_at": at(12), "source": "preference_center"}
    other = {**grant, "user_token": "t1_b", "purpose": "personalization"}
    record_consent(store, [grant, other], now=now)
    assert consented_users(store, "marketing") == {"t1_a"}
    record_consent(store, [withdraw], now=now)
    assert record_consent(store, [grant, withdraw], now=now) is None  # replays append nothing
    ledger = store.read("privacy.consent_ledger").to_pylist()
    assert len(ledger) == 3 and {(r["user_token"], r["granted"]) for r in ledger} >= {("t1_a", True), ("t1_a", False)}
    assert {h["operation"] for h in store.history("privacy.consent_ledger")} <= {"WRITE", "CREATE TABLE", "ADD CONSTRAINT"}
    assert all(h.get("operationParameters", {}).get("mode", "Append") == "Append"
               for h in store.history("privacy.consent_ledger") if h["operation"] == "WRITE")
    current = {(r["user_token"], r["purpose"]): r["granted"] for r in store.read("privacy.current_consent").to_pylist()}
    assert current == {("t1_a", "marketing"): False, ("t1_b", "personalization"): True}
    assert consented_users(store, "marketing") == set() and withdrawn_users(store, "marketing") == {"t1_a"}
    assert consented_users(store, "marketing", as_of=at(10)) == {"t1_a"}  # as it stood between the two decisions
    assert consented_users(store, "personalization") == {"t1_b"}
    assert current_consent(store, at(8)).num_rows == 0


def test_marketing_and_personalization_release_only_consented_users(lake):
    from lenslake.privacy.accessor import AccessDenied, decrypt_profile_fields
    from lenslake.privacy.consent import consented_users

    settings, store = lake
    ingest(settings, store)
    latest = {}
    for d in feed_docs(settings, "consent"):  # the feed's own answer: the latest decision per user and purpose
        k = (d["user_id"], d["purpose"])
        if k not in latest or d["recorded_at"] >= latest[k]["recorded_at"]:
            latest[k] = d
    for purpose in ("personalization", "marketing", "data_sharing"):
        expected = {tok(settings, u) for (u, p), d in latest.items() if p == purpose and d["granted"]}
        assert consented_users(store, purpose) == expected and 0 < len(expected) < 200
    users = {tok(settings, d["user_id"]) for d in feed_docs(settings, "customers")}
    refused = sorted(users - consented_users(store, "marketing"))[0]
    allowed = sorted(consented_users(store, "marketing") & users)[0]
    assert decrypt_profile_fields(store, settings, caller="crm", role="marketing", purpose="marketing",
                                  user_token=allowed, fields=["email"])["email"]
    with pytest.raises(AccessDenied, match="consented"):
        decrypt_profile_fields(store, settings, caller="crm", role="marketing", purpose="marketing",
                               user_token=refused, fields=["email"])


def test_the_marketing_audience_holds_exactly_the_customers_with_marketing_consent(lake):
    from lenslake.privacy.consent import consented_users, record_consent
    from lenslake.profiles.audience import TABLE, without_consent, write_audience

    settings, store = lake
    ingest(settings, store)
    now = settings.now()
    _, rows = write_audience(store, now)
    customers = {tok(settings, d["user_id"]) for d in feed_docs(settings, "customers")}
    audience = set(store.read(TABLE, columns=["user_token"]).column(0).to_pylist())
    assert audience == consented_users(store, "marketing") & customers and rows == len(audience) > 0
    assert set(store.columns(TABLE)) == {"user_token", "consent_granted_at", "consent_source", "computed_at"}
    # a withdrawal: the check catches the stale audience, the next build leaves the customer out
    leaver = sorted(audience)[0]
    later = now + dt.timedelta(minutes=1)
    record_consent(store, [{"user_token": leaver, "purpose": "marketing", "granted": False, "recorded_at": later,
                            "source": "unsubscribe_link"}], now=later)
    assert without_consent(store, later) == [leaver]
    write_audience(store, later)
    assert without_consent(store, later) == []
    assert set(store.read(TABLE, columns=["user_token"]).column(0).to_pylist()) == audience - {leaver}


def test_gold_excludes_users_who_withdrew_analytics_consent(engine, settings):
    from lenslake import pipeline
    from lenslake.privacy.consent import record_consent
    from tests.conftest import make_event

    def land(events):
        folder = settings.events_landing_dir / "2026-11-16"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "events-000.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n")

    land([make_event("purchase", time="2026-11-16T10:00:00.000Z", device="d_1", user="U0000001", total_amount=100.0),
          make_event("purchase", time="2026-11-16T11:00:00.000Z", device="d_2", user="U0000002", total_amount=40.0),
          make_event("page_view", time="2026-11-16T12:00:00.000Z", device="d_3", user=None)])
    store = DeltaStore(settings.tables_dir)
    for step in (pipeline.ingest_landing_days, pipeline.build_silver, pipeline.build_gold):
        step(engine, store, settings, ["2026-11-16"])
    before = store.read("gold.daily_kpis").to_pylist()[0]
    assert (before["orders"], before["revenue"], before["users"]) == (2, 140.0, 2)
    now = dt.datetime(2026, 11, 17, tzinfo=dt.timezone.utc)
    withdrew = {"user_token": tok(settings, "U0000002"), "purpose": "analytics", "granted": False,
                "recorded_at": now, "source": "preference_center"}
    granted_other = {**withdrew, "user_token": tok(settings, "U0000001"), "purpose": "marketing"}
    record_consent(store, [withdrew, granted_other], now=now)
    pipeline.build_gold(engine, store, settings, ["2026-11-16"])
    after = store.read("gold.daily_kpis").to_pylist()[0]
    assert (after["orders"], after["revenue"], after["users"], after["visitors"]) == (1, 100.0, 1, 2)
    funnel = store.read("gold.daily_funnel").to_pylist()
    assert sum(r["purchase_sessions"] for r in funnel) == 1


def test_minimization_fails_on_an_undeclared_field(lake, monkeypatch):
    from lenslake.profiles import build
    from lenslake.profiles.minimization import minimization_problems

    settings, store = lake
    reports = ingest(settings, store)
    assert minimization_problems(store) == []
    path = settings.data_root / "landing" / "customers" / "customers.ndjson"
    docs = feed_docs(settings, "customers")
    docs[0]["loyalty_tier"] = "gold"  # the CRM starts sending a field no one declared
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    problems = minimization_problems(store)
    assert len(problems) == 1 and "loyalty_tier" in problems[0]
    reports = ingest(settings, store)
    assert reports["customers"].undeclared == {"loyalty_tier": 1}
    assert "loyalty_tier" not in store.columns("profiles.customers")
    assert not any("gold" == v for r in store.read("profiles.customers").to_pylist() for v in r.values())
    # a registered field that no stored column or declared omission accounts for
    monkeypatch.setitem(build.NOT_STORED, "customers", {"street": "x"})
    assert any("'postcode' has no declared purpose" in p for p in minimization_problems(store, {}))
    monkeypatch.undo()
    # a stored attribute that is not declared
    rows = store.read("profiles.customers")
    rows = rows.set_column(rows.schema.get_field_index("attributes"), "attributes",
                           __import__("pyarrow").array(['{"shoe_size": 42}'] * rows.num_rows))
    store.overwrite("profiles.customers", rows)
    assert any("shoe_size" in p for p in minimization_problems(store, {}))


def test_a_flagged_attribute_is_backfilled_idempotently_with_progress(lake):
    from lenslake.profiles.attributes import FlagDisabled, backfill_attribute, missing_attribute, set_flag

    settings, store = lake
    ingest(settings, store)
    n = store.count("profiles.customers")
    assert len(missing_attribute(store, "face_width_fit")) == n
    with pytest.raises(FlagDisabled):
        backfill_attribute(store, settings, "face_width_fit")
    set_flag(settings, "face_width_fit", True)
    seen = []
    report = backfill_attribute(store, settings, "face_width_fit", batch_size=64, progress=lambda d, t: seen.append((d, t)))
    assert (report.filled, report.already, report.remaining, report.batches) == (n, 0, 0, -(-n // 64))
    assert seen[0] == (0, n) and seen[-1] == (n, n) and len(seen) == report.batches + 1
    rows = store.read("profiles.customers").to_pylist()
    width = {tok(settings, d["user_id"]): d["face_width_mm"] for d in feed_docs(settings, "customers")}
    for r in rows:
        w = width[r["user_token"]]
        assert json.loads(r["attributes"])["face_width_fit"] == ("narrow" if w < 133 else "medium" if w < 145 else "wide")
    version = store.version("profiles.customers")
    again = backfill_attribute(store, settings, "face_width_fit", batch_size=64)
    assert (again.filled, again.already, again.batches) == (0, n, 0) and store.version("profiles.customers") == version
    # with the flag on, a profile written by a later ingest gets the attribute without a backfill
    path = settings.data_root / "landing" / "customers" / "customers.ndjson"
    new = {**feed_docs(settings, "customers")[0], "user_id": "U9999999", "face_width_mm": 150.0}
    with path.open("a") as f:
        f.write(json.dumps(new) + "\n")
    ingest(settings, store)
    fresh = next(r for r in store.read("profiles.customers").to_pylist() if r["user_token"] == tok(settings, "U9999999"))
    assert json.loads(fresh["attributes"]) == {"face_width_fit": "wide"}
    assert missing_attribute(store, "face_width_fit") == []


def test_no_clear_contact_birth_date_or_prescription_value_in_any_profile_table(lake):
    settings, store = lake
    ingest(settings, store)
    customers, rx = feed_docs(settings, "customers"), feed_docs(settings, "prescriptions")
    secrets = {d[f] for d in customers for f in ("email", "phone", "date_of_birth")}
    secrets |= {f"{d['first_name']} {d['last_name']}" for d in customers}
    rx_secrets = {d["prescriber"] for d in rx} | {d["exam_date"] for d in rx}
    folders = [store.path(t) for t in ("profiles.customers", "profiles.prescriptions", "profiles.service_history",
                                       "profiles.feed_quarantine", "privacy.consent_ledger", "privacy.current_consent",
                                       "privacy.user_keys")]
    assert all(f.exists() for f in folders)
    for folder in folders:
        raw = b"".join(p.read_bytes() for p in Path(folder).rglob("*") if p.is_file())
        wanted = secrets | (rx_secrets if folder.name == "prescriptions" else set())
        assert not [s for s in wanted if s.encode() in raw], folder
        for p in Path(folder).glob("*.parquet"):  # decoded too: compression must not hide a clear value
            values = {v for c in pq.read_table(p).columns for v in c.to_pylist() if isinstance(v, str)}
            assert not values & wanted, folder


def test_the_profiles_job_materializes_every_profile_table_with_passing_checks(lake):
    import dagster as dg

    from orchestration.profiles_runner import run_profiles_job

    settings, store = lake
    result = run_profiles_job(settings, dg.DagsterInstance.ephemeral())
    assert result.success
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    assert {c.check_name for c in checks if c.passed} == {"people_feeds_reconcile", "profiles_minimization",
                                                          "no_audience_without_consent"}
    assert store.count("profiles.customers") == len(feed_docs(settings, "customers"))
    assert store.count("privacy.current_consent") == len({(d["user_id"], d["purpose"]) for d in feed_docs(settings, "consent")})
    assert store.exists("profiles.behaviour")
