"""Behaviour simulation as aligned numpy columns: human client sessions and bot sessions.

A human session is planned as counts and flags (how many browse events, whether it
logs in, adds to cart, buys, ...). Its events are then emitted as unordered groups,
each tagged with a *phase* (start < landing < login < browse < cart < checkout <
logout < end), and one lexsort puts every session in order at once. Inter-event gaps
are a segmented cumulative sum, and sessions of one customer are pushed apart with a
segmented running maximum, so nothing loops per session or per event in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import vocab as V
from .catalog import AC, CL, Catalog, OF, SG
from .columns import public_ips
from .people import HUMAN_IP_FIRST_OCTETS, HUMAN_UA_RANGE, HUMAN_UAS, Devices, People, make_devices
from .taste import K, TasteModel

(PAGE_VIEW, PRODUCT_VIEW, SEARCH, SCROLL, TIME_ON_PAGE, SESSION_START, SESSION_END, ADD_TO_CART,
 REMOVE_FROM_CART, WISHLIST_ADD, PURCHASE, RETURN, LOGIN, LOGOUT, FAILED_LOGIN) = range(len(V.EVENT_TYPES))
PT = {name: code for code, name in enumerate(V.PAGE_TYPES)}
(P_START, P_LANDING, P_FAILED, P_LOGIN, P_BROWSE, P_CART, P_AFTER_CART, P_CHECKOUT, P_LOGOUT, P_END) = range(10)

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
SESSION_GAP = 31 * MINUTE      # a customer's (or visitor device's) next session starts > 30 min after the last

# browse-phase event mix and page types of browse page views
FILLER_KINDS = np.array([PRODUCT_VIEW, PAGE_VIEW, SCROLL, TIME_ON_PAGE, SEARCH, WISHLIST_ADD])
FILLER_P = np.array([0.36, 0.22, 0.16, 0.13, 0.11, 0.02])
BROWSE_PAGE_P = np.array([0.10, 0.35, 0.08, 0.25, 0.07, 0.0, 0.05, 0.10])
SLOT_P = np.array([0.30, 0.22, 0.16, 0.12, 0.10, 0.10])          # which considered product an event is about
CHANNEL_P = np.array([0.28, 0.27, 0.12, 0.10, 0.10, 0.07, 0.06])
# landing page type per channel (rows: CHANNELS; columns: PAGE_TYPES)
LANDING_P = np.array([
    [0.60, 0.15, 0.0, 0.15, 0.0, 0.0, 0.10, 0.0],
    [0.10, 0.35, 0.0, 0.45, 0.0, 0.0, 0.0, 0.10],
    [0.10, 0.30, 0.0, 0.60, 0.0, 0.0, 0.0, 0.0],
    [0.30, 0.30, 0.0, 0.40, 0.0, 0.0, 0.0, 0.0],
    [0.20, 0.0, 0.0, 0.60, 0.0, 0.0, 0.0, 0.20],
    [0.20, 0.0, 0.0, 0.50, 0.0, 0.0, 0.0, 0.30],
    [0.0, 0.30, 0.0, 0.70, 0.0, 0.0, 0.0, 0.0],
])
# UTC session-start rhythm: quiet nights, lunchtime bump, evening peak
HOUR_WEIGHTS = np.array([0.6, 0.35, 0.25, 0.2, 0.2, 0.3, 0.6, 1.2, 1.8, 2.2, 2.5, 2.8,
                         3.2, 3.0, 2.7, 2.6, 2.7, 3.0, 3.5, 4.2, 4.6, 4.2, 3.0, 1.6])
# first octets of cloud/data-centre space bots come from (Google, Microsoft, AWS, OVH, Hetzner, DigitalOcean)
BOT_IP_FIRST_OCTETS = (66, 40, 157, 207, 3, 18, 34, 52, 54, 51, 135, 136, 138, 139, 159, 167)


class Columns:
    """Aligned numpy columns; the first axis is the row."""

    def __init__(self, **cols: np.ndarray):
        self.__dict__.update(cols)

    def __len__(self) -> int:
        return len(next(iter(self.__dict__.values())))

    def take(self, rows: np.ndarray) -> "Columns":
        return Columns(**{k: v[rows] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(*parts: "Columns") -> "Columns":
        return Columns(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in parts[0].__dict__})


@dataclass(frozen=True)
class Window:
    start_ms: int
    days: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * DAY


def blank_sessions(n: int) -> Columns:
    """Session columns with neutral defaults; planners overwrite what applies."""
    z = lambda dtype=np.int64: np.zeros(n, dtype=dtype)
    return Columns(
        dev=z(), user=np.full(n, -1), logged_in=z(bool), login_evt=z(bool), failed=z(bool), failed_reason=z(),
        logout=z(bool), channel=z(), landing=z(), stype=z(), n_filler=z(), has_end=z(bool), n_add=z(),
        remove=z(bool), purchase=z(bool), ret_of=np.full(n, -1), ret_prod=np.full(n, -1), cons=np.zeros((n, K), dtype=np.int64),
        qty=np.ones((n, 2), dtype=np.int64), lens=np.full((n, 2), -1), ip=z(np.uint32), start=z(), dur=z(),
        bot_kind=np.full(n, -1), n_events=z())


def _choice_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a row-stochastic matrix."""
    cdf = np.cumsum(p, axis=1)
    return np.minimum((rng.random(len(p))[:, None] > cdf / cdf[:, -1:]).sum(axis=1), p.shape[1] - 1)


def _session_ips(rng: np.random.Generator, devices: Devices, dev: np.ndarray) -> np.ndarray:
    """Device IP, except that one in ten sessions of a phone or tablet comes from another network."""
    ip = devices.ip[dev].copy()
    roam = (devices.device[dev] != 0) & (rng.random(len(dev)) < 0.10)
    ip[roam] = public_ips(rng, int(roam.sum()), HUMAN_IP_FIRST_OCTETS)
    return ip


def _cart_lines(rng: np.random.Generator, catalog: Catalog, cons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantity and lens option for the two cart slots of each session."""
    t = catalog.ptype[cons[:, :2]]
    n = t.shape
    qty = np.select([t == CL, t == AC], [rng.choice([1, 2, 3, 4, 6], size=n, p=[0.3, 0.3, 0.15, 0.2, 0.05]),
                                         rng.choice([1, 2, 3], size=n, p=[0.7, 0.2, 0.1])],
                    np.where(rng.random(n) < 0.93, 1, 2))
    lens = np.select([t == OF, t == SG],
                     [rng.choice(6, size=n, p=[0.45, 0.2, 0.05, 0.15, 0.05, 0.1]), np.where(rng.random(n) < 0.8, 5, 0)], -1)
    return qty, lens


def plan_human_sessions(rng: np.random.Generator, people: People, devices: Devices, taste: TasteModel,
                        catalog: Catalog, n_events: int) -> tuple[Columns, Devices]:
    """Plan sessions until their events add up to `n_events`; returns them and the devices
    extended by the anonymous visitors' devices."""
    n = int(n_events / 8.5 * 1.25) + 64           # over-provision, then cut at the target
    s = blank_sessions(n)
    known = rng.random(n) < 0.85
    weights = people.activity / people.activity.sum()
    s.user = np.where(known, rng.choice(people.n, size=n, p=weights), -1)
    s.logged_in = known & (rng.random(n) < 0.60 / 0.85)
    s.login_evt = s.logged_in & (rng.random(n) < 0.30)
    s.failed = (s.login_evt & (rng.random(n) < 0.15)) | (~s.logged_in & (rng.random(n) < 0.012))
    s.failed_reason = np.select([~known, s.login_evt], [1, 0], np.where(rng.random(n) < 0.6, 0, 2))
    s.logout = s.logged_in & (rng.random(n) < 0.10)
    s.channel = rng.choice(len(V.CHANNELS), size=n, p=CHANNEL_P)
    s.landing = _choice_rows(rng, LANDING_P[s.channel])
    s.n_filler = rng.negative_binomial(2, 2 / (2 + 6.0), size=n)
    s.has_end = rng.random(n) < 0.92
    s.n_add = np.where(rng.random(n) < 0.12, 1 + (rng.random(n) < 0.25), 0)
    s.purchase = (s.n_add > 0) & s.logged_in & (rng.random(n) < 0.42)
    s.remove = (s.n_add > 0) & (rng.random(n) < 0.2) & ((s.n_add == 2) | ~s.purchase)
    s.n_events = _count_events(s)
    s = s.take(np.arange(min(n, int(np.searchsorted(np.cumsum(s.n_events), n_events)) + 1)))
    n = len(s)

    # anonymous visitors browse on their own devices; about one in five comes back within the window
    anon = s.user < 0
    n_anon_dev = max(1, int(anon.sum() * 0.8))
    n_user_dev = len(devices.device)
    extra = make_devices(rng, n_anon_dev)
    devices = Devices(**{f: np.concatenate([getattr(devices, f), getattr(extra, f)]) for f in devices.__dataclass_fields__})
    second = (people.n_devices[s.user] == 2) & (rng.random(n) < 0.35)
    s.dev = np.where(anon, n_user_dev + rng.integers(0, n_anon_dev, size=n), people.first_device[s.user] + second)
    s.ip = _session_ips(rng, devices, s.dev)

    taster = np.where(anon, rng.integers(0, people.n, size=n), s.user)   # visitors get a random taste
    s.stype = np.where(rng.random(n) < 0.75, people.pref_type[taster],
                       rng.choice(5, size=n, p=[0.45, 0.30, 0.05, 0.12, 0.08]))
    s.cons = taste.consideration_sets(rng, taster, s.stype)
    # the two cart slots must be different products: a session that drew the same one twice adds it once
    same = (s.n_add == 2) & (s.cons[:, 0] == s.cons[:, 1])
    s.n_add[same] = 1
    s.remove[same & s.purchase] = False
    s.qty, s.lens = _cart_lines(rng, catalog, s.cons)
    s.n_events = _count_events(s)
    return s, devices


def _count_events(s: Columns) -> np.ndarray:
    return (2 + s.failed + s.login_evt + s.n_filler + 2 * s.n_add + s.remove + 2 * s.purchase
            + (s.ret_of >= 0) + s.logout + s.has_end).astype(np.int64)


def compose_human(rng: np.random.Generator, s: Columns) -> Columns:
    """Emit every session's events in order, with offsets (ms) from the session start."""
    n = len(s)
    every = np.arange(n)
    groups: list[tuple] = []

    def emit(sess, kind, phase, slot=-1, code=-1, sub=0):
        size = len(sess)
        groups.append(tuple(np.broadcast_to(np.asarray(v), size) for v in (sess, kind, phase, slot, code, sub)))

    emit(every, SESSION_START, P_START, 0, s.landing)
    emit(every, PAGE_VIEW, P_LANDING, 0, s.landing)
    emit(np.flatnonzero(s.failed), FAILED_LOGIN, P_FAILED)
    emit(np.flatnonzero(s.login_evt), LOGIN, P_LOGIN)
    fs = np.repeat(every, s.n_filler)
    fk = FILLER_KINDS[rng.choice(len(FILLER_KINDS), size=len(fs), p=FILLER_P)]
    f_code = np.where(fk == PAGE_VIEW, rng.choice(len(V.PAGE_TYPES), size=len(fs), p=BROWSE_PAGE_P), -1)
    # in cart sessions some browsing happens after the add
    f_phase = np.where((s.n_add[fs] > 0) & (rng.random(len(fs)) < 0.4), P_AFTER_CART, P_BROWSE)
    emit(fs, fk, f_phase, rng.choice(K, size=len(fs), p=SLOT_P), f_code)
    # each carted product is viewed (browse phase) before it is added (cart phase)
    cs = np.repeat(every, s.n_add)
    c_slot = np.arange(len(cs)) - np.repeat(np.cumsum(s.n_add) - s.n_add, s.n_add)
    emit(cs, PRODUCT_VIEW, P_BROWSE, c_slot)
    emit(cs, ADD_TO_CART, P_CART, c_slot, sub=c_slot)
    rs = np.flatnonzero(s.remove)
    emit(rs, REMOVE_FROM_CART, P_AFTER_CART, s.n_add[rs] - 1)
    ps = np.flatnonzero(s.purchase)
    emit(ps, PAGE_VIEW, P_CHECKOUT, -1, PT["checkout"], sub=0)
    emit(ps, PURCHASE, P_CHECKOUT, sub=1)
    emit(np.flatnonzero(s.ret_of >= 0), RETURN, P_AFTER_CART)
    emit(np.flatnonzero(s.logout), LOGOUT, P_LOGOUT)
    emit(np.flatnonzero(s.has_end), SESSION_END, P_END)

    sess, kind, phase, slot, code, sub = (np.concatenate(cols) for cols in zip(*groups))
    order = np.lexsort((rng.random(len(sess)), sub, phase, sess))
    e = Columns(sess=sess[order], kind=kind[order], phase=phase[order], slot=slot[order], code=code[order])

    gap = np.clip(np.exp(rng.normal(np.log(25 * SECOND), 0.75, size=len(e))), 5 * SECOND, 180 * SECOND).astype(np.int64)
    first = _first_of_session(e.sess)
    # occasionally the client keeps one session id across a > 30 min pause
    paused = np.flatnonzero((rng.random(n) < 0.01) & (s.n_events >= 4))
    at = first[paused] + 1 + np.floor(rng.random(len(paused)) * (s.n_events[paused] - 1)).astype(np.int64)
    gap[at] += rng.integers(31 * MINUTE, 90 * MINUTE, size=len(paused))
    e.off = _segmented_offsets(gap, first, e.sess)
    e.prod = np.where(e.slot >= 0, s.cons[e.sess, np.maximum(e.slot, 0)], -1)
    ret = e.kind == RETURN
    e.prod[ret] = s.ret_prod[e.sess[ret]]
    # the user id is known from login (or throughout, when already signed in) until logout
    e.uid_on = s.logged_in[e.sess] & ~(s.login_evt[e.sess] & (e.phase < P_LOGIN)) & ~(s.logout[e.sess] & (e.phase > P_LOGOUT))
    return e


def _first_of_session(sess: np.ndarray) -> np.ndarray:
    """Index of the first event of each session (events grouped by session, sessions 0..n-1 all present)."""
    if len(sess) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]])


def _segmented_offsets(gap: np.ndarray, first: np.ndarray, sess: np.ndarray) -> np.ndarray:
    """Per-event offset from its session's first event: a cumulative sum restarted at each session."""
    gap = gap.copy()
    gap[first] = 0
    total = np.cumsum(gap)
    return total - total[first][sess]


def session_durations(e: Columns) -> np.ndarray:
    """Offset of each session's last event (events grouped by session, in time order)."""
    first = _first_of_session(e.sess)
    return e.off[np.r_[first[1:], len(e)][:len(first)] - 1]


def draw_starts(rng: np.random.Generator, n: int, window: Window) -> np.ndarray:
    """Session start times over the window following the daily rhythm; a few night owls
    start in the quarter hour before an inner midnight, so some sessions span two days."""
    day = rng.integers(0, window.days, size=n)
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    start = window.start_ms + day * DAY + hour * HOUR + rng.integers(0, HOUR, size=n)
    owl = (rng.random(n) < 0.005) & (window.days > 1)
    midnight = window.start_ms + DAY * (1 + rng.integers(0, max(window.days - 1, 1), size=n))
    return np.where(owl, midnight - rng.integers(MINUTE, 15 * MINUTE, size=n), start)


def push_apart(owner: np.ndarray, start: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """Delay sessions so that each owner's sessions never overlap and are > 30 min apart.

    Sorted by (owner, start), new_start[i] = max(start[i], new_start[i-1] + dur[i-1] + gap).
    With C[i] the within-owner sum of (dur + gap) before i, that recurrence is
    new_start = C + running_max(start - C), evaluated per owner by offsetting each
    owner's values far above the previous owner's."""
    order = np.lexsort((start, owner))
    d, s, w = owner[order], start[order], dur[order] + SESSION_GAP
    first = np.r_[True, d[1:] != d[:-1]]
    excl = np.cumsum(w) - w
    within = excl - np.maximum.accumulate(np.where(first, excl, 0))
    lift = np.cumsum(first) << 38                    # 2^38 ms (8.7 years) > any span of (start - within)
    s = s - s.min()
    shifted = np.maximum.accumulate(s - within + lift) - lift + within + start.min()
    out = np.empty_like(start)
    out[order] = shifted
    return out


def _owner(s: Columns) -> np.ndarray:
    """Whose sessions must not overlap: a customer's across all their devices, else the visitor device's."""
    return np.where(s.user >= 0, s.user, s.user.max(initial=0) + 1 + s.dev)


def filter_sessions(s: Columns, e: Columns, keep: np.ndarray) -> tuple[Columns, Columns]:
    """Drop sessions (and their events), renumbering session references."""
    keep = keep.copy()
    has_ref = s.ret_of >= 0
    keep[has_ref] &= keep[s.ret_of[has_ref]]         # a return without its purchase goes too
    new_index = np.cumsum(keep) - 1
    s2 = s.take(np.flatnonzero(keep))
    s2.ret_of = np.where(s2.ret_of >= 0, new_index[np.maximum(s2.ret_of, 0)], -1)
    e2 = e.take(np.flatnonzero(keep[e.sess]))
    e2.sess = new_index[e2.sess]
    return s2, e2


def plan_returns(rng: np.random.Generator, s: Columns, e: Columns, taste: TasteModel, catalog: Catalog,
                 devices: Devices, window: Window) -> Columns:
    """About one purchase in eight is returned in a later short visit from the same device
    (mostly within a day or two; returns that would fall after the window are not seen)."""
    pe = np.flatnonzero(e.kind == PURCHASE)
    bought_in = e.sess[pe]
    bought_at = s.start[bought_in] + e.off[pe]
    start = bought_at + 2 * HOUR + rng.exponential(1.2 * DAY, size=len(pe)).astype(np.int64)
    in_window = start < window.end_ms - HOUR
    chosen = (rng.random(len(pe)) < 0.12) & in_window
    if in_window.any() and not chosen.any():
        chosen[np.argmax(in_window)] = True          # even a tiny world shows one return
    src, start = bought_in[chosen], start[chosen]
    n = len(src)
    r = blank_sessions(n)
    r.dev, r.user, r.ret_of, r.start = s.dev[src], s.user[src], src, start
    r.ret_prod = s.cons[src, 0]                      # the first item bought is the one sent back
    r.logged_in = np.ones(n, dtype=bool)
    r.login_evt = rng.random(n) < 0.3
    r.logout = rng.random(n) < 0.1
    r.channel = np.where(rng.random(n) < 0.6, V.CHANNELS.index("direct"), V.CHANNELS.index("email"))
    r.landing = np.full(n, PT["account"])
    r.n_filler = rng.integers(0, 3, size=n)
    r.has_end = rng.random(n) < 0.92
    r.stype = catalog.ptype[s.cons[src, 0]]
    r.cons = taste.consideration_sets(rng, r.user, r.stype)
    r.ip = _session_ips(rng, devices, r.dev)
    r.n_events = _count_events(r)
    return r


def simulate_humans(rng: np.random.Generator, people: People, devices: Devices, catalog: Catalog,
                    window: Window, n_events: int) -> tuple[Columns, Columns, Devices]:
    """Human sessions and their timed events (absolute `t` in ms); also the extended devices."""
    taste = TasteModel(catalog, people)
    s, devices = plan_human_sessions(rng, people, devices, taste, catalog, n_events)
    e = compose_human(rng, s)
    s.dur = session_durations(e)
    s.start = push_apart(_owner(s), draw_starts(rng, len(s), window), s.dur)
    s, e = filter_sessions(s, e, s.start + s.dur < window.end_ms)

    r = plan_returns(rng, s, e, taste, catalog, devices, window)
    re = compose_human(rng, r)
    r.dur = session_durations(re)
    re.sess = re.sess + len(s)
    s, e = Columns.concat(s, r), Columns.concat(e, re)
    s.start = push_apart(_owner(s), s.start, s.dur)
    s, e = filter_sessions(s, e, s.start + s.dur < window.end_ms)
    s.n_events = np.bincount(e.sess, minlength=len(s))
    e.t = s.start[e.sess] + e.off
    return s, e, devices



# --- bots ----------------------------------------------------------------------------------

BOT_KIND_P = np.array([0.40, 0.25, 0.35])                     # crawler UA, headless browser, inhuman timing
BOT_LENGTH = np.array([[30, 200], [15, 80], [60, 250]])       # events per session (inhuman: always >= 60)
BOT_GAP_MS = np.array([[500, 15_000], [300, 5_000], [50, 800]])
# event mix after session_start: page_view, product_view, scroll
BOT_MIX = np.array([[0.45, 0.55, 0.0], [0.40, 0.50, 0.10], [0.35, 0.60, 0.05]])
BOT_PAGE_TYPES = np.array([PT["home"], PT["category"], PT["product"]])
# user agents: humans' first, then crawlers, then headless browsers
ALL_USER_AGENTS = HUMAN_UAS + V.CRAWLER_USER_AGENTS + V.HEADLESS_USER_AGENTS


def simulate_bots(rng: np.random.Generator, catalog: Catalog, window: Window, n_events: int,
                  first_device: int) -> tuple[Columns, Columns, Devices]:
    """Bot sessions (one fresh device each) totalling about `n_events` events, spread evenly over
    the window with no daily rhythm; also their devices, numbered from `first_device`."""
    n = int(n_events / 60) + 8
    kind = rng.choice(3, size=n, p=BOT_KIND_P)
    kind[:3] = np.arange(3)                                   # every kind shows up, even in tiny worlds
    length = rng.integers(BOT_LENGTH[kind, 0], BOT_LENGTH[kind, 1] + 1)
    n = int(np.searchsorted(np.cumsum(length), n_events)) + 1 if n_events > 0 else 0
    kind, length = kind[:n], length[:n]

    n_human_uas = len(HUMAN_UAS)
    desktop_first, desktop_count = HUMAN_UA_RANGE[(0, 0)]
    ua = np.select([kind == 0, kind == 1],
                   [n_human_uas + rng.integers(0, len(V.CRAWLER_USER_AGENTS), size=n),
                    n_human_uas + len(V.CRAWLER_USER_AGENTS) + rng.integers(0, len(V.HEADLESS_USER_AGENTS), size=n)],
                   desktop_first + rng.integers(0, desktop_count, size=n))   # inhuman timing: ordinary browser UA
    devices = Devices(device=np.zeros(n, dtype=np.int64), platform=np.zeros(n, dtype=np.int64), ua=ua,
                      ip=public_ips(rng, n, BOT_IP_FIRST_OCTETS))

    s = blank_sessions(n)
    s.bot_kind, s.dev, s.ip, s.n_events = kind, first_device + np.arange(n), devices.ip, length
    s.channel = np.where(kind == 0, V.CHANNELS.index("direct"),
                         rng.choice([V.CHANNELS.index("direct"), V.CHANNELS.index("referral")], size=n))

    sess = np.repeat(np.arange(n), length)
    pos = np.arange(len(sess)) - np.repeat(np.cumsum(length) - length, length)
    mix = BOT_MIX[kind[sess]]
    ev_kind = np.array([PAGE_VIEW, PRODUCT_VIEW, SCROLL])[_choice_rows(rng, mix)]
    ev_kind[pos == 0] = SESSION_START
    code = np.where(np.isin(ev_kind, (PAGE_VIEW, SESSION_START)), BOT_PAGE_TYPES[rng.choice(3, size=len(sess), p=[0.1, 0.4, 0.5])], -1)
    gap_lo, gap_hi = BOT_GAP_MS[kind[sess], 0], BOT_GAP_MS[kind[sess], 1]
    gap = rng.integers(gap_lo, gap_hi + 1)
    first = np.flatnonzero(pos == 0)
    e = Columns(sess=sess, kind=ev_kind, phase=np.zeros(len(sess), dtype=np.int64), slot=np.full(len(sess), -1),
                code=code, off=_segmented_offsets(gap, first, sess))
    e.prod = rng.integers(0, len(catalog), size=len(sess))        # crawling: any product, uniformly
    e.uid_on = np.zeros(len(sess), dtype=bool)
    s.dur = session_durations(e)
    s.start = window.start_ms + np.floor(rng.random(n) * (window.days * DAY - s.dur - 1)).astype(np.int64)
    e.t = s.start[e.sess] + e.off
    return s, e, devices

