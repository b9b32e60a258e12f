"""`lenslake schema`: the Avro schema registry from the command line (list, show, check, register, mode).

The registry is the one the settings name (``LENSLAKE_REGISTRY_DIR``, default: the repo's ``lenslake/contracts/registry``).
A refusal (an incompatible schema, an unknown subject, a tampered file) prints one line and exits 1.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="The Avro schema registry: event and feed schemas, their versions and compatibility.",
                  no_args_is_help=True, add_completion=False)


def _refusals(command):
    """Registry refusals reach the user as one line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from lenslake.contracts.registry import RegistryError

        try:
            return command(*args, **kwargs)
        except RegistryError as e:
            typer.echo(f"refused: {e}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _registry():
    from lenslake.contracts.registry import registry_for
    from lenslake.settings import get_settings

    return registry_for(get_settings())


def _schema_file(path: Path) -> Path:
    if not path.is_file():
        from lenslake.contracts.registry import RegistryError

        raise RegistryError(f"no schema file {path}")
    return path


@app.command("list")
@_refusals
def list_subjects():
    """Every subject: compatibility mode, latest version and its id."""
    registry = _registry()
    typer.echo(f"{'subject':<36} {'mode':<20} {'latest':>6} {'id':>4}")
    for subject in registry.subjects():
        latest = registry.latest(subject)
        typer.echo(f"{subject:<36} {registry.compatibility(subject):<20} {latest.version:>6} {latest.id:>4}")


@app.command()
@_refusals
def show(subject: str = typer.Argument(..., help="e.g. lenslake.events.purchase"),
         version: Optional[int] = typer.Option(None, "--version", "-v", help="default: the latest")):
    """Print a registered schema (with its version, id and fingerprint)."""
    registry = _registry()
    reg = registry.get(subject, version)
    typer.echo(f"{reg} compatibility={registry.compatibility(subject)} fingerprint(sha256)={reg.fingerprint}", err=True)
    typer.echo(reg.text, nl=False)


@app.command()
@_refusals
def check(file: Path = typer.Argument(..., help="an .avsc file")):
    """Would the registry accept this schema? Exit 1 when it would refuse it."""
    report = _registry().check(_schema_file(file))
    if not report.compatible:
        typer.echo(f"refused: {report.summary()}", err=True)
        raise typer.Exit(1)
    typer.echo(report.summary())


@app.command()
@_refusals
def register(file: Path = typer.Argument(..., help="an .avsc file")):
    """Register a schema under its record's fullname (a new version, or the identical one already there)."""
    registry = _registry()
    before = {s: len(registry.versions(s)) for s in registry.subjects()}
    reg = registry.register(_schema_file(file))
    new = before.get(reg.subject, 0) < reg.version
    typer.echo(f"{'registered' if new else 'already registered:'} {reg} fingerprint(sha256)={reg.fingerprint}")


@app.command()
@_refusals
def mode(subject: str = typer.Argument(...),
         new_mode: Optional[str] = typer.Argument(None, metavar="[MODE]",
                                                  help="BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, "
                                                       "FULL, FULL_TRANSITIVE or NONE")):
    """Show a subject's compatibility mode, or set it."""
    registry = _registry()
    if new_mode is None:
        typer.echo(f"{subject} {registry.compatibility(subject)}")
        return
    typer.echo(f"{subject} {registry.set_compatibility(subject, new_mode)}")
