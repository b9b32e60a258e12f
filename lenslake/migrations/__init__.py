"""Versioned Delta table migrations: ``lenslake migrate status | up``.

The catalogue (``lenslake/tables.py``) says what every table looks like now, and DeltaStore creates a missing table
in that shape. A migration brings a table created *before* a change to the same shape: ordered scripts in
``versions/`` (``m0001_<slug>.py``, ...), each applied once, recorded in ``meta.schema_migrations`` with the checksum
of its source, using the idempotent operations of ``ops.MigrationContext`` (add a column, add a CHECK constraint,
rename by a new column and a backfill, repartition by a rewrite).

Writing one: change the catalogue, then add the next ``m<id>_<slug>.py`` with ``ID``, a one-line ``DESCRIPTION``
and ``up(ctx)``. Never edit an applied script: ``status`` reports it as changed and ``up`` refuses to run.
"""

from lenslake.migrations.ops import MigrationContext, MigrationError
from lenslake.migrations.runner import MIGRATIONS_TABLE, VERSIONS_DIR, Applied, MigrationState, Migrator, Script, load_scripts

__all__ = ["MIGRATIONS_TABLE", "VERSIONS_DIR", "Applied", "MigrationContext", "MigrationError", "MigrationState",
           "Migrator", "Script", "load_scripts"]
