"""Event contracts: the JSON Schema files under ``schemas/`` and what is derived from them."""
