"""The daily business feeds of the product database: catalog, media, relations, prices and inventory.

What the merchandising, pricing and warehouse systems export each day, as NDJSON files under
``landing/catalog/<kind>/<YYYY-MM-DD>/``:

    products/<day>/products-000.ndjson     product master + eyewear attributes (the registered ``lenslake.feeds.product``
                                           record plus ``updated_at``); day one is the full snapshot, later days the changes
    media/<day>/media-000.ndjson           image, 3D model and virtual try-on references with sha256 checksums
    relations/<day>/relations-000.ndjson   accessories and frequently-bought-together edges (variants are derived)
    prices/<day>/prices-000.ndjson         list price, promotion with its validity window, tiered prices
    inventory/<day>/<LOCATION>.ndjson      stock per location (absolute values): a snapshot on day one, then deltas

Later days hold realistic changes (new colour variants, renamed products, new descriptions, discontinued SKUs, price
changes, promotions starting and ending, sales, restocks, re-shot images) and the errors real feeds have: malformed
lines, missing fields, bad SKUs, negative stock and prices, unknown SKUs, impossible dates, reversed promotion windows,
and duplicate rows for one key with different timestamps (an older export of the same record, placed later in the
file, so that file order never decides). Every row carries ``updated_at``, the source system's change time.

The truth manifest (``synth/catalog_feeds.json``) counts per day and kind: lines, valid rows, quarantined rows by
reason code, duplicates superseded, distinct keys, and the changes the valid rows make, so tests reconcile exactly.
Same seed, same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from lenslake.catalog.rules import availability

from . import vocab as V
from .catalog import AC, CL, LN, OF, SG, Catalog

LOCATIONS = ("WH-AMS", "ST-LON", "ST-BER", "ST-PAR")  # the warehouse stocks everything but lenses; stores frames + accessories
KINDS = ("products", "media", "relations", "prices", "inventory")
CDN = "https://cdn.lenslake.example/media"
MANIFEST = "catalog_feeds.json"

# Daily change rates (share of SKUs or stock positions) after the first day.
NEW_SKUS, RENAMES, REDESCRIBED, DISCONTINUED = 0.002, 0.002, 0.003, 0.0015
PRICE_CHANGES, PROMO_STARTS, PROMO_ENDS = 0.012, 0.01, 0.3  # PROMO_ENDS: share of running promotions ended early
STOCK_MOVES, RESHOTS = 0.08, 0.003
DESCRIPTION_NOTES = ("Now with adjustable nose pads.", "Spring hinges for a comfortable fit.",
                     "Supplied with a hard case and cleaning cloth.", "Lightweight construction for all-day wear.")


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(day: dt.date, hour: int, rng: np.random.Generator) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc) + dt.timedelta(seconds=int(rng.integers(0, 3600)))


def _retail(x: float) -> float:
    """A retail price point ending in .99 (at least 4.99)."""
    return round(max(5, int(round(x / 5.0)) * 5) - 0.01, 2)


class _Day:
    """The lines of one day's feed files, and the truth about them, filled kind by kind."""

    def __init__(self, rng: np.random.Generator, day: dt.date):
        self.rng, self.day = rng, day
        self.files: dict[str, list[str]] = defaultdict(list)  # relative path -> lines (shuffled at write)
        self.tail: dict[str, list[str]] = defaultdict(list)  # lines placed after the shuffled ones (older duplicates)
        self.truth = {k: {"lines": 0, "valid": 0, "quarantined": {}, "superseded": 0, "keys": 0, "changes": {}} for k in KINDS}

    def path(self, kind: str, name: str | None = None) -> str:
        return f"{kind}/{self.day.isoformat()}/{name or kind + '-000'}.ndjson"

    def row(self, kind: str, doc: dict, change: str, *, file: str | None = None) -> None:
        self.files[file or self.path(kind)].append(json.dumps(doc, ensure_ascii=False))
        t = self.truth[kind]
        t["lines"] += 1
        t["valid"] += 1
        t["keys"] += 1
        t["changes"][change] = t["changes"].get(change, 0) + 1

    def older_duplicate(self, kind: str, doc: dict, *, file: str | None = None) -> None:
        self.tail[file or self.path(kind)].append(json.dumps(doc, ensure_ascii=False))
        t = self.truth[kind]
        t["lines"] += 1
        t["valid"] += 1
        t["superseded"] += 1

    def bad(self, kind: str, line: str | dict, reason: str, *, file: str | None = None) -> None:
        self.files[file or self.path(kind)].append(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False))
        t = self.truth[kind]
        t["lines"] += 1
        t["quarantined"][reason] = t["quarantined"].get(reason, 0) + 1

    def write(self, root: Path) -> None:
        for rel in sorted(set(self.files) | set(self.tail)):
            lines = self.files.get(rel, [])
            lines = [lines[i] for i in self.rng.permutation(len(lines))] + self.tail.get(rel, [])
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


class FeedWorld:
    """The state the source systems hold, changed day by day; each day's changes become feed lines."""

    def __init__(self, rng: np.random.Generator, catalog: Catalog):
        self.rng = rng
        self.catalog = catalog
        self.products: dict[str, dict] = {r["sku"]: r for r in catalog.feed.to_dicts()}
        self.ptype = dict(zip(catalog.sku.to_list(), catalog.ptype.tolist()))
        self.used = set(self.products)
        self.prices: dict[str, dict] = {}
        self.stock: dict[tuple[str, str], dict] = {}
        self.media: dict[tuple[str, str, int], dict] = {}
        self.relations: set[tuple[str, str, str]] = set()
        self.samples: dict[str, dict] = {}

    # --- helpers ----------------------------------------------------------------------------------------------------

    def _skus(self, types=None, active=None) -> list[str]:
        return [s for s, p in self.products.items()
                if (types is None or self.ptype[s] in types) and (active is None or (p["status"] == "active") == active)]

    def _pick(self, pool: list[str], share: float, minimum: int = 1) -> list[str]:
        k = min(len(pool), max(minimum, int(round(share * len(pool)))))
        return sorted(self.rng.choice(pool, size=k, replace=False).tolist()) if k else []

    def _unknown_sku(self, prefix: str = "SG") -> str:
        """A SKU no product has, nor ever will (it is marked used, so no new product draws it)."""
        while True:
            sku = f"{prefix}{int(self.rng.integers(0, 1_000_000)):06d}"
            if sku not in self.used:
                self.used.add(sku)
                return sku

    _new_sku = _unknown_sku

    def _locations(self, sku: str) -> tuple[str, ...]:
        t = self.ptype[sku]
        if t == LN:
            return ()
        return LOCATIONS if t in (OF, SG, AC) else LOCATIONS[:1]

    @staticmethod
    def _checksum(*parts) -> str:
        return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()

    # --- day one: full snapshots ------------------------------------------------------------------------------------

    def first_day(self, out: _Day) -> None:
        rng, day = self.rng, out.day
        for sku, p in self.products.items():
            out.row("products", {**p, "updated_at": _iso(_at(day, 1, rng))}, "new")
        for sku, p in self.products.items():
            self._new_media(out, sku)
        self._first_relations(out)
        for sku, p in self.products.items():
            self._new_price(out, sku, p["price"])
        for sku in self.products:
            self._new_stock(out, sku)
        # errors of day one: a malformed line in each feed, a bad SKU, an unknown SKU in prices and stock
        some = sorted(self.products)[: 3]
        out.bad("products", json.dumps({**self.products[some[0]], "updated_at": _iso(_at(day, 1, rng))})[:-40], "malformed_json")
        out.bad("products", {**self.products[some[1]], "sku": "SG12AB34", "updated_at": _iso(_at(day, 1, rng))}, "pattern_mismatch")
        out.bad("prices", {**self._price_doc(self._unknown_sku(), 99.99), "updated_at": _iso(_at(day, 2, rng))}, "referential_integrity")
        out.bad("inventory", {"sku": self._unknown_sku("OF"), "location": LOCATIONS[0], "on_hand": 4, "reserved": 0,
                              "restock_date": None, "updated_at": _iso(_at(day, 3, rng))}, "referential_integrity",
                file=out.path("inventory", LOCATIONS[0]))
        out.bad("inventory", '{"sku": "OF000001", "location": "WH-AMS", "on_hand": 3', "malformed_json",
                file=out.path("inventory", LOCATIONS[0]))

    def _price_doc(self, sku: str, list_price: float) -> dict:
        tiers = None
        if self.ptype.get(sku) == CL:
            tiers = [{"min_qty": 2, "unit_price": round(list_price * 0.95, 2)},
                     {"min_qty": 4, "unit_price": round(list_price * 0.9, 2)}]
        return {"sku": sku, "currency": "EUR", "list_price": list_price, "promo_price": None, "promo_from": None,
                "promo_to": None, "tiers": tiers}

    def _new_price(self, out: _Day, sku: str, list_price: float) -> None:
        doc = self._price_doc(sku, list_price)
        if self.rng.random() < 0.05 and self.products[sku]["status"] == "active":
            self._promo(doc, out.day - dt.timedelta(days=int(self.rng.integers(0, 4))))
        self.prices[sku] = doc
        out.row("prices", {**doc, "updated_at": _iso(_at(out.day, 2, self.rng))}, "new")

    def _promo(self, doc: dict, start: dt.date) -> None:
        doc["promo_price"] = round(doc["list_price"] * float(self.rng.choice([0.7, 0.8, 0.85])), 2)
        doc["promo_from"] = start.isoformat()
        doc["promo_to"] = (start + dt.timedelta(days=int(self.rng.integers(3, 15)))).isoformat()

    def _new_stock(self, out: _Day, sku: str, fresh: bool = False) -> None:
        active = self.products[sku]["status"] == "active"
        for loc in self._locations(sku):
            on_hand = int(self.rng.poisson(18 if loc.startswith("WH") else 3)) if active or fresh else 0
            if fresh:
                on_hand = max(on_hand, 5)
            reserved = int(self.rng.binomial(on_hand, 0.1)) if on_hand else 0
            restock = None
            if on_hand == 0 and active and self.rng.random() < 0.6:
                restock = (out.day + dt.timedelta(days=int(self.rng.integers(2, 15)))).isoformat()
            doc = {"sku": sku, "location": loc, "on_hand": on_hand, "reserved": reserved, "restock_date": restock}
            self.stock[sku, loc] = doc
            out.row("inventory", {**doc, "updated_at": _iso(_at(out.day, 3, self.rng))}, "new", file=out.path("inventory", loc))

    def _new_media(self, out: _Day, sku: str) -> None:
        t = self.ptype[sku]
        wanted = [("image", 1)] + ([("image", 2)] if t in (OF, SG) else [])
        if t in (OF, SG) and self.rng.random() < 0.5:
            wanted.append(("model_3d", 1))
        if t in (OF, SG) and self.rng.random() < 0.6:
            wanted.append(("try_on", 1))
        for media_type, position in wanted:
            self._media_row(out, sku, media_type, position, version=1, change="new")

    def _media_row(self, out: _Day, sku, media_type, position, *, version: int, change: str) -> None:
        ext = {"image": "jpg", "model_3d": "glb", "try_on": "usdz"}[media_type]
        doc = {"sku": sku, "media_type": media_type, "position": position,
               "uri": f"{CDN}/{sku}/{media_type}-{position}-v{version}.{ext}",
               "checksum_sha256": self._checksum(sku, media_type, position, version)}
        self.media[sku, media_type, position] = doc
        out.row("media", {**doc, "updated_at": _iso(_at(out.day, 1, self.rng))}, change)

    def _first_relations(self, out: _Day) -> None:
        accessories = self._skus((AC,))
        cases = [s for s in accessories if self.products[s]["category"].endswith(("cases", "cleaning"))] or accessories
        solutions = [s for s in accessories if self.products[s]["category"].endswith("solutions")] or accessories
        lenses = self._skus((LN,))
        for sku in sorted(self.products):
            t = self.ptype[sku]
            edges = []
            if t in (OF, SG) and cases:
                edges += [(a, "accessory") for a in self.rng.choice(cases, size=min(2, len(cases)), replace=False).tolist()]
                if t == OF and lenses:
                    edges.append((str(self.rng.choice(lenses)), "frequently_bought_together"))
            elif t == CL and solutions:
                edges.append((str(self.rng.choice(solutions)), "frequently_bought_together"))
            for related, relation in edges:
                self._relation(out, sku, related, relation)
        if lenses:
            out.bad("relations", {"sku": lenses[0], "related_sku": self._unknown_sku("AC"), "relation": "accessory",
                                  "score": 0.5, "updated_at": _iso(_at(out.day, 1, self.rng))}, "referential_integrity")

    def _relation(self, out: _Day, sku: str, related: str, relation: str) -> None:
        if (sku, related, relation) in self.relations:
            return
        self.relations.add((sku, related, relation))
        out.row("relations", {"sku": sku, "related_sku": related, "relation": relation,
                              "score": round(float(self.rng.uniform(0.2, 1.0)), 3),
                              "updated_at": _iso(_at(out.day, 1, self.rng))}, "new")

    # --- later days: changes and errors -----------------------------------------------------------------------------

    def next_day(self, out: _Day) -> None:
        self._catalog_changes(out)
        self._price_changes(out)
        self._stock_changes(out)

    def _catalog_changes(self, out: _Day) -> None:
        rng, day = self.rng, out.day
        frames = self._skus((OF, SG), active=True)
        changed: set[str] = set()
        # new colour variants of existing models: product, media, price, stock and accessories on the same day
        for template in self._pick(frames, NEW_SKUS):
            t = self.ptype[template]
            sku = self._new_sku("OF" if t == OF else "SG")
            base = self.products[template]
            taken = {p["colour"] for p in self.products.values() if p["model_code"] == base["model_code"]}
            colour = next((c for c in V.COLOURS if c not in taken), base["colour"])
            doc = {**base, "sku": sku, "colour": colour, "status": "active", "price": self.prices[template]["list_price"],
                   "description": base["description"].replace(f" in {base['colour']}.", f" in {colour}.")}
            self.products[sku] = doc
            self.ptype[sku] = t
            changed.add(sku)
            out.row("products", {**doc, "updated_at": _iso(_at(day, 1, rng))}, "new")
            self._new_media(out, sku)
            self._new_price(out, sku, self.prices[template]["list_price"])
            self._new_stock(out, sku, fresh=True)
            for related, relation in sorted((r, rel) for s, r, rel in self.relations if s == template):
                self._relation(out, sku, related, relation)
        pool = [s for s in self._skus(active=True) if s not in changed]
        renamed = self._pick(pool, RENAMES)
        pool = [s for s in pool if s not in renamed]
        redescribed = self._pick(pool, REDESCRIBED)
        pool = [s for s in pool if s not in redescribed]
        discontinued = self._pick(pool, DISCONTINUED)
        for sku in renamed:
            p = self.products[sku]
            old = p["name"]
            descriptor = str(rng.choice([d for d in V.DESCRIPTORS if d not in old]))
            words = old.split(" ")
            p["name"] = " ".join(words[:-1] + [descriptor]) if len(words) > 3 else f"{old} {descriptor}"
            self.samples.setdefault("renamed", {"sku": sku, "day": day.isoformat(), "old": old, "new": p["name"]})
        for sku in redescribed:
            p = self.products[sku]
            p["description"] = f"{p['description']} {rng.choice(DESCRIPTION_NOTES)}"
        for sku in discontinued:
            self.products[sku]["status"] = "discontinued"
        stamps = {}
        for sku, change in [(s, "renamed") for s in renamed] + [(s, "redescribed") for s in redescribed] + [
                (s, "discontinued") for s in discontinued]:
            stamps[sku] = _at(day, 1, rng)
            out.row("products", {**self.products[sku], "updated_at": _iso(stamps[sku])}, change)
        # an older export of a renamed product, later in the file: survivorship keeps the newer record
        if renamed:
            sku = renamed[0]
            older = {**self.products[sku], "name": self.samples["renamed"]["old"] if self.samples["renamed"]["sku"] == sku
                     else self.products[sku]["name"] + " (old)", "updated_at": _iso(stamps[sku] - dt.timedelta(hours=6))}
            out.older_duplicate("products", older)
            self.samples.setdefault("duplicate", {"sku": sku, "day": day.isoformat(), "kept": self.products[sku]["name"],
                                                  "superseded": older["name"]})
        # errors
        victims = self._pick([s for s in self._skus((OF, SG)) if s not in changed and s not in stamps], 0, minimum=3)
        out.bad("products", json.dumps({**self.products[victims[0]], "updated_at": _iso(_at(day, 1, rng))})[:-25], "malformed_json")
        missing = {**self.products[victims[1]], "updated_at": _iso(_at(day, 1, rng))}
        del missing["name"]
        out.bad("products", missing, "missing_required_field")
        out.bad("products", {**self.products[victims[2]], "lens_width_mm": 95, "updated_at": _iso(_at(day, 1, rng))}, "out_of_range")
        # media: a few images re-shot (new file, new checksum), and a bad checksum
        images = sorted(k for k in self.media if k[1] == "image" and k[0] not in changed)
        for i in sorted(rng.choice(len(images), size=max(1, int(RESHOTS * len(images))), replace=False).tolist()):
            sku, media_type, position = images[i]
            version = int(self.media[images[i]]["uri"].rsplit("-v", 1)[1].split(".")[0]) + 1
            self._media_row(out, sku, media_type, position, version=version, change="changed")
        out.bad("media", {**self.media[images[0]], "checksum_sha256": "not-a-checksum", "updated_at": _iso(_at(day, 1, rng))},
                "pattern_mismatch")

    def _price_changes(self, out: _Day) -> None:
        rng, day = self.rng, out.day
        touched = {json.loads(line)["sku"] for line in out.files.get(out.path("prices"), [])}  # new SKUs' first prices
        active = [s for s in self._skus(active=True) if s not in touched]
        stamps = {}
        for sku in self._pick(active, PRICE_CHANGES):
            doc = self.prices[sku]
            old = doc["list_price"]
            new = _retail(old * float(rng.choice([0.85, 0.9, 0.95, 1.05, 1.1, 1.15])))
            new = new if new != old else round(old + 5.0, 2)
            doc["list_price"] = new
            if doc["tiers"]:
                doc["tiers"] = [{"min_qty": t["min_qty"], "unit_price": round(new * (0.95 if t["min_qty"] == 2 else 0.9), 2)}
                                for t in doc["tiers"]]
            if doc["promo_price"] is not None and doc["promo_price"] >= new:
                doc["promo_price"] = round(new * 0.8, 2)
            touched.add(sku)
            stamps[sku] = _at(day, 2, rng)
            out.row("prices", {**doc, "updated_at": _iso(stamps[sku])}, "changed")
            self.samples.setdefault("price_change", {"sku": sku, "day": day.isoformat(), "old": old, "new": new})
        for sku in self._pick([s for s in active if s not in touched and self.prices[s]["promo_price"] is None], PROMO_STARTS):
            self._promo(self.prices[sku], day + dt.timedelta(days=int(rng.integers(0, 2))))
            touched.add(sku)
            out.row("prices", {**self.prices[sku], "updated_at": _iso(_at(day, 2, rng))}, "changed")
        running = [s for s in self.prices if s not in touched and self.prices[s]["promo_price"] is not None]
        for sku in self._pick(running, PROMO_ENDS, minimum=0):
            self.prices[sku].update(promo_price=None, promo_from=None, promo_to=None)
            touched.add(sku)
            out.row("prices", {**self.prices[sku], "updated_at": _iso(_at(day, 2, rng))}, "changed")
        # an older export of a changed price after the newer one
        if stamps:
            sku = sorted(stamps)[0]
            sample = self.samples["price_change"]
            old = sample["old"] if sample["sku"] == sku else round(self.prices[sku]["list_price"] + 10.0, 2)
            out.older_duplicate("prices", {**self.prices[sku], "list_price": old, "promo_price": None,
                                           "updated_at": _iso(stamps[sku] - dt.timedelta(hours=3))})
        # errors: negative price, unknown SKU, an impossible date, a reversed window, a malformed line
        spare = [s for s in active if s not in touched]
        victims = self._pick(spare, 0, minimum=4)
        at = lambda: _iso(_at(day, 2, rng))  # noqa: E731
        out.bad("prices", {**self.prices[victims[0]], "list_price": -10.0, "updated_at": at()}, "out_of_range")
        out.bad("prices", {**self._price_doc(self._unknown_sku("OF"), 120.99), "updated_at": at()}, "referential_integrity")
        out.bad("prices", {**self.prices[victims[1]], "promo_price": 9.99, "promo_from": f"{day.year}-02-30",
                           "promo_to": f"{day.year}-03-09", "updated_at": at()}, "pattern_mismatch")
        lp = self.prices[victims[2]]["list_price"]
        out.bad("prices", {**self.prices[victims[2]], "promo_price": round(lp * 0.8, 2), "promo_from": (day + dt.timedelta(days=5)).isoformat(),
                           "promo_to": day.isoformat(), "updated_at": at()}, "constraint_violation")
        out.bad("prices", json.dumps({**self.prices[victims[3]], "updated_at": at()})[:-30], "malformed_json")

    def _stock_changes(self, out: _Day) -> None:
        rng, day = self.rng, out.day
        fresh = {(json.loads(line)["sku"], json.loads(line)["location"])
                 for loc in LOCATIONS for line in out.files.get(out.path("inventory", loc), [])}
        positions = sorted(k for k in self.stock if k not in fresh)
        moved = [positions[i] for i in sorted(rng.choice(len(positions), size=int(STOCK_MOVES * len(positions)), replace=False))]
        stamps = {}
        for key in moved:
            doc = self.stock[key]
            before = dict(doc)
            active = self.products[key[0]]["status"] == "active"
            move = rng.random()
            if doc["on_hand"] > 0 and move < 0.6:  # sales
                doc["on_hand"] = max(0, doc["on_hand"] - int(rng.integers(1, 4)))
                doc["reserved"] = min(doc["reserved"], doc["on_hand"])
                if doc["on_hand"] == 0 and active and rng.random() < 0.6:
                    doc["restock_date"] = (day + dt.timedelta(days=int(rng.integers(2, 15)))).isoformat()
            elif active and move < 0.85:  # a delivery
                doc["on_hand"] += int(rng.integers(5, 30))
                doc["restock_date"] = None
            else:  # reservations placed or released
                doc["reserved"] = int(rng.integers(0, doc["on_hand"] + 1)) if doc["on_hand"] else 0
            if doc == before:
                doc["reserved"], doc["on_hand"] = 0, doc["on_hand"] + 1
            stamps[key] = _at(day, 3, rng)
            out.row("inventory", {**doc, "updated_at": _iso(stamps[key])}, "changed", file=out.path("inventory", key[1]))
            if availability(before["on_hand"], before["reserved"], before["restock_date"]) != availability(
                    doc["on_hand"], doc["reserved"], doc["restock_date"]):
                self.samples.setdefault("availability_change", {
                    "sku": key[0], "location": key[1], "day": day.isoformat(),
                    "old": availability(before["on_hand"], before["reserved"], before["restock_date"]),
                    "new": availability(doc["on_hand"], doc["reserved"], doc["restock_date"])})
        if stamps:
            key = sorted(stamps)[0]
            out.older_duplicate("inventory", {**self.stock[key], "on_hand": self.stock[key]["on_hand"] + 7,
                                              "updated_at": _iso(stamps[key] - dt.timedelta(hours=2))},
                                file=out.path("inventory", key[1]))
        spare = [k for k in positions if k not in stamps]
        victims = [spare[i] for i in sorted(rng.choice(len(spare), size=3, replace=False))]
        at = lambda: _iso(_at(day, 3, rng))  # noqa: E731
        out.bad("inventory", {**self.stock[victims[0]], "on_hand": -3, "updated_at": at()}, "out_of_range",
                file=out.path("inventory", victims[0][1]))
        out.bad("inventory", {**self.stock[victims[1]], "restock_date": f"{day.year}-13-45", "updated_at": at()},
                "pattern_mismatch", file=out.path("inventory", victims[1][1]))
        out.bad("inventory", {"sku": self._unknown_sku("SG"), "location": victims[2][1], "on_hand": 2, "reserved": 0,
                              "restock_date": None, "updated_at": at()}, "referential_integrity",
                file=out.path("inventory", victims[2][1]))


def write_catalog_feeds(root: Path, rng: np.random.Generator, catalog: Catalog, dates: list[dt.date], *, seed: int) -> dict:
    """Write every day's feed files under ``root/landing/catalog/<kind>/<day>/`` (feed folders of a previous world
    are removed first) and return the truth manifest, also written to ``root/synth/catalog_feeds.json``."""
    base = Path(root) / "landing" / "catalog"
    for kind in KINDS:
        shutil.rmtree(base / kind, ignore_errors=True)
    world = FeedWorld(rng, catalog)
    days = {}
    for i, day in enumerate(dates):
        out = _Day(rng, day)
        world.first_day(out) if i == 0 else world.next_day(out)
        out.write(base)
        for t in out.truth.values():
            t["quarantined"] = dict(sorted(t["quarantined"].items()))
            t["changes"] = dict(sorted(t["changes"].items()))
        days[day.isoformat()] = out.truth
    manifest = {"seed": seed, "start": dates[0].isoformat(), "locations": list(LOCATIONS), "days": days,
                "products_at_end": len(world.products),
                "stock_positions_at_end": len(world.stock), "samples": world.samples}
    synth = Path(root) / "synth"
    synth.mkdir(parents=True, exist_ok=True)
    (synth / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return manifest
