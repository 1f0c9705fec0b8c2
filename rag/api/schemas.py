"""Request and response models of the HTTP API (they are what ``/openapi.json`` describes).

The OpenAI-compatible models carry only the fields clients read, plus this project's extras:
``citations``, ``refused``, ``refusal_reason`` and ``rag`` on a completion, and ``sources`` /
``citations`` on stream chunks. Unknown request fields (``temperature``, ``stream_options``,
...) are accepted and ignored, as OpenAI clients send many.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.answer.result import RefusalReason

__all__ = [
    "MODEL_ID",
    "ApiError",
    "ArticleInfo",
    "ArticleList",
    "AskRequest",
    "AskResponse",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatMessage",
    "ChatRequest",
    "Citation",
    "ContextPassage",
    "ErrorBody",
    "HealthCheck",
    "HealthResponse",
    "IngestRecord",
    "IngestRecords",
    "IngestResponse",
    "IngestResult",
    "ModelCard",
    "ModelList",
    "RagOptions",
    "Source",
]

MODEL_ID = "rag"
"""The one model name the API serves: the whole assistant (retrieval, citations, refusals)."""


# --- errors ------------------------------------------------------------------------------
class ApiError(BaseModel):
    """An error, shaped like OpenAI's: ``message`` holds the message and the hint in one line."""

    message: str = Field(description="What went wrong and what to do next (as the CLI prints it).")
    type: str = Field(
        description="invalid_request_error, authentication_error, not_found_error, "
        "rate_limit_error, service_unavailable or server_error."
    )
    code: str | None = Field(None, description="A stable machine-readable code.")
    param: str | None = Field(None, description="The request field at fault, if one is.")
    hint: str = Field("", description="The hint part of ``message`` on its own.")


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {...}}`` (``files`` too when an ingest took nothing)."""

    error: ApiError
    files: list[IngestResult] | None = None


# --- shared pieces -----------------------------------------------------------------------
class Source(BaseModel):
    """A passage retrieved for the question (sent before the answer; not yet verified)."""

    n: int = Field(description="The passage number the answer's [n] markers refer to.")
    title: str
    source: str = Field("", description="The publisher.")
    url: str = ""
    published: str = Field("", description="Publication date, YYYY-MM-DD (empty if unknown).")
    article_id: str | None = None
    chunk_id: str | None = None


class Citation(Source):
    """A verified citation: passage ``[n]`` and the sentence in it that supports the answer."""

    quote: str = Field(description="The supporting sentence, verbatim from the passage.")
    support: float = Field(0.0, description="How strongly the quote supports the claim (0-1).")


class RagOptions(BaseModel):
    """Per-request options of this assistant (the ``rag`` field of a chat completion request)."""

    model_config = ConfigDict(extra="forbid")

    append_sources: bool | None = Field(
        None,
        description="Append '\\n\\nSources:\\n[1] Title (source, date) url' lines to the answer "
        "text (default true), for clients that ignore the ``citations`` field.",
    )
    today: str | None = Field(
        None, description="Today's date (YYYY-MM-DD) for time-aware questions; default: now."
    )
    filters: dict[str, Any] | None = Field(
        None,
        description="Restrict retrieval: {source, published_from, published_to, article_ids}.",
    )


# --- OpenAI-compatible chat --------------------------------------------------------------
class ChatMessage(BaseModel):
    """One message: ``content`` is text or a list of ``{"type": "text", "text": ...}`` parts."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(description="user, assistant, system (ignored) or developer (ignored).")
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``.

    The last user message is the question, earlier user and assistant messages the history;
    system messages are ignored (the assistant's rules are fixed). Other OpenAI fields
    (temperature, max_tokens, ...) are accepted and ignored.
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(MODEL_ID, description="Must be 'rag' (see GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    append_sources: bool | None = Field(
        None, description="Same as rag.append_sources (a top-level shortcut)."
    )
    rag: RagOptions | None = Field(None, description="Options of this assistant.")


class AssistantMessage(BaseModel):
    """The answer: verified text (plus 'Sources:' lines unless turned off)."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class RagExtras(BaseModel):
    """Details of how the answer was made."""

    standalone_question: str = Field("", description="The question as retrieval saw it.")
    backend: str = Field("", description="The language model behind the assistant.")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per step.")
    small_talk: bool = False


class ChatCompletion(BaseModel):
    """A chat completion, with the citations in extra top-level fields."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]
    usage: None = Field(None, description="Token counts are not reported.")
    citations: list[Citation] = Field(
        default_factory=list, description="Verified citations of the answer (extra field)."
    )
    refused: bool = Field(False, description="True when the articles don't answer the question.")
    refusal_reason: RefusalReason | None = None
    rag: RagExtras | None = None


class Delta(BaseModel):
    """The text added by one stream chunk."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one choice of a stream chunk."""

    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a streamed completion (SSE; ``data: [DONE]`` ends the stream).

    The first chunk carries ``sources`` (the retrieved passages, before any answer token); the
    last content chunk carries ``answer`` (the verified text), ``citations``, ``refused`` and
    ``refusal_reason``. A failure mid-stream is sent as ``data: {"error": {...}}``.
    """

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str = MODEL_ID
    choices: list[ChunkChoice]
    sources: list[Source] | None = None
    answer: str | None = Field(None, description="The verified answer (last content chunk).")
    citations: list[Citation] | None = None
    refused: bool | None = None
    refusal_reason: RefusalReason | None = None


class ModelCard(BaseModel):
    """A model the API serves."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "article-rag"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- /v1/ask -----------------------------------------------------------------------------
class HistoryMessage(BaseModel):
    """A previous turn."""

    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    """``POST /v1/ask``: one question, optionally with history, date and filters."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question (at most RAG_MAX_QUESTION_CHARS characters).")
    chat_history: list[HistoryMessage] = Field(default_factory=list)
    today: str | None = Field(None, description="YYYY-MM-DD; default: now.")
    filters: dict[str, Any] | None = Field(
        None, description="{source, published_from, published_to, article_ids}."
    )


class FullCitation(Citation):
    """A citation with its passage and offsets."""

    passage: str = ""
    span: list[int | None] = Field(
        default_factory=list, description="The passage's span in its article."
    )
    quote_start: int = Field(0, description="The quote's start offset in ``passage``.")
    quote_end: int = 0
    supported: bool = True


class ContextPassage(BaseModel):
    """A passage given to the answer step."""

    n: int
    text: str
    metadata: dict[str, Any]


class AskResponse(BaseModel):
    """The chain's full output."""

    answer: str = Field(description="The verified answer (a refusal starts 'The articles don't').")
    raw_answer: str = Field("", description="What the model produced before verification.")
    citations: list[FullCitation] = Field(default_factory=list)
    refused: bool = False
    refusal_reason: RefusalReason | None = None
    standalone_question: str = ""
    context: list[ContextPassage] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    verification: dict[str, int] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    model: str = Field("", description="The language model behind the answer.")
    small_talk: bool = False


# --- /v1/ingest --------------------------------------------------------------------------
class IngestRecord(BaseModel):
    """One article given as JSON."""

    model_config = ConfigDict(extra="forbid")

    title: str = ""
    text: str = Field(min_length=1)
    url: str | None = None
    source: str | None = None
    published: str | None = Field(None, description="A date, e.g. 2023-06-14.")
    id: str | None = Field(None, description="Stable article id (re-posting it updates it).")


class IngestRecords(BaseModel):
    """``POST /v1/ingest`` with a JSON body."""

    model_config = ConfigDict(extra="forbid")

    records: list[IngestRecord] = Field(min_length=1)


class IngestResult(BaseModel):
    """What happened to one uploaded file (or the JSON records)."""

    name: str
    status: Literal["added", "updated", "unchanged", "rejected", "failed"]
    reason: str = ""
    articles: list[str] = Field(default_factory=list, description="Article ids it holds.")


class IngestResponse(BaseModel):
    """Per-file results and the index totals."""

    files: list[IngestResult]
    summary: str
    articles_total: int = 0
    chunks_total: int = 0


# --- /v1/articles, /health ---------------------------------------------------------------
class ArticleInfo(BaseModel):
    """One indexed article."""

    id: str
    title: str
    source: str = ""
    url: str = ""
    published: str = ""
    chunks: int


class ArticleList(BaseModel):
    """A page of the index, newest first."""

    object: Literal["list"] = "list"
    total: int
    offset: int
    limit: int
    data: list[ArticleInfo]


class HealthCheck(BaseModel):
    """One check of ``rag info``."""

    name: str
    ok: bool
    detail: str


class HealthResponse(BaseModel):
    """Whether the assistant can answer (200) or not (503)."""

    status: Literal["ok", "unavailable"]
    checks: list[HealthCheck]
    articles: int | None = None
    chunks: int | None = None
    embedder: str = ""
    llm: str = ""


ErrorBody.model_rebuild()
