"""The assistant's own endpoints: ``/v1/ask``, ``/v1/ingest``, ``/v1/articles``, ``/health``."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from rag.api.chat import _ERRORS
from rag.api.errors import ApiException, error_body
from rag.api.schemas import (
    ArticleInfo,
    ArticleList,
    AskRequest,
    AskResponse,
    HealthResponse,
    IngestRecord,
    IngestRecords,
    IngestResponse,
)
from rag.api.service import Assistant, citation_fields
from rag.ui.uploads import MAX_FILES_PER_UPLOAD, UPLOAD_SUFFIXES

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()


def _assistant(request: Request) -> Assistant:
    return request.app.state.assistant


@router.post(
    "/v1/ask",
    response_model=AskResponse,
    tags=["Assistant"],
    responses={s: _ERRORS[s] for s in (400, 401, 413, 429, 503)},
)
async def ask(req: AskRequest, request: Request) -> AskResponse:
    """The chain's whole typed output: answer, citations, refusal, evidence, passages, timings."""
    payload: dict[str, Any] = {
        "input": req.question,
        "chat_history": [m.model_dump() for m in req.chat_history],
    }
    if req.today:
        payload["today"] = req.today
    if req.filters:
        payload["filters"] = req.filters
    logger.info("ask: %d chars", len(req.question))
    out = await _assistant(request).answer(payload)
    refused = bool(out.get("refused"))
    return AskResponse(
        answer=out.get("answer", ""),
        raw_answer=out.get("raw_answer", ""),
        citations=[citation_fields(c, full=True) for c in out.get("citations", [])],
        refused=refused,
        refusal_reason=out.get("refusal_reason") if refused else None,
        standalone_question=out.get("standalone_question", ""),
        context=[
            {"n": d.metadata.get("n", i), "text": d.page_content, "metadata": dict(d.metadata)}
            for i, d in enumerate(out.get("context", []), start=1)
        ],
        evidence=dict(out.get("evidence", {})),
        verification=dict(out["verification"]) if "verification" in out else None,
        timings=dict(out.get("timings", {})),
        model=out.get("model", ""),
        small_talk=bool(out.get("small_talk")),
    )


_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Article files: "
                            + ", ".join(s.lstrip(".") for s in UPLOAD_SUFFIXES)
                            + f"; at most {MAX_FILES_PER_UPLOAD} per request, each up to "
                            "RAG_MAX_UPLOAD_MB.",
                        }
                    },
                    "required": ["files"],
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/IngestRecords"}},
        },
    }
}


async def _read_request(request: Request, tmp: Path) -> tuple[list[Any], list[IngestRecord]]:
    from rag.api.ingest import Upload

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = IngestRecords.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            message = (
                "The request body is not valid JSON."
                if first.get("type") == "json_invalid"
                else f"Invalid records: {where}: {str(first.get('msg', '')).rstrip('.')}."
            )
            raise ApiException(
                400,
                message,
                code="invalid_request",
                hint='Send {"records": [{"title": ..., "text": ...}]}.',
            ) from None
        return [], body.records
    if kind != "multipart/form-data":
        raise ApiException(
            400,
            "Send article files as multipart/form-data (field 'files') or JSON records.",
            code="invalid_request",
            hint='e.g. curl -F files=@article.txt, or {"records": [{"title", "text"}]}.',
        )
    form = await request.form(max_files=MAX_FILES_PER_UPLOAD + 50, max_fields=100)
    uploads: list[Any] = []
    try:
        for position, item in enumerate(form.getlist("files")):
            if not isinstance(item, UploadFile):
                continue
            spooled = tmp / f"{position:04d}"
            with spooled.open("wb") as fh:
                await asyncio.to_thread(shutil.copyfileobj, item.file, fh)
            uploads.append(Upload(str(spooled), item.filename or f"file-{position + 1}"))
    finally:
        await form.close()
    return uploads, []


@router.post(
    "/v1/ingest",
    response_model=IngestResponse,
    tags=["Assistant"],
    openapi_extra=_INGEST_BODY,
    responses={s: _ERRORS[s] for s in (400, 401, 413, 503)},
)
async def ingest(request: Request) -> Any:
    """Index uploaded article files (multipart, field ``files``) or JSON ``records``.

    Files go to ``<data dir>/uploads/`` with the web page's checks (type allowlist,
    RAG_MAX_UPLOAD_MB, at most 50 per request); each gets a result: added, updated,
    unchanged, rejected or failed, with the reason. 400 when nothing could be taken.
    """
    from rag.api.ingest import ingest_files

    assistant = _assistant(request)
    with tempfile.TemporaryDirectory(prefix="rag-api-upload-") as tmp:
        uploads, records = await _read_request(request, Path(tmp))
        if not uploads and not records:
            raise ApiException(
                400,
                "No files were sent.",
                code="no_files",
                param="files",
                hint="Send one or more article files in the multipart field 'files'.",
            )
        response, taken = await asyncio.to_thread(
            ingest_files, uploads, records, assistant.settings, assistant.ingest_lock
        )
    if not taken:
        reason = next((f.reason for f in response.files if f.reason), "")
        message = f"Nothing was added{f': {reason}' if reason else ''}."
        body = error_body(400, message, code="nothing_ingested")
        body["files"] = [f.model_dump() for f in response.files]
        return JSONResponse(body, 400)
    return response


@router.get(
    "/v1/articles",
    response_model=ArticleList,
    tags=["Assistant"],
    responses={s: _ERRORS[s] for s in (400, 401, 503)},
)
async def articles(
    request: Request,
    offset: int = Query(0, ge=0, description="Articles to skip."),
    limit: int = Query(50, ge=1, le=500, description="Articles to return."),
) -> ArticleList:
    """What is indexed, newest first (from the index manifest)."""
    assistant = _assistant(request)
    snap = await asyncio.to_thread(lambda: assistant.index().snapshot())
    ordered = sorted(snap.articles.values(), key=lambda a: (a.published or "", a.id), reverse=True)
    return ArticleList(
        total=len(ordered),
        offset=offset,
        limit=limit,
        data=[
            ArticleInfo(
                id=a.id,
                title=a.title,
                source=a.source,
                url=a.url,
                published=a.published,
                chunks=len(a.chunk_ids),
            )
            for a in ordered[offset : offset + limit]
        ],
    )


@router.get(
    "/health",
    response_model=HealthResponse,
    tags=["Assistant"],
    responses={503: {"model": HealthResponse, "description": "Some check failed."}},
)
async def health(request: Request) -> JSONResponse:
    """Index and model status, as ``rag info`` checks them: 200 when usable, else 503."""
    from rag.status import collect_info

    info = await asyncio.to_thread(collect_info, _assistant(request).settings)
    ok = all(c["ok"] for c in info["checks"])
    body = HealthResponse(
        status="ok" if ok else "unavailable",
        checks=info["checks"],
        articles=info["index"].get("articles"),
        chunks=info["index"].get("chunks"),
        embedder=str(info.get("embedder", "")),
        llm=str(info.get("llm", "")),
    )
    return JSONResponse(body.model_dump(), 200 if ok else 503)
