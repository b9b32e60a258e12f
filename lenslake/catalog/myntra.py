"""Import the real Myntra catalogue's eyewear (``../shared/data/myntra_catalog/``) into the product database.

The catalogue (44,446 fashion products: ``styles.csv`` with id, gender, masterCategory, subCategory, articleType,
baseColour, season, year, usage, and the row-aligned ``styles_text.csv`` with productDisplayName) has one eyewear
article type, ``Sunglasses`` (1,073 rows, under Accessories/Eyewear), and a few sunglasses filed under other article
types (Free Gifts, Ties and Cufflinks, Tunics): rows whose display name says "Sunglasses". Swimming goggles and
watches or necklaces with a "frame" are not eyewear a spectacles shop sells, and are left out.

Mapping (the catalogue's own values; what it does not have stays null):

* products: sku ``MY`` + the style id (6 digits, a prefix no feed SKU uses), name = productDisplayName, brand = the
  words before the gender word (``Ray-Ban Men Aviator…`` → Ray-Ban), product_type ``sunglasses``, category
  ``sunglasses/<shape>`` when the name states a shape the taxonomy knows, else the department ``sunglasses``,
  status active, source ``myntra``, source_id the style id; description and model code are null (not in it);
* attributes: colour = baseColour (lower case), gender (Men/Women/Unisex; Boys and Girls have no counterpart in our
  vocabulary: null), frame shape, material, rim type and polarized lenses only where the name states them; sizes,
  prescription range, progressive compatibility and fit are null;
* no prices, stock or media: the catalogue has none (its image files are not part of this copy).

Idempotent: rows are merged by SKU, and a rerun changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from lenslake.catalog.apply import Upsert, sync_derived, upsert
from lenslake.delta import DeltaStore

SOURCE = "myntra_catalog/styles.csv"
ACTOR = "import:myntra"
GENDERS = {"Men": "men", "Women": "women", "Unisex": "unisex", "Boys": None, "Girls": None}
SHAPES = (("aviator", "aviator"), ("wayfarer", "wayfarer"), ("round", "round"), ("square", "square"),
          ("rectangular", "rectangle"), ("rectangle", "rectangle"), ("cat eye", "cat-eye"), ("cat-eye", "cat-eye"),
          ("oval", "oval"), ("oversized", "oversized"), ("browline", "browline"), ("geometric", "geometric"))
MATERIALS = (("titanium", "titanium"), ("acetate", "acetate"), ("steel", "stainless steel"), ("metal", "metal"))
RIMS = (("rimless", "rimless"), ("half rim", "half_rim"), ("half-rim", "half_rim"), ("full rim", "full_rim"))
SUNGLASSES = re.compile(r"\bsunglass(es)?\b", re.IGNORECASE)


@dataclass
class MyntraImport:
    rows_read: int = 0
    selected: dict[str, int] = field(default_factory=dict)  # rule → rows
    products: Upsert | None = None
    attributes: Upsert | None = None
    taxonomy: dict[str, Upsert] = field(default_factory=dict)

    def summary(self) -> str:
        p, a = self.products, self.attributes
        picked = ", ".join(f"{n:,} {rule}" for rule, n in self.selected.items())
        return (f"read {self.rows_read:,} Myntra styles; eyewear: {sum(self.selected.values()):,} ({picked}); "
                f"products: {p.new:,} new, {p.changed:,} changed, {p.unchanged:,} unchanged; "
                f"attributes: {a.new:,} new, {a.changed:,} changed, {a.unchanged:,} unchanged")


def _first(name: str, table) -> str | None:
    lower = name.lower()
    return next((value for word, value in table if re.search(rf"\b{re.escape(word)}\b", lower)), None)


def read_styles(folder: Path) -> list[dict]:
    """The styles with their display names (the two files are row-aligned)."""
    folder = Path(folder)
    with open(folder / "styles.csv", newline="", encoding="utf-8") as f:
        styles = list(csv.DictReader(f))
    with open(folder / "styles_text.csv", newline="", encoding="utf-8") as f:
        names = [r["productDisplayName"] for r in csv.DictReader(f)]
    if len(styles) != len(names):
        raise ValueError(f"{folder}: styles.csv has {len(styles)} rows, styles_text.csv {len(names)}: not row-aligned")
    return [{**s, "productDisplayName": n} for s, n in zip(styles, names)]


def eyewear_rule(style: dict) -> str | None:
    """Why a style is eyewear (``articleType=Sunglasses`` or ``named sunglasses``), or None."""
    if style["articleType"] == "Sunglasses":
        return "articleType=Sunglasses"
    if SUNGLASSES.search(style["productDisplayName"] or ""):
        return "named sunglasses"
    return None


def map_style(style: dict, at: dt.datetime) -> tuple[dict, dict]:
    """One Myntra style → (catalog.products row, catalog.eyewear_attributes row)."""
    name = " ".join((style["productDisplayName"] or "").split()) or f"Myntra style {style['id']}"
    words = name.split(" ")
    gender_at = next((i for i, w in enumerate(words) if w in GENDERS), None)
    brand = " ".join(words[:gender_at]) if gender_at else None
    shape = _first(name, SHAPES)
    sku = f"MY{int(style['id']):06d}"
    product = {"sku": sku, "product_type": "sunglasses", "name": name, "description": None,
               "category": f"sunglasses/{shape}" if shape else "sunglasses", "brand": brand, "model_code": None,
               "status": "active", "source": "myntra", "source_id": style["id"], "updated_at": at, "feed": SOURCE}
    polarized = bool(re.search(r"\bpolari[sz]ed\b", name, re.IGNORECASE))
    attrs = {"sku": sku, "frame_material": _first(name, MATERIALS), "frame_shape": shape,
             "colour": style["baseColour"].strip().lower() or None if style.get("baseColour") else None,
             "lens_width_mm": None, "bridge_mm": None, "temple_mm": None, "rim_type": _first(name, RIMS),
             "lens_types": "polarized" if polarized else None, "rx_sph_min": None, "rx_sph_max": None,
             "rx_cyl_max": None, "progressive_compatible": None, "gender": GENDERS.get(style["gender"]),
             "face_width_fit": None, "updated_at": at, "feed": SOURCE}
    return product, attrs


def eyewear_rows(folder: Path, at: dt.datetime) -> tuple[list[dict], list[dict], dict[str, int], int]:
    """The catalogue's eyewear as (catalog.products rows, catalog.eyewear_attributes rows, styles selected per rule,
    styles read): what the import merges, and what the embedding benchmark embeds."""
    styles = read_styles(folder)
    products, attributes, selected = [], [], {}
    for style in styles:
        rule = eyewear_rule(style)
        if rule is None:
            continue
        selected[rule] = selected.get(rule, 0) + 1
        p, a = map_style(style, at)
        products.append(p)
        attributes.append(a)
    return products, attributes, selected, len(styles)


def import_myntra(store: DeltaStore, folder: Path, now: dt.datetime | None = None) -> MyntraImport:
    """Merge the catalogue's eyewear into catalog.products and catalog.eyewear_attributes (and the taxonomy)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    report = MyntraImport()
    products, attributes, report.selected, report.rows_read = eyewear_rows(folder, now)
    report.products = upsert(store, "catalog.products", products, kind=None, day=None, actor=ACTOR, feed=SOURCE)
    report.attributes = upsert(store, "catalog.eyewear_attributes", attributes, kind=None, day=None, actor=ACTOR,
                               feed=SOURCE)
    report.taxonomy = sync_derived(store, kind=None, day=None, actor=ACTOR, at=now)
    return report
