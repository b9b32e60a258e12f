"""Landing-zone dirt: duplicates, late arrivals, schema-invalid lines and malformed JSON.

Which lines get dirty is chosen vectorised. The few dirty lines themselves (0.7% of
events) are rewritten one by one with `json`, which keeps every mutation readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from . import vocab as V

INVALID_SHARE = 0.005      # of human events: schema-invalid (but well-formed JSON) lines
MALFORMED_SHARE = 0.002    # of human events: lines that are not JSON at all
DUPLICATE_SHARE = 0.01     # of valid human events: an extra identical copy lands
LATE_SHARE = 0.01          # of valid human events: the line lands the day after its event_time

INVALID_KINDS = ("missing_required_field", "enum_violation", "negative_amount", "quantity_as_word",
                 "malformed_event_time", "unknown_schema_name", "unknown_schema_version", "bad_sku_pattern")
# The validator downstream checks top-level fields, so every mutation targets one (never purchase items).
_AMOUNT_FIELD = {"product_view": "list_price", "add_to_cart": "unit_price", "purchase": "total_amount",
                 "return": "refund_amount"}
_QUANTITY_TYPES = ("add_to_cart", "remove_from_cart")
_SKU_TYPES = ("product_view", "add_to_cart", "remove_from_cart", "wishlist_add", "return")
# required properties whose removal leaves PII and free text in place
_DROPPABLE_PROPERTIES = {
    "page_view": ("page_type",), "product_view": ("sku", "category", "list_price"), "search": ("results_count",),
    "scroll": ("depth_pct",), "time_on_page": ("duration_ms",), "session_start": ("landing_page",),
    "session_end": ("duration_ms", "event_count"), "add_to_cart": ("sku", "quantity", "unit_price"),
    "remove_from_cart": ("sku", "quantity"), "wishlist_add": ("sku",),
    "purchase": ("order_id", "items", "item_count", "total_amount", "currency"),
    "return": ("order_id", "sku", "reason", "refund_amount"), "login": ("method",), "logout": (),
    "failed_login": ("failure_reason",),
}
_DROPPABLE_ENVELOPE = ("event_id", "event_time", "session_id", "channel", "device", "platform", "user_agent")
_ENUM_BREAKS = {"page_view": ("page_type", "landing"), "purchase": ("currency", "JPY"), "return": ("reason", "too_expensive"),
                "login": ("method", "facebook"), "failed_login": ("failure_reason", "captcha"),
                "add_to_cart": ("lens_option", "tinted")}
_ENVELOPE_ENUM_BREAKS = (("channel", "tiktok_ads"), ("device", "smartwatch"), ("platform", "windows_phone"))
_TYPOS = {"page_view": "page_veiw", "product_view": "prodcut_view", "search": "serach", "scroll": "scrol",
          "time_on_page": "time_on_pgae", "session_start": "sesion_start", "session_end": "session_edn",
          "add_to_cart": "add_to_crat", "remove_from_cart": "remove_from_card", "wishlist_add": "wishlist_ad",
          "purchase": "purchace", "return": "retrun", "login": "logni", "logout": "log_out", "failed_login": "failed_logon"}


def invalid_kind_options(kind: np.ndarray) -> np.ndarray:
    """(n, len(INVALID_KINDS)) bool: which violations apply to events of each type code."""
    names = np.asarray(V.EVENT_TYPES)[kind]
    always = np.ones(len(kind), dtype=bool)
    return np.stack([always, always, np.isin(names, list(_AMOUNT_FIELD)), np.isin(names, _QUANTITY_TYPES),
                     always, always, always, np.isin(names, _SKU_TYPES)], axis=1)


def make_invalid(line: str, violation: int, u: float, v: float) -> str:
    """Break exactly one contract rule of a valid event line; `u` and `v` in [0, 1) pick the variant."""
    doc = json.loads(line)
    props, name = doc["properties"], doc["schema"]
    kind = INVALID_KINDS[violation]
    if kind == "missing_required_field":
        droppable = _DROPPABLE_PROPERTIES[name]
        if droppable and u < 0.5:
            del props[droppable[int(v * len(droppable))]]
        else:
            del doc[_DROPPABLE_ENVELOPE[int(v * len(_DROPPABLE_ENVELOPE))]]
    elif kind == "enum_violation":
        if name in _ENUM_BREAKS and u < 0.5:
            field, value = _ENUM_BREAKS[name]
            props[field] = value
        else:
            field, value = _ENVELOPE_ENUM_BREAKS[int(v * len(_ENVELOPE_ENUM_BREAKS))]
            doc[field] = value
    elif kind == "negative_amount":
        field = _AMOUNT_FIELD[name]
        props[field] = -props[field] if props[field] > 0 else -1.0
    elif kind == "quantity_as_word":
        q = props["quantity"]
        props["quantity"] = V.NUMBER_WORDS[q] if q < len(V.NUMBER_WORDS) else "many"
    elif kind == "malformed_event_time":
        t = doc["event_time"]                                  # 2024-03-05T14:03:22.123Z
        doc["event_time"] = (t[:10] + " " + t[11:23] if u < 1 / 3 else
                             f"{t[8:10]}/{t[5:7]}/{t[:4]} {t[11:19]}" if u < 2 / 3 else t[:23] + "+01:00")
    elif kind == "unknown_schema_name":
        doc["schema"] = _TYPOS[name]
    elif kind == "unknown_schema_version":
        # Versions far above any registered one: a line must stay unknown when a real v2 is registered.
        doc["schema_version"] = 99 if u < 0.5 else 42
    else:  # bad_sku_pattern
        sku = props["sku"]
        props["sku"] = (sku.lower() if u < 0.25 else "XX" + sku[2:] if u < 0.5 else
                        sku[:-1] if u < 0.75 else sku[:2] + "-" + sku[2:])
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def make_malformed(line: str, u: float, v: float) -> str:
    """A line that no JSON parser accepts: truncated, with trailing garbage, or with an unquoted key."""
    if u < 0.5:
        return line[: max(1, int(len(line) * (0.2 + 0.7 * v)))]    # never reaches the closing brace
    if u < 0.75:
        garbage = "x}],\\"
        return line + garbage[int(v * len(garbage))]
    return line.replace('"event_id":', "event_id:", 1)


@dataclass
class Landed:
    """Every line that lands, with its bookkeeping; arrays align with `lines`."""
    lines: pl.Series
    day: np.ndarray            # landing day index
    status: np.ndarray         # 0 valid, 1 invalid, 2 malformed
    source: np.ndarray         # index of the encoded line it came from
    duplicate: np.ndarray      # an extra copy of a line that also landed
    violation: np.ndarray      # index into INVALID_KINDS, -1 unless invalid


def land(rng: np.random.Generator, lines: pl.Series, kind: np.ndarray, is_bot: np.ndarray, spoilable: np.ndarray,
         event_day: np.ndarray, days: int) -> Landed:
    """Decide where every encoded event line lands and plant the dirt.

    Bots are never dirtied. Invalid and malformed lines come from `spoilable` human
    events; late and duplicated lines come from the remaining valid human events,
    never both for one event."""
    n = len(lines)
    human = ~is_bot
    candidates = np.flatnonzero(human & spoilable)
    n_invalid = min(round(INVALID_SHARE * human.sum()), len(candidates))
    n_malformed = min(round(MALFORMED_SHARE * human.sum()), len(candidates) - n_invalid)
    spoiled = rng.choice(candidates, size=n_invalid + n_malformed, replace=False)
    invalid, malformed = np.sort(spoiled[:n_invalid]), np.sort(spoiled[n_invalid:])

    valid_human = human.copy()
    valid_human[spoiled] = False
    n_valid_human = int(valid_human.sum())
    late_pool = np.flatnonzero(valid_human & (event_day < days - 1))
    late = np.sort(rng.choice(late_pool, size=min(round(LATE_SHARE * n_valid_human), len(late_pool)), replace=False))
    dup_pool = valid_human.copy()
    dup_pool[late] = False
    dup_pool = np.flatnonzero(dup_pool)
    dups = np.sort(rng.choice(dup_pool, size=min(round(DUPLICATE_SHARE * n_valid_human), len(dup_pool)), replace=False))
    dup_day = event_day[dups] + ((rng.random(len(dups)) < 0.3) & (event_day[dups] < days - 1))

    # one violation per line, uniformly among those that apply to its event type
    options = invalid_kind_options(kind[invalid])
    cdf = np.cumsum(options, axis=1) / options.sum(axis=1, keepdims=True)
    violation = (rng.random(len(invalid))[:, None] < cdf).argmax(axis=1)
    u = rng.random((len(invalid) + len(malformed), 2)).tolist()
    invalid_lines = [make_invalid(line, int(k), a, b)
                     for line, k, (a, b) in zip(lines.gather(invalid).to_list(), violation, u[:len(invalid)])]
    malformed_lines = [make_malformed(line, a, b) for line, (a, b) in zip(lines.gather(malformed).to_list(), u[len(invalid):])]

    day = event_day.copy()
    day[late] += 1
    keep = np.ones(n, dtype=bool)
    keep[spoiled] = False
    kept = np.flatnonzero(keep)
    parts = [(lines.gather(kept), kept, day[kept], 0, False), (lines.gather(dups), dups, dup_day, 0, True),
             (pl.Series(invalid_lines, dtype=pl.String), invalid, event_day[invalid], 1, False),
             (pl.Series(malformed_lines, dtype=pl.String), malformed, event_day[malformed], 2, False)]
    return Landed(
        lines=pl.concat([p[0] for p in parts]),
        day=np.concatenate([p[2] for p in parts]),
        status=np.concatenate([np.full(len(p[1]), p[3]) for p in parts]),
        source=np.concatenate([p[1] for p in parts]),
        duplicate=np.concatenate([np.full(len(p[1]), p[4]) for p in parts]),
        violation=np.concatenate([np.full(len(kept) + len(dups), -1), violation, np.full(len(malformed), -1)]),
    )
