"""`lenslake privacy …`: the free-text scrubber as a command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Privacy tools: scrub free text, erase users, purge expired rows.", no_args_is_help=True)

BATCH = 10_000


@app.command()
def scrub(input_file: Optional[Path] = typer.Option(None, "--input", "-i", help="UTF-8 text, one per line (default: stdin)")):
    """Scrub PII from texts, one per line: one JSON object per line out (text, scrubbed, entities with type, start,
    end, score). An empty line gives an empty result, so output line N answers input line N."""
    import json

    if input_file is not None:
        if not input_file.is_file():
            typer.echo(f"error: no such file: {input_file}", err=True)
            raise typer.Exit(2)
        data = input_file.read_bytes()
    else:
        data = sys.stdin.buffer.read()
    texts = _lines(data)
    from lenslake.privacy.scrub import get_scrubber

    scrubber = get_scrubber()
    out = sys.stdout
    for i in range(0, len(texts), BATCH):
        for s in scrubber.scrub_many(texts[i:i + BATCH]):
            out.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    out.flush()


def _lines(data: bytes) -> list[str]:
    """Input bytes → lines (without their ``\\n`` or ``\\r\\n``); refuses bytes that are not UTF-8 with the line
    and column where they are, before any output."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        typer.echo(f"error: input is not UTF-8: byte 0x{data[e.start]:02x} at line {line}, column {column}", err=True)
        raise typer.Exit(1)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@app.command()
def erase(
    user: list[str] = typer.Option(..., "--user", "-u", help="user id to erase (repeat for several)"),
    defer: bool = typer.Option(False, "--defer", help="only record the request; erasure_job (Dagster) executes it"),
):
    """Right to erasure: delete the users from every table (history included), their vectors, data keys and raw
    lines; suppress them for replays; print the receipt (which names only the request id)."""
    import json

    from lenslake.privacy.erasure import erase as run_erasure
    from lenslake.privacy.erasure import record_request
    from lenslake.settings import get_settings

    settings = get_settings()
    request_id = record_request(settings, user)
    if defer:
        typer.echo(f"recorded erasure request {request_id} ({len(set(user))} user(s)); erasure_job executes it")
        return
    receipt = run_erasure(settings, request_id)
    typer.echo(json.dumps(receipt, indent=1))


@app.command()
def purge(dry_run: bool = typer.Option(False, "--dry-run", help="report what would be purged")):
    """Retention: delete rows older than each table's retention, vacuum, then check."""
    from lenslake.privacy.retention import check_retention, purge_expired
    from lenslake.settings import get_settings

    settings = get_settings()
    for r in purge_expired(settings, dry_run=dry_run):
        typer.echo(f"{r.table:<30} retention {r.retention_days:>4} d  cutoff {r.cutoff}  rows purged {r.rows_purged:>8,}"
                   f"  files vacuumed {r.files_vacuumed:>5}")
    failures = [c for c in check_retention(settings) if not c.passed]
    for c in failures:
        typer.echo(f"error: {c.table}: {c.detail}", err=True)
    if failures and not dry_run:
        raise typer.Exit(1)


@app.command()
def canary(
    values: Optional[Path] = typer.Option(None, "--values", help="a file of extra values to look for, one per line "
                                                                 "(an erased user's id, tokens, e-mail…)"),
):
    """Scan every file under the data root for the PII the generator planted (its manifest), and for --values:
    parquet by decoded values, every other file by bytes. Exit 1 when anything is found."""
    import json

    from lenslake.privacy.canary import planted_values, scan
    from lenslake.settings import get_settings

    root = get_settings().data_root
    manifest = root / "synth" / "manifest.json"
    needles = planted_values(json.loads(manifest.read_text())) if manifest.exists() else {}
    if values:
        needles |= {v.strip(): "given" for v in values.read_text(encoding="utf-8").splitlines() if v.strip()}
    if not needles:
        typer.echo("nothing to look for: no generator manifest under the data root and no --values", err=True)
        raise typer.Exit(2)
    hits = scan(root, needles)
    files = sum(1 for p in root.rglob("*") if p.is_file())
    typer.echo(f"scanned {files:,} files under {root} for {len(needles):,} values: {len(hits)} hit(s)")
    for h in hits[:50]:
        typer.echo(f"  {h.file}: {h.kind} {h.value}")
    raise typer.Exit(1 if hits else 0)
