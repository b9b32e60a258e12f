"""`lenslake publish`: which version of each gold table services read, and flipping it back."""

from __future__ import annotations

import typer

from lenslake.settings import get_settings

app = typer.Typer(help="Blue-green publishing of the gold tables services read.", no_args_is_help=True)


def _v(version: int | None) -> str:
    return "none" if version is None or version < 0 else f"v{version}"


def _fail(error: Exception):
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


@app.command("status")
def status_command():
    """Each published table: the version readers see, the latest written, the rollback target, the last event."""
    from lenslake import publish

    for s in publish.status(get_settings()):
        line = (f"{s.table:<20} published={_v(s.published):<6} latest={_v(s.latest):<6} "
                f"rollback_to={_v(s.rollback_to):<6}")
        if s.published_at:
            line += f"  since {s.published_at}" + (f" (run {s.run_id[:8]})" if s.run_id else "")
        if s.last and s.last["action"] != "publish":
            line += f"  last: {s.last['action']} {_v(s.last['version'])}: {s.last['reason']}"
        typer.echo(line)


@app.command("rollback")
def rollback_command(
    table: str = typer.Argument(..., help="a published table, e.g. gold.daily_kpis"),
    reason: str = typer.Option("manual rollback", help="why, for the pointer's history"),
):
    """Flip TABLE back to the version published before the current one (readers switch at once)."""
    from lenslake import publish

    settings = get_settings()
    try:
        before = publish.published_version(settings, table)
        pointer = publish.rollback(settings, table, reason=reason)
    except publish.PublishError as e:
        _fail(e)
    typer.echo(f"{table}: published version {_v(before)} → {_v(pointer.version)} "
               "(rolled back; the next run writes on top of it)")
