"""`lenslake` command line. Heavy libraries are imported inside the commands, so `lenslake --help` is quick."""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Optional

import typer

from lenslake.cli_api import api as api_command
from lenslake.cli_catalog import app as catalog_app
from lenslake.cli_contract import app as contract_app
from lenslake.cli_kafka import app as kafka_app
from lenslake.cli_migrate import app as migrate_app
from lenslake.cli_privacy import app as privacy_app
from lenslake.cli_profiles import app as profiles_app
from lenslake.cli_publish import app as publish_app
from lenslake.cli_schema import app as schema_app
from lenslake.cli_sql import sql as sql_command
from lenslake.cli_vectors import app as vectors_app
from lenslake.settings import get_settings

app = typer.Typer(help="lenslake: the eyewear retailer's lakehouse.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
app.add_typer(schema_app, name="schema")
app.add_typer(migrate_app, name="migrate")
app.add_typer(publish_app, name="publish")
app.add_typer(contract_app, name="contract")
app.add_typer(kafka_app, name="kafka")
app.add_typer(vectors_app, name="vectors")
app.add_typer(catalog_app, name="catalog")
app.add_typer(privacy_app, name="privacy")
app.command("sql")(sql_command)
app.command("api")(api_command)
app.add_typer(profiles_app, name="profiles")


@app.command()
def generate(
    days: int = typer.Option(7, help="days of events"),
    users: int = typer.Option(50_000, help="customers"),
    seed: int = typer.Option(42, help="random seed: same seed, same bytes"),
    start: Optional[str] = typer.Option(None, help="first day (YYYY-MM-DD); default: today minus --days"),
    events: Optional[int] = typer.Option(None, help="human events in total (default: about 1M per 7 days)"),
    products: int = typer.Option(2400, help="catalog size"),
    to: str = typer.Option("files", help="files: the landing zone only; kafka: then publish every event line to the "
                                         "topics of LENSLAKE_KAFKA_BOOTSTRAP"),
):
    """Generate a synthetic eyewear world into the landing zone (plus a truth manifest under synth/)."""
    from lenslake.synth.world import generate_world

    settings = get_settings()
    if to not in ("files", "kafka"):
        raise typer.BadParameter("--to must be files or kafka")
    if to == "kafka" and not settings.kafka_bootstrap:
        typer.echo("error: --to kafka needs LENSLAKE_KAFKA_BOOTSTRAP (e.g. localhost:9092)", err=True)
        raise typer.Exit(2)
    t = time.perf_counter()
    manifest = generate_world(settings.data_root, days=days, users=users, seed=seed,
                              start=dt.date.fromisoformat(start) if start else None, events=events, products=products)
    totals = manifest["totals"]
    typer.echo(f"generated {totals['lines']:,} landing lines over {days} days from {manifest['start']} "
               f"({totals['human_events']:,} human events, {totals['bot_events']:,} bot, {totals['duplicate_lines']:,} duplicates, "
               f"{totals['invalid_lines'] + totals['malformed_lines']:,} invalid) in {time.perf_counter() - t:.1f} s")
    if to == "kafka":
        from lenslake.kafka.producer import publish_landing
        from lenslake.kafka.topics import create_topics, missing_topics

        if missing_topics(settings):
            create_topics(settings)
        report = publish_landing(settings)
        typer.echo(f"kafka: {report.summary()}")
        for sample in report.delivery_errors[:5]:
            typer.echo(f"  delivery error: {sample}", err=True)
        if not report.ok:
            typer.echo(f"error: not every event was delivered ({report.delivered:,} of {report.produced:,})", err=True)
            raise typer.Exit(1)
        _move_sent_landing(settings)


@app.command()
def run(days: Optional[list[str]] = typer.Argument(None, help="landing days (default: all)")):
    """Materialize bronze → silver → gold through Dagster for the landing days (one run)."""
    from orchestration.runner import summarize, timed_run

    settings = get_settings()
    result, wall = timed_run(settings, days)
    typer.echo(summarize(settings, result, wall))
    raise typer.Exit(0 if result.success else 1)


@app.command()
def demo(
    days: int = typer.Option(7), users: int = typer.Option(50_000), seed: int = typer.Option(42),
    events: Optional[int] = typer.Option(None),
    source: str = typer.Option("files", help="files: landing files; kafka: the events go through Kafka topics "
                                             "(LENSLAKE_KAFKA_BOOTSTRAP, or a throwaway local broker)"),
):
    """Generate a world (unless one is there) and run every asset for every day, then print a summary."""
    from orchestration.runner import summarize, timed_run
    from lenslake.synth.world import generate_world

    if source not in ("files", "kafka"):
        raise typer.BadParameter("--source must be files or kafka")
    settings = get_settings()
    if not (settings.synth_dir / "manifest.json").exists():
        t = time.perf_counter()
        generate_world(settings.data_root, days=days, users=users, seed=seed, events=events)
        typer.echo(f"world generated in {time.perf_counter() - t:.1f} s")
    if not _demo_catalog(settings):
        raise typer.Exit(1)
    if not _demo_vectors(settings):
        raise typer.Exit(1)
    if not _demo_profiles(settings):
        raise typer.Exit(1)
    if source == "kafka":
        raise typer.Exit(_demo_through_kafka(settings))
    result, wall = timed_run(settings)
    typer.echo(summarize(settings, result, wall))
    if result.success and not _demo_profiles(settings, behaviour_only=True):
        raise typer.Exit(1)
    if result.success and not _demo_vectors_after_events(settings):
        raise typer.Exit(1)
    raise typer.Exit(0 if result.success else 1)


def _demo_profiles(settings, behaviour_only: bool = False) -> bool:
    """Profiles after the catalog (people feeds, consent: gold then leaves out users who withdrew analytics
    consent), and their behaviour again once the events run has built silver."""
    from orchestration.profiles_runner import profiles_summary, timed_profiles_run

    result, wall = timed_profiles_run(settings, behaviour_only=behaviour_only)
    typer.echo(profiles_summary(settings, result, wall) + "\n")
    return result.success


def _demo_catalog(settings) -> bool:
    """The product database first: every pending catalog feed day through Dagster's catalog_job."""
    from orchestration.catalog_runner import catalog_summary, timed_catalog_run

    result, wall = timed_catalog_run(settings)
    typer.echo(catalog_summary(settings, result, wall) + "\n")
    return result.success


def _demo_vectors(settings) -> bool:
    """Product embeddings after the catalog: only changed products are embedded (about 10 s the first time on the
    demo's 2,400 products, model load included; nothing on a rerun), then the vector table's checks."""
    from orchestration.vectors_runner import timed_vectors_run, vectors_summary

    result, wall = timed_vectors_run(settings)
    typer.echo(vectors_summary(result, wall) + "\n")
    return result.success


def _demo_vectors_after_events(settings) -> bool:
    """Once silver holds the events: user embeddings (personalization consent only) with the product segments, and
    content embeddings (product descriptions and the scrubbed search queries), for every live model version."""
    from orchestration.vectors_runner import job_summary, timed_job_run

    keys = ("model_version", "users_embedded", "users_skipped_no_consent", "vectors_removed", "k", "silhouette",
            "descriptions", "queries", "embedded", "unchanged", "removed", "tag", "seconds")
    for job, title in (("user_vectors_job", "user vectors"), ("content_vectors_job", "content vectors")):
        result, wall = timed_job_run(settings, job)
        typer.echo(job_summary(result, wall, title, keys) + "\n")
        if not result.success:
            return False
    return True


def _demo_through_kafka(settings) -> int:
    """The demo with events through Kafka: publish the world's event lines to the topics (moving them out of the
    landing zone), ingest them into bronze through Dagster, then run silver and gold for the ingest day."""
    import contextlib
    import os

    from lenslake.kafka.broker import local_broker

    with contextlib.ExitStack() as stack:
        if not settings.kafka_bootstrap:
            bootstrap = stack.enter_context(local_broker())
            typer.echo(f"no LENSLAKE_KAFKA_BOOTSTRAP: a throwaway local broker (Tansu, memory storage) at {bootstrap}")
            os.environ["LENSLAKE_KAFKA_BOOTSTRAP"] = bootstrap  # the Dagster resource reads the environment
        if settings.as_of is None:
            # Kafka rows take the day they are ingested on; silver and gold run for days that have ended. The demo
            # ingests as of the end of yesterday so that it can run them now (production: the 02:00 schedule).
            yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
            os.environ["LENSLAKE_AS_OF"] = f"{yesterday}T23:59:59+00:00"
        settings = get_settings()
        return _kafka_demo_steps(settings)


def _kafka_demo_steps(settings) -> int:
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics, missing_topics
    from lenslake.pipeline import landing_days
    from orchestration.runner import kafka_ingest_summary, run_kafka_ingest_job, summarize

    if missing_topics(settings):
        for line in create_topics(settings):
            typer.echo(f"  {line}")
    if landing_days(settings):
        report = publish_landing(settings)
        typer.echo(f"kafka: {report.summary()}")
        if not report.ok:
            typer.echo(f"error: not every event was delivered ({report.delivered:,} of {report.produced:,})", err=True)
            return 1
        _move_sent_landing(settings)
    t = time.perf_counter()
    ingest = run_kafka_ingest_job(settings)
    typer.echo(kafka_ingest_summary(ingest))
    if not ingest.success:
        return 1
    from orchestration.runner import run_events_job

    day = settings.now().date().isoformat()
    result = run_events_job(settings, [day])
    typer.echo(summarize(settings, result, time.perf_counter() - t))
    typer.echo("")
    typer.echo(_kafka_status_text(settings))
    return 0 if result.success else 1


def _move_sent_landing(settings) -> None:
    """Events published to Kafka leave the landing zone (kept under synth/sent-to-kafka/ for reconciliation, and
    there only encrypted: every one was delivered), so the landing-file path never ingests them a second time."""
    import shutil

    from lenslake.privacy import landing

    target = settings.synth_dir / "sent-to-kafka"
    target.mkdir(parents=True, exist_ok=True)
    for folder in sorted(settings.events_landing_dir.iterdir()):
        shutil.move(str(folder), str(target / folder.name))
        landing.encrypt_files(sorted((target / folder.name).glob("*.ndjson")), settings)
    typer.echo(f"  event files moved out of the landing zone to {target} (kept encrypted)")


def _kafka_status_text(settings) -> str:
    from lenslake.cli_kafka import status_lines

    return "\n".join(status_lines(settings, settings.kafka_consumer_group))


@app.command()
def tables():
    """List the table catalogue: name, partitioning, owner, token columns."""
    from lenslake.tables import catalogue

    for spec in catalogue().values():
        typer.echo(f"{spec.name:<28} partitions={','.join(spec.partition_by) or '-':<22} owner={spec.owner:<14} "
                   f"tokens={','.join(spec.token_columns) or '-'}")


def main() -> int:
    """Entry point: errors reach the user as one clear line (LENSLAKE_DEBUG=1 shows the traceback)."""
    import os

    try:
        # Without standalone mode click returns the command's exit code instead of exiting.
        code = app(standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (typer.echo(f"error: {e.code}", err=True) or 1)
    except Exception as e:  # noqa: BLE001  (the boundary between the program and a person)
        if os.environ.get("LENSLAKE_DEBUG"):
            raise
        import click

        if isinstance(e, click.ClickException):
            e.show()
            return e.exit_code
        line = _kafka_unreachable(e) or _bad_setting(e)
        typer.echo(f"error: {line}" if line else f"error: {type(e).__name__}: {e}", err=True)
        return 1


def _bad_setting(error: Exception) -> str | None:
    """A settings value the Settings model refused, as one line naming the environment variable."""
    from pydantic import ValidationError

    from lenslake.settings import Settings

    if not isinstance(error, ValidationError) or error.title != Settings.__name__:
        return None
    prefix = Settings.model_config.get("env_prefix", "")
    return "; ".join(f"{prefix}{'_'.join(map(str, d['loc'])).upper()}={d.get('input')!r}: {d['msg']}"
                     for d in error.errors())


def _kafka_unreachable(error: Exception) -> str | None:
    if type(error).__name__ != "KafkaException":  # (confluent_kafka is imported only where Kafka is used)
        return None
    from lenslake.kafka.config import unreachable

    return unreachable(get_settings(), error)


def entry() -> None:
    """The console script: ``main()``, then exit without running native destructors. delta-rs's runtime threads
    can abort an interpreter's shutdown ("terminate called without an active exception", delta-rs issue 2184),
    which would turn a successful command into exit code 134; exit handlers (DuckDB, Spark) still run first."""
    import atexit
    import os

    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
