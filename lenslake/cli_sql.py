"""`lenslake sql --role ROLE "SELECT …"`: DuckDB over the tables the role may read, under the access policy."""

from __future__ import annotations

import typer


def sql(
    query: str = typer.Argument(..., help="one SELECT query; tables as <layer>.<table> (gold.daily_kpis)"),
    role: str = typer.Option(..., "--role", "-r", help="analyst | data_engineer | privacy_officer | service"),
    limit: int = typer.Option(50, help="rows printed"),
):
    """Query the lake as a role: denied tables refused, denied columns absent, masked columns '***', PII-bearing
    reads logged (privacy access log)."""
    from lenslake.privacy.access import AccessDenied
    from lenslake.privacy.access import sql as run_sql
    from lenslake.settings import get_settings

    try:
        result = run_sql(get_settings(), role, query)
    except AccessDenied as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    frame = result.slice(0, limit).to_pandas()
    typer.echo(frame.to_string(index=False) if len(frame) else "(no rows)")
    typer.echo(f"({result.num_rows:,} rows)")
