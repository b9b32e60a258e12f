"""`lenslake api [--host --port]`: serve the read API (lenslake.api) with uvicorn."""

from __future__ import annotations

import typer


def api(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on"),
):
    """Serve published gold and the catalogue over HTTP under the access policy (Bearer API keys: LENSLAKE_API_KEYS,
    or a dev key file with one key per role, generated under the data root on first use)."""
    import uvicorn

    from lenslake.api import create_app
    from lenslake.api.keys import key_file
    from lenslake.settings import get_settings

    settings = get_settings()
    try:
        app = create_app(settings)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    if not settings.api_keys:
        typer.echo(f"dev API keys (one per role): {key_file(settings)}")
    uvicorn.run(app, host=host, port=port, log_level="info")
