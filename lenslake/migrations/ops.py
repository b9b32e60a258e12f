"""The operations a migration's ``up(ctx)`` may use, as methods of the context it is given.

Tables are addressed by catalogue name (``"gold.daily_kpis"``) and found where DeltaStore keeps them. Every
operation is idempotent: when the table is already in the wanted shape it commits nothing and says so, and on a
table that does not exist yet it does nothing and says so (DeltaStore will create it in its declared shape). Each
commit carries ``lenslake.migration=<id>`` in its commitInfo, so a table's history shows which migration made it.

What an operation writes into ``_delta_log`` (constraint expressions, UPDATE predicates) is built from column
names and the script's own SQL only: never put user data, PII or tokens in an expression.
"""

from __future__ import annotations

import re
import tempfile

import pyarrow as pa

from lenslake.delta import DeltaStore, refused_rows
from lenslake.tables import ARROW_TYPES, table_spec

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationError(Exception):
    """A migration cannot go on; the message is one line meant for a person."""


def _identifier(kind: str, name: str) -> str:
    if not IDENTIFIER.match(name):
        raise MigrationError(f"{kind} {name!r} is not a plain identifier (letters, digits, underscores)")
    return name


class MigrationContext:
    """What ``up(ctx)`` is given: the store, the migration's id, and the operations. Notes say what each did."""

    def __init__(self, store: DeltaStore, migration_id: str):
        self.store = store
        self.migration_id = migration_id
        self.notes: list[str] = []
        self.changed = False  # some operation committed to a table

    def note(self, text: str) -> str:
        self.notes.append(text)
        return text

    def _commit_properties(self):
        from deltalake import CommitProperties

        return CommitProperties(custom_metadata={"lenslake.migration": self.migration_id})

    def _committed(self, text: str) -> str:
        self.changed = True
        return self.note(text)

    def _open(self, table: str):
        """The Delta table, or None when it does not exist yet."""
        from deltalake import DeltaTable

        return DeltaTable(str(self.store.path(table))) if self.store.exists(table) else None

    def _absent(self, table: str) -> str:
        return self.note(f"{table} does not exist yet: nothing to do (it will be created in its declared shape)")

    @staticmethod
    def _fields(delta) -> dict[str, pa.Field]:
        schema = pa.schema(delta.schema().to_arrow())
        return {f.name: f for f in schema}

    def add_column(self, table: str, name: str, type: str, doc: str) -> str:
        """Add a nullable column (existing rows read null). The catalogue must declare it with this type, nullable:
        DeltaStore casts every write to the declared schema and delta-rs refuses a write that lacks a column."""
        _identifier("column", name)
        declared = {c.name: c for c in table_spec(table).columns}.get(name)
        if declared is None:
            raise MigrationError(f"{table}: declare column {name!r} in the catalogue (lenslake/tables.py) before adding it")
        if declared.type != type:
            raise MigrationError(f"{table}.{name}: the catalogue declares {declared.type}, the migration adds {type}")
        delta = self._open(table)
        if delta is None:
            return self._absent(table)
        field = pa.field(name, ARROW_TYPES[type], nullable=True, metadata={"comment": doc})
        existing = self._fields(delta).get(name)
        if existing is not None:
            if existing.type != field.type:
                raise MigrationError(f"{table}.{name} exists as {existing.type}, not {field.type}")
            return self.note(f"{table}.{name} already exists: nothing to do")
        if not declared.nullable:
            raise MigrationError(f"{table}.{name}: a column added to an existing table is null in its old rows; "
                                 "declare it nullable")
        from deltalake.schema import Field

        delta.alter.add_columns(Field.from_arrow(field), commit_properties=self._commit_properties())
        return self._committed(f"{table}.{name} added ({type}, null in the {self.store.count(table)} existing rows)")

    def add_constraint(self, table: str, name: str, sql_expr: str) -> str:
        """Add a CHECK constraint. delta-rs checks every existing row first (none may break it) and then refuses any
        write that breaks it. An existing constraint of that name with the same meaning is left alone."""
        from deltalake import DeltaTable

        _identifier("constraint", name)
        delta = self._open(table)
        if delta is None:
            return self._absent(table)
        key = f"delta.constraints.{name}"
        existing = delta.metadata().configuration.get(key)
        if existing is not None:
            # delta-rs stores an expression simplified (BETWEEN becomes >= AND <=, 0.0 becomes 0): to compare, the
            # wanted one goes through the same simplification on an empty scratch table.
            if existing != sql_expr:
                with tempfile.TemporaryDirectory() as scratch:
                    probe = DeltaTable.create(scratch, delta.schema())
                    probe.alter.add_constraint({name: sql_expr})
                    wanted = probe.metadata().configuration[key]
                if existing != wanted:
                    raise MigrationError(f"{table} already has a constraint {name!r} meaning {existing!r}, not "
                                         f"{sql_expr!r}: drop it in a migration of its own first")
            return self.note(f"{table} already has constraint {name} ({existing}): nothing to do")
        try:
            delta.alter.add_constraint({name: sql_expr}, commit_properties=self._commit_properties())
        except Exception as e:
            if (refused := refused_rows(e)) is None:
                raise
            raise MigrationError(f"{table}: existing rows break {name} ({sql_expr}), {refused} in the first batch delta-rs "
                                 "checked; the constraint is not added (fix the rows first)") from None
        return self._committed(f"{table} constraint {name} added ({sql_expr})")

    def rename_column(self, table: str, old: str, new: str) -> str:
        """'Rename' the Delta-safe way: add ``new`` and backfill it from ``old`` with an UPDATE. The old column is KEPT
        (and stays declared in the catalogue, deprecated, null in rows written afterwards): column mapping, Delta's
        real rename, is a reader-protocol upgrade our readers do not support. Re-running backfills only the rows
        where ``new`` is null and ``old`` is not, so a second run commits nothing."""
        _identifier("column", old)
        declared = {c.name: c for c in table_spec(table).columns}
        if old not in declared:
            raise MigrationError(f"{table}: keep {old!r} declared in the catalogue (the table keeps the column)")
        if new not in declared:
            raise MigrationError(f"{table}: declare column {new!r} in the catalogue before renaming {old!r} to it")
        delta = self._open(table)
        if delta is None:
            return self._absent(table)
        if old not in self._fields(delta):
            raise MigrationError(f"{table} has no column {old!r} to rename")
        self.add_column(table, new, declared[old].type, declared[new].doc)
        metrics = self._open(table).update(updates={new: old}, predicate=f"{new} IS NULL AND {old} IS NOT NULL",
                                           commit_properties=self._commit_properties())
        rows = metrics["num_updated_rows"]
        if not rows:  # delta-rs commits nothing when no row matches
            return self.note(f"{table}.{new} already holds {old} in every row: nothing to backfill")
        return self._committed(f"{table}.{new} backfilled from {old} in {rows} rows ({old} is kept)")

    def repartition(self, table: str, partition_by: tuple[str, ...] | list[str]) -> str:
        """Change the partitioning by rewriting the current snapshot in one commit (overwrite, schema_mode
        overwrite): schema, properties and constraints are kept, the old files leave the snapshot (VACUUM deletes
        them later; time travel still reads them until then). The snapshot is streamed, not held in memory."""
        from deltalake import write_deltalake

        partition_by = tuple(_identifier("partition column", c) for c in partition_by)
        delta = self._open(table)
        if delta is None:
            return self._absent(table)
        current = tuple(delta.metadata().partition_columns)
        if current == partition_by:
            return self.note(f"{table} is already partitioned by ({', '.join(current)}): nothing to do")
        fields = self._fields(delta)
        unknown = [c for c in partition_by if c not in fields]
        if unknown:
            raise MigrationError(f"{table} has no column {', '.join(unknown)} to partition by")
        before = self.store.count(table)
        reader = delta.to_pyarrow_dataset().scanner(columns=list(fields)).to_reader()
        # partition_by=None would keep the old partitioning: an unpartitioned table is asked for with [].
        write_deltalake(str(self.store.path(table)), reader, mode="overwrite", partition_by=list(partition_by),
                        schema_mode="overwrite", commit_properties=self._commit_properties())
        after = self.store.count(table)
        if after != before:
            raise MigrationError(f"{table}: the rewrite holds {after} rows, the snapshot held {before}; restore "
                                 f"version {delta.version()} (DeltaTable.restore)")
        return self._committed(f"{table} repartitioned from ({', '.join(current)}) to ({', '.join(partition_by)}), "
                               f"{after} rows rewritten in one commit")
