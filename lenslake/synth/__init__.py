"""Deterministic synthetic eyewear world: catalog, customers, behaviour events with planted dirt."""

from .world import generate_world

__all__ = ["generate_world"]
