"""lenslake: the eyewear retailer's lakehouse library (no Dagster imports here)."""
