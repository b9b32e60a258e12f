"""`lenslake catalog …`: the product database (feeds, audit trail, Myntra import, quality)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lenslake.settings import get_settings

app = typer.Typer(help="The product database: daily feeds, audit trail, Myntra import, quality metrics.",
                  no_args_is_help=True)


def _store():
    from lenslake.delta import DeltaStore

    return DeltaStore(get_settings().tables_dir)


@app.command()
def run():
    """Apply every pending feed day through Dagster (catalog_job: tables, referential checks, quality metrics)."""
    from orchestration.catalog_runner import catalog_summary, timed_catalog_run

    settings = get_settings()
    result, wall = timed_catalog_run(settings)
    typer.echo(catalog_summary(settings, result, wall))
    raise typer.Exit(0 if result.success else 1)


@app.command()
def apply(days: Optional[list[str]] = typer.Argument(None, help="feed days (default: every pending day)")):
    """Apply pending feed days without Dagster (the same plain functions the assets call)."""
    from lenslake.catalog.apply import apply_pending

    settings = get_settings()
    reports = apply_pending(_store(), settings.data_root, settings.now(), days=days or None)
    for r in reports:
        if r.skipped:
            typer.echo(f"{r.day} {r.kind:<10} already applied")
            continue
        s = r.summary()
        typer.echo(f"{r.day} {r.kind:<10} lines {s['lines']:>6,}  quarantined {s['quarantined']:>3}  superseded "
                   f"{s['superseded']:>2}  new {s['new']:>5,}  changed {s['changed']:>5,}  unchanged {s['unchanged']:>5,}  "
                   f"stale {s['stale']:>2}  invalidations {s['invalidations']:>5,}")
    if not reports:
        typer.echo("nothing pending: every feed day is applied")


@app.command()
def history(sku: str = typer.Argument(..., help="the SKU, e.g. SG123456")):
    """Every change to a SKU's product, attribute, price and stock rows: who (feed file), when, old → new."""
    from lenslake.catalog.history import render_history

    try:
        typer.echo(render_history(_store(), sku))
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command("import-myntra")
def import_myntra(path: Optional[Path] = typer.Option(None, help="folder with styles.csv and styles_text.csv "
                                                                  "(default: LENSLAKE_MYNTRA_DIR)")):
    """Map the real Myntra catalogue's eyewear into the product and attribute tables (idempotent)."""
    from lenslake.catalog.myntra import import_myntra as run_import

    folder = path or get_settings().myntra_dir
    if not (folder / "styles.csv").exists():
        typer.echo(f"error: no styles.csv under {folder} (set LENSLAKE_MYNTRA_DIR or --path)", err=True)
        raise typer.Exit(2)
    typer.echo(run_import(_store(), folder).summary())


@app.command()
def quality(days: int = typer.Option(0, help="only the last N days (0: all)")):
    """Completeness and validity per feed and table per day (gold.catalog_quality, its published version)."""
    from lenslake import publish
    from lenslake.catalog.quality import TABLE, render

    store = _store()
    if publish.published_version(store, TABLE) is None:
        typer.echo("no quality metrics published yet: run `lenslake catalog run`")
        raise typer.Exit(1)
    metrics = publish.read_published(store, TABLE)
    if days:
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = sorted(set(metrics.column("metric_date").to_pylist()))[-days:]
        metrics = metrics.filter(pc.is_in(metrics.column("metric_date"), value_set=pa.array(keep, pa.date32())))
    typer.echo(render(metrics))


@app.command()
def status():
    """Rows and version per catalog table, the last feed day each feed applied, pending days, quarantine reasons."""
    from collections import Counter

    from lenslake.catalog.apply import app_id, pending_days
    from lenslake.catalog.feeds import KINDS
    from lenslake.tables import catalogue

    settings = get_settings()
    store = _store()
    for name in catalogue():
        if name.startswith("catalog."):
            rows = f"{store.count(name):>10,}  v{store.version(name)}" if store.exists(name) else "  (not created)"
            typer.echo(f"{name:<28} {rows}")
    typer.echo("")
    for kind in KINDS:
        held = str(store.app_version("catalog.feed_quarantine", app_id(kind)) or "")
        typer.echo(f"feed {kind:<10} last applied day: {f'{held[:4]}-{held[4:6]}-{held[6:]}' if held else '-'}")
    pending = pending_days(store, settings.data_root)
    typer.echo(f"pending feed days: {', '.join(pending) or 'none'}")
    q = store.read("catalog.feed_quarantine", columns=["feed", "reason_code"])
    if q.num_rows:
        typer.echo("quarantined feed lines:")
        for (feed, reason), n in sorted(Counter(zip(q.column("feed").to_pylist(), q.column("reason_code").to_pylist())).items()):
            typer.echo(f"  {feed:<10} {reason:<24} {n:>6,}")
