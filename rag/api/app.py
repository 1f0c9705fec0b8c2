"""The FastAPI app: routes, bearer-key check, body size limits, errors as JSON.

Keys come from ``RAG_API_KEY`` (comma-separated, or a file of keys one a line); without one
the API is open, which is why ``rag api`` binds 127.0.0.1 unless told otherwise. ``/health``
and the API description (``/openapi.json``, ``/docs``) need no key.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.errors import error_body, install_error_handlers
from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["JSON_BODY_LIMIT", "build_api_app", "parse_api_keys"]

logger = logging.getLogger(__name__)

JSON_BODY_LIMIT = 2 * 1024 * 1024
"""Largest request body (bytes) outside file uploads: questions with long chat histories."""
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
UI_PATH = "/ui"  # the chat page, when mounted (rag api --ui): its own login, not the API key


def parse_api_keys(value: str | None) -> list[str]:
    """``settings.api_key`` as a list of keys.

    The value is comma-separated keys, or the path of a file of keys (one a line, ``#``
    comments). Empty when no key is set (the API is then open).
    """
    if not value:
        return []
    candidate = Path(value).expanduser()
    if candidate.is_file():
        lines = candidate.read_text(encoding="utf-8").splitlines()
        keys = [k.strip() for k in lines if k.strip() and not k.strip().startswith("#")]
        where = f"the key file {candidate}"
    else:
        keys = [k.strip() for k in value.split(",") if k.strip()]
        where = "RAG_API_KEY"
    if not keys:
        raise ConfigError(f"No keys found in {where}.", hint="Put one key per line, or unset it.")
    return keys


def _is_page(path: str) -> bool:
    return path == UI_PATH or path.startswith(UI_PATH + "/")


class _Guard:
    """ASGI middleware: the bearer key, then the body size (413 beyond the limit)."""

    def __init__(self, app: ASGIApp, keys: list[str], upload_limit: int) -> None:
        self.app = app
        self.keys = [k.encode("utf-8") for k in keys]
        self.upload_limit = upload_limit

    async def _reply(self, send: Send, status: int, body: dict[str, Any], **headers: str) -> None:
        raw = json.dumps(body).encode("utf-8")
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
        head += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": raw})

    def _authorized(self, scope: Scope) -> bool:
        if not self.keys or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            return True
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return False
        return any(hmac.compare_digest(token, key) for key in self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if not self._authorized(scope):
            has_header = b"authorization" in dict(scope["headers"])
            message = "The API key is wrong." if has_header else "An API key is required."
            hint = "Send the header 'Authorization: Bearer <key>' with a key from RAG_API_KEY."
            await self._reply(
                send,
                401,
                error_body(401, message, code="invalid_api_key", hint=hint),
                www_authenticate="Bearer",
            )
            logger.info("%s %s -> 401", scope["method"], scope["path"])
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        uploads = scope["path"] == "/v1/ingest"
        limit = self.upload_limit if uploads and multipart else JSON_BODY_LIMIT
        if uploads and not multipart:
            limit = max(JSON_BODY_LIMIT, self.upload_limit // 50)
        too_large = error_body(
            413,
            f"The request body is larger than {limit / 1048576:g} MB.",
            code="body_too_large",
            hint="Send less at once (fewer files, shorter history).",
        )
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await self._reply(send, 413, too_large, connection="close")
            return
        received = 0
        exceeded = False
        started_response = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise ValueError("request body too large")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started_response
            if exceeded:
                return  # the 413 below replaces whatever the app answers
            if message["type"] == "http.response.start":
                started_response = True
                logger.info(
                    "%s %s -> %d (%.0f ms)",
                    scope["method"],
                    scope["path"],
                    message["status"],
                    (time.perf_counter() - started) * 1000,
                )
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started_response:
            await self._reply(send, 413, too_large, connection="close")


def _describe_stream_chunks(app: FastAPI) -> None:
    """Put the models used only in hand-written schema parts into the components.

    They are the stream chunk (inside an SSE response) and the JSON body of /v1/ingest.
    """
    from fastapi.openapi.utils import get_openapi

    from rag.api.schemas import ChatCompletionChunk, IngestRecords

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (ChatCompletionChunk, IngestRecords):
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in body.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_api_app(
    settings: Settings | None = None, *, chain: Any = None, warm: bool = False, ui: bool = False
) -> FastAPI:
    """The HTTP API over the assistant.

    Args:
        settings: configuration (default: from the environment and rag.toml).
        chain: an answering chain to use (default: :func:`rag.build_chain`, built on first use).
        warm: build the chain right away in the background, so the first question is quick.
        ui: also serve the chat page at ``/ui`` (its own login, ``RAG_AUTH``; no API key).
    """
    from rag import __version__
    from rag.api.chat import router as chat_router
    from rag.api.routes import router as assistant_router
    from rag.api.service import Assistant
    from rag.config import Settings
    from rag.ui.uploads import MAX_FILES_PER_UPLOAD

    settings = settings or Settings()
    keys = parse_api_keys(settings.api_key)  # a malformed key file fails here, before serving
    app = FastAPI(
        title="article-rag API",
        version=__version__,
        summary="Questions about news articles, answered with verified citations or refused.",
        description=(
            "OpenAI-compatible chat (`model: rag`) plus the assistant's own endpoints. "
            "Answers come only from the indexed articles; `citations` hold the supporting "
            "sentence of each cited passage. Set `Authorization: Bearer <key>` when the server "
            "has RAG_API_KEY."
        ),
    )
    app.state.assistant = Assistant(settings, chain)
    install_error_handlers(app)
    app.include_router(chat_router)
    app.include_router(assistant_router)
    upload_limit = int(settings.max_upload_mb * 1048576) * MAX_FILES_PER_UPLOAD + 1048576
    app.add_middleware(_Guard, keys=keys, upload_limit=upload_limit)
    _describe_stream_chunks(app)
    if warm:
        threading.Thread(
            target=app.state.assistant.warm_up, daemon=True, name="rag-api-warm"
        ).start()
    if ui:
        from rag.ui.app import build_app, mount_app

        app = mount_app(app, build_app(settings, chain=chain), settings, path=UI_PATH)
    return app
