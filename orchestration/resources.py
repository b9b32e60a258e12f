"""Resources: one lakehouse resource hands out the settings, the engine (created lazily) and the Delta store."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from lenslake.delta import DeltaStore
from lenslake.settings import Settings, get_settings


class Lakehouse(dg.ConfigurableResource):
    """Settings come from the environment (LENSLAKE_*); these fields override them for a run or a test."""

    data_root: str | None = None
    engine_name: str | None = None
    as_of: str | None = None  # ISO date-time: "now" for freshness checks (tests pin it)

    _engine = PrivateAttr(default=None)

    def settings(self) -> Settings:
        overrides = {}
        if self.data_root:
            overrides["data_root"] = self.data_root
        if self.engine_name:
            overrides["engine"] = self.engine_name
        if self.as_of:
            overrides["as_of"] = self.as_of
        return get_settings(**overrides)

    def engine(self):
        # Started on first use only: a step that never asks never starts DuckDB or a JVM.
        if self._engine is None:
            from lenslake.engine import get_engine

            self._engine = get_engine(self.settings())
        return self._engine

    def store(self) -> DeltaStore:
        return DeltaStore(self.settings().tables_dir)
