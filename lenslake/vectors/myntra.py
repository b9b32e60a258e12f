"""A small reader of the real Myntra catalogue's eyewear (``shared/data/myntra_catalog``) into the product-feed shape,
so that embeddings and search are measured on real product text as well as generated.

The catalogue has 44,446 fashion products; its eyewear is the 1,073 rows of subCategory ``Eyewear`` (articleType
``Sunglasses``; the ``Eyes`` subCategory is make-up). It holds a display name, gender, colour, season, year and
usage, and no description, shape, material or size: those stay null, as the design asks. The brand is the part of
the display name before its gender word ("United Colors of Benetton Men Sunglasses" -> "United Colors of Benetton").
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "myntra_catalog"
_GENDER_WORDS = ("Men", "Women", "Unisex", "Boys", "Girls", "Kids")
COLUMNS = ("sku", "product_type", "name", "description", "category", "brand", "model_code", "frame_material",
           "frame_shape", "colour", "gender", "face_width_fit", "status", "source")


def _brand(name: str) -> str | None:
    words = name.split()
    for i, word in enumerate(words):
        if word in _GENDER_WORDS:
            return " ".join(words[:i]) or None
    return words[0] if words else None


def read_myntra_eyewear(directory: Path | str | None = None) -> pl.DataFrame:
    """The eyewear rows as products: sku ``MYN-<id>``, name, category ``sunglasses``, brand, colour, gender,
    status ``active``; attributes the catalogue lacks are null."""
    directory = Path(directory) if directory else DEFAULT_DIR
    styles = pl.read_csv(directory / "styles.csv", infer_schema_length=0)
    names = pl.read_csv(directory / "styles_text.csv", infer_schema_length=0)
    if styles.height != names.height:
        raise ValueError(f"styles.csv ({styles.height} rows) and styles_text.csv ({names.height}) are not row-aligned")
    both = pl.concat([styles, names], how="horizontal").filter(pl.col("subCategory") == "Eyewear")
    name = both["productDisplayName"].str.strip_chars()
    null = pl.lit(None, dtype=pl.String)
    return both.select(
        ("MYN-" + pl.col("id")).alias("sku"),
        pl.lit("sunglasses").alias("product_type"),
        name.alias("name"),
        null.alias("description"),
        pl.col("articleType").str.to_lowercase().alias("category"),
        pl.Series("brand", [_brand(n) for n in name.to_list()], dtype=pl.String),
        null.alias("model_code"),
        null.alias("frame_material"),
        null.alias("frame_shape"),
        pl.col("baseColour").str.to_lowercase().alias("colour"),
        pl.col("gender").str.to_lowercase().alias("gender"),
        null.alias("face_width_fit"),
        pl.lit("active").alias("status"),
        pl.lit("myntra").alias("source"),
    ).unique("sku", keep="first", maintain_order=True)
