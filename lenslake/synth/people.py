"""Customers, their devices and the customer-side business feeds.

Each customer carries a hidden *taste* (preferred product type, frame shape derived from
their stated style, face-width fit, gender, favourite brands, price target) that the
session simulator uses to choose what they look at and buy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from . import vocab as V
from .catalog import ALL_BRANDS, AC, CL, LN, OF, SG
from .columns import digit_chars, fixed_width, pick, public_ips, quarter_steps

_ACCENTS = {"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "é": "e", "è": "e", "ê": "e", "à": "a", "á": "a",
            "í": "i", "ó": "o", "ú": "u", "ñ": "n", "ç": "c", "ø": "o", "å": "a", "É": "e", "Á": "a", "Ü": "u"}
# first octets of public address space used for customer devices (EU/US consumer ISPs)
HUMAN_IP_FIRST_OCTETS = (2, 5, 31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92,
                         93, 94, 95, 109, 151, 176, 178, 185, 188, 212, 213, 217, 24, 50, 67, 68, 71, 73, 98, 174)
LANGS = tuple(V.NAMES)
# every human user agent, flattened; HUMAN_UA_RANGE[(device, platform)] = (first index, count)
HUMAN_UAS: tuple[str, ...] = tuple(ua for key in sorted(V.HUMAN_USER_AGENTS) for ua in V.HUMAN_USER_AGENTS[key])
HUMAN_UA_RANGE = {}
_o = 0
for _key in sorted(V.HUMAN_USER_AGENTS):
    HUMAN_UA_RANGE[_key] = (_o, len(V.HUMAN_USER_AGENTS[_key]))
    _o += len(V.HUMAN_USER_AGENTS[_key])


@dataclass
class Devices:
    """Human devices: users' own first, then anonymous visitors' (appended by the session planner)."""
    device: np.ndarray     # index into DEVICES
    platform: np.ndarray   # index into PLATFORMS
    ua: np.ndarray         # index into HUMAN_UAS
    ip: np.ndarray         # uint32 IPv4


@dataclass
class People:
    n: int
    user_id: pl.Series
    email: pl.Series
    phone: pl.Series
    full_name: pl.Series
    street: pl.Series
    city: pl.Series
    postcode: pl.Series
    country_code: pl.Series
    currency: np.ndarray        # index into CURRENCIES
    # taste
    pref_type: np.ndarray       # preferred product type code
    shape: np.ndarray           # preferred frame shape (from style)
    fit: np.ndarray             # face-width fit
    gender_group: np.ndarray    # 0 men's+unisex, 1 women's+unisex, 2 anything
    brands: np.ndarray          # (n, 3) preferred brand indexes (third may repeat the first)
    price_target: np.ndarray    # cents
    sph: np.ndarray             # right-eye sphere, NaN without prescription
    activity: np.ndarray        # relative session propensity
    first_device: np.ndarray    # index of the user's first device in Devices
    n_devices: np.ndarray       # 1 or 2
    feeds: dict[str, pl.DataFrame]


def _pool_draw(rng: np.random.Generator, pools: list[tuple], which: np.ndarray) -> tuple[list, np.ndarray]:
    """Draw one entry per row from pools[which[row]]; returns the flat vocabulary and indexes into it."""
    flat = [s for p in pools for s in p]
    offsets = np.cumsum([0] + [len(p) for p in pools])[:-1]
    sizes = np.asarray([len(p) for p in pools])
    idx = offsets[which] + np.floor(rng.random(len(which)) * sizes[which]).astype(np.int64)
    return flat, idx


def fill_template(rng: np.random.Generator, templates: list[str], which: np.ndarray) -> pl.Series:
    """Per row, render templates[which[row]] with '#' -> random digit and '@' -> random capital.

    Templates grouped by length are rendered as ASCII matrices (no per-row Python)."""
    out = pl.Series([""] * len(which), dtype=pl.String)
    for t_idx, template in enumerate(templates):
        rows = np.flatnonzero(which == t_idx)
        if len(rows) == 0:
            continue
        raw = template.encode()
        mat = np.tile(np.frombuffer(raw, dtype=np.uint8), (len(rows), 1))
        digits = np.frombuffer(raw, dtype=np.uint8) == ord("#")
        letters = np.frombuffer(raw, dtype=np.uint8) == ord("@")
        mat[:, digits] = rng.integers(ord("0"), ord("9") + 1, size=(len(rows), digits.sum()), dtype=np.uint8)
        mat[:, letters] = rng.integers(ord("A"), ord("Z") + 1, size=(len(rows), letters.sum()), dtype=np.uint8)
        out = out.scatter(rows, fixed_width(len(rows), mat))
    return out


def _unique_phones(rng: np.random.Generator, templates: list[str], which: np.ndarray) -> pl.Series:
    """Phone numbers from country templates, redrawn until no two customers share one."""
    phones = fill_template(rng, templates, which)
    while True:
        dup = phones.is_duplicated().to_numpy() & ~phones.is_first_distinct().to_numpy()
        if not dup.any():
            return phones
        rows = np.flatnonzero(dup)
        phones = phones.scatter(rows, fill_template(rng, templates, which[rows]))


# customer phone formats per country; free-text PII phones use other prefixes (see search.py)
PHONE_TEMPLATES = {"GB": "+44 77## ######", "DE": "+49 15# #######", "FR": "+33 6 ## ## ## ##", "NL": "+31 6 ########",
                   "ES": "+34 6## ### ###", "IT": "+39 3## ### ####", "IE": "+353 8# ### ####", "US": "+1 (2##) ###-####"}
POSTCODE_TEMPLATES = {"GB": "@@# #@@", "DE": "#####", "FR": "#####", "NL": "#### @@", "ES": "#####", "IT": "#####",
                      "IE": "@## @###", "US": "#####"}


def build_people(rng: np.random.Generator, n: int, start: dt.date) -> tuple[People, Devices]:
    countries = [c[0] for c in V.COUNTRIES]
    share = np.asarray([c[3] for c in V.COUNTRIES])
    country = rng.choice(len(countries), size=n, p=share / share.sum())
    lang = np.asarray([LANGS.index(c[2]) for c in V.COUNTRIES])[country]
    currency = np.asarray([V.CURRENCIES.index(c[1]) for c in V.COUNTRIES])[country]
    gender = rng.choice(3, size=n, p=[0.52, 0.46, 0.02])
    # non-binary customers draw from either first-name pool
    name_gender = np.where(gender == 2, rng.integers(0, 2, size=n), gender)

    first_vocab, first_idx = _pool_draw(rng, [V.NAMES[l][g] for l in LANGS for g in (0, 1)], lang * 2 + name_gender)
    last_vocab, last_idx = _pool_draw(rng, [V.NAMES[l][2] for l in LANGS], lang)
    first, last = pick(first_vocab, first_idx), pick(last_vocab, last_idx)
    full_name = (first + " " + last).alias("full_name")

    # e-mails: ascii-folded name parts plus a per-customer unique number -> globally unique
    def fold(s: pl.Series) -> pl.Series:
        return s.str.to_lowercase().str.replace_many(list(_ACCENTS), list(_ACCENTS.values())).str.replace_all(r"[ ']", "")
    f_ascii, l_ascii = fold(first), fold(last)
    number = (rng.permutation(n) + 1).astype(np.int64)
    dom_vocab, dom_idx = _pool_draw(rng, [V.EMAIL_DOMAINS[l] for l in LANGS], lang)
    email_style = rng.integers(0, 4, size=n)
    emails = pl.DataFrame({"f": f_ascii, "l": l_ascii, "n": number, "d": pick(dom_vocab, dom_idx), "s": email_style}).select(
        pl.when(pl.col("s") == 0).then(pl.format("{}.{}{}@{}", "f", "l", "n", "d"))
        .when(pl.col("s") == 1).then(pl.format("{}{}{}@{}", "f", "l", "n", "d"))
        .when(pl.col("s") == 2).then(pl.format("{}.{}{}@{}", pl.col("f").str.slice(0, 1), "l", "n", "d"))
        .otherwise(pl.format("{}_{}{}@{}", "f", "l", "n", "d"))).to_series().alias("email")

    phone = _unique_phones(rng, [PHONE_TEMPLATES[c] for c in countries], country)
    postcode = fill_template(rng, [POSTCODE_TEMPLATES[c] for c in countries], country)
    city_pairs, city_idx = _pool_draw(rng, [V.CITIES[c] for c in countries], country)
    city = pick([p[0] for p in city_pairs], city_idx)
    region = pick([p[1] for p in city_pairs], city_idx)
    street_vocab, street_idx = _pool_draw(rng, [V.NAMES[l][3] for l in LANGS], lang)
    suffix = pick(("Street", "Road", "Lane", "Avenue"), rng.integers(0, 4, size=n))
    street = pl.DataFrame({"name": pick(street_vocab, street_idx), "no": rng.integers(1, 240, size=n),
                           "lang": pick(LANGS, lang), "suffix": suffix}).select(
        pl.when(pl.col("lang") == "en").then(pl.format("{} {} {}", "no", "name", "suffix"))
        .when(pl.col("lang") == "de").then(pl.format("{}straße {}", "name", "no"))
        .when(pl.col("lang") == "fr").then(pl.format("{} rue {}", "no", "name"))
        .when(pl.col("lang") == "nl").then(pl.format("{}straat {}", "name", "no"))
        .when(pl.col("lang") == "es").then(pl.format("Calle {} {}", "name", "no"))
        .otherwise(pl.format("Via {} {}", "name", "no"))).to_series()

    # demographics and taste
    start_day = np.datetime64(start, "D")
    age = np.clip(rng.normal(43, 15, size=n), 18, 90).astype(np.int64)
    dob = start_day - (age * 365.25 + rng.integers(0, 365, size=n)).astype("timedelta64[D]")
    age_band = np.searchsorted(np.array([25, 35, 45, 55, 65]), age, side="right")
    face_width = np.round(rng.normal(139, 7, size=n), 1)
    fit = np.searchsorted(np.array([133.0, 145.0]), face_width)
    face_shape = rng.integers(0, len(V.FACE_SHAPES), size=n)
    style = rng.integers(0, len(V.STYLES), size=n)
    shape = np.asarray(V.STYLE_SHAPES)[style, rng.choice(3, size=n, p=[0.6, 0.25, 0.15])]
    sensitivity = rng.choice(3, size=n, p=[0.2, 0.5, 0.3])
    price_target = (np.asarray(V.PRICE_TARGET)[sensitivity] * rng.lognormal(0, 0.15, size=n) * 100).astype(np.int64)
    has_rx = rng.random(n) < 0.6
    pref_type = np.where(has_rx, rng.choice([OF, SG, LN, CL, AC], size=n, p=[0.55, 0.15, 0.08, 0.2, 0.02]),
                         rng.choice([OF, SG, LN, CL, AC], size=n, p=[0.35, 0.55, 0.0, 0.0, 0.1]))
    gender_group = np.select([gender == 0, gender == 1], [1, 0], 2)   # female -> women's, male -> men's

    # favourite brands: popular brands near the customer's price tier
    tiers = np.asarray([b[2] for b in V.FRAME_BRANDS])
    pop = np.asarray([b[3] for b in V.FRAME_BRANDS])
    pref_tier = np.array([2.6, 1.4, 0.4])[sensitivity]
    affinity = pop[None, :] * np.exp(-1.2 * np.abs(tiers[None, :] - pref_tier[:, None]))
    brands = _weighted_rows(rng, affinity, 3)

    sph_od = np.where(has_rx, np.clip(quarter_steps(rng.normal(-1.75, 2.0, size=n)), -10, 6), np.nan)

    signup = start_day - rng.integers(1, 5 * 365, size=n).astype("timedelta64[D]")
    activity = rng.lognormal(0.0, 0.9, size=n)
    n_devices = 1 + (rng.random(n) < 0.35)
    first_device = np.r_[0, np.cumsum(n_devices)[:-1]]
    devices = make_devices(rng, int(n_devices.sum()))

    user_id = fixed_width(n, b"U", digit_chars(np.arange(n) + 1_000_001, 7))
    customers = pl.DataFrame({
        "user_id": user_id, "first_name": first, "last_name": last, "email": emails, "phone": phone,
        "date_of_birth": pl.Series(dob).cast(pl.String), "gender": pick(V.CUSTOMER_GENDERS, gender),
        "age_band": pick(("18-24", "25-34", "35-44", "45-54", "55-64", "65+"), age_band),
        "street": street, "postcode": postcode, "city": city, "region": region,
        "country": pick(countries, country), "face_width_mm": face_width,
        "face_shape": pick(V.FACE_SHAPES, face_shape), "preferred_style": pick(V.STYLES, style),
        "preferred_brands": _brand_lists(brands), "price_sensitivity": pick(V.PRICE_SENSITIVITY, sensitivity),
        "signup_date": pl.Series(signup).cast(pl.String),
    })
    feeds = {
        "customers": customers,
        "consent": _consent(rng, user_id, signup, start_day),
        "prescriptions": _prescriptions(rng, user_id, has_rx, sph_od, age, city, start_day),
        "service_history": _service_history(rng, user_id, start_day),
    }
    people = People(n=n, user_id=user_id, email=emails, phone=phone, full_name=full_name, street=street, city=city,
                    postcode=postcode, country_code=customers["country"], currency=currency, pref_type=pref_type,
                    shape=shape, fit=fit, gender_group=gender_group, brands=brands, price_target=price_target,
                    sph=sph_od, activity=activity, first_device=first_device, n_devices=n_devices, feeds=feeds)
    return people, devices


def _weighted_rows(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k column draws per row from row-wise weights (with replacement; repeats read as 'strong favourite')."""
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((weights.shape[0], k))
    return np.minimum((u[:, :, None] > cdf[:, None, :]).sum(axis=2), weights.shape[1] - 1)


def _brand_lists(brands: np.ndarray) -> pl.Series:
    """Distinct preferred brand names per customer, in preference order."""
    first_seen = np.ones_like(brands, dtype=bool)
    first_seen[:, 1] = brands[:, 1] != brands[:, 0]
    first_seen[:, 2] = (brands[:, 2] != brands[:, 0]) & (brands[:, 2] != brands[:, 1])
    names = pick(ALL_BRANDS, np.where(first_seen, brands, -1).ravel())
    return pl.DataFrame({"b": names, "row": np.repeat(np.arange(len(brands)), brands.shape[1])}).group_by(
        "row", maintain_order=True).agg(pl.col("b").drop_nulls())["b"]


def make_devices(rng: np.random.Generator, n: int) -> Devices:
    device = rng.choice(3, size=n, p=[0.45, 0.45, 0.10])
    platform = np.where(device == 0, 0, rng.choice(3, size=n, p=[0.55, 0.25, 0.20]))
    first, count = _ua_range(device, platform)
    ua = first + np.floor(rng.random(n) * count).astype(np.int64)
    return Devices(device=device, platform=platform, ua=ua, ip=public_ips(rng, n, HUMAN_IP_FIRST_OCTETS))


def _ua_range(device: np.ndarray, platform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    table_first = np.zeros((3, 3), dtype=np.int64)
    table_count = np.zeros((3, 3), dtype=np.int64)
    for (d, p), (first, count) in HUMAN_UA_RANGE.items():
        table_first[d, p], table_count[d, p] = first, count
    return table_first[device, platform], table_count[device, platform]


def _iso_day(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype("datetime64[D]")).cast(pl.String)


def _consent(rng, user_id: pl.Series, signup: np.ndarray, start_day: np.datetime64) -> pl.DataFrame:
    n = len(user_id)
    purposes = ("analytics", "personalization", "marketing", "data_sharing")
    p_grant = np.array([0.8, 0.65, 0.45, 0.2])
    rows = np.repeat(np.arange(n), len(purposes))
    purpose = np.tile(np.arange(len(purposes)), n)
    span = (start_day - signup[rows]).astype(np.int64)
    recorded = (signup[rows].astype("datetime64[s]")
                + (np.floor(rng.random(len(rows)) * span * 86400)).astype("timedelta64[s]"))
    return pl.DataFrame({
        "user_id": user_id.gather(rows), "purpose": pick(purposes, purpose),
        "granted": rng.random(len(rows)) < p_grant[purpose],
        "recorded_at": pl.Series(recorded.astype("datetime64[ms]")).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": pick(("signup", "preference_center", "cookie_banner", "in_store"),
                       rng.choice(4, size=len(rows), p=[0.45, 0.25, 0.2, 0.1])),
    })


def _prescriptions(rng, user_id, has_rx, sph_od, age, city, start_day) -> pl.DataFrame:
    users = np.flatnonzero(has_rx)
    rows = np.repeat(users, 2)
    eye = np.tile([0, 1], len(users))
    k = len(rows)
    sph = np.where(eye == 0, sph_od[rows], np.clip(quarter_steps(sph_od[rows] + rng.normal(0, 0.4, size=k)), -10, 6))
    cyl = np.where(rng.random(k) < 0.45, 0.0, -quarter_steps(rng.uniform(0.25, 3.0, size=k)))
    axis = pl.Series(rng.integers(1, 181, size=k)).scatter(np.flatnonzero(cyl == 0), None)
    add = pl.Series(np.minimum(quarter_steps(0.75 + (age[rows] - 42) * 0.06), 3.0)).scatter(
        np.flatnonzero(age[rows] < 42), None)
    # one exam per customer covers both eyes
    exam = np.repeat(start_day - rng.integers(1, 730, size=len(users)).astype("timedelta64[D]"), 2)
    own_practice = np.repeat(rng.random(len(users)) < 0.8, 2)
    return pl.DataFrame({
        "user_id": user_id.gather(rows), "eye": pick(("OD", "OS"), eye), "sph": sph, "cyl": cyl + 0.0,
        "axis": axis, "add": add, "pd": np.round(rng.normal(31.5, 1.6, size=k) * 2) / 2,
        "exam_date": _iso_day(exam), "own": own_practice, "city": city.gather(rows),
    }).with_columns(prescriber=pl.when("own").then(pl.format("LensLake Optometry {}", "city"))
                    .otherwise(pl.lit("External optometrist"))).drop("own", "city")


def _service_history(rng, user_id: pl.Series, start_day: np.datetime64) -> pl.DataFrame:
    counts = np.minimum(rng.poisson(0.8, size=len(user_id)), 4)
    rows = np.repeat(np.arange(len(user_id)), counts)
    k = len(rows)
    date = start_day - rng.integers(1, 3 * 365, size=k).astype("timedelta64[D]")
    store = fixed_width(k, b"ST", digit_chars(rng.integers(101, 141, size=k), 3))
    frame = pl.DataFrame({
        "user_id": user_id.gather(rows), "service_date": _iso_day(date), "store_id": store,
        "service_type": pick(("eye_test", "adjustment", "repair", "fitting"), rng.choice(4, size=k, p=[0.45, 0.25, 0.15, 0.15])),
        "outcome": pick(("completed", "no_show", "rescheduled", "referred"), rng.choice(4, size=k, p=[0.85, 0.07, 0.05, 0.03])),
    })
    return frame.sort(["user_id", "service_date"], maintain_order=True)
