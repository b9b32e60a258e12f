"""`lenslake migrate …`: versioned migrations of the Delta tables (lenslake/migrations/versions/)."""

from __future__ import annotations

import typer

from lenslake.settings import get_settings

app = typer.Typer(help="Versioned Delta table migrations (lenslake/migrations/versions/).", no_args_is_help=True)


def _migrator():
    from lenslake.delta import DeltaStore
    from lenslake.migrations import Migrator

    return Migrator(DeltaStore(get_settings().tables_dir))


@app.command()
def status():
    """Every migration: id, state (applied / pending / changed since applied / missing script), when, description."""
    states = _migrator().status()
    for s in states:
        when = s.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC") if s.applied_at else "-"
        typer.echo(f"{s.id}  {s.state:<8} {when:<24} {s.description}")
    counts = {k: sum(s.state == k for s in states) for k in ("applied", "pending", "changed", "missing")}
    typer.echo(", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("applied", "pending")))


@app.command()
def up():
    """Apply the pending migrations in id order, each recorded in meta.schema_migrations once it succeeds."""
    from lenslake.migrations import MigrationError

    def report(a):
        typer.echo(f"{a.id}  {a.outcome:<8} {a.duration_ms:>6} ms  {a.description}")
        for note in a.notes:
            typer.echo(f"      {note}")

    try:
        done = _migrator().up(on_applied=report)
    except MigrationError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    if not done:
        typer.echo("nothing to apply: every migration is applied")
    else:
        typer.echo(f"{len(done)} migration{'s' if len(done) > 1 else ''} applied")
