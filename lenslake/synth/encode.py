"""Turn simulated sessions and events into contract-shaped JSON lines.

A line is concatenated from JSON fragments, each produced by polars' vectorised
`struct.json_encode` (which does the escaping) with its braces stripped:

    {"schema":..,"schema_version":1,"event_id":..,"event_time":..   per event
    "session_id":..,"anonymous_id":..                               per session, encoded once
    "user_id":..                                                    per event
    "channel":..,"device":..,"platform":..,"user_agent":..,"ip":..  per session, encoded once
    "page_url":..,"properties":{..}}                                per event, struct per type

so the long session-constant text (user agents) is serialised once per session, not per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from . import vocab as V
from .catalog import CL, LN, Catalog
from .columns import digit_chars, fixed_width, hex_chars, ip_strings, money, pick
from .people import Devices, People
from .search import search_queries
from .sessions import (ADD_TO_CART, ALL_USER_AGENTS, FAILED_LOGIN, LOGIN, LOGOUT, P_LANDING, PAGE_VIEW, PT,
                       PRODUCT_VIEW, PURCHASE, REMOVE_FROM_CART, RETURN, SCROLL, SEARCH, SESSION_END,
                       SESSION_START, TIME_ON_PAGE, WISHLIST_ADD, Columns, Window)

EMPTY_OBJECT = pl.Struct([])


@dataclass
class Encoded:
    lines: pl.Series              # one JSON line per event, grouped by event type
    event_of_line: np.ndarray     # index of the event each line encodes
    event_id: pl.Series           # aligned with lines
    device_id: pl.Series          # anonymous_id of every device
    total_cents: np.ndarray       # per event (event order): the order total of purchases, 0 elsewhere
    free_text_carrier: np.ndarray # per event (event order): a search whose query holds free-text PII
    pii: dict[str, list[str]]     # structured PII values in the lines (emails, phones, names, ips, streets)
    free_text_pii: list[dict]     # {"value", "kind"} planted in search queries


def encode_events(rng: np.random.Generator, s: Columns, e: Columns, devices: Devices, people: People,
                  catalog: Catalog, window: Window) -> Encoded:
    n = len(e)
    sess = e.sess
    user = s.user[sess]
    sku = catalog.sku.gather(pl.from_arrow(pa.array(e.prod, mask=e.prod < 0)))
    category = catalog.category.gather(pl.from_arrow(pa.array(e.prod, mask=e.prod < 0)))
    page_url = _page_urls(rng, e, sku, category)
    ip = ip_strings(s.ip)

    # Envelope fields constant over a session, pre-serialised once per session as "key":value,... text.
    device_id = fixed_width(len(devices.device), b"d_", hex_chars(rng, len(devices.device), 8))
    session_keys = _json_members(pl.DataFrame({
        "session_id": fixed_width(len(s), b"cs_", hex_chars(rng, len(s), 8)),
        "anonymous_id": device_id.gather(s.dev),
    }))
    session_context = _json_members(pl.DataFrame({
        "channel": pick(V.CHANNELS, s.channel),
        "device": pick(V.DEVICES, devices.device[s.dev]),
        "platform": pick(V.PLATFORMS, devices.platform[s.dev]),
        "user_agent": pick(ALL_USER_AGENTS, devices.ua[s.dev]),
        "ip": ip,
    }))
    user_id = people.user_id.gather(pl.from_arrow(pa.array(user, mask=~e.uid_on)))
    env = pl.DataFrame({
        "event_id": fixed_width(n, hex_chars(rng, n, 16)),
        "event_time": pl.Series(e.t).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        "session_keys": session_keys.gather(sess),
        # user ids are plain ASCII, so formatting them needs no JSON escaping
        "user_member": pl.select(pl.when(pl.lit(user_id).is_null()).then(pl.lit('"user_id":null'))
                                 .otherwise(pl.format('"user_id":"{}"', pl.lit(user_id)))).to_series(),
        "session_context": session_context.gather(sess),
        "page_url": page_url,
    })

    orders = _Orders(rng, s, e, people, catalog)
    unit_price = money(catalog.cents[np.maximum(e.prod, 0)])
    slot = np.maximum(e.slot, 0)
    qty = s.qty[sess, np.minimum(slot, 1)]
    rows = {k: np.flatnonzero(e.kind == k) for k in range(len(V.EVENT_TYPES))}

    def sub(col, k):
        return col.gather(rows[k]) if isinstance(col, pl.Series) else col[rows[k]]

    props: dict[int, dict] = {}
    r = rows[PAGE_VIEW]
    landing = (e.phase[r] == P_LANDING) & (s.bot_kind[sess[r]] < 0)
    props[PAGE_VIEW] = {"page_type": pick(V.PAGE_TYPES, e.code[r]),
                        "referrer": _referrers(rng, np.where(landing, s.channel[sess[r]], -1))}
    props[PRODUCT_VIEW] = {"sku": sub(sku, PRODUCT_VIEW), "category": sub(category, PRODUCT_VIEW),
                           "list_price": sub(unit_price, PRODUCT_VIEW)}
    r = rows[SEARCH]
    query, results, query_pii, free_text = search_queries(rng, catalog, e.prod[r],
                                               np.where(user[r] >= 0, people.sph[np.maximum(user[r], 0)], np.nan))
    props[SEARCH] = {"query": query, "results_count": results}
    props[SCROLL] = {"depth_pct": np.round(rng.beta(2.0, 1.5, size=len(rows[SCROLL])) * 100).astype(np.int64)}
    props[TIME_ON_PAGE] = {"duration_ms": np.clip(rng.lognormal(np.log(40_000), 0.9, size=len(rows[TIME_ON_PAGE])),
                                                  1_000, 1_800_000).astype(np.int64)}
    r = rows[SESSION_START]
    campaign = np.isin(s.channel[sess[r]], [V.CHANNELS.index(c) for c in ("paid_search", "email", "social", "affiliate")])
    year = str(np.datetime64(window.start_ms, "ms").astype("datetime64[Y]"))
    props[SESSION_START] = {"landing_page": sub(page_url, SESSION_START),
                            "utm_campaign": pick([f"{c}_{year}" for c in V.UTM_CAMPAIGNS],
                                                 np.where(campaign, rng.integers(0, len(V.UTM_CAMPAIGNS), size=len(r)), -1))}
    r = rows[SESSION_END]
    props[SESSION_END] = {"duration_ms": e.off[r], "event_count": s.n_events[sess[r]]}
    r = rows[ADD_TO_CART]
    props[ADD_TO_CART] = {"sku": sub(sku, ADD_TO_CART), "quantity": qty[r], "unit_price": unit_price[r],
                          "lens_option": pick(V.LENS_OPTIONS, s.lens[sess[r], slot[r]])}
    props[REMOVE_FROM_CART] = {"sku": sub(sku, REMOVE_FROM_CART), "quantity": sub(qty, REMOVE_FROM_CART)}
    props[WISHLIST_ADD] = {"sku": sub(sku, WISHLIST_ADD)}
    props[PURCHASE] = orders.properties
    r = rows[RETURN]
    bought_in = s.ret_of[sess[r]]
    props[RETURN] = {"order_id": orders.order_id_of_session(bought_in), "sku": sub(sku, RETURN),
                     "reason": pick(V.RETURN_REASONS, _return_reasons(rng, catalog.ptype[e.prod[r]])),
                     "refund_amount": money(s.qty[bought_in, 0] * catalog.cents[e.prod[r]])}
    r = rows[LOGIN]
    props[LOGIN] = {"method": pick(V.LOGIN_METHODS, rng.choice(3, size=len(r), p=[0.6, 0.25, 0.15])),
                    "email": people.email.gather(user[r])}
    r = rows[FAILED_LOGIN]
    failed_email = _failed_login_emails(rng, people, user[r])
    props[FAILED_LOGIN] = {"email": failed_email, "failure_reason": pick(V.FAILURE_REASONS, s.failed_reason[sess[r]])}

    # Serialise type by type: rows sorted by type make each type a contiguous slice of one gather.
    by_type = np.argsort(e.kind, kind="stable")
    env = env[by_type]
    parts, offset = [], 0
    for k, name in enumerate(V.EVENT_TYPES):
        frame = env.slice(offset, len(rows[k]))
        offset += len(rows[k])
        if k == LOGOUT:
            properties = pl.lit({}, dtype=EMPTY_OBJECT)
        else:
            properties = pl.struct(**{key: pl.lit(pl.Series(val)) for key, val in props[k].items()})
        head = pl.struct(pl.lit(name).alias("schema"), pl.lit(1).alias("schema_version"), "event_id", "event_time")
        tail = pl.struct("page_url", properties.alias("properties"))
        parts.append(frame.select(pl.concat_str(
            head.struct.json_encode().str.strip_suffix("}"), "session_keys", "user_member", "session_context",
            tail.struct.json_encode().str.strip_prefix("{"), separator=",")).to_series())
    lines = pl.concat(parts)

    total_cents = np.zeros(n, dtype=np.int64)
    total_cents[rows[PURCHASE]] = orders.total_cents
    free_text_carrier = np.zeros(n, dtype=bool)
    free_text_carrier[rows[SEARCH][query_pii]] = True
    pii = {
        "emails": _distinct(orders.properties["email"], props[LOGIN]["email"], failed_email),
        "phones": _distinct(orders.properties["phone"]),
        "names": _distinct(orders.properties["customer_name"]),
        "ips": _distinct(ip.gather(np.unique(sess))),
        "street_addresses": _distinct(orders.properties["shipping_street"]),
    }
    return Encoded(lines=lines, event_of_line=by_type, event_id=env["event_id"], device_id=device_id,
                   total_cents=total_cents, free_text_carrier=free_text_carrier, pii=pii, free_text_pii=free_text)


def _json_members(frame: pl.DataFrame) -> pl.Series:
    """Each row as JSON object members without the braces: '"a":1,"b":"x"'."""
    return frame.select(pl.struct(pl.all()).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")).to_series()


def _distinct(*cols: pl.Series) -> list[str]:
    return pl.concat([c.cast(pl.String) for c in cols]).unique().sort().to_list()


def _page_urls(rng: np.random.Generator, e: Columns, sku: pl.Series, category: pl.Series) -> pl.Series:
    """Path of the page each event happened on. Scroll and time-on-page inherit the page of the
    event before them (every session opens with a session_start that has a page)."""
    slug = pick(V.CONTENT_SLUGS, rng.integers(0, len(V.CONTENT_SLUGS), size=len(e)))
    f = pl.DataFrame({"kind": e.kind, "code": e.code, "sku": sku, "category": category, "slug": slug})
    kind, code = pl.col("kind"), pl.col("code")
    page = kind.is_in([PAGE_VIEW, SESSION_START])
    url = (pl.when(kind.is_in([PRODUCT_VIEW, ADD_TO_CART, WISHLIST_ADD]) | (page & (code == PT["product"])))
           .then(pl.format("/product/{}", "sku"))
           .when(page & (code == PT["category"])).then(pl.format("/c/{}", "category"))
           .when(page & (code == PT["home"])).then(pl.lit("/"))
           .when(page & (code == PT["content"])).then(pl.format("/content/{}", "slug"))
           .when((page & (code == PT["search"])) | (kind == SEARCH)).then(pl.lit("/search"))
           .when((page & (code == PT["cart"])) | (kind == REMOVE_FROM_CART)).then(pl.lit("/cart"))
           .when(page & (code == PT["checkout"])).then(pl.lit("/checkout"))
           .when(page & (code == PT["account"])).then(pl.lit("/account"))
           .when(kind == PURCHASE).then(pl.lit("/checkout/confirmation"))
           .when(kind == RETURN).then(pl.lit("/account/orders"))
           .when(kind.is_in([LOGIN, FAILED_LOGIN])).then(pl.lit("/account/login"))
           .when(kind == LOGOUT).then(pl.lit("/account/logout")))
    return f.select(pl.when(kind == SESSION_END).then(None).otherwise(url.forward_fill()).alias("page_url")).to_series()


def _referrers(rng: np.random.Generator, channel: np.ndarray) -> pl.Series:
    """Referrer of landing page views by channel (null for internal navigation and direct/email)."""
    out = np.full(len(channel), -1)
    flat: list[str] = []
    for ch, urls in V.REFERRERS.items():
        rows = np.flatnonzero(channel == ch)
        out[rows] = len(flat) + rng.integers(0, len(urls), size=len(rows))
        flat.extend(urls)
    return pick(flat, out)


def _return_reasons(rng: np.random.Generator, ptype: np.ndarray) -> np.ndarray:
    frames = rng.choice(6, size=len(ptype), p=[0.3, 0.1, 0.25, 0.1, 0.15, 0.1])
    optical = rng.choice(6, size=len(ptype), p=[0.05, 0.15, 0.2, 0.4, 0.1, 0.1])
    return np.where((ptype == LN) | (ptype == CL), optical, frames)


def _failed_login_emails(rng: np.random.Generator, people: People, user: np.ndarray) -> pl.Series:
    """Known customers mistype their password with their own e-mail; anonymous visitors try
    accounts that do not exist, on domains no customer uses."""
    firsts = [f.lower() for f in V.NAMES["en"][0] + V.NAMES["en"][1]]
    lasts = [name.lower().replace("'", "") for name in V.NAMES["en"][2]]
    first = pick(firsts, rng.integers(0, len(firsts), size=len(user)))
    last = pick(lasts, rng.integers(0, len(lasts), size=len(user)))
    domain = pick(V.UNKNOWN_ACCOUNT_DOMAINS, rng.integers(0, len(V.UNKNOWN_ACCOUNT_DOMAINS), size=len(user)))
    unknown = pl.DataFrame({"f": first, "l": last, "n": rng.integers(1, 1000, size=len(user)), "d": domain}).select(
        pl.format("{}{}{}@{}", "f", "l", "n", "d")).to_series()
    own = people.email.gather(pl.from_arrow(pa.array(user, mask=user < 0)))
    return own.zip_with(pl.Series(user >= 0), unknown)


class _Orders:
    """Purchase events' properties, one order per purchase session, numbered in time order."""

    def __init__(self, rng: np.random.Generator, s: Columns, e: Columns, people: People, catalog: Catalog):
        pe = np.flatnonzero(e.kind == PURCHASE)
        sess = e.sess[pe]
        self._order_of_session = np.full(len(s), -1)
        self._order_of_session[sess] = np.argsort(np.argsort(e.t[pe], kind="stable"), kind="stable")   # time rank
        first_number = int(rng.integers(1_000_000_000, 2_000_000_000))
        self._order_ids = fixed_width(len(pe), b"O", digit_chars(first_number + np.arange(len(pe)), 10))
        n_items = 1 + ((s.n_add[sess] == 2) & ~s.remove[sess])
        item_sess = np.repeat(sess, n_items)
        item_slot = np.arange(len(item_sess)) - np.repeat(np.cumsum(n_items) - n_items, n_items)
        item_prod = s.cons[item_sess, item_slot]
        item_qty = s.qty[item_sess, item_slot]
        item_cents = catalog.cents[item_prod]
        starts = np.cumsum(n_items) - n_items
        self.total_cents = np.add.reduceat(item_qty * item_cents, starts) if len(starts) else np.zeros(0, np.int64)
        items = pa.StructArray.from_arrays(
            [catalog.sku.gather(item_prod).to_arrow(), pa.array(item_qty), pa.array(money(item_cents))],
            names=["sku", "quantity", "unit_price"])
        offsets = pa.array(np.r_[0, np.cumsum(n_items)].astype(np.int64))
        buyer = s.user[sess]
        self.properties = {
            "order_id": self.order_id_of_session(sess),
            "items": pl.from_arrow(pa.LargeListArray.from_arrays(offsets, items)),
            "item_count": n_items,
            "total_amount": money(self.total_cents),
            "currency": pick(V.CURRENCIES, people.currency[buyer]),
            "email": people.email.gather(buyer),
            "phone": people.phone.gather(buyer),
            "customer_name": people.full_name.gather(buyer),
            "shipping_street": people.street.gather(buyer),
            "shipping_city": people.city.gather(buyer),
            "shipping_postcode": people.postcode.gather(buyer),
            "shipping_country": people.country_code.gather(buyer),
        }

    def order_id_of_session(self, sess: np.ndarray) -> pl.Series:
        return self._order_ids.gather(self._order_of_session[sess])

