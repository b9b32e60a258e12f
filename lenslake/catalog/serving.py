"""What the serving layer reads: current prices and availability, and the invalidations that tell its caches when
either changed.

``catalog.invalidations`` is append-only with Delta's change data feed: a consumer remembers the table version it
has read up to and asks for the rows inserted after it (``InvalidationConsumer.poll``), so nothing is read twice or
missed. ``CatalogCache`` is the reference consumer (the API issue builds on it): it serves from memory and drops
exactly the entries an invalidation names before answering, so a price or availability is served as changed as soon
as the feed that changed it has been applied.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore

INVALIDATIONS = "catalog.invalidations"


@dataclass(frozen=True)
class Price:
    sku: str
    currency: str
    list_price: float
    promo_price: float | None
    promo_from: dt.date | None
    promo_to: dt.date | None
    tiers: list[dict] | None
    valid_from: dt.datetime
    price: float  # what a customer pays for one unit on the day asked: the promotion inside its window, else list

    def unit_price(self, quantity: int) -> float:
        """The price per unit for a quantity: the best tier it reaches, or the day's price, whichever is lower."""
        tiers = [t["unit_price"] for t in self.tiers or [] if quantity >= t["min_qty"]]
        return min([self.price, *tiers])


def _sku(sku: str):
    # cast: delta-rs's MERGE writes strings as string_view in some files, and a plain literal has no kernel for them
    return pc.field("sku").cast(pa.string()) == sku


def current_price(store: DeltaStore, sku: str, on: dt.date | None = None) -> Price | None:
    """The SKU's current price version (None: no price), with the price in effect on day ``on`` (default: today,
    UTC): the promotional price when ``on`` is within the promotion's window, else the list price."""
    on = on or dt.datetime.now(dt.timezone.utc).date()
    rows = store.read("catalog.prices", filter=_sku(sku) & (pc.field("is_current") == True)).to_pylist()  # noqa: E712
    if not rows:
        return None
    r = rows[0]
    promo = (r["promo_price"] is not None and (r["promo_from"] is None or r["promo_from"] <= on)
             and (r["promo_to"] is None or on <= r["promo_to"]))
    return Price(r["sku"], r["currency"], r["list_price"], r["promo_price"], r["promo_from"], r["promo_to"],
                 json.loads(r["tier_prices"]) if r["tier_prices"] else None, r["valid_from"],
                 r["promo_price"] if promo else r["list_price"])


def current_availability(store: DeltaStore, sku: str) -> dict[str, str]:
    """Availability per stock location of a SKU ({} when it is stocked nowhere)."""
    rows = store.read("catalog.inventory", columns=["location", "availability"], filter=_sku(sku))
    return dict(zip(rows.column("location").to_pylist(), rows.column("availability").to_pylist()))


class InvalidationConsumer:
    """Reads the invalidations appended since the table version it last read. ``cursor``: the version read up to
    (None: start at the table's current version, i.e. only what comes next; -1: from the beginning)."""

    def __init__(self, store: DeltaStore, cursor: int | None = None):
        self.store = store
        self.cursor = store.version(INVALIDATIONS) if cursor is None else cursor

    def poll(self) -> list[dict]:
        from deltalake import DeltaTable

        latest = self.store.version(INVALIDATIONS)
        if latest <= self.cursor:
            return []
        start = max(self.cursor + 1, 0)
        rows = pa.table(DeltaTable(str(self.store.path(INVALIDATIONS))).load_cdf(starting_version=start,
                                                                                  ending_version=latest)).to_pylist()
        self.cursor = latest
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows if r["_change_type"] == "insert"]


class CatalogCache:
    """A serving cache of prices and availability, kept right by the invalidations."""

    def __init__(self, store: DeltaStore, cursor: int | None = None):
        self.store = store
        self.consumer = InvalidationConsumer(store, cursor)
        self.prices: dict[str, Price | None] = {}
        self.availability: dict[str, dict[str, str]] = {}
        self.dropped = 0

    def refresh(self) -> int:
        """Drop every entry an invalidation since the last refresh names; returns how many invalidations it read."""
        seen = self.consumer.poll()
        for inv in seen:
            cache = self.prices if inv["kind"] == "price" else self.availability
            self.dropped += cache.pop(inv["sku"], None) is not None
        return len(seen)

    def price(self, sku: str, on: dt.date | None = None) -> Price | None:
        self.refresh()
        if sku not in self.prices:
            self.prices[sku] = current_price(self.store, sku, on)
        return self.prices[sku]

    def stock(self, sku: str) -> dict[str, str]:
        self.refresh()
        if sku not in self.availability:
            self.availability[sku] = current_availability(self.store, sku)
        return self.availability[sku]
