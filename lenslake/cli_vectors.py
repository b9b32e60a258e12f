"""`lenslake vectors …`: the LanceDB vector tables: status, publish tags, rollback, pins, cleanup and A/B routes."""

from __future__ import annotations

import datetime as dt

import typer

from lenslake.settings import get_settings

app = typer.Typer(help="Vector tables (LanceDB): status, tags, rollback, cleanup, A/B routes.", no_args_is_help=True)

TABLE_HELP = "vector table (product_embeddings, content_embeddings, user_embeddings)"


def _store(table: str, must_exist: bool = True):
    from lenslake.vectors.store import TABLE_KEYS, VectorStore

    store = VectorStore.from_settings(get_settings(), table, TABLE_KEYS.get(table, "sku"))
    if must_exist and not store.exists():
        typer.echo(f"error: no vector table {table!r} under {store.directory}", err=True)
        raise typer.Exit(1)
    return store


@app.command("status")
def status_command(table: str = typer.Option("product_embeddings", help=TABLE_HELP)):
    """Rows per model version, the latest and the published version, index coverage, tags."""
    from lenslake.vectors.store import live_model_versions

    store = _store(table, must_exist=False)
    s = store.status()
    if not s["exists"]:
        typer.echo(f"{table}: no table yet under {store.directory}")
        return
    typer.echo(f"{table}: version {s['version']}, {s['rows']:,} rows, {s['versions_kept']} versions kept")
    for version, rows in sorted(s["rows_by_model_version"].items()):
        typer.echo(f"  {version:<28} {rows:>9,} rows")
    typer.echo(f"  live model versions (settings): {', '.join(live_model_versions(get_settings()))}")
    published = (f"{s['published_tag']} (v{s['published_version']})" if s["published_tag"] else "none")
    typer.echo(f"  published: {published}; latest is {'the' if s['latest_is_published'] else 'not the'} published version")
    index = "none" if not s["vector_index"] else f"IVF-HNSW-SQ, {s['unindexed_rows']} rows outside it"
    typer.echo(f"  vector index: {index}")


@app.command("tags")
def tags_command(table: str = typer.Option("product_embeddings", help=TABLE_HELP)):
    """Every tag with its table version (pinned tags are marked)."""
    store = _store(table)
    tags = store.tags()
    if not tags:
        typer.echo("no tags")
    for t in tags:
        typer.echo(f"{t.name:<36} v{t.version:<6}{'  pinned' if t.pinned else ''}")


@app.command("rollback")
def rollback_command(
    to: str = typer.Option(..., "--to", help="the publish tag to restore"),
    table: str = typer.Option("product_embeddings", help=TABLE_HELP),
):
    """Restore the data of a publish tag as the latest version (readers switch on their next refresh)."""
    import time

    store = _store(table)
    before = store.table.version
    t = time.perf_counter()
    try:
        version = store.rollback(to)
    except KeyError as e:
        typer.echo(f"error: {e.args[0]}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{table}: restored {to} as version {version} (was {before}) in {time.perf_counter() - t:.2f} s")


@app.command("pin")
def pin_command(tag: str, table: str = typer.Option("product_embeddings", help=TABLE_HELP),
                remove: bool = typer.Option(False, "--remove", help="unpin instead")):
    """Pin a publish tag so cleanup keeps it (a rollback target), or --remove the pin."""
    store = _store(table)
    try:
        if remove:
            store.unpin(tag)
            typer.echo(f"unpinned {tag}")
        else:
            typer.echo(f"pinned {tag} ({store.pin(tag)})")
    except KeyError as e:
        typer.echo(f"error: {e.args[0]}", err=True)
        raise typer.Exit(1)


@app.command("cleanup")
def cleanup_command(
    table: str = typer.Option("product_embeddings", help=TABLE_HELP),
    keep: int | None = typer.Option(None, help="publish tags to keep (default: settings)"),
    grace_minutes: int | None = typer.Option(None, help="never remove versions younger than this (default: settings)"),
):
    """Keep the newest publish tags of each model version and every pinned one; remove the other tags, and every
    untagged version older than the grace period."""
    settings = get_settings()
    store = _store(table)
    report = store.cleanup(keep_last=settings.vectors_keep_publishes if keep is None else keep,
                           grace=dt.timedelta(minutes=settings.vectors_cleanup_grace_minutes if grace_minutes is None
                                              else grace_minutes))
    typer.echo(f"{table}: versions {report.versions_before} → {report.versions_after}; "
               f"tags deleted: {', '.join(report.tags_deleted) or 'none'}; kept: {', '.join(report.tags_kept) or 'none'}")


@app.command("route")
def route_command(
    experiment: str = typer.Option(..., help="an experiment of the routing file"),
    subject: list[str] = typer.Option(..., help="a user token or session id (repeatable)"),
):
    """Which variant each subject sees in an experiment, and the vectors it reads (table, model version, tag)."""
    from lenslake.vectors.routing import Router

    router = Router(get_settings())
    for s in subject:
        try:
            r = router.route(experiment, s)
        except (KeyError, LookupError) as e:
            typer.echo(f"error: {e.args[0]}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{s}: variant {r.variant} (bucket {r.bucket}) → {r.table} {r.model_version} at {r.tag} "
                   f"(v{r.table_version})")
