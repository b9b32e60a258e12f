"""`lenslake profiles …`: customer profiles (feeds, flags, attribute backfills, status)."""

from __future__ import annotations

import typer

from lenslake.settings import get_settings

app = typer.Typer(help="Customer profiles: people feeds, consent, feature-flagged attributes and their backfills.",
                  no_args_is_help=True)


def _store(settings):
    from lenslake.delta import DeltaStore

    return DeltaStore(settings.tables_dir)


@app.command()
def run():
    """Ingest the people feeds and recompute behaviour through Dagster (profiles_job)."""
    from orchestration.profiles_runner import profiles_summary, timed_profiles_run

    settings = get_settings()
    result, wall = timed_profiles_run(settings)
    typer.echo(profiles_summary(settings, result, wall))
    raise typer.Exit(0 if result.success else 1)


@app.command()
def status():
    """Profile and privacy tables, feature flags and how far each flagged attribute is filled, minimization."""
    from lenslake.profiles.attributes import ATTRIBUTES, flags, missing_attribute
    from lenslake.profiles.minimization import minimization_problems, profile_tables

    settings = get_settings()
    store = _store(settings)
    typer.echo("tables:")
    for name in profile_tables():
        typer.echo(f"  {name:<28} {store.count(name):>10,}  v{store.version(name)}" if store.exists(name)
                   else f"  {name:<28} {'absent':>10}")
    profiles = store.count("profiles.customers")
    typer.echo("attributes (flag, profiles filled):")
    for name, on in flags(settings).items():
        filled = profiles - len(missing_attribute(store, name))
        typer.echo(f"  {name:<20} {'on ' if on else 'off'}  {filled:,} of {profiles:,}  ({ATTRIBUTES[name].doc})")
    problems = minimization_problems(store)
    typer.echo(f"minimization: {'ok' if not problems else f'{len(problems)} problems'}")
    for p in problems:
        typer.echo(f"  {p}")


@app.command()
def flag(attribute: str = typer.Argument(..., help="a declared attribute"),
         on: bool = typer.Option(..., "--on/--off", help="enable or disable the attribute's feature flag")):
    """Switch an attribute's feature flag."""
    from lenslake.profiles.attributes import set_flag

    state = set_flag(get_settings(), attribute, on)
    typer.echo(", ".join(f"{k}={'on' if v else 'off'}" for k, v in state.items()))


@app.command()
def backfill(attribute: str = typer.Argument(..., help="a declared attribute whose flag is on"),
             batch_size: int = typer.Option(10_000, help="profiles per commit"),
             dagster: bool = typer.Option(False, "--dagster", help="run profile_attribute_backfill_job through Dagster")):
    """Fill an attribute for every existing profile lacking it (idempotent; progress after each batch)."""
    from lenslake.profiles.attributes import FlagDisabled, backfill_attribute

    settings = get_settings()
    if dagster:
        from orchestration.profiles_runner import run_backfill_job

        result = run_backfill_job(settings, attribute, batch_size)
        typer.echo(f"backfill run {result.run_id}: success {result.success}")
        raise typer.Exit(0 if result.success else 1)
    try:
        report = backfill_attribute(_store(settings), settings, attribute, batch_size=batch_size,
                                    progress=lambda done, total: typer.echo(f"  {done:,} / {total:,}"))
    except FlagDisabled as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{attribute}: {report.filled:,} filled in {report.batches} batches, {report.already:,} already held, "
               f"{report.remaining:,} left ({report.profiles:,} profiles)")
