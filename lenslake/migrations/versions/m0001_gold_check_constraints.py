"""Gold tables created before the catalogue declared their CHECK constraints get them (DeltaStore adds them to
tables it creates). The expressions are read from the catalogue, so there is one source for them."""

from lenslake.tables import table_spec

ID = "0001"
DESCRIPTION = "CHECK constraints on the gold tables, as the catalogue declares them"

TABLES = ("gold.daily_kpis", "gold.daily_funnel")


def up(ctx):
    for table in TABLES:
        if not ctx.store.exists(table):
            ctx.note(f"{table} does not exist yet: it will be created with its constraints")
            continue
        constraints = table_spec(table).constraints
        if not constraints:
            raise ValueError(f"{table} declares no constraints in the catalogue: nothing to bring the table to")
        for name, expression in constraints:
            ctx.add_constraint(table, name, expression)
