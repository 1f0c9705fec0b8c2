"""Errors as OpenAI-style JSON: ``{"error": {"message", "type", "code", "param", "hint"}}``.

Library errors keep the CLI's one line (message, then hint) in ``message``. Status codes:
bad input 400, a wrong or missing key 401, an unknown model or path 404, a body too large
413, too many requests at once 429 (with ``Retry-After``), an index, model or store that
cannot be used 503; anything unexpected is a 500 without a traceback (it is logged).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    ConfigError,
    DocumentError,
    IndexNotFoundError,
    InputError,
    ModelError,
    RagError,
    StoreError,
)

__all__ = ["ApiException", "error_body", "install_error_handlers", "rag_error_status"]

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class ApiException(Exception):  # noqa: N818 - named like HTTPException
    """An error response the API sends on purpose."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        hint: str = "",
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.hint = hint
        self.param = param
        self.headers = headers
        self.extra = extra or {}


def error_body(
    status: int, message: str, *, code: str | None, hint: str = "", param: str | None = None
) -> dict[str, Any]:
    """The JSON body of an error response."""
    full = f"{message} {hint}".strip() if hint and hint not in message else message
    return {
        "error": {
            "message": full,
            "type": _TYPES.get(status, "server_error"),
            "code": code,
            "param": param,
            "hint": hint,
        }
    }


def rag_error_status(exc: RagError) -> tuple[int, str]:
    """The status code and error code a library error is answered with."""
    if isinstance(exc, InputError | DocumentError):
        return 400, "invalid_input"
    if isinstance(exc, IndexNotFoundError):
        return 503, "index_not_found"
    if isinstance(exc, ModelError):
        return 503, "model_unavailable"
    if isinstance(exc, StoreError):
        return 503, "store_unavailable"
    if isinstance(exc, ConfigError):
        return 503, "config_error"
    return 503, "unavailable"


def rag_error_response(exc: RagError) -> JSONResponse:
    """A library error as a JSON response (message and hint as the CLI prints them)."""
    status, code = rag_error_status(exc)
    logger.warning("request failed (%d %s): %s", status, code, exc)
    return JSONResponse(error_body(status, exc.message, code=code, hint=exc.hint), status)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            return f"The request body is not valid JSON{f' ({detail})' if detail else ''}.", None
    parts: list[str] = []
    param: str | None = None
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        param = param or where
        parts.append(f"{where}: {str(err.get('msg', 'invalid')).rstrip('.')}")
    return f"Invalid request: {'; '.join(parts)}.", param


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the JSON shape above."""

    @app.exception_handler(ApiException)
    async def _api(request: Request, exc: ApiException) -> JSONResponse:
        body = error_body(exc.status, exc.message, code=exc.code, hint=exc.hint, param=exc.param)
        body.update(exc.extra)
        return JSONResponse(body, exc.status, headers=exc.headers)

    @app.exception_handler(RagError)
    async def _rag(request: Request, exc: RagError) -> JSONResponse:
        return rag_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        code = (
            "invalid_json" if message.startswith("The request body is not") else "invalid_request"
        )
        hint = "See /docs or /openapi.json for the request format."
        return JSONResponse(error_body(400, message, code=code, hint=hint, param=param), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = str(exc.detail) if exc.detail else "Error."
        if status == 404:
            message = f"No such endpoint: {request.method} {request.url.path}."
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, f"http_{status}")
        hint = "See /docs for the endpoints." if status in (404, 405) else ""
        return JSONResponse(
            error_body(status, message, code=code, hint=hint),
            status,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(json.JSONDecodeError)
    async def _json(request: Request, exc: json.JSONDecodeError) -> JSONResponse:
        message = f"The request body is not valid JSON ({exc.msg} at line {exc.lineno})."
        return JSONResponse(error_body(400, message, code="invalid_json"), 400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error in %s %s", request.method, request.url.path)
        message = f"Internal error ({type(exc).__name__}); the server log has the details."
        return JSONResponse(error_body(500, message, code="internal_error"), 500)
