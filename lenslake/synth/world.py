"""generate_world: the deterministic synthetic eyewear world, landed as files plus a truth manifest.

Pipeline (each stage has its own random stream spawned from the seed, so changing one
stage's draws never shifts another's):

    catalog, people  ->  human sessions + bot sessions  ->  JSON lines  ->  dirt  ->  files

Output under `root`:
    landing/events/<YYYY-MM-DD>/events-000.ndjson   lines by landing day, shuffled (folder replaced)
    landing/catalog/products.ndjson                 the catalog as of the first day (the product feed's snapshot)
    landing/catalog/<kind>/<YYYY-MM-DD>/*.ndjson    daily product, media, relations, price and inventory feeds
                                                    (lenslake.synth.feeds; folders replaced)
    landing/customers/{customers,prescriptions,service_history,consent}.ndjson
    synth/manifest.json                             what was planted, counted
    synth/catalog_feeds.json                        what the daily catalog feeds hold, counted
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from . import vocab as V
from .catalog import build_catalog
from .dirt import DUPLICATE_SHARE, INVALID_KINDS, INVALID_SHARE, MALFORMED_SHARE, Landed, land
from .encode import encode_events
from .feeds import write_catalog_feeds
from .people import Devices, build_people
from .sessions import DAY, PURCHASE, RETURN, SESSION_START, Columns, Window, simulate_bots, simulate_humans

BOT_SHARE = 0.03            # of all landed lines
_STREAMS = ("catalog", "people", "humans", "bots", "encode", "dirt", "shuffle", "feeds")  # append only: a child
# stream is the seed's i-th spawn, so a new stream changes no other stream's draws


def generate_world(root: Path, *, days: int = 7, users: int = 50_000, seed: int = 42,
                   start: dt.date | None = None, events: int | None = None, products: int = 2400) -> dict:
    """Generate the world under `root` and return the manifest (also written to root/synth/manifest.json).

    `events` is the approximate number of unique, valid human events over all days
    (default 1,000,000 per 7 days). Same arguments, same bytes; the wall clock is read
    only for the default `start` (today, UTC, minus `days`)."""
    if days < 1 or users < 1 or products < 50:
        raise ValueError("need days >= 1, users >= 1 and products >= 50")
    root = Path(root)
    start = start or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=days))
    if isinstance(start, dt.datetime):
        start = start.date()
    events = round(1_000_000 * days / 7) if events is None else events
    rng = dict(zip(_STREAMS, np.random.default_rng(seed).spawn(len(_STREAMS))))
    window = Window(int(np.datetime64(start, "ms").astype(np.int64)), days)

    catalog = build_catalog(rng["catalog"], products)
    people, devices = build_people(rng["people"], users, start)
    # spoiled lines are cut from generated human events, so generate a little more than asked for
    hs, he, devices = simulate_humans(rng["humans"], people, devices, catalog, window,
                                      round(events / (1 - INVALID_SHARE - MALFORMED_SHARE)))
    n_bot = round(BOT_SHARE / (1 - BOT_SHARE) * len(he) * (1 + DUPLICATE_SHARE))
    bs, be, bot_devices = simulate_bots(rng["bots"], catalog, window, n_bot, first_device=len(devices.device))
    be.sess = be.sess + len(hs)
    s, e = Columns.concat(hs, bs), Columns.concat(he, be)
    all_devices = Devices(**{f: np.concatenate([getattr(devices, f), getattr(bot_devices, f)])
                             for f in Devices.__dataclass_fields__})

    enc = encode_events(rng["encode"], s, e, all_devices, people, catalog, window)
    line_event = enc.event_of_line
    kind = e.kind[line_event]
    is_bot = s.bot_kind[e.sess[line_event]] >= 0
    event_day = (e.t[line_event] - window.start_ms) // DAY
    # Spoiling spares each session's session_start, returns (rare) and the purchases they refer
    # to, and the searches carrying free-text PII, so what the manifest claims is in the files.
    returned = np.zeros(len(s), dtype=bool)
    returned[s.ret_of[s.ret_of >= 0]] = True
    spoilable = (~np.isin(kind, (SESSION_START, RETURN)) & ~((kind == PURCHASE) & returned[e.sess[line_event]])
                 & ~enc.free_text_carrier[line_event])
    landed = land(rng["dirt"], enc.lines, kind, is_bot, spoilable, event_day, days)

    dates = [start + dt.timedelta(days=d) for d in range(days)]
    _write_events(rng["shuffle"], root, landed, dates)
    _write_feeds(root, catalog.feed, people.feeds)
    write_catalog_feeds(root, rng["feeds"], catalog, dates, seed=seed)

    bot_sessions = np.flatnonzero(s.bot_kind >= 0)
    manifest = _manifest(
        seed=seed, start=start, days=days, users=users, products=len(catalog), dates=dates, landed=landed,
        kind=kind, is_bot=is_bot, event_day=event_day, bot_kind=s.bot_kind[e.sess[line_event]],
        total_cents=enc.total_cents[line_event], n_sessions=int((s.bot_kind < 0).sum()),
        bot_devices=enc.device_id.gather(s.dev[bot_sessions]).unique().sort().to_list(),
        bot_event_ids=enc.event_id.filter(pl.Series(is_bot)).sort().head(100).to_list(),
        pii=enc.pii, free_text_pii=enc.free_text_pii)
    (root / "synth").mkdir(parents=True, exist_ok=True)
    (root / "synth" / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                                  encoding="utf-8")
    return manifest


def _write_events(rng: np.random.Generator, root: Path, landed: Landed, dates: list[dt.date]) -> None:
    """One file per landing day, its lines in a seeded random order so dirt is mixed in.
    Day folders of a previously generated world are removed first."""
    shutil.rmtree(root / "landing" / "events", ignore_errors=True)
    order = np.lexsort((rng.permutation(len(landed.day)), landed.day))
    lines = landed.lines.rechunk().gather(order)   # gathering from one chunk is far faster
    bounds = np.r_[0, np.cumsum(np.bincount(landed.day, minlength=len(dates)))]
    for d, date in enumerate(dates):
        folder = root / "landing" / "events" / date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        day_lines = lines.slice(int(bounds[d]), int(bounds[d + 1] - bounds[d]))
        # quote_style="never" writes each line's bytes verbatim, one per row, "\n"-terminated
        pl.DataFrame({"line": day_lines}).write_csv(folder / "events-000.ndjson", include_header=False,
                                                    quote_style="never")


def _write_feeds(root: Path, products: pl.DataFrame, feeds: dict[str, pl.DataFrame]) -> None:
    (root / "landing" / "catalog").mkdir(parents=True, exist_ok=True)
    products.write_ndjson(root / "landing" / "catalog" / "products.ndjson")
    (root / "landing" / "customers").mkdir(parents=True, exist_ok=True)
    for name, frame in feeds.items():
        frame.write_ndjson(root / "landing" / "customers" / f"{name}.ndjson")


def _counts(day: np.ndarray, mask: np.ndarray, n_days: int) -> list[int]:
    return np.bincount(day[mask], minlength=n_days).tolist()


def _manifest(*, seed, start, days, users, products, dates, landed: Landed, kind, is_bot, event_day, bot_kind,
              total_cents, n_sessions, bot_devices, bot_event_ids, pii, free_text_pii) -> dict:
    src = landed.source
    valid = landed.status == 0
    per_day = {
        "lines": _counts(landed.day, np.ones(len(valid), dtype=bool), days),
        "valid_lines": _counts(landed.day, valid, days),
        "invalid_lines": _counts(landed.day, landed.status == 1, days),
        "malformed_lines": _counts(landed.day, landed.status == 2, days),
        "duplicate_lines": _counts(landed.day, landed.duplicate, days),
        "bot_events": _counts(landed.day, valid & is_bot[src], days),
        "late_events": _counts(landed.day, valid & (event_day[src] < landed.day), days),
    }
    by_kind = {name: _counts(landed.day, landed.violation == k, days) for k, name in enumerate(INVALID_KINDS)}
    days_detail = {
        date.isoformat(): {**{key: counts[d] for key, counts in per_day.items()},
                           "invalid_by_kind": {name: counts[d] for name, counts in by_kind.items()}}
        for d, date in enumerate(dates)}

    human = src[valid & ~landed.duplicate & ~is_bot[src]]            # each valid human event once
    bots = src[valid & is_bot[src]]
    purchases = human[kind[human] == PURCHASE]
    totals = {key: int(sum(counts)) for key, counts in per_day.items()}
    totals |= {
        "human_events": len(human),
        "human_events_by_type": dict(zip(V.EVENT_TYPES, np.bincount(kind[human], minlength=len(V.EVENT_TYPES)).tolist())),
        "human_events_by_date": dict(zip((d.isoformat() for d in dates),
                                         np.bincount(event_day[human], minlength=days).tolist())),
        "bot_events_by_kind": dict(zip(V.BOT_KINDS, np.bincount(bot_kind[bots], minlength=len(V.BOT_KINDS)).tolist())),
        "sessions": n_sessions,
        "purchases": len(purchases),
        "revenue": round(int(total_cents[purchases].sum()) / 100, 2),
    }
    return {
        "seed": seed, "start": start.isoformat(), "days": days, "users": users, "products": products,
        "days_detail": days_detail,
        "totals": totals,
        "bots": {"devices": bot_devices, "event_ids_sample": bot_event_ids},
        "pii": pii,
        "free_text_pii": free_text_pii,
    }
