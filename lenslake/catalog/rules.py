"""Domain rules of the product database that more than one module applies (the feed generator included)."""

from __future__ import annotations

LOW_STOCK = 2  # at most this many sellable units: "only a few left"
AVAILABILITY = ("in_stock", "low_stock", "backorder", "out_of_stock")


def availability(on_hand: int, reserved: int, restock_date) -> str:
    """What the shop shows for a stock position: sellable units (on hand less reserved) above ``LOW_STOCK`` are
    in stock, one to ``LOW_STOCK`` low stock; none is a backorder when a restock date is known, else out of stock."""
    available = max(on_hand - reserved, 0)
    if available > LOW_STOCK:
        return "in_stock"
    if available > 0:
        return "low_stock"
    return "backorder" if restock_date else "out_of_stock"
