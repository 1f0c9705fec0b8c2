"""The OpenAI-compatible endpoints: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Any OpenAI client (the ``openai`` package, Open WebUI, LibreChat, ...) reaches the whole
assistant this way: the last user message is the question, earlier user and assistant messages
are the history. The verified answer is ``choices[0].message.content``; its citations are in
the extra ``citations`` field and, unless ``append_sources`` is false, also appended to the text
as numbered "Sources:" lines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rag.answer.result import AnswerFolder, RagAnswer
from rag.api.errors import ApiException, error_body, rag_error_status
from rag.api.schemas import (
    MODEL_ID,
    ChatCompletion,
    ChatRequest,
    ErrorBody,
    ModelCard,
    ModelList,
    RagOptions,
)
from rag.api.service import (
    Assistant,
    citation_fields,
    completion_id,
    now,
    source_fields,
    sources_text,
    strip_sources,
)
from rag.errors import RagError

__all__ = ["chat_payload", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "Bad input: malformed JSON, no user message, an empty or too long question."),
        (401, "A key is required (RAG_API_KEY) and was missing or wrong."),
        (404, "Unknown model."),
        (413, "The request body is too large."),
        (429, "Too many answers at once; retry after Retry-After seconds."),
        (503, "The index is missing or the language model is unreachable."),
    )
}
CHECKED_HEADER = "\n\nChecked against the passages:\n"


def _assistant(request: Request) -> Assistant:
    return request.app.state.assistant


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content or ""


def chat_payload(req: ChatRequest) -> tuple[dict[str, Any], bool]:
    """The chain input for an OpenAI request, and whether to append the sources text.

    Raises:
        ApiException: an unknown model (404) or no user message last (400).
    """
    if req.model != MODEL_ID:
        raise ApiException(
            404,
            f"The model '{req.model}' does not exist; this server serves '{MODEL_ID}'.",
            code="model_not_found",
            param="model",
            hint="List the models with GET /v1/models.",
        )
    turns = [(m.role, _text(m.content)) for m in req.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise ApiException(
            400,
            "The last message must be the user's question.",
            code="no_question",
            param="messages",
            hint="End 'messages' with {'role': 'user', 'content': '...'}.",
        )
    history = [
        {"role": role, "content": strip_sources(text) if role == "assistant" else text}
        for role, text in turns[:-1]
    ]
    options = req.rag or RagOptions()
    payload: dict[str, Any] = {"input": turns[-1][1], "chat_history": history}
    if options.today:
        payload["today"] = options.today
    if options.filters:
        payload["filters"] = options.filters
    append = next((v for v in (options.append_sources, req.append_sources) if v is not None), True)
    return payload, append


def _extras(out: RagAnswer) -> dict[str, Any]:
    refused = bool(out.get("refused"))
    return {
        "citations": [citation_fields(c) for c in out.get("citations", [])],
        "refused": refused,
        "refusal_reason": out.get("refusal_reason") if refused else None,
    }


@router.get("/models", response_model=ModelList, responses={401: _ERRORS[401]})
async def list_models() -> ModelList:
    """The one model: ``rag``, the assistant (retrieval, verified citations, refusals)."""
    return ModelList(data=[ModelCard(id=MODEL_ID, created=now())])


@router.get("/models/{model}", response_model=ModelCard, responses={404: _ERRORS[404]})
async def get_model(model: str) -> ModelCard:
    """One model's card (only ``rag`` exists)."""
    if model != MODEL_ID:
        raise ApiException(
            404,
            f"The model '{model}' does not exist; this server serves '{MODEL_ID}'.",
            code="model_not_found",
            param="model",
        )
    return ModelCard(id=MODEL_ID, created=now())


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **_ERRORS,
        200: {
            "description": "A chat.completion, or with stream=true an SSE stream of "
            "chat.completion.chunk events (see ChatCompletionChunk) ending with data: [DONE].",
            "content": {
                "text/event-stream": {
                    "schema": {"$ref": "#/components/schemas/ChatCompletionChunk"}
                }
            },
        },
    },
)
async def chat_completions(req: ChatRequest, request: Request) -> Any:
    """Answer the last user message from the indexed articles, with verified citations.

    Extra response fields: ``citations`` ([{n, title, source, url, published, quote,
    article_id, chunk_id, support}]), ``refused``, ``refusal_reason`` and ``rag``. Set
    ``"append_sources": false`` (or ``"rag": {"append_sources": false}``) to get the answer
    text without the appended "Sources:" lines.
    """
    payload, append = chat_payload(req)
    assistant = _assistant(request)
    logger.info("chat completion: %d chars, stream=%s", len(payload["input"]), req.stream)
    if req.stream:
        return await _stream(assistant, payload, append)
    out = await assistant.answer(payload)
    extras = _extras(out)
    content = out.get("answer", "")
    if append and not extras["refused"]:
        content += sources_text(out.get("citations", []))
    return ChatCompletion(
        id=completion_id(),
        created=now(),
        choices=[{"message": {"content": content}}],
        rag={
            "standalone_question": out.get("standalone_question", ""),
            "backend": out.get("model", ""),
            "timings": dict(out.get("timings", {})),
            "small_talk": bool(out.get("small_talk")),
        },
        **extras,
    )


async def _stream(
    assistant: Assistant, payload: dict[str, Any], append: bool
) -> StreamingResponse | JSONResponse:
    """Start the answer; errors before the first token still get their HTTP status."""
    events = assistant.events(payload)
    early: list[Mapping[str, Any]] = []
    try:
        async for event in events:
            early.append(event)
            if "answer" in event or "final" in event:
                break
    except RagError as exc:
        status, code = rag_error_status(exc)
        logger.warning("request failed (%d %s): %s", status, code, exc)
        return JSONResponse(error_body(status, exc.message, code=code, hint=exc.hint), status)
    return StreamingResponse(
        _sse(events, early, append),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _data(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _sse(
    events: AsyncIterator[Mapping[str, Any]], early: list[Mapping[str, Any]], append: bool
) -> AsyncIterator[str]:
    cid, created = completion_id(), now()

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        body.update(extra)
        return _data(body)

    async def all_events() -> AsyncIterator[Mapping[str, Any]]:
        for event in early:
            yield event
        async for event in events:
            yield event

    folder = AnswerFolder()
    started = False
    try:
        async for event in all_events():
            token = folder.add(event)
            if "context" in event:
                sources = [source_fields(d) for d in event["context"] or []]
                yield chunk({"role": "assistant", "content": ""}, sources=sources)
                started = True
            if token:
                if not started:
                    yield chunk({"role": "assistant", "content": ""})
                    started = True
                yield chunk({"content": token})
        if not folder.complete:
            raise RagError("The answer ended before it was complete.")
        out = folder.result()
        extras = _extras(out)
        verified, streamed = out.get("answer", ""), folder.streamed
        text = ""
        if verified.strip() != streamed.strip():
            text = CHECKED_HEADER + verified if streamed.strip() else verified
        if append and not extras["refused"]:
            text += sources_text(out.get("citations", []))
        delta: dict[str, Any] = {"content": text} if text else {}
        if not started:
            delta["role"] = "assistant"
        yield chunk(delta, answer=verified, **extras)
        yield chunk({}, finish="stop")
    except RagError as exc:
        status, code = rag_error_status(exc)
        logger.warning("stream failed (%d %s): %s", status, code, exc)
        yield _data(error_body(status, exc.message, code=code, hint=exc.hint))
    except Exception as exc:
        logger.exception("stream failed")
        message = f"Internal error ({type(exc).__name__}); the server log has the details."
        yield _data(error_body(500, message, code="internal_error"))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    yield "data: [DONE]\n\n"
