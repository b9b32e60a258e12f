"""Right to erasure on a generated world run through Dagster: afterwards nothing under the data root names the user."""

import datetime as dt
import json
import os
import shutil
from collections import Counter

import pyarrow.compute as pc
import pytest

from lenslake.delta import DeltaStore
from lenslake.privacy.canary import planted_values, scan
from lenslake.settings import get_settings
from orchestration.runner import dagster_instance, run_events_job

USER_TABLES = ["bronze.events", "silver.events", "silver.sessions"]


def _a_buyer(settings):
    """A user with a purchase in the landing files (kept encrypted once ingested): their id, e-mail, phone and name."""
    from lenslake.privacy.landing import read_bytes

    for path in sorted(settings.events_landing_dir.rglob("*.ndjson.enc")):
        for line in read_bytes(path, settings).decode().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            props = doc.get("properties") or {}
            if doc.get("schema") == "purchase" and doc.get("user_id") and props.get("email") and props.get("phone"):
                return {"user_id": doc["user_id"], "email": props["email"], "phone": props["phone"],
                        "name": props["customer_name"]}
    raise AssertionError("no buyer in the world")


@pytest.fixture(scope="module")
def erased(tmp_path_factory):
    from typer.testing import CliRunner

    from lenslake.cli import app
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import token
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("erasure") / "lake"
    manifest = generate_world(root, days=2, users=400, events=4_000, seed=5)
    last_day = dt.date.fromisoformat(max(manifest["days_detail"]))
    as_of = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(6), tzinfo=dt.timezone.utc)
    settings = get_settings(data_root=root, engine="duckdb", as_of=as_of)
    instance = dagster_instance(settings)
    assert run_events_job(settings, instance=instance).success
    subject = _a_buyer(settings)
    keys = load_keys(settings)
    subject["token"] = token(subject["user_id"], keys.token)
    for pii in ("email", "phone", "name"):
        subject[f"{pii}_token"] = token(subject[pii], keys.token)
    store = DeltaStore(settings.tables_dir)
    before = {t: store.read(t, columns=["user_token"]).column(0).to_pylist() for t in USER_TABLES}
    assert all(subject["token"] in rows for rows in before.values())
    saved = tmp_path_factory.mktemp("replay")  # the landing files as they were delivered: for the replay
    shutil.copytree(settings.events_landing_dir, saved / "events")

    env = {"LENSLAKE_DATA_ROOT": str(root), "LENSLAKE_AS_OF": as_of.isoformat()}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        out = CliRunner().invoke(app, ["privacy", "erase", "--user", subject["user_id"]])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert out.exit_code == 0, out.output
    receipt = json.loads(out.output)
    return settings, manifest, subject, before, receipt, saved, instance


def test_no_file_under_the_data_root_names_the_erased_user(erased):
    settings, manifest, subject, _, receipt, _, _ = erased
    values = {subject["user_id"]: "user_id", subject["token"]: "user_token", subject["email"]: "email",
              subject["phone"]: "phone", subject["name"]: "name", subject["email_token"]: "email_token",
              subject["phone_token"]: "phone_token", subject["name_token"]: "name_token"}
    # Everything: parquet values and bytes of Delta logs, Dagster's storage, keys, receipts, raw landing files.
    hits = scan(settings.data_root, values, exclude=("synth/manifest.json",))
    assert hits == []
    # The canary scan of every planted value still passes (no other user's PII leaked by the erasure itself). The
    # people feeds were not ingested here (events only): they are still clear, as delivered.
    assert scan(settings.data_root, planted_values(manifest), exclude=("synth/manifest.json", "landing/customers")) == []


def test_the_receipt_lists_tables_and_rows_and_names_no_one(erased):
    settings, _, subject, before, receipt, _, _ = erased
    tables = {t["table"]: t for t in receipt["tables"]}
    for t in USER_TABLES:
        assert tables[t]["rows_removed"] >= before[t].count(subject["token"]), t
        assert tables[t]["files_vacuumed"] > 0 and tables[t]["versions_dropped"]
    assert receipt["suppression"]["added"] == 1 and receipt["subjects"] == 1
    assert receipt["raw_files"]["lines_removed"] > 0
    path = settings.data_root / "privacy" / "receipts" / f"{receipt['request_id']}.json"
    text = path.read_text()
    assert json.loads(text)["request_id"] == receipt["request_id"]
    assert subject["user_id"] not in text and subject["token"] not in text


def test_other_users_rows_are_intact(erased):
    settings, _, subject, before, _, _, _ = erased
    store = DeltaStore(settings.tables_dir)
    for t in USER_TABLES:
        after = Counter(store.read(t, columns=["user_token"]).column(0).to_pylist())
        expected = Counter(v for v in before[t] if v != subject["token"])
        # rows of other users stay, except anonymous rows carrying the user's own e-mail (failed logins)
        assert {k: n for k, n in after.items() if k is not None} == {k: n for k, n in expected.items() if k is not None}, t


def test_time_travel_to_a_version_that_held_the_user_fails(erased):
    from deltalake import DeltaTable

    settings, _, subject, _, receipt, _, _ = erased
    store = DeltaStore(settings.tables_dir)
    path = str(store.path("silver.events"))
    held = {t["table"]: t for t in receipt["tables"]}["silver.events"]["version_before"]
    with pytest.raises(Exception):
        DeltaTable(path, version=held).to_pyarrow_table(columns=["user_token"])
    log = "".join(p.read_text() for p in (store.path("silver.events") / "_delta_log").glob("*.json"))
    assert subject["token"] not in log


def test_a_replay_of_the_landing_days_does_not_bring_the_user_back(erased):
    settings, _, subject, before, _, saved, instance = erased
    shutil.rmtree(settings.events_landing_dir)
    shutil.copytree(saved / "events", settings.events_landing_dir)
    # the files as they were kept before the erasure: encrypted, holding the user
    from lenslake.privacy.landing import read_bytes

    assert not list(settings.events_landing_dir.rglob("*.ndjson"))
    assert subject["user_id"] in "".join(read_bytes(p, settings).decode()
                                         for p in settings.events_landing_dir.rglob("*.ndjson.enc"))
    assert run_events_job(settings, instance=instance).success
    store = DeltaStore(settings.tables_dir)
    for t in USER_TABLES:
        rows = store.read(t, columns=["user_token"], filter=pc.field("user_token") == subject["token"])
        assert rows.num_rows == 0, t
    q = store.read("bronze.events_quarantine", columns=["payload"]).column(0).to_pylist()
    assert not any(subject["token"] in (p or "") for p in q)
    assert scan(settings.data_root, {subject["token"]: "user_token"}, exclude=("synth/manifest.json", "landing")) == []


def test_check_results_in_dagster_storage_hold_no_token_or_pii(erased):
    """Item 8: what the runs stored (check results, metadata, logs) copies no token or planted value."""
    settings, manifest, _, _, _, _, _ = erased
    store = DeltaStore(settings.tables_dir)
    tokens = set(store.read("silver.events", columns=["user_token"]).column(0).drop_null().to_pylist()[:200])
    tokens |= set(store.read("silver.events", columns=["device_token"]).column(0).drop_null().to_pylist()[:200])
    values = {**planted_values(manifest), **{t: "token" for t in tokens}}
    assert scan(settings.dagster_home, values, exclude=()) == []
