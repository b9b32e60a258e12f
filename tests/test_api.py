"""The read API over a real HTTP server: the whole role × table matrix as the policy says, the access log, keys,
products with their current price, and no hostile input reaching a 500."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from pydantic import SecretStr

from lenslake.delta import DeltaStore
from lenslake.privacy.access import MASK, Policy
from lenslake.tables import catalogue
from tests.conftest import ACCESS_NOW, CATALOG_DAYS
from tests.test_access import READS, ROLES

KEYS = {role: f"key-{role}-0123456789abcdef" for role in ROLES}
LOG = "privacy.sql_access_log"


@contextlib.contextmanager
def serving(settings):
    """The app of ``settings`` under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    from lenslake.api import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def with_keys(settings):
    return settings.model_copy(update={"api_keys": SecretStr(",".join(f"svc-{r}:{r}:{k}" for r, k in KEYS.items()))})


@pytest.fixture(scope="module")
def api(policy_lake):
    with serving(with_keys(policy_lake)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def get(client, path, role=None, **params):
    headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    return client.get(path, headers=headers, params=params)


def log_rows(settings, **match):
    store = DeltaStore(settings.tables_dir)
    rows = store.read(LOG).to_pylist() if store.exists(LOG) else []
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def test_every_role_reads_exactly_what_the_policy_allows_over_http(api, policy_lake):
    store = DeltaStore(policy_lake.tables_dir)
    policy = Policy.load(policy_lake)
    read = 0
    for role in ROLES:
        listed = {t["table"]: t for t in get(api, "/v1/tables", role).json()["tables"]}
        assert set(listed) == {n for n in catalogue() if READS[role](n)}, role
        for name, spec in catalogue().items():
            r = get(api, f"/v1/tables/{name}", role, limit=1000)
            if not READS[role](name):
                assert r.status_code == 403 and r.json() == {"error": f"role {role} may not read {name}"}, (role, name)
                continue
            rules = policy.columns(role, spec)
            visible = {c for c, t in rules.items() if t != "deny"}
            assert {c["name"]: c["treatment"] for c in listed[name]["columns"]} == {c: rules[c] for c in visible}
            if not store.exists(name):
                assert r.status_code == 404 and "no readable version" in r.json()["error"], (role, name, r.text)
                assert not listed[name]["readable"]
                continue
            assert r.status_code == 200, (role, name, r.text)
            body = r.json()
            read += 1
            assert set(body["columns"]) <= visible and body["columns"] == {c: rules[c] for c in body["columns"]}
            for row in body["rows"]:
                assert set(row) == set(body["columns"]), (role, name)
                for c, t in body["columns"].items():
                    assert t != "mask" or row[c] in (MASK, None), (role, name, c)
                    if t == "allow" and c in spec.token_columns and row[c] is not None:
                        assert row[c].startswith("t1_"), (role, name, c)
            assert len(body["rows"]) == min(store.count(name), 1000) or name.startswith("gold."), (role, name)
    assert read >= 4 * 5


def test_gold_is_served_at_its_published_version(api, policy_lake):
    from lenslake import publish

    store = DeltaStore(policy_lake.tables_dir)
    for name in publish.published_tables():
        if publish.published_version(store, name) is None:
            continue
        body = get(api, f"/v1/tables/{name}", "analyst", limit=1000).json()
        assert len(body["rows"]) == publish.read_published(store, name).num_rows
        listed = {t["table"]: t for t in get(api, "/v1/tables", "analyst").json()["tables"]}
        assert listed[name]["published_version"] == publish.published_version(store, name)


def test_masked_and_denied_columns_over_http(api):
    analyst = get(api, "/v1/tables/silver.events", "analyst").json()
    assert analyst["columns"]["user_token"] == "mask" and "email_token" in analyst["columns"]
    assert "ip_prefix" not in analyst["columns"] and "query" not in analyst["columns"]  # override; clear PII
    assert analyst["rows"] and {r["user_token"] for r in analyst["rows"]} == {MASK}
    engineer = get(api, "/v1/tables/silver.events", "data_engineer").json()
    assert all(r["user_token"].startswith("t1_") for r in engineer["rows"])
    assert {r["query"] for r in engineer["rows"]} <= {MASK, None}


def test_every_api_read_of_a_pii_bearing_table_is_logged_allowed_or_denied(api, policy_lake):
    allowed = len(log_rows(policy_lake, entry_point="api", principal="svc-analyst", table_name="silver.events",
                           outcome="allowed"))
    denied = len(log_rows(policy_lake, entry_point="api", principal="svc-service", table_name="bronze.events",
                          outcome="denied"))
    plain = len(log_rows(policy_lake, table_name="gold.daily_kpis"))
    assert get(api, "/v1/tables/silver.events", "analyst", limit=5).status_code == 200
    assert get(api, "/v1/tables/bronze.events", "service").status_code == 403
    assert get(api, "/v1/tables/gold.daily_kpis", "service").status_code == 200
    new = log_rows(policy_lake, entry_point="api", principal="svc-analyst", table_name="silver.events",
                   outcome="allowed")
    assert len(new) == allowed + 1
    assert new[-1]["role"] == "analyst" and "user_token:mask" in new[-1]["columns"] and "ip_prefix" not in new[-1]["columns"]
    assert len(log_rows(policy_lake, entry_point="api", principal="svc-service", table_name="bronze.events",
                        outcome="denied")) == denied + 1
    assert len(log_rows(policy_lake, table_name="gold.daily_kpis")) == plain  # not PII-bearing: not logged


def test_concurrent_reads_are_all_answered_and_all_logged(api, policy_lake):
    from concurrent.futures import ThreadPoolExecutor

    before = len(log_rows(policy_lake, entry_point="api", principal="svc-analyst", table_name="silver.events"))
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: get(api, "/v1/tables/silver.events", "analyst", limit=2).status_code,
                              range(16)))
    assert codes == [200] * 16
    assert len(log_rows(policy_lake, entry_point="api", principal="svc-analyst", table_name="silver.events")) == \
        before + 16


def test_a_missing_or_unknown_key_is_401_and_the_role_comes_from_the_key_only(api):
    for headers in ({}, {"Authorization": "Bearer nope-not-a-key-at-all"}, {"Authorization": f"Basic {KEYS['analyst']}"},
                    {"Authorization": "Bearer"}, {"X-Role": "privacy_officer"}):
        r = api.get("/v1/tables/gold.daily_kpis", headers=headers)
        assert r.status_code == 401, headers
        assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    r = api.get("/v1/tables/bronze.events", headers={"Authorization": f"Bearer {KEYS['analyst']}",
                                                     "X-Role": "privacy_officer", "X-Lenslake-Role": "privacy_officer"})
    assert r.status_code == 403
    r = api.get("/v1/tables/bronze.events", params={"role": "privacy_officer"},
                headers={"Authorization": f"Bearer {KEYS['analyst']}"})
    assert r.status_code == 403
    assert api.get("/healthz").json() == {"status": "ok"}


def test_filters_and_paging(api):
    everything = get(api, "/v1/tables/silver.events", "data_engineer", limit=1000).json()["rows"]
    assert len(everything) >= 3
    first = get(api, "/v1/tables/silver.events", "data_engineer", limit=1).json()
    assert len(first["rows"]) == 1 and first["next_offset"] == 1
    second = get(api, "/v1/tables/silver.events", "data_engineer", limit=1, offset=1).json()
    assert second["rows"] != first["rows"]
    purchase = get(api, "/v1/tables/silver.events", "data_engineer", event_type="purchase").json()["rows"]
    assert purchase and {r["event_type"] for r in purchase} == {"purchase"}
    day = everything[0]["event_date"]
    assert len(get(api, "/v1/tables/silver.events", "data_engineer", event_date=day, limit=1000).json()["rows"]) == \
        sum(r["event_date"] == day for r in everything)
    assert get(api, "/v1/tables/silver.events", "data_engineer", event_date="2001-01-01").json()["rows"] == []
    r = get(api, "/v1/tables/silver.events", "analyst", user_token=everything[0]["user_token"])
    assert r.status_code == 400 and "masked" in r.json()["error"]  # no probing a masked column's values
    r = get(api, "/v1/tables/silver.events", "analyst", ip_prefix="198.51.100.0")
    assert r.status_code == 400 and "no column 'ip_prefix'" in r.json()["error"]  # denied: as if absent


HOSTILE_TABLES = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "gold.daily_kpis; DROP TABLE x",
                  "gold.daily_kpis' OR '1'='1", 'gold."daily_kpis"', "gold.*", "*", "%00", "gold.daily_kpis%00",
                  "ｇｏｌｄ.daily_kpis", "gold.daily_kpis\u202e", "🙂", "a" * 5000, "bronze.events UNION SELECT 1",
                  "read_parquet('x')", "information_schema.tables", "duckdb_settings()", "gold", ".", "gold.",
                  "%F0%9F%99%82", "%ff%fe", "gold.daily_kpis/..", "GOLD.DAILY_KPIS"]
HOSTILE_PARAMS = [{"limit": "-1"}, {"limit": "0"}, {"limit": str(10**30)}, {"limit": "1e3"}, {"limit": "abc"},
                  {"limit": "1; DROP TABLE x"}, {"offset": "-5"}, {"offset": "9" * 5000}, {"limit": "١٢"},
                  {"event_date": "2026-11-16' OR '1'='1"}, {"event_date": "not a date"}, {"event_date": "9999999-01-01"},
                  {"event_type": "' OR 1=1 --"}, {"event_type": "🙂" * 1000}, {"event_type": "\x00"},
                  {"nope": "1"}, {'a"b': "1"}, {"event_type); DROP TABLE x; --": "1"}, {"user_token": "x"},
                  {"ip_prefix": "1"}, {"event_time": "yesterday"}, {"event_time": "2026-11-16T10:00:00Z"},
                  {"is_bot": "maybe"}, {"": ""}, {"\u0000": "x"}, {"ｌｉｍｉｔ": "5"}]


def test_hostile_inputs_never_reach_a_500_and_errors_are_one_json_line(api):
    statuses = {}
    cases = [(f"/v1/tables/{t}", {}) for t in HOSTILE_TABLES]
    cases += [("/v1/tables/silver.events", p) for p in HOSTILE_PARAMS]
    cases += [("/v1/tables/silver.events", {**{f"c{i}": "1" for i in range(30)}})]
    cases += [(f"/v1/products/{s}", {}) for s in ["../catalog.prices", "OF000001' OR '1'='1", "of000001", "🙂",
                                                   "A" * 40, "%00", "ZZ999999", " OF000001"]]
    for role in ("analyst", "privacy_officer"):  # masked and denied columns; everything readable
        for path, params in cases:
            r = get(api, path, role, **params)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (role, path, params, r.status_code, r.text[:200])
            assert "Traceback" not in r.text and 'File "' not in r.text
            if r.status_code >= 400:
                body = r.json()
                assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"], body
                assert len(body["error"]) <= 300
    assert {400, 404, 422} <= set(statuses) and 500 not in statuses
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = api.request(method, "/v1/tables/gold.daily_kpis", headers={"Authorization": f"Bearer {KEYS['analyst']}"})
        assert r.status_code == 405 and set(r.json()) == {"error"}


def test_raw_malformed_requests_get_no_500(api):
    host, port = api.base_url.host, api.base_url.port
    raw = [b"GET /v1/tables/%ff%fe?limit=%ff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEYS["analyst"].encode()
           + b"\r\nConnection: close\r\n\r\n",
           b"GET /v1/tables/silver.events?event_type=%ff%00%c3%28 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
           + KEYS["analyst"].encode() + b"\r\nConnection: close\r\n\r\n",
           b"GET /v1/tables/gold.daily_kpis HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
           b"GET /v1/tables/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           b"NONSENSE\r\n\r\n"]
    for request in raw:
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(request)
            data = b""
            with contextlib.suppress(OSError):
                while chunk := s.recv(65536):
                    data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
        assert status is None or status < 500, (request[:80], data[:200])
        assert b"Traceback" not in data


def test_a_product_is_served_with_its_current_price_and_a_changed_price_after_the_change(policy_lake, tmp_path):
    from lenslake import publish
    from lenslake.catalog.apply import apply_pending

    root = tmp_path / "lake"
    shutil.copytree(policy_lake.data_root, root)
    settings = with_keys(policy_lake.model_copy(update={"data_root": root}))
    store = DeltaStore(settings.tables_dir)
    manifest = json.loads((root / "synth" / "catalog_feeds.json").read_text())
    price, avail = manifest["samples"]["price_change"], manifest["samples"]["availability_change"]
    assert price["day"] == avail["day"] == CATALOG_DAYS[1]
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        before = get(client, f"/v1/products/{price['sku']}", "service")
        assert before.status_code == 200, before.text
        body = before.json()
        assert body["product"]["sku"] == price["sku"] and body["product"]["name"]
        assert body["price"]["list_price"] == price["old"] and body["price"]["on"] == ACCESS_NOW.date().isoformat()
        assert get(client, f"/v1/products/{avail['sku']}", "service").json()["availability"][avail["location"]] == \
            avail["old"]
        assert get(client, "/v1/products/ZZ999999", "service").status_code == 404
        kpis = get(client, "/v1/tables/gold.daily_kpis", "service", limit=1000).json()["rows"]

        apply_pending(store, root, ACCESS_NOW, days=[CATALOG_DAYS[1]])
        # a write to gold that is not published yet: readers keep the published version
        store.append("gold.daily_kpis", publish.read_published(store, "gold.daily_kpis"))
        assert store.count("gold.daily_kpis") == 2 * len(kpis)

        after = get(client, f"/v1/products/{price['sku']}", "service").json()["price"]
        on = ACCESS_NOW.date().isoformat()
        promo = after["promo_price"] is not None and (after["promo_from"] or on) <= on <= (after["promo_to"] or on)
        assert after["list_price"] == price["new"] and after["price"] == (after["promo_price"] if promo else price["new"])
        assert get(client, f"/v1/products/{avail['sku']}", "service").json()["availability"][avail["location"]] == \
            avail["new"]
        assert get(client, "/v1/tables/gold.daily_kpis", "service", limit=1000).json()["rows"] == kpis


def test_products_follow_the_policy_tables(api):
    sku = get(api, "/v1/tables/catalog.products", "service", limit=1).json()["rows"][0]["sku"]
    for role in ROLES:
        assert get(api, f"/v1/products/{sku}", role).status_code == 200  # every role reads catalog.* today
    r = get(api, "/v1/products/not-a-sku", "service")
    assert r.status_code == 422 and set(r.json()) == {"error"}


def test_lenslake_api_serves_with_a_generated_dev_key_per_role(policy_lake, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(policy_lake.data_root),
           "LENSLAKE_API_KEY_FILE": str(tmp_path / "api-keys.json")}
    env.pop("LENSLAKE_API_KEYS", None)
    proc = subprocess.Popen([sys.executable, "-m", "lenslake.cli", "api", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "lenslake api did not answer"
            time.sleep(0.2)
        keys = json.loads((tmp_path / "api-keys.json").read_text())["keys"]
        assert {k["role"] for k in keys} == set(ROLES)
        assert oct((tmp_path / "api-keys.json").stat().st_mode & 0o777) == "0o600"
        service = next(k["key"] for k in keys if k["role"] == "service")
        r = httpx.get(f"{url}/v1/tables/gold.daily_kpis", headers={"Authorization": f"Bearer {service}"}, timeout=30)
        assert r.status_code == 200 and r.json()["rows"]
        assert httpx.get(f"{url}/v1/tables/bronze.events", headers={"Authorization": f"Bearer {service}"},
                         timeout=30).status_code == 403
    finally:
        proc.terminate()
        proc.wait(10)
