"""Search queries typed by shoppers, including the free-text PII some of them leak.

Queries are about the product the shopper is considering: brand + shape
("ray-ban aviator"), model codes ("RB3025"), frame sizes ("52-18-140"),
prescriptions ("-2.25 SPH progressive"), colours, or generic needs. About 2% carry a
person's name, e-mail or phone number drawn from a pool that no customer record uses.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab as V
from .catalog import ALL_BRANDS, Catalog, SG
from .columns import pick, quarter_steps
from .people import fill_template

FREE_TEXT_PII_SHARE = 0.02
# dioptre strings on the 0.25 grid from -20.00 to +20.00: index = round(sph * 4) + 80
_SPH_STRINGS = tuple(f"{v / 4:+.2f}" for v in range(-80, 81))
_FREE_TEXT_PHONES = ("+44 78## ######", "+49 17# #######", "+1 (6##) ###-####")
_QUERY_TYPE_WORD = ("glasses", "sunglasses", "lenses", "contact lenses", "")
# frame templates: 0 brand+shape, 1 model code, 2 frame size, 3 prescription, 4 colour+shape, 5 generic
_FRAME_TEMPLATE_P = [0.25, 0.2, 0.12, 0.13, 0.15, 0.15]
# other products: 6 brand+type, 3 prescription, 5 generic, 1 model code
_OTHER_TEMPLATES, _OTHER_TEMPLATE_P = [6, 3, 5, 1], [0.4, 0.25, 0.25, 0.1]
_RESULTS_MEAN = np.array([25.0, 2.0, 8.0, 40.0, 15.0, 60.0, 20.0])


def free_text_pool(rng: np.random.Generator, size: int = 120) -> tuple[list[str], list[str]]:
    """(values, kinds): person names, e-mails and phones that appear in no customer record."""
    first = rng.integers(0, len(V.FREE_TEXT_FIRST), size=size)
    last = rng.integers(0, len(V.FREE_TEXT_LAST), size=size)
    names = [f"{V.FREE_TEXT_FIRST[f]} {V.FREE_TEXT_LAST[l]}" for f, l in zip(first, last)]
    domains = rng.integers(0, len(V.FREE_TEXT_DOMAINS), size=size)
    emails = [f"{V.FREE_TEXT_FIRST[f].lower()}.{V.FREE_TEXT_LAST[l].lower()}{n}@{V.FREE_TEXT_DOMAINS[d]}"
              for f, l, n, d in zip(first, last, rng.integers(1, 100, size=size), domains)]
    phones = fill_template(rng, list(_FREE_TEXT_PHONES), rng.integers(0, len(_FREE_TEXT_PHONES), size=size)).to_list()
    kind = ["name"] * size + ["email"] * size + ["phone"] * size
    return names + emails + phones, kind


def search_queries(rng: np.random.Generator, catalog: Catalog, prod: np.ndarray, sph: np.ndarray
                   ) -> tuple[pl.Series, np.ndarray, np.ndarray, list[dict]]:
    """One query per search event about product `prod`, by a shopper with right-eye sphere `sph`
    (NaN when unknown). Returns queries, results counts, which queries carry free-text PII,
    and the PII values planted."""
    n = len(prod)
    is_frame = catalog.ptype[prod] <= SG
    template = np.where(is_frame, rng.choice(6, size=n, p=_FRAME_TEMPLATE_P),
                        np.asarray(_OTHER_TEMPLATES)[rng.choice(4, size=n, p=_OTHER_TEMPLATE_P)])
    sph = np.where(np.isnan(sph), quarter_steps(rng.normal(-1.5, 2.0, size=n)), sph)
    size = catalog.size[prod]
    parts = pl.DataFrame({
        "t": template,
        "brand": pick(ALL_BRANDS, catalog.brand[prod]).str.to_lowercase(),
        "shape": pick(V.SHAPES, catalog.shape[prod]),
        "model": catalog.model_code.gather(prod),
        "size": pl.Series(size[:, 0]).cast(pl.String) + "-" + pl.Series(size[:, 1]).cast(pl.String)
                + "-" + pl.Series(size[:, 2]).cast(pl.String),
        "colour": pick(V.COLOURS, catalog.colour[prod]),
        "type_word": pick(_QUERY_TYPE_WORD, catalog.ptype[prod]),
        "sph": pick(_SPH_STRINGS, np.clip(np.round(sph * 4), -80, 80).astype(np.int64) + 80),
        "rx_word": pick(("SPH progressive", "sph", "SPH single vision", "reading glasses"), rng.integers(0, 4, size=n)),
        "generic": pick(V.GENERIC_QUERIES, rng.integers(0, len(V.GENERIC_QUERIES), size=n)),
        "lower": rng.random(n) < 0.5,
    })
    t = pl.col("t")
    query = parts.select(
        pl.when(t == 0).then(pl.concat_str("brand", "shape", "type_word", separator=" ").str.strip_chars())
        .when(t == 1).then(pl.when("lower").then(pl.col("model").str.to_lowercase()).otherwise("model"))
        .when(t == 2).then(pl.concat_str("size", "shape", separator=" "))
        .when(t == 3).then(pl.concat_str("sph", "rx_word", separator=" "))
        .when(t == 4).then(pl.concat_str("colour", "shape", "type_word", separator=" ").str.strip_chars())
        .when(t == 5).then("generic")
        .otherwise(pl.concat_str("brand", "type_word", separator=" ").str.strip_chars())
    ).to_series()
    results = rng.poisson(_RESULTS_MEAN[template])
    results = np.where(template == 1, catalog.variants[prod], results)   # a model code finds its colour variants

    # free-text PII: a pool value inside a short phrase; such searches find nothing
    pii_rows = np.flatnonzero(rng.random(n) < FREE_TEXT_PII_SHARE)
    values, kinds = free_text_pool(rng)
    chosen = rng.integers(0, len(values), size=len(pii_rows))
    frame = rng.integers(0, len(V.FREE_TEXT_QUERY_TEMPLATES), size=len(pii_rows))
    pii_queries = [V.FREE_TEXT_QUERY_TEMPLATES[f][0] + values[c] + V.FREE_TEXT_QUERY_TEMPLATES[f][1]
                   for f, c in zip(frame, chosen)]
    query = query.scatter(pii_rows, pl.Series(pii_queries, dtype=pl.String))
    results[pii_rows] = 0
    planted = sorted({(kinds[c], values[c]) for c in chosen})
    has_pii = np.zeros(n, dtype=bool)
    has_pii[pii_rows] = True
    return query, results, has_pii, [{"value": v, "kind": k} for k, v in planted]
