"""`rag llm-server`: the bundled model behind an OpenAI-compatible HTTP API.

Several app processes on one machine (or on several) can then share one loaded model instead of
each holding its own 1.1 GB copy: start this once, and point the apps at it with
``RAG_LLM=openai:bundled`` and ``RAG_LLM_BASE_URL=http://HOST:PORT/v1``. It is llama-cpp-python's
own server (``llama_cpp.server``), started after this project's run-time CPU-variant loading
(the stock ``python -m llama_cpp.server`` finds no CPU backend in the portable build) and with
the bundled model assembled and hash-checked first. Any other OpenAI-compatible server (vLLM,
llama.cpp's ``llama-server``) works the same way from the apps' side.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.errors import MissingDependencyError, RagError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["MODEL_ALIAS", "build_server_app", "llm_server_cmd"]

MODEL_ALIAS = "bundled"


def build_server_app(
    settings: Settings, *, model: Path | None = None, api_key: str | None = None
) -> Any:  # a FastAPI app; fastapi comes with the optional llm-server extra
    """The ASGI app serving ``model`` (default: the bundled model) under the name ``bundled``."""
    from rag.hardware import physical_cores
    from rag.models.bundled import bundled_model_path
    from rag.models.llamacpp import ensure_backends

    try:
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as exc:
        raise MissingDependencyError(
            "sse-starlette and starlette-context", "llm-server", "The model server"
        ) from exc
    ensure_backends()
    path = model or bundled_model_path(settings)
    threads = settings.llm_threads or physical_cores()
    return create_app(
        # The stock server cuts a streaming answer short when another request arrives; shared by
        # several apps, requests must queue instead.
        server_settings=ServerSettings(api_key=api_key, interrupt_requests=False),
        model_settings=[
            ModelSettings(
                model=str(path),
                model_alias=MODEL_ALIAS,
                n_ctx=settings.llm_context,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        ],
    )


@click.command("llm-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port.")
@click.option(
    "--model",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A GGUF file to serve instead of the bundled model.",
)
@click.option(
    "--api-key",
    envvar="RAG_LLM_SERVER_KEY",
    help="Require this bearer key [env: RAG_LLM_SERVER_KEY].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (where the model is assembled).",
)
def llm_server_cmd(
    host: str, port: int, model: Path | None, api_key: str | None, data_dir: Path | None
) -> None:
    """Serve the bundled LLM over an OpenAI-compatible API (model name: bundled).

    \b
    Apps then use it with:
      RAG_LLM=openai:bundled RAG_LLM_BASE_URL=http://HOST:PORT/v1 rag serve
    """
    import uvicorn

    from rag.config import Settings

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    try:
        app = build_server_app(settings, model=model, api_key=api_key)
    except RagError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        raise SystemExit(1) from exc
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        click.secho(
            "Warning: serving beyond this machine without --api-key.", fg="yellow", err=True
        )
    click.echo(
        f"OpenAI-compatible API at http://{host}:{port}/v1 (model: {MODEL_ALIAS})  (Ctrl+C to stop)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
