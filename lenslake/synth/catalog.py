"""The product catalog: frames (optical and sun), lenses, contact lenses, accessories.

Frames are generated as *models* (brand + model code + shape + size) with one to a few
colour variants each, so a search for "RB3025" has several SKUs to return and
"customers who viewed X" has genuine near-duplicates to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from . import vocab as V
from .columns import digit_chars, fixed_width, pick

OF, SG, LN, CL, AC = range(5)
FRAME_TYPES = (OF, SG)
ALL_BRANDS = tuple(b[0] for b in V.FRAME_BRANDS) + tuple(b[0] for b in V.LENS_BRANDS) + tuple(b[0] for b in V.CONTACT_BRANDS)
_LENS_BRAND0 = len(V.FRAME_BRANDS)
_CONTACT_BRAND0 = _LENS_BRAND0 + len(V.LENS_BRANDS)


@dataclass
class Catalog:
    """Product attributes as aligned numpy arrays (generator use) plus the landing feed frame."""
    feed: pl.DataFrame
    sku: pl.Series
    category: pl.Series
    model_code: pl.Series
    ptype: np.ndarray        # product type code (OF..AC)
    brand: np.ndarray        # index into ALL_BRANDS
    shape: np.ndarray        # index into SHAPES, -1 for non-frames
    fit: np.ndarray          # index into FITS, -1 for non-frames
    gender: np.ndarray       # index into PRODUCT_GENDERS
    colour: np.ndarray       # index into COLOURS, -1 where it does not apply
    size: np.ndarray         # (n, 3) lens width, bridge, temple in mm; 0 for non-frames
    cents: np.ndarray        # price in cents
    popularity: np.ndarray   # relative demand weight (discontinued products are nearly invisible)
    active: np.ndarray       # bool: status == "active"
    variants: np.ndarray     # number of SKUs sharing this product's model code

    def __len__(self) -> int:
        return len(self.ptype)


def _type_counts(n: int) -> np.ndarray:
    counts = np.floor(np.asarray(V.PRODUCT_TYPE_SHARE) * n).astype(np.int64)
    counts[OF] += n - counts.sum()
    return counts


def _price_cents(rng: np.random.Generator, median: np.ndarray) -> np.ndarray:
    """Log-normal prices rounded to retail price points ending in .99 (e.g. 144.99)."""
    raw = median * rng.lognormal(0.0, 0.25, size=len(median))
    return np.maximum(np.round(raw / 5.0) * 5.0, 5.0).astype(np.int64) * 100 - 1


def build_catalog(rng: np.random.Generator, n_products: int) -> Catalog:
    """`n_products` SKUs split over the product types by PRODUCT_TYPE_SHARE (remainder to optical frames)."""
    counts = _type_counts(n_products)
    ptype = np.repeat(np.arange(5), counts)
    n = len(ptype)
    is_frame = ptype <= SG

    # sku numbers: unique per type, ascending within type so the feed reads naturally
    sku_num = np.concatenate([np.sort(rng.choice(1_000_000, size=c, replace=False)) for c in counts])
    prefix = np.frombuffer("".join(V.PRODUCT_TYPES[t][0] for t in ptype).encode(), dtype=np.uint8).reshape(n, 2)
    sku = fixed_width(n, prefix, digit_chars(sku_num, 6))

    brand = np.full(n, -1, dtype=np.int64)
    shape = np.full(n, -1, dtype=np.int64)
    fit = np.full(n, -1, dtype=np.int64)
    gender = np.full(n, 2, dtype=np.int64)
    colour = np.full(n, -1, dtype=np.int64)
    size = np.zeros((n, 3), dtype=np.int64)
    cents = np.zeros(n, dtype=np.int64)
    model_num = np.zeros(n, dtype=np.int64)
    model_of = np.arange(n)            # model id; frames share it across colour variants
    name_tail = np.full(n, "", dtype=object)
    category_sub = np.full(n, "", dtype=object)

    # --- frames: models (about 2.2 colour variants each), drawn per type so a model never mixes OF and SG ---
    fi = np.flatnonzero(is_frame)
    model = np.concatenate([np.sort(rng.integers(0, max(1, int(c / 2.2)), size=c)) + t * len(fi)
                            for t, c in zip(FRAME_TYPES, counts[list(FRAME_TYPES)])])
    model = np.unique(model, return_inverse=True)[1]           # dense model ids 0..m-1
    m = model.max() + 1
    brand_pop = np.asarray([b[3] for b in V.FRAME_BRANDS])
    m_type = ptype[fi][np.unique(model, return_index=True)[1]]
    # sunglasses lean towards the sun specialists
    sun_boost = np.asarray([2.0 if b[0] in ("Ray-Ban", "Oakley", "Maui Jim", "Costa Del Mar", "Persol", "Polaroid") else 1.0
                            for b in V.FRAME_BRANDS])
    w_of, w_sg = brand_pop / brand_pop.sum(), brand_pop * sun_boost / (brand_pop * sun_boost).sum()
    m_brand = np.where(m_type == SG, rng.choice(len(w_sg), size=m, p=w_sg), rng.choice(len(w_of), size=m, p=w_of))
    m_shape = rng.integers(0, len(V.SHAPES), size=m)
    m_fit = rng.choice(3, size=m, p=[0.25, 0.5, 0.25])
    m_gender = rng.choice(3, size=m, p=[0.3, 0.35, 0.35])
    m_material = rng.integers(0, len(V.MATERIALS), size=m)
    m_desc = rng.integers(0, len(V.DESCRIPTORS), size=m)
    m_num = _unique_numbers(rng, m, 1000)
    lo, hi = np.array([40, 50, 55]), np.array([49, 54, 62])
    m_lw = rng.integers(lo[m_fit], hi[m_fit] + 1) + np.where(m_type == SG, 2, 0)
    m_lw = np.clip(m_lw, 40, 62)
    m_bridge = np.clip(np.round(14 + (m_lw - 40) / 22 * 8 + rng.normal(0, 1.2, size=m)), 14, 24).astype(np.int64)
    m_temple = np.clip(np.array([135, 140, 145])[m_fit] + rng.choice([-5, 0, 0, 5], size=m), 130, 150)
    tier = np.asarray([b[2] for b in V.FRAME_BRANDS])[m_brand]
    m_cents = _price_cents(rng, np.asarray(V.TIER_PRICE_MEDIAN)[tier] * np.where(m_type == SG, 1.1, 1.0))

    first_of_model = np.r_[True, model[1:] != model[:-1]]
    variant_rank = np.arange(len(fi)) - np.maximum.accumulate(np.where(first_of_model, np.arange(len(fi)), 0))
    base_colour = rng.integers(0, len(V.COLOURS), size=m)
    brand[fi], shape[fi], fit[fi], gender[fi] = m_brand[model], m_shape[model], m_fit[model], m_gender[model]
    colour[fi] = (base_colour[model] + 4 * variant_rank) % len(V.COLOURS)   # distinct colours within a model
    size[fi] = np.stack([m_lw, m_bridge, m_temple], axis=1)[model]
    cents[fi] = m_cents[model]
    model_num[fi] = m_num[model]
    model_of[fi] = n + model                                                   # disjoint from non-frame ids
    material = np.full(n, -1, dtype=np.int64)
    material[fi] = m_material[model]
    name_tail[fi] = [f"{V.SHAPE_TITLES[s]} {V.DESCRIPTORS[d]}" for s, d in zip(m_shape[model], m_desc[model])]
    category_sub[fi] = [V.SHAPES[s] for s in shape[fi]]

    # --- spectacle lenses ---
    li = np.flatnonzero(ptype == LN)
    l_brand = rng.integers(0, len(V.LENS_BRANDS), size=len(li))
    l_kind = rng.choice(len(V.LENS_KINDS), size=len(li), p=[0.35, 0.25, 0.1, 0.2, 0.1])
    l_index = rng.choice(len(V.LENS_INDEXES), size=len(li), p=[0.3, 0.35, 0.25, 0.1])
    l_coat = rng.integers(0, len(V.LENS_COATINGS), size=len(li))
    kind_factor = np.array([1.0, 2.2, 1.4, 1.2, 1.5])
    brand[li] = _LENS_BRAND0 + l_brand
    cents[li] = _price_cents(rng, np.array([49.0, 89.0, 139.0, 199.0])[l_index] * kind_factor[l_kind])
    model_num[li] = _unique_numbers(rng, len(li), 100)
    name_tail[li] = [f"{V.LENS_KINDS[k].replace('_', ' ').title()} {V.LENS_INDEXES[x]} {V.LENS_COATINGS[c]}"
                     for k, x, c in zip(l_kind, l_index, l_coat)]
    category_sub[li] = [V.LENS_KINDS[k] for k in l_kind]

    # --- contact lenses ---
    ci = np.flatnonzero(ptype == CL)
    c_brand = rng.integers(0, len(V.CONTACT_BRANDS), size=len(ci))
    c_kind = rng.choice(len(V.CONTACT_KINDS), size=len(ci), p=[0.45, 0.3, 0.15, 0.1])
    c_line = rng.integers(0, len(V.CONTACT_LINES), size=len(ci))
    c_pack = np.where(c_kind == 0, rng.choice([30, 90], size=len(ci)), rng.choice([3, 6], size=len(ci)))
    brand[ci] = _CONTACT_BRAND0 + c_brand
    cents[ci] = _price_cents(rng, np.where(c_kind == 0, 0.9, 4.5) * c_pack * np.where(c_kind >= 2, 1.4, 1.0))
    model_num[ci] = _unique_numbers(rng, len(ci), 100)
    name_tail[ci] = [f"{V.CONTACT_LINES[l]} {V.CONTACT_KINDS[k].title()} {p} pack" for l, k, p in zip(c_line, c_kind, c_pack)]
    category_sub[ci] = [V.CONTACT_KINDS[k] for k in c_kind]

    # --- accessories ---
    ai = np.flatnonzero(ptype == AC)
    a_kind = rng.integers(0, len(V.ACCESSORY_KINDS), size=len(ai))
    brand[ai] = np.where(rng.random(len(ai)) < 0.75, len(V.FRAME_BRANDS) - 1, rng.integers(0, len(V.FRAME_BRANDS), size=len(ai)))
    cents[ai] = _price_cents(rng, rng.uniform(6.0, 40.0, size=len(ai)))
    model_num[ai] = _unique_numbers(rng, len(ai), 100)
    colour[ai] = np.where(rng.random(len(ai)) < 0.5, rng.integers(0, len(V.COLOURS), size=len(ai)), -1)
    name_tail[ai] = [V.ACCESSORY_KINDS[k][1] for k in a_kind]
    category_sub[ai] = [V.ACCESSORY_KINDS[k][0] for k in a_kind]

    # model codes: frames "<brand prefix><4 digits>" (RB3025), others "<brand prefix>-<3 digits>"
    brand_prefix = tuple(b[1] for b in V.FRAME_BRANDS) + tuple(b[1] for b in V.LENS_BRANDS) + tuple(b[1] for b in V.CONTACT_BRANDS)
    model_code = pl.Series([f"{brand_prefix[b]}{num}" if f else f"{brand_prefix[b]}-{num}"
                            for b, num, f in zip(brand, model_num, is_frame)], dtype=pl.String)

    active = rng.random(n) >= 0.03
    brand_weight = np.r_[brand_pop, np.ones(len(ALL_BRANDS) - len(brand_pop))]
    popularity = rng.lognormal(0.0, 1.0, size=n) * brand_weight[brand]
    popularity = np.where(active, popularity, popularity * 0.02)
    variants = np.unique(model_of, return_inverse=True, return_counts=True)
    variants = variants[2][variants[1]]

    category = pl.Series([f"{V.PRODUCT_TYPES[t][2]}/{sub}" for t, sub in zip(ptype, category_sub)], dtype=pl.String)
    feed = _feed_frame(rng, ptype, brand, model_code, name_tail, category, material, shape, colour, fit, gender,
                       size, cents, active, sku, c_kind_full=_scatter(n, ci, c_kind), l_kind_full=_scatter(n, li, l_kind),
                       l_index_full=_scatter(n, li, l_index), c_pack_full=_scatter(n, ci, c_pack),
                       coat_full=_scatter(n, li, l_coat))
    return Catalog(feed=feed, sku=sku, category=category, model_code=model_code, ptype=ptype, brand=brand,
                   shape=shape, fit=fit, gender=gender, colour=colour, size=size, cents=cents,
                   popularity=popularity, active=active, variants=variants)


def _unique_numbers(rng: np.random.Generator, count: int, low: int) -> np.ndarray:
    """`count` distinct model numbers with as many digits as `low` has (more only if they run out)."""
    return low + rng.choice(max(9 * low, count), size=count, replace=False)


def _scatter(n: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    out[idx] = values
    return out


def _feed_frame(rng, ptype, brand, model_code, name_tail, category, material, shape, colour, fit, gender, size,
                cents, active, sku, *, c_kind_full, l_kind_full, l_index_full, c_pack_full, coat_full) -> pl.DataFrame:
    """The landing catalog feed: one row per SKU with the full attribute set."""
    n = len(ptype)
    is_frame = ptype <= SG
    brand_name = pick(ALL_BRANDS, brand)
    name = pl.Series([f"{b} {mc} {t}" for b, mc, t in zip(brand_name, model_code, name_tail)], dtype=pl.String)

    desc = []
    for i in range(n):  # 2,400 rows: a readable per-row format beats a vectorised one here
        t = ptype[i]
        if t in FRAME_TYPES:
            kind = "frame" if t == OF else "sunglasses"
            desc.append(f"{V.SHAPE_TITLES[shape[i]]} {V.MATERIALS[material[i]]} {kind} in {V.COLOURS[colour[i]]}. "
                        f"Size {size[i, 0]}-{size[i, 1]}-{size[i, 2]}, {V.FITS[fit[i]]} fit.")
        elif t == LN:
            desc.append(f"{V.LENS_KINDS[l_kind_full[i]].replace('_', ' ').capitalize()} spectacle lenses, "
                        f"index {V.LENS_INDEXES[l_index_full[i]]}, {V.LENS_COATINGS[coat_full[i]]} coating.")
        elif t == CL:
            desc.append(f"{V.CONTACT_KINDS[c_kind_full[i]].capitalize()} contact lenses, pack of {c_pack_full[i]}.")
        else:
            desc.append(f"{name_tail[i]} by {brand_name[i]}.")

    # Supported prescription range (dioptres). Accessories support none.
    sph_min = np.select([is_frame, ptype == LN, ptype == CL],
                        [rng.choice([-6.0, -8.0, -10.0, -12.0], size=n),
                         np.array([-4.0, -6.0, -10.0, -14.0])[np.maximum(l_index_full, 0)], np.full(n, -12.0)], np.nan)
    sph_max = np.select([is_frame, ptype == LN, ptype == CL],
                        [rng.choice([4.0, 6.0, 8.0], size=n), np.array([4.0, 6.0, 8.0, 8.0])[np.maximum(l_index_full, 0)],
                         np.full(n, 8.0)], np.nan)
    cyl_max = np.select([is_frame, ptype == LN, ptype == CL],
                        [rng.choice([2.0, 3.0, 4.0], size=n), np.array([2.0, 3.0, 4.0, 4.0])[np.maximum(l_index_full, 0)],
                         np.where(c_kind_full == 2, 2.75, 0.0)], np.nan)
    progressive = np.select([ptype == OF, ptype == SG, ptype == LN, ptype == CL],
                            [(size[:, 0] >= 47) & (rng.random(n) < 0.8), rng.random(n) < 0.3,
                             l_kind_full == 1, c_kind_full == 3], False)

    # lens types each product supports (a list; null for accessories)
    options = V.LENS_KINDS + ("tinted", "polarized", "prescription_sun", "soft")
    supports = np.stack([
        ptype == OF, (ptype == OF) & progressive, (ptype == OF) & (rng.random(n) < 0.3), ptype == OF,
        (ptype == OF) & (rng.random(n) < 0.5), ptype == SG, (ptype == SG) & (rng.random(n) < 0.6),
        (ptype == SG) & progressive, ptype == CL], axis=1)
    supports[ptype == LN, :len(V.LENS_KINDS)] = False
    supports[np.flatnonzero(ptype == LN), l_kind_full[ptype == LN]] = True
    lens_types = pl.Series([None if t == AC else [options[j] for j in np.flatnonzero(row)]
                            for t, row in zip(ptype, supports)], dtype=pl.List(pl.String))

    def frame_only(col: np.ndarray) -> pl.Series:
        return pl.Series(col, dtype=pl.Int64).scatter(np.flatnonzero(~is_frame), None)

    return pl.DataFrame({
        "sku": sku,
        "product_type": pick([t[1] for t in V.PRODUCT_TYPES], ptype),
        "name": name,
        "description": pl.Series(desc, dtype=pl.String),
        "category": category,
        "brand": brand_name,
        "model_code": model_code,
        "frame_material": pick(V.MATERIALS, np.where(is_frame, material, -1)),
        "frame_shape": pick(V.SHAPES, shape),
        "colour": pick(V.COLOURS, colour),
        "lens_width_mm": frame_only(size[:, 0]),
        "bridge_mm": frame_only(size[:, 1]),
        "temple_mm": frame_only(size[:, 2]),
        "lens_types": lens_types,
        "rx_sph_min": pl.Series(sph_min).fill_nan(None),
        "rx_sph_max": pl.Series(sph_max).fill_nan(None),
        "rx_cyl_max": pl.Series(cyl_max).fill_nan(None),
        "progressive_compatible": pl.Series(progressive).scatter(np.flatnonzero(ptype == AC), None),
        "gender": pick(V.PRODUCT_GENDERS, gender),
        "face_width_fit": pick(V.FITS, fit),
        "price": cents / 100.0,
        "status": pl.Series(np.where(active, "active", "discontinued"), dtype=pl.String),
    })
