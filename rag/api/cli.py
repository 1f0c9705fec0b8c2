"""``rag api``: the assistant over HTTP (registered in :mod:`rag.cli`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from rag.config import is_loopback
from rag.errors import MissingDependencyError, RagError

__all__ = ["api_cmd"]


@click.command("api")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="RAG_API_HOST",
    help="Interface to bind [env: RAG_API_HOST].",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    envvar="RAG_API_PORT",
    help="Port [env: RAG_API_PORT].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RAG_DATA_DIR",
    help="Where the index lives [env: RAG_DATA_DIR; default: .rag].",
)
@click.option("--ui", is_flag=True, help="Also serve the chat page at /ui (one port for both).")
@click.option("-v", "--verbose", count=True, help="Log each request (-v), debug (-vv).")
def api_cmd(host: str, port: int, data_dir: Path | None, ui: bool, verbose: int) -> None:
    """Serve the assistant over HTTP: OpenAI-compatible chat (model "rag") and more.

    \b
    Endpoints: POST /v1/chat/completions, GET /v1/models, POST /v1/ask,
    POST /v1/ingest, GET /v1/articles, GET /health; docs at /docs.
    Keys (RAG_API_KEY), answers at once (RAG_CONCURRENCY) and the upload limit
    (RAG_MAX_UPLOAD_MB) come from the settings.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        click.secho(
            f"Error: {MissingDependencyError(exc.name or 'fastapi', 'api', 'rag api')}",
            fg="red",
            err=True,
        )
        sys.exit(1)
    if ui:
        try:
            import gradio  # noqa: F401
        except ImportError:
            click.secho(
                f"Error: {MissingDependencyError('gradio', 'ui', 'rag api --ui')}",
                fg="red",
                err=True,
            )
            sys.exit(1)
    from rag.api.app import build_api_app
    from rag.config import get_settings

    try:
        settings = get_settings(data_dir=data_dir)
        app = build_api_app(settings, warm=True, ui=ui)
    except RagError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    if not is_loopback(host) and not settings.api_key:
        click.secho(
            f"Warning: serving on {host} without a key; anyone who can reach this machine can "
            "use it. Set RAG_API_KEY to require one.",
            fg="yellow",
            err=True,
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"API at http://{shown}:{port}/v1 (model: rag; docs at /docs)  (Ctrl+C to stop)")
    if ui:
        click.echo(f"Chat page at http://{shown}:{port}/ui")
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info" if verbose > 1 else "warning",
            access_log=verbose > 1,
        )
    except OSError as exc:
        click.secho(f"Error: could not start the server: {exc}", fg="red", err=True)
        sys.exit(1)
