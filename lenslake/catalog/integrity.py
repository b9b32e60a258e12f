"""Referential integrity of the product database: every stock, price, attribute and media row has a product; every
relation joins two products; every taxonomy edge (a node's parent, a product's category) points at a real node.

Feed rows that would break it are quarantined at the door (``referential_integrity``); these checks verify the
tables themselves (a write that bypassed the feeds, an import, a deleted product), and gate the catalog assets as
blocking asset checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore


@dataclass
class IntegrityResult:
    name: str  # the check's name
    table: str  # the table it guards
    description: str
    checked: int = 0
    orphans: int = 0
    samples: list[str] = field(default_factory=list)  # up to five offending keys (SKUs and node ids: no personal data)

    @property
    def passed(self) -> bool:
        return self.orphans == 0


CHECKS = {
    "inventory_rows_have_a_product": ("catalog.inventory", "every stock row's SKU is a product"),
    "price_rows_have_a_product": ("catalog.prices", "every price version's SKU is a product"),
    "attribute_rows_have_a_product": ("catalog.eyewear_attributes", "every attribute row's SKU is a product"),
    "media_rows_have_a_product": ("catalog.media", "every media asset's SKU is a product"),
    "relations_join_two_products": ("catalog.product_relations", "both ends of every relation are products"),
    "taxonomy_edges_point_at_nodes": ("catalog.taxonomy_nodes",
                                      "every node's parent and every product's category is a taxonomy node"),
}


def _missing(values: pa.ChunkedArray, known: pa.Array) -> pa.ChunkedArray:
    values = values.cast(pa.string())  # delta-rs may hand back string_view
    present = pc.is_in(values, value_set=known)
    return values.filter(pc.and_(pc.invert(present), pc.is_valid(values)))


def _result(name: str, checked: int, missing: list) -> IntegrityResult:
    table, description = CHECKS[name]
    return IntegrityResult(name, table, description, checked, len(missing), sorted(set(map(str, missing)))[:5])


def check(store: DeltaStore, name: str) -> IntegrityResult:
    table, _ = CHECKS[name]
    skus = pa.array(store.read("catalog.products", columns=["sku"]).column("sku").to_pylist(), pa.string())
    if name == "taxonomy_edges_point_at_nodes":
        nodes = store.read("catalog.taxonomy_nodes", columns=["node_id", "parent_id"])
        ids = pa.array(nodes.column("node_id").to_pylist(), pa.string())
        categories = store.read("catalog.products", columns=["category"]).column("category")
        missing = _missing(nodes.column("parent_id"), ids).to_pylist() + _missing(categories, ids).to_pylist()
        return _result(name, nodes.num_rows + len(categories), missing)
    if name == "relations_join_two_products":
        rel = store.read(table, columns=["sku", "related_sku"])
        missing = _missing(rel.column("sku"), skus).to_pylist() + _missing(rel.column("related_sku"), skus).to_pylist()
        return _result(name, rel.num_rows, missing)
    rows = store.read(table, columns=["sku"]).column("sku")
    return _result(name, len(rows), _missing(rows, skus).to_pylist())


def referential_checks(store: DeltaStore) -> list[IntegrityResult]:
    return [check(store, name) for name in CHECKS]
