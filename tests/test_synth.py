"""Behaviour of the synthetic world generator (lenslake.synth.generate_world) on a small world."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from lenslake.contracts.avro import EVENT_NAMESPACE, json_schema
from lenslake.contracts.registry import registry_for
from lenslake.synth import generate_world
from lenslake.synth import vocab as V

SMALL = dict(days=2, users=2000, events=20_000, seed=7, start=dt.date(2024, 3, 1))
CRAWLER_MARKERS = ("Googlebot", "bingbot", "AhrefsBot", "python-requests", "curl/")
HEADLESS_MARKERS = ("HeadlessChrome", "PhantomJS")


def _validators() -> dict[tuple[str, int], jsonschema.Draft202012Validator]:
    """A JSON Schema validator per registered event schema version, derived from its Avro record."""
    registry = registry_for()
    return {(reg.parsed.name, reg.version): jsonschema.Draft202012Validator(json_schema(reg.parsed, version=reg.version))
            for subject in registry.subjects() if subject.startswith(f"{EVENT_NAMESPACE}.")
            for reg in registry.versions(subject)}


@dataclass
class Line:
    day: str                 # landing folder
    text: str
    doc: dict | None         # None: not JSON
    valid: bool


@dataclass
class World:
    root: Path
    manifest: dict
    lines: list[Line]

    def valid(self) -> list[Line]:
        return [line for line in self.lines if line.valid]

    @functools.cached_property
    def events(self) -> dict[str, dict]:
        """Valid events by event_id (duplicate copies collapse)."""
        return {line.doc["event_id"]: line.doc for line in self.valid()}

    def feed(self, path: str) -> list[dict]:
        return [json.loads(x) for x in (self.root / "landing" / path).read_text().splitlines()]


def _read_world(root: Path) -> World:
    validators = _validators()
    lines = []
    for path in sorted((root / "landing" / "events").glob("*/events-000.ndjson")):
        for text in path.read_text(encoding="utf-8").split("\n")[:-1]:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError:
                lines.append(Line(path.parent.name, text, None, False))
                continue
            validator = validators.get((doc.get("schema"), doc.get("schema_version")))
            lines.append(Line(path.parent.name, text, doc, validator is not None and validator.is_valid(doc)))
    return World(root, json.loads((root / "synth" / "manifest.json").read_text(encoding="utf-8")), lines)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    generate_world(root, **SMALL)
    return _read_world(root)


def _is_bot(doc: dict, bot_devices: set[str]) -> bool:
    return doc["anonymous_id"] in bot_devices


# --- bookkeeping ------------------------------------------------------------------------------


def test_manifest_has_exactly_the_documented_keys(world):
    m = world.manifest
    assert list(m) == ["seed", "start", "days", "users", "products", "days_detail", "totals", "bots", "pii", "free_text_pii"]
    assert list(m["days_detail"]) == ["2024-03-01", "2024-03-02"]
    assert set(m["days_detail"]["2024-03-01"]) == {"lines", "valid_lines", "invalid_lines", "malformed_lines",
                                                  "duplicate_lines", "bot_events", "late_events", "invalid_by_kind"}
    assert set(m["totals"]) == {"lines", "valid_lines", "invalid_lines", "malformed_lines", "duplicate_lines", "bot_events",
                                "late_events", "human_events", "human_events_by_type", "human_events_by_date",
                                "bot_events_by_kind", "sessions", "purchases", "revenue"}
    assert set(m["totals"]["bot_events_by_kind"]) == {"crawler_user_agent", "headless_browser", "inhuman_timing"}
    assert set(m["pii"]) == {"emails", "phones", "names", "ips", "street_addresses"}
    assert (m["seed"], m["start"], m["days"], m["users"]) == (7, "2024-03-01", 2, 2000)


def test_every_landed_line_is_counted_once_in_the_manifest(world):
    by_day = Counter((line.day, "valid" if line.valid else "malformed" if line.doc is None else "invalid")
                     for line in world.lines)
    for day, detail in world.manifest["days_detail"].items():
        assert detail["lines"] == detail["valid_lines"] + detail["invalid_lines"] + detail["malformed_lines"]
        assert (by_day[day, "valid"], by_day[day, "invalid"], by_day[day, "malformed"]) == (
            detail["valid_lines"], detail["invalid_lines"], detail["malformed_lines"])
        assert sum(detail["invalid_by_kind"].values()) == detail["invalid_lines"]
    totals = world.manifest["totals"]
    assert totals["lines"] == len(world.lines)
    assert totals["valid_lines"] == totals["human_events"] + totals["duplicate_lines"] + totals["bot_events"]
    assert sum(totals["human_events_by_type"].values()) == totals["human_events"]
    assert sum(totals["human_events_by_date"].values()) == totals["human_events"]
    assert sum(totals["bot_events_by_kind"].values()) == totals["bot_events"]


def test_human_event_count_is_close_to_the_requested_number(world):
    assert abs(world.manifest["totals"]["human_events"] - SMALL["events"]) < 0.03 * SMALL["events"]


def test_lines_are_newline_terminated_utf8_and_files_exist_for_every_day(world):
    for day in world.manifest["days_detail"]:
        raw = (world.root / "landing" / "events" / day / "events-000.ndjson").read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw
        raw.decode("utf-8")


# --- contract ---------------------------------------------------------------------------------


def test_valid_lines_satisfy_their_schema_and_the_rest_break_it(world):
    # _read_world validated every line against its JSON Schema; the manifest agrees line for line
    totals = world.manifest["totals"]
    assert sum(line.valid for line in world.lines) == totals["valid_lines"]
    assert sum(line.doc is not None and not line.valid for line in world.lines) == totals["invalid_lines"]
    assert sum(line.doc is None for line in world.lines) == totals["malformed_lines"]
    assert totals["invalid_lines"] > 0 and totals["malformed_lines"] > 0


def test_invalid_lines_still_carry_pii_like_real_events(world):
    invalid = [line.doc for line in world.lines if line.doc is not None and not line.valid]
    assert all("ip" in doc and "anonymous_id" in doc for doc in invalid)
    with_email = [d for d in invalid if d.get("schema") in ("login", "failed_login", "purchase")]
    assert all("email" in d["properties"] for d in with_email)


def test_malformed_lines_are_not_json_and_some_leak_pii_in_clear(world):
    malformed = [line.text for line in world.lines if line.doc is None]
    ips = set(world.manifest["pii"]["ips"])
    assert malformed
    assert any(any(ip in text for ip in ips) for text in malformed[:50])


def test_event_lines_use_the_documented_shapes(world):
    for doc in list(world.events.values())[:3000]:
        assert doc["event_time"].endswith("Z") and len(doc["event_time"]) == 24
        assert doc["session_id"].startswith("cs_") and doc["anonymous_id"].startswith("d_")
        assert (doc["device"] == "desktop") <= (doc["platform"] == "web")


# --- dirt -------------------------------------------------------------------------------------


def test_duplicates_are_identical_copies_of_human_events_landing_the_same_or_next_day(world):
    bots = set(world.manifest["bots"]["devices"])
    copies = defaultdict(list)
    for line in world.valid():
        copies[line.doc["event_id"]].append(line)
    extra = 0
    for group in copies.values():
        if len(group) > 1:
            extra += len(group) - 1
            assert len({line.text for line in group}) == 1
            assert not _is_bot(group[0].doc, bots)
            days = sorted(dt.date.fromisoformat(line.day) for line in group)
            assert (days[-1] - days[0]).days <= 1
    assert extra == world.manifest["totals"]["duplicate_lines"]
    assert 0.005 < extra / world.manifest["totals"]["human_events"] < 0.02


def test_late_lines_land_the_day_after_their_event_time(world):
    bots = set(world.manifest["bots"]["devices"])
    late = Counter()
    for line in world.valid():
        event_day = dt.date.fromisoformat(line.doc["event_time"][:10])
        landing_day = dt.date.fromisoformat(line.day)
        assert event_day <= landing_day
        if event_day < landing_day:
            assert (landing_day - event_day).days == 1 and not _is_bot(line.doc, bots)
            late[line.day] += 1
    for day, detail in world.manifest["days_detail"].items():
        assert late[day] == detail["late_events"]
    assert world.manifest["days_detail"]["2024-03-01"]["late_events"] == 0
    assert world.manifest["totals"]["late_events"] > 0.005 * world.manifest["totals"]["human_events"]


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(world, tmp_path):
    generate_world(tmp_path / "again", **SMALL)
    generate_world(tmp_path / "other", **{**SMALL, "seed": 8})
    files = sorted(p.relative_to(world.root) for p in world.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for rel in files:
        assert (world.root / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    day = Path("landing/events/2024-03-01/events-000.ndjson")
    assert (world.root / day).read_bytes() != (tmp_path / "other" / day).read_bytes()


def test_default_start_is_today_utc_minus_days(tmp_path):
    manifest = generate_world(tmp_path, days=1, users=50, events=300, products=60)
    assert manifest["start"] == (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()


# --- bots -------------------------------------------------------------------------------------


def test_bots_are_anonymous_and_betray_themselves_by_agent_or_timing(world):
    bots = set(world.manifest["bots"]["devices"])
    sessions = defaultdict(list)
    for doc in world.events.values():
        if _is_bot(doc, bots):
            assert doc["user_id"] is None
            sessions[doc["session_id"]].append(doc)
    kinds = Counter()
    for events in sessions.values():
        ua = events[0]["user_agent"]
        if any(m in ua for m in CRAWLER_MARKERS):
            kinds["crawler_user_agent"] += len(events)
        elif any(m in ua for m in HEADLESS_MARKERS):
            kinds["headless_browser"] += len(events)
        else:
            times = sorted(dt.datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")) for e in events)
            gaps = [(b - a).total_seconds() * 1000 for a, b in zip(times, times[1:])]
            assert len(events) >= 60 and 50 <= min(gaps) and max(gaps) <= 800
            kinds["inhuman_timing"] += len(events)
    assert kinds == world.manifest["totals"]["bot_events_by_kind"]
    assert 0.02 < world.manifest["totals"]["bot_events"] / world.manifest["totals"]["lines"] < 0.04
    humans = {doc["anonymous_id"] for doc in world.events.values() if not _is_bot(doc, bots)}
    assert not humans & bots
    sample = world.manifest["bots"]["event_ids_sample"]
    assert 0 < len(sample) <= 100 and all(_is_bot(world.events[i], bots) for i in sample)


# --- behaviour --------------------------------------------------------------------------------


def _human_sessions(world: World) -> dict[str, list[dict]]:
    bots = set(world.manifest["bots"]["devices"])
    sessions = defaultdict(list)
    for doc in world.events.values():
        if not _is_bot(doc, bots):
            sessions[doc["session_id"]].append(doc)
    for events in sessions.values():
        events.sort(key=lambda d: d["event_time"])
    return sessions


def test_human_sessions_open_with_session_start_and_follow_a_shopping_funnel(world):
    sessions = _human_sessions(world)
    assert len(sessions) == world.manifest["totals"]["sessions"]
    share = lambda pred: sum(pred({e["schema"] for e in s}) for s in sessions.values()) / len(sessions)
    assert all(s[0]["schema"] == "session_start" for s in sessions.values())
    assert share(lambda t: "session_end" in t) > 0.8
    assert share(lambda t: "product_view" in t) > 0.7
    assert 0.08 < share(lambda t: "add_to_cart" in t) < 0.17
    assert 0.015 < share(lambda t: "purchase" in t) < 0.05
    logged_in = sum(any(e["user_id"] for e in s) for s in sessions.values()) / len(sessions)
    assert 0.5 < logged_in < 0.7
    for t in ("search", "scroll", "time_on_page", "wishlist_add", "login", "logout", "failed_login", "remove_from_cart"):
        assert world.manifest["totals"]["human_events_by_type"][t] > 0, t


def test_human_gaps_are_5_to_180_seconds_apart_from_rare_long_pauses(world):
    gaps, pauses = [], 0
    for events in _human_sessions(world).values():
        times = [dt.datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")) for e in events]
        for a, b in zip(times, times[1:]):
            gap = (b - a).total_seconds()
            pauses += gap > 1800
            gaps.append(gap)
    assert min(gaps) >= 5
    # gaps over 180 s: the planted > 30 min pauses, or two gaps merged where a spoiled line was taken out
    assert sum(g > 180 for g in gaps) - pauses < 0.01 * len(gaps)
    assert 0 < pauses < 0.03 * len(_human_sessions(world))


def test_some_sessions_cross_midnight_and_customers_return_after_half_an_hour(world):
    sessions = _human_sessions(world)
    assert any(s[0]["event_time"][:10] != s[-1]["event_time"][:10] for s in sessions.values())
    by_user = defaultdict(list)
    for s in sessions.values():
        users = {e["user_id"] for e in s if e["user_id"]}
        if users:
            by_user[users.pop()].append((s[0]["event_time"], s[-1]["event_time"]))
    repeat = 0
    for spans in by_user.values():
        spans.sort()
        for (_, end), (begin, _) in zip(spans, spans[1:]):
            gap = dt.datetime.fromisoformat(begin[:-1]) - dt.datetime.fromisoformat(end[:-1])
            assert gap > dt.timedelta(minutes=30)
            repeat += 1
    assert repeat > 0


def test_purchases_total_their_items_and_carry_the_buyers_own_pii(world):
    customers = {c["user_id"]: c for c in world.feed("customers/customers.ndjson")}
    prices = {p["sku"]: p["price"] for p in world.feed("catalog/products.ndjson")}
    bots = set(world.manifest["bots"]["devices"])
    purchases = [d for d in world.events.values() if d["schema"] == "purchase" and not _is_bot(d, bots)]
    assert len(purchases) == world.manifest["totals"]["purchases"]
    assert round(sum(p["properties"]["total_amount"] for p in purchases), 2) == world.manifest["totals"]["revenue"]
    for p in purchases:
        props, buyer = p["properties"], customers[p["user_id"]]
        assert props["total_amount"] == round(sum(i["quantity"] * i["unit_price"] for i in props["items"]), 2)
        assert props["item_count"] == len(props["items"])
        assert all(i["unit_price"] == prices[i["sku"]] for i in props["items"])
        assert (props["email"], props["phone"], props["customer_name"], props["shipping_street"]) == (
            buyer["email"], buyer["phone"], f"{buyer['first_name']} {buyer['last_name']}", buyer["street"])
        assert props["shipping_country"] == buyer["country"]


def test_carted_products_were_viewed_and_bought_products_carted_earlier_in_the_session(world):
    adds = viewed_first = items = carted_first = 0
    for events in _human_sessions(world).values():
        viewed, carted = set(), set()
        for e in events:
            if e["schema"] == "product_view":
                viewed.add(e["properties"]["sku"])
            elif e["schema"] == "add_to_cart":
                adds += 1
                viewed_first += e["properties"]["sku"] in viewed
                carted.add(e["properties"]["sku"])
            elif e["schema"] == "purchase":
                skus = [i["sku"] for i in e["properties"]["items"]]
                items += len(skus)
                carted_first += sum(sku in carted for sku in skus)
    # the rare misses are views or adds spoiled in transit (invalid or malformed lines)
    assert viewed_first > 0.97 * adds and carted_first > 0.97 * items


def test_returns_reference_earlier_purchases_of_the_same_customer(world):
    docs = world.events.values()
    orders = {d["properties"]["order_id"]: d for d in docs if d["schema"] == "purchase"}
    returns = [d for d in docs if d["schema"] == "return"]
    assert returns
    for r in returns:
        bought = orders[r["properties"]["order_id"]]
        assert bought["event_time"] < r["event_time"] and bought["user_id"] == r["user_id"]
        assert r["properties"]["sku"] in {i["sku"] for i in bought["properties"]["items"]}


def test_product_views_follow_customer_taste(world):
    customers = {c["user_id"]: c for c in world.feed("customers/customers.ndjson")}
    products = {p["sku"]: p for p in world.feed("catalog/products.ndjson")}
    style_shapes = {style: {V.SHAPES[i] for i in shapes} for style, shapes in zip(V.STYLES, V.STYLE_SHAPES)}
    on_style = on_brand = frames = 0
    for d in world.events.values():
        if d["schema"] == "product_view" and d["user_id"]:
            product, customer = products[d["properties"]["sku"]], customers[d["user_id"]]
            if product["frame_shape"]:
                frames += 1
                on_style += product["frame_shape"] in style_shapes[customer["preferred_style"]]
                on_brand += product["brand"] in customer["preferred_brands"]
    assert frames > 1000
    assert on_style / frames > 0.55          # 3 of 10 shapes: 0.3 if views ignored taste
    assert on_brand / frames > 0.3


def test_search_queries_mention_catalog_terms(world):
    queries = [d["properties"]["query"] for d in world.events.values() if d["schema"] == "search"]
    text = " ".join(queries).lower()
    assert any(code.lower() in text for code in {p["model_code"] for p in world.feed("catalog/products.ndjson")})
    assert " sph" in text and "aviator" in text
    assert any(q.count("-") == 2 and q.split()[0].replace("-", "").isdigit() for q in queries)   # 52-18-140


# --- PII ------------------------------------------------------------------------------------


def test_free_text_pii_sits_in_search_queries_and_never_collides_with_customer_pii(world):
    planted = world.manifest["free_text_pii"]
    queries = [d["properties"]["query"] for d in world.events.values() if d["schema"] == "search"]
    assert planted and {p["kind"] for p in planted} <= {"name", "email", "phone"}
    for p in planted:
        assert any(p["value"] in q for q in queries)
    customers = world.feed("customers/customers.ndjson")
    structured = ({c["email"] for c in customers} | {c["phone"] for c in customers}
                  | {f"{c['first_name']} {c['last_name']}" for c in customers}
                  | {v for values in world.manifest["pii"].values() for v in values})
    assert not {p["value"] for p in planted} & structured
    leaking = sum(any(p["value"] in q for p in planted) for q in queries)
    assert 0.01 < leaking / len(queries) < 0.04


def test_manifest_pii_lists_every_structured_value_in_the_event_lines(world):
    pii = {k: set(v) for k, v in world.manifest["pii"].items()}
    for line in world.lines:
        if line.doc is None:
            continue
        doc, props = line.doc, line.doc.get("properties", {})
        assert doc["ip"] in pii["ips"]
        if "email" in props:
            assert props["email"] in pii["emails"]
        if doc.get("schema") == "purchase":
            assert props["phone"] in pii["phones"] and props["customer_name"] in pii["names"]
            assert props["shipping_street"] in pii["street_addresses"]


# --- feeds ------------------------------------------------------------------------------------


def test_feeds_describe_the_catalog_and_the_customers(world):
    products = world.feed("catalog/products.ndjson")
    assert len(products) == 2400 and len({p["sku"] for p in products}) == 2400
    assert len({p["brand"] for p in products if p["product_type"] in ("optical_frame", "sunglasses")}) >= 20
    for p in products:
        if p["product_type"] in ("optical_frame", "sunglasses"):
            assert 40 <= p["lens_width_mm"] <= 62 and 14 <= p["bridge_mm"] <= 24 and 130 <= p["temple_mm"] <= 150
            assert p["name"].startswith(f"{p['brand']} {p['model_code']} ")
        else:
            assert p["lens_width_mm"] is None and p["frame_shape"] is None
    assert 0 < sum(p["status"] == "discontinued" for p in products) < 0.1 * len(products)
    customers = world.feed("customers/customers.ndjson")
    assert len(customers) == SMALL["users"] and len({c["email"] for c in customers}) == SMALL["users"]
    with_rx = {r["user_id"] for r in world.feed("customers/prescriptions.ndjson")}
    assert 0.5 < len(with_rx) / len(customers) < 0.7
    consent = world.feed("customers/consent.ndjson")
    assert {c["purpose"] for c in consent} == {"analytics", "personalization", "marketing", "data_sharing"}
    assert len(consent) == 4 * len(customers)
    services = world.feed("customers/service_history.ndjson")
    assert {s["service_type"] for s in services} == {"eye_test", "adjustment", "repair", "fitting"}
