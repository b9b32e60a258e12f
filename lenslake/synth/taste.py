"""Taste-driven product choice: which products a session is shopping between.

Every session gets a *consideration set* of K products drawn mostly from products that
match its customer's taste (product type, frame shape, face-width fit, gender, favourite
brands, price target), weighted by popularity. Views, wishlists, carts and purchases
are then drawn from that set, which gives the event stream co-view and co-purchase
structure a recommender can learn.
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog, SG
from .people import People
from . import vocab as V

K = 6                                               # consideration-set size
_N_SHAPES, _N_FITS, _N_GROUPS = len(V.SHAPES), len(V.FITS), 3
# product gender -> customer gender groups (0 men's+unisex, 1 women's+unisex, 2 anything) it is shown to
_GENDER_GROUPS = {0: (0, 2), 1: (1, 2), 2: (0, 1, 2)}


class Sampler:
    """Weighted sampling of items within integer-keyed segments, vectorised over many queries.

    Segments are laid end to end on one cumulative axis where segment r spans [r, r+1):
    drawing from segment r is searchsorted(cum, r + u) for u ~ U[0, 1)."""

    def __init__(self, keys: np.ndarray, items: np.ndarray, weights: np.ndarray):
        order = np.lexsort((items, keys))
        keys, self.items, weights = keys[order], items[order], weights[order]
        self.keys, starts = np.unique(keys, return_index=True)
        seg = np.repeat(np.arange(len(self.keys)), np.diff(np.r_[starts, len(keys)]))
        cum = np.cumsum(weights)
        before = (cum[starts] - weights[starts])[seg]
        total = np.add.reduceat(weights, starts)[seg]
        within = (cum - before) / total
        within[np.r_[starts[1:], len(keys)] - 1] = 1.0           # close every segment exactly at r+1
        self.cum = seg + within

    def sample(self, rng: np.random.Generator, keys: np.ndarray) -> np.ndarray:
        """One item per query key; -1 where the key has no segment."""
        u = rng.random(len(keys))
        rank = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[rank] == keys
        pos = np.minimum(np.searchsorted(self.cum, rank + u, side="right"), len(self.items) - 1)
        return np.where(found, self.items[pos], -1)


def _taste_key(ptype, shape, fit, group):
    return ((ptype * (_N_SHAPES + 1) + shape + 1) * (_N_FITS + 1) + fit + 1) * _N_GROUPS + group


class TasteModel:
    def __init__(self, catalog: Catalog, people: People):
        self.catalog, self.people = catalog, people
        live = np.flatnonzero(catalog.active)
        # a product is listed once per customer gender group it is shown to
        groups = [(live[np.isin(catalog.gender[live], [g for g, gs in _GENDER_GROUPS.items() if grp in gs])], grp)
                  for grp in range(_N_GROUPS)]
        items = np.concatenate([p for p, _ in groups])
        grp = np.concatenate([np.full(len(p), g) for p, g in groups])
        pop = catalog.popularity[items]
        t = catalog.ptype[items]
        self.by_taste = Sampler(_taste_key(t, catalog.shape[items], catalog.fit[items], grp), items, pop)
        self.by_type = Sampler(t * _N_GROUPS + grp, items, pop)
        self.by_brand = Sampler(catalog.ptype[live] * 1000 + catalog.brand[live], live, catalog.popularity[live])
        every = np.arange(len(catalog))
        self.anything = Sampler(np.zeros(len(every), dtype=np.int64), every, catalog.popularity)

    def _draw(self, rng, mode, taster, stype) -> np.ndarray:
        """One product per row: mode 0 taste match, 1 favourite brand, 2 anything popular."""
        p = self.people
        is_frame = stype <= SG
        out = np.full(len(mode), -1, dtype=np.int64)
        brand = p.brands[taster, rng.integers(0, p.brands.shape[1], size=len(mode))]
        m = mode == 1
        out[m] = self.by_brand.sample(rng, stype[m] * 1000 + brand[m])
        m = (mode == 0) | ((out < 0) & (mode != 2))       # brand had nothing of this type -> taste
        key = _taste_key(stype[m], np.where(is_frame[m], p.shape[taster[m]], -1),
                         np.where(is_frame[m], p.fit[taster[m]], -1), p.gender_group[taster[m]])
        out[m] = self.by_taste.sample(rng, key)
        m = (out < 0) & (mode != 2)
        out[m] = self.by_type.sample(rng, stype[m] * _N_GROUPS + p.gender_group[taster[m]])
        m = out < 0
        out[m] = self.anything.sample(rng, np.zeros(m.sum(), dtype=np.int64))
        return out

    def consideration_sets(self, rng: np.random.Generator, taster: np.ndarray, stype: np.ndarray) -> np.ndarray:
        """(n_sessions, K) product indexes. Slots 0 and 1 (the ones carts use) always match the
        customer's taste or brands; later slots may be anything popular."""
        n = len(taster)
        mode = rng.choice(3, size=(n, K), p=[0.5, 0.3, 0.2])
        mode[:, :2] = np.where(rng.random((n, 2)) < 0.6, 0, 1)
        rows_taster, rows_type = np.repeat(taster, K), np.repeat(stype, K)
        # two candidates each; keep the one nearer the customer's price target
        a = self._draw(rng, mode.ravel(), rows_taster, rows_type)
        b = self._draw(rng, mode.ravel(), rows_taster, rows_type)
        target = np.log(self.people.price_target[rows_taster])
        cents = self.catalog.cents
        better_b = np.abs(np.log(cents[b]) - target) < np.abs(np.log(cents[a]) - target)
        return np.where(better_b, b, a).reshape(n, K)
