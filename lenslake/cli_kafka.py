"""`lenslake kafka …`: the event topics on the broker named by LENSLAKE_KAFKA_BOOTSTRAP (any Kafka-protocol broker)."""

from __future__ import annotations

import typer

from lenslake.settings import get_settings

app = typer.Typer(help="Kafka event topics: create them, show offsets and lag.", no_args_is_help=True)


def _settings_or_exit():
    settings = get_settings()
    if not settings.kafka_bootstrap:
        typer.echo("error: Kafka is not configured: set LENSLAKE_KAFKA_BOOTSTRAP (e.g. localhost:9092)", err=True)
        raise typer.Exit(2)
    return settings


TIMEOUT = typer.Option(30.0, help="seconds to wait for the broker before giving up")


@app.command()
def init(timeout: float = TIMEOUT):
    """Create the event topics with the declared partitions and retention (existing topics are left as they are)."""
    from lenslake.kafka.topics import create_topics

    settings = _settings_or_exit()
    for result in create_topics(settings, timeout):
        typer.echo(str(result))


@app.command()
def status(group: str = typer.Option(None, help="consumer group (default: LENSLAKE_KAFKA_CONSUMER_GROUP)"),
           timeout: float = TIMEOUT):
    """Per topic and partition: end offset, the consumer group's committed offset, and lag."""
    from lenslake.kafka.topics import missing_topics

    settings = _settings_or_exit()
    for line in status_lines(settings, group or settings.kafka_consumer_group, timeout):
        typer.echo(line)
    missing = missing_topics(settings, timeout)
    if missing:
        typer.echo(f"missing topics (run `lenslake kafka init`): {', '.join(missing)}", err=True)
        raise typer.Exit(1)


def status_lines(settings, group: str, timeout: float = 30.0) -> list[str]:
    """`lenslake kafka status` as lines: per partition, earliest and end offsets, the group's committed offset, lag."""
    from lenslake.kafka.topics import status as partition_status

    rows = partition_status(settings, group, timeout)
    lines = [f"{'topic':<36} {'partition':>9} {'earliest':>10} {'end':>10} {'committed':>10} {'lag':>10}   (group {group})"]
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        lines.append(f"{r.topic:<36} {r.partition:>9} {r.low:>10} {r.end:>10} {committed:>10} {r.lag:>10}")
    lines.append(f"total: end {sum(r.end for r in rows):,}, lag {sum(r.lag for r in rows):,}")
    return lines


@app.command()
def broker(port: int = typer.Option(9092, help="loopback port to listen on")):
    """Run a throwaway Kafka-protocol broker (Tansu, memory storage) in the foreground, for the demo."""
    from lenslake.kafka.broker import serve

    serve(port)
