"""`lenslake contract …`: the data contracts of the tables services and analysts read."""

from __future__ import annotations

import typer

app = typer.Typer(help="Data contracts of the published tables (lenslake/contracts/tables/).", no_args_is_help=True)


@app.command("list")
def list_contracts():
    """Every contract: table, version, owner, freshness SLA and whether lock.json records it as it is."""
    from lenslake.contracts.table_contracts import lock_problems, read_lock, table_contracts

    state = read_lock()
    for c in table_contracts().values():
        problems = lock_problems(c, state)
        typer.echo(f"{c.table:<22} v{c.version:<8} owner={c.owner:<10} columns={len(c.columns):<3} "
                   f"fresh within {c.freshness.max_age_hours:g} h  {'locked' if not problems else problems[0]}")


@app.command()
def show(table: str = typer.Argument(..., help="e.g. gold.daily_kpis")):
    """A contract's columns with their meaning, and its expectations."""
    from lenslake.contracts.table_contracts import table_contract

    c = table_contract(table)
    typer.echo(f"{c.table} v{c.version} (owner {c.owner}; consumers {', '.join(c.consumers) or '-'})")
    typer.echo(" ".join(c.description.split()))
    typer.echo(f"partitioned by {', '.join(c.partition_by) or '-'}; key {', '.join(c.key) or '-'}; "
               f"fresh: newest {c.freshness.column} ends at most {c.freshness.max_age_hours:g} h ago")
    for col in c.columns:
        typer.echo(f"  {col.name:<24} {col.type:<10} {'null' if col.nullable else 'not null':<9} {col.description}")
    for e in c.expectations:
        typer.echo(f"  expect {e['expect']}: " + ", ".join(f"{k}={v}" for k, v in e.items() if k != "expect"))


@app.command()
def lock():
    """Record the contracts' schemas in lock.json; refuses a breaking change that keeps its major version."""
    from lenslake.contracts.table_contracts import lock as lock_contracts

    changed = lock_contracts()
    typer.echo("recorded: " + ", ".join(changed) if changed else "lock.json already records every contract")
