"""``rag serve``: the chat page in the browser (registered in :mod:`rag.cli`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from rag.config import is_loopback
from rag.errors import MissingDependencyError, RagError

__all__ = ["serve_cmd"]


def _serve(overrides: dict[str, Any]) -> None:
    from rag.config import get_settings

    settings = get_settings(**overrides)
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("gradio", "ui", "The chat page") from exc
    from rag.ui.app import build_app, launch_app, parse_auth

    logins = parse_auth(settings.auth)  # a malformed RAG_AUTH fails here, before serving
    if not is_loopback(settings.host) and not logins:
        click.secho(
            f"Warning: serving on {settings.host} without a login; anyone who can reach this "
            "machine can use it. Set RAG_AUTH=user:password to require one.",
            fg="yellow",
            err=True,
        )
    demo = build_app(settings, warm=True)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    click.echo(f"Chat at http://{shown}:{settings.port}  (Ctrl+C to stop)")
    launch_app(demo, settings, quiet=True)


@click.command("serve")
@click.option(
    "--host", envvar="RAG_HOST", help="Address to listen on [env: RAG_HOST; default: 127.0.0.1]."
)
@click.option("--port", type=int, envvar="RAG_PORT", help="Port [env: RAG_PORT; default: 7860].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RAG_DATA_DIR",
    help="Where the index lives [env: RAG_DATA_DIR; default: .rag].",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def serve_cmd(host: str | None, port: int | None, data_dir: Path | None, verbose: int) -> None:
    """Chat with the articles in the browser (http://127.0.0.1:7860 by default).

    Login (RAG_AUTH=user:password or a file of such lines), answers at once (RAG_CONCURRENCY)
    and the upload size limit (RAG_MAX_UPLOAD_MB) come from the settings.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        _serve({"host": host, "port": port, "data_dir": data_dir})
    except RagError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    except OSError as exc:
        click.secho(f"Error: could not start the server: {exc}", fg="red", err=True)
        sys.exit(1)
