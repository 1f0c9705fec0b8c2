"""`rag api`: the real server in a subprocess, driven by the official `openai` client and httpx.

Most servers run with the extractive backend and the model-free keyword embedder over the seed
article; one integration test uses the real bundled embedder.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.api.app import parse_api_keys
from rag.api.errors import ApiException
from rag.api.service import Gate, sources_text, strip_sources
from rag.errors import ConfigError

from .api_helpers import ApiServer, index_seed, running_api

openai = pytest.importorskip("openai")

KFOR_Q = "How many KFOR troops are there?"
KFOR_SENTENCE = "KFOR is made up of 3,700 troops"


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_seed(tmp_path_factory.mktemp("api-seed") / "data")


def _copy(index: Path, tmp: Path) -> Path:
    target = tmp / "data"
    shutil.copytree(index, target)
    return target


@pytest.fixture(scope="module")
def api(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The shared server (no key, RAG_CONCURRENCY=2) over a private copy of the seed index."""
    tmp = tmp_path_factory.mktemp("api")
    with running_api(_copy(seed_index, tmp), tmp) as server:
        yield server
    assert "Traceback" not in server.log_text()


def _client(server: ApiServer, key: str = "unused") -> Any:
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=60)


def _post(server: ApiServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.root}{path}", timeout=60, **kwargs)


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    return dict(body["error"])


# --- the OpenAI client ----------------------------------------------------------------------
def test_openai_client_answers_with_citations(api: ApiServer) -> None:
    reply = _client(api).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": KFOR_Q}]
    )
    content = reply.choices[0].message.content
    assert "3,700" in content
    assert "\n\nSources:\n[1] " in content and "infobae.com" in content
    extra = reply.model_extra
    assert extra["refused"] is False and extra["refusal_reason"] is None
    assert any(KFOR_SENTENCE in c["quote"] for c in extra["citations"])
    first = extra["citations"][0]
    assert set(first) >= {"n", "title", "source", "url", "published", "quote", "article_id"}
    assert extra["rag"]["standalone_question"] == KFOR_Q


def test_openai_client_streams_sources_first_then_tokens_then_citations(api: ApiServer) -> None:
    stream = _client(api).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": KFOR_Q}], stream=True
    )
    chunks = list(stream)
    first = chunks[0].model_extra or {}
    assert first["sources"] and first["sources"][0]["n"] == 1  # the passages, before any token
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "3,700" in text and "\n\nSources:\n[1] " in text
    final = next(c.model_extra for c in chunks if (c.model_extra or {}).get("citations"))
    assert "3,700" in final["answer"] and final["refused"] is False
    assert any(KFOR_SENTENCE in c["quote"] for c in final["citations"])
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    "extra", [{"append_sources": False}, {"rag": {"append_sources": False}}], ids=["top", "rag"]
)
def test_append_sources_can_be_turned_off(api: ApiServer, extra: dict[str, Any]) -> None:
    client = _client(api)
    messages = [{"role": "user", "content": KFOR_Q}]
    reply = client.chat.completions.create(model="rag", messages=messages, extra_body=extra)
    assert "Sources:" not in reply.choices[0].message.content
    assert reply.model_extra["citations"]
    chunks = list(
        client.chat.completions.create(
            model="rag", messages=messages, stream=True, extra_body=extra
        )
    )
    assert "Sources:" not in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_refusal_is_an_answer_with_refused_flag(api: ApiServer) -> None:
    reply = _client(api).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "What is the capital of Peru?"}]
    )
    assert reply.choices[0].message.content.startswith("The articles don't say")
    assert "Sources:" not in reply.choices[0].message.content
    assert reply.model_extra["refused"] is True and reply.model_extra["refusal_reason"]


def test_open_webui_style_sequence(api: ApiServer) -> None:
    """GET /v1/models, then a streamed completion with a system prompt and history (raw SSE)."""
    headers = {"Authorization": "Bearer sk-anything"}
    models = httpx.get(f"{api.url}/models", headers=headers, timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["rag"]
    first = _client(api).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": KFOR_Q}]
    )
    body = {
        "model": "rag",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": KFOR_Q},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": [{"type": "text", "text": "From how many countries?"}]},
        ],
    }
    events: list[str] = []
    with httpx.stream(
        "POST", f"{api.url}/chat/completions", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "rag" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    final = next(c for c in chunks if "refused" in c)
    assert final["refused"] is False, final
    assert "20 allied and 7 associated countries" in final["answer"]


# --- the assistant's own endpoints -------------------------------------------------------------
def test_ask_returns_the_whole_typed_output(api: ApiServer) -> None:
    out = _post(api, "/v1/ask", json={"question": KFOR_Q, "today": "2023-06-20"}).json()
    assert "3,700" in out["answer"] and out["refused"] is False
    assert out["standalone_question"] == KFOR_Q
    assert out["context"][0]["n"] == 1 and out["context"][0]["text"]
    assert out["context"][0]["metadata"]["article_id"]
    cite = out["citations"][0]
    assert KFOR_SENTENCE in cite["quote"] and cite["quote"] in cite["passage"]
    assert {"total_s", "retrieve_s"} <= set(out["timings"])
    assert "coverage" in out["evidence"] and out["model"]


def test_ingest_files_and_records_then_articles_then_ask(api: ApiServer, tmp_path: Path) -> None:
    article = tmp_path / "lunar-base.md"
    article.write_text(
        "---\ntitle: Lunar station opens\nsource: example.org\npublished: 2026-05-02\n---\n\n"
        "The lunar research station Artemis Base opened on Monday with 12 astronauts on board, "
        "the space agency said.\n",
        encoding="utf-8",
    )
    files = [
        ("files", ("lunar-base.md", article.read_bytes(), "text/markdown")),
        ("files", ("tool.exe", b"MZ...", "application/octet-stream")),
        ("files", ("empty.txt", b"", "text/plain")),
    ]
    reply = _post(api, "/v1/ingest", files=files)
    assert reply.status_code == 200, reply.text
    results = {r["name"]: r for r in reply.json()["files"]}
    assert results["lunar-base.md"]["status"] == "added"
    assert results["tool.exe"]["status"] == "rejected"
    assert results["tool.exe"]["reason"].startswith("not an article file type (allowed: txt")
    assert results["empty.txt"] == {
        "name": "empty.txt",
        "status": "rejected",
        "reason": "the file is empty",
        "articles": [],
    }
    again = _post(api, "/v1/ingest", files=files[:1]).json()
    assert again["files"][0]["status"] == "unchanged"

    record = {
        "title": "Mars rover finds ice",
        "text": "The Perseverance rover found water ice near Jezero crater, NASA said on Tuesday.",
        "source": "nasa.gov",
        "published": "2026-05-03",
        "id": "mars-ice",
    }
    reply = _post(api, "/v1/ingest", json={"records": [record]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["files"][0]["articles"] == ["mars-ice"]

    listing = httpx.get(f"{api.url}/articles", params={"limit": 2}, timeout=10).json()
    assert listing["total"] >= 3 and len(listing["data"]) == 2
    assert [a["id"] for a in listing["data"]] == [
        "mars-ice",
        results["lunar-base.md"]["articles"][0],
    ]
    assert listing["data"][1] | {"id": ""} == {
        "id": "",
        "title": "Lunar station opens",
        "source": "example.org",
        "url": "",
        "published": "2026-05-02",
        "chunks": 1,
    }
    rest = httpx.get(f"{api.url}/articles", params={"offset": 2}, timeout=10).json()
    assert any("KFOR" in a["title"] or "Kosovo" in a["title"] for a in rest["data"])

    out = _post(api, "/v1/ask", json={"question": "How many astronauts are on Artemis Base?"})
    assert "12 astronauts" in out.json()["answer"]
    assert out.json()["citations"][0]["title"] == "Lunar station opens"


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (
            {"files": [("files", ("a.exe", b"x", "application/x-msdownload"))]},
            400,
            "nothing_ingested",
            "not an article file type",
        ),
        ({"json": {"records": []}}, 400, "invalid_request", "records"),
        ({"json": {"records": [{"title": "x"}]}}, 400, "invalid_request", "text"),
        (
            {"content": b"{oops", "headers": {"content-type": "application/json"}},
            400,
            "invalid_request",
            "not valid JSON",
        ),
        (
            {"content": b"x", "headers": {"content-type": "text/plain"}},
            400,
            "invalid_request",
            "multipart/form-data",
        ),
    ],
    ids=["bad-type", "no-records", "no-text", "bad-json", "wrong-type"],
)
def test_ingest_bad_input(
    api: ApiServer, body: dict[str, Any], status: int, code: str, words: str
) -> None:
    reply = _post(api, "/v1/ingest", **body)
    assert reply.status_code == status, reply.text
    error = _error(reply)
    assert error["code"] == code and words in error["message"], error


def test_health_and_models(api: ApiServer) -> None:
    health = httpx.get(f"{api.root}/health", timeout=30)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["articles"] >= 1
    assert {c["name"] for c in body["checks"]} >= {"index", "llm"}
    card = httpx.get(f"{api.url}/models/rag", timeout=10).json()
    assert card["id"] == "rag" and card["object"] == "model"


def test_openapi_describes_the_citation_extras(api: ApiServer) -> None:
    schema = httpx.get(f"{api.root}/openapi.json", timeout=10).json()
    assert {
        "/v1/chat/completions",
        "/v1/models",
        "/v1/ask",
        "/v1/ingest",
        "/v1/articles",
        "/health",
    } <= set(schema["paths"])
    parts = schema["components"]["schemas"]
    assert {"citations", "refused", "refusal_reason"} <= set(parts["ChatCompletion"]["properties"])
    assert {"n", "title", "source", "url", "published", "quote", "article_id", "chunk_id"} <= set(
        parts["Citation"]["properties"]
    )
    assert {"sources", "answer", "citations"} <= set(parts["ChatCompletionChunk"]["properties"])
    assert "append_sources" in parts["RagOptions"]["properties"]
    assert "multipart/form-data" in schema["paths"]["/v1/ingest"]["post"]["requestBody"]["content"]


# --- errors --------------------------------------------------------------------------------
def _chat(question: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "rag", "messages": [{"role": "user", "content": question}], **extra}


ERROR_CASES = [
    (
        "bad-json",
        {
            "content": b'{"model": "rag", "messages": [',
            "headers": {"content-type": "application/json"},
        },
        400,
        "invalid_json",
        "not valid JSON",
    ),
    ("no-messages", {"json": {"model": "rag", "messages": []}}, 400, "invalid_request", "messages"),
    ("empty", {"json": _chat("   ")}, 400, "invalid_input", "The question is empty."),
    (
        "too-long",
        {"json": _chat("word " * 600)},
        400,
        "invalid_input",
        "the limit is 2000. Shorten it, or raise RAG_MAX_QUESTION_CHARS.",
    ),
    (
        "unknown-model",
        {"json": {**_chat(KFOR_Q), "model": "gpt-4o"}},
        404,
        "model_not_found",
        "The model 'gpt-4o' does not exist",
    ),
    (
        "assistant-last",
        {
            "json": {
                "model": "rag",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ],
            }
        },
        400,
        "no_question",
        "The last message must be the user's question.",
    ),
    (
        "bad-filter",
        {"json": _chat(KFOR_Q, rag={"filters": {"colour": "red"}})},
        400,
        "invalid_input",
        "Unknown filter(s): 'colour'.",
    ),
    (
        "bad-today",
        {"json": _chat(KFOR_Q, rag={"today": "yesterday"})},
        400,
        "invalid_input",
        "'today'",
    ),
    (
        "too-large",
        {
            "content": b'{"model": "rag", "messages": [{"role": "user", "content": "'
            + b"a" * (3 * 1024 * 1024)
            + b'"}]}',
            "headers": {"content-type": "application/json"},
        },
        413,
        "body_too_large",
        "larger than 2 MB",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_errors_are_json_with_status_and_the_server_stays_up(
    api: ApiServer, body: dict[str, Any], status: int, code: str, words: str, stream: bool
) -> None:
    if stream and "json" in body:
        body = {"json": {**body["json"], "stream": True}}
    reply = _post(api, "/v1/chat/completions", **body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = _error(reply)
    assert error["code"] == code and words in error["message"], error
    assert httpx.get(f"{api.url}/models", timeout=10).status_code == 200


def test_bad_queries_and_paths(api: ApiServer) -> None:
    for url, status in [
        (f"{api.url}/articles?limit=0", 400),
        (f"{api.url}/articles?offset=-1", 400),
        (f"{api.url}/articles?limit=abc", 400),
        (f"{api.url}/nowhere", 404),
        (f"{api.url}/models/gpt-4", 404),
    ]:
        reply = httpx.get(url, timeout=10)
        assert reply.status_code == status, (url, reply.text)
        _error(reply)
    assert _post(api, "/v1/ask", json={"question": "", "bogus": 1}).status_code == 400
    assert _post(api, "/v1/ask", json={"question": ""}).json()["error"]["code"] == "invalid_input"


def test_openai_client_raises_the_documented_errors(api: ApiServer) -> None:
    client = _client(api)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="rag", messages=[{"role": "user", "content": " "}])
    assert "The question is empty." in str(empty.value)


def test_twenty_concurrent_clients_get_answers_or_429(api: ApiServer) -> None:
    def one(i: int) -> tuple[int, bool, str | None, str]:
        stream = i % 3 == 0
        body = _chat(KFOR_Q if i % 2 else "Who did Stoltenberg meet?", stream=stream)
        reply = _post(api, "/v1/chat/completions", json=body)
        return reply.status_code, stream, reply.headers.get("retry-after"), reply.text

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    statuses = [status for status, *_ in results]
    assert set(statuses) <= {200, 429}, results
    assert statuses.count(200) >= 2
    for status, stream, retry_after, text in results:
        if status == 429:
            assert retry_after and json.loads(text)["error"]["code"] == "busy"
        elif stream:
            assert text.rstrip().endswith("data: [DONE]") and '"error"' not in text
        else:
            assert json.loads(text)["choices"][0]["message"]["content"]


# --- other servers -----------------------------------------------------------------------------
def test_keys_are_required_when_set(seed_index: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# clients\nkey-one\nkey-two\n", encoding="utf-8")
    with running_api(_copy(seed_index, tmp_path), tmp_path, RAG_API_KEY=str(keys)) as server:
        for headers, message in [
            ({}, "An API key is required."),
            ({"Authorization": "Bearer nope"}, "The API key is wrong."),
            ({"Authorization": "Basic a2V5LW9uZQ=="}, "The API key is wrong."),
        ]:
            reply = httpx.get(f"{server.url}/models", headers=headers, timeout=10)
            assert reply.status_code == 401
            assert reply.headers["www-authenticate"] == "Bearer"
            error = _error(reply)
            assert error["message"].startswith(message) and error["code"] == "invalid_api_key"
            assert "RAG_API_KEY" in error["hint"]
        with pytest.raises(openai.AuthenticationError):
            _client(server, "wrong").models.list()
        reply = _client(server, "key-two").chat.completions.create(
            model="rag", messages=[{"role": "user", "content": KFOR_Q}]
        )
        assert "3,700" in reply.choices[0].message.content
        assert httpx.get(f"{server.root}/health", timeout=30).status_code == 200  # open
        assert httpx.get(f"{server.root}/openapi.json", timeout=10).status_code == 200
    log = server.log_text()
    assert "key-one" not in log and "key-two" not in log and "Traceback" not in log
    # request sizes are logged, never questions or prompts
    assert KFOR_Q not in log and "Passages:" not in log


def test_model_backend_down_is_503_and_the_server_stays_up(
    seed_index: Path, tmp_path: Path
) -> None:
    env = {
        "RAG_LLM": "openai:x",
        "RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "RAG_LLM_TIMEOUT": "10",
    }
    with running_api(_copy(seed_index, tmp_path), tmp_path, **env) as server:
        for stream in (False, True):
            reply = _post(server, "/v1/chat/completions", json=_chat(KFOR_Q, stream=stream))
            assert reply.status_code == 503, reply.text
            error = _error(reply)
            assert error["code"] == "model_unavailable"
            assert error["message"].startswith("The language model (")
            assert "RAG_LLM=extractive" in error["hint"]
        assert _post(server, "/v1/ask", json={"question": KFOR_Q}).status_code == 503
        assert httpx.get(f"{server.url}/models", timeout=10).status_code == 200
    assert "Traceback" not in server.log_text()


def test_no_index_is_503_on_health_and_questions(tmp_path: Path) -> None:
    with running_api(tmp_path / "empty", tmp_path) as server:
        health = httpx.get(f"{server.root}/health", timeout=30)
        assert health.status_code == 503
        failing = [c for c in health.json()["checks"] if not c["ok"]]
        assert [c["name"] for c in failing] == ["index"]
        reply = _post(server, "/v1/chat/completions", json=_chat(KFOR_Q))
        assert reply.status_code == 503
        error = _error(reply)
        assert error["code"] == "index_not_found" and "rag ingest" in error["message"]
        assert httpx.get(f"{server.url}/articles", timeout=10).status_code == 503


@pytest.mark.skipif(
    shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None,
    reason="schemathesis is not installed",
)
def test_property_based_run_finds_no_server_errors(seed_index: Path, tmp_path: Path) -> None:
    """Schemathesis fuzzes every operation of /openapi.json for 8 s: never a 500."""
    cli = str(Path(sys.executable).parent / "schemathesis")
    with running_api(_copy(seed_index, tmp_path), tmp_path) as server:
        run = subprocess.run(
            [
                cli,
                "run",
                f"{server.root}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-time",
                "8",
                "--workers",
                "2",
                "--seed",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
            cwd=tmp_path,
        )
    # Schemathesis' own internal errors (e.g. a hypothesis SystemError while building a
    # strategy) are not the server's; a 500 shows as a FAILURES entry ("Server error").
    assert "FAILURES" not in run.stdout and "Server error" not in run.stdout, run.stdout[-4000:]
    assert " passed" in run.stdout, run.stdout[-4000:]
    log = server.log_text()
    assert "-> 500" not in log and "Traceback" not in log


@pytest.mark.integration
def test_real_embedder_openai_client_plain_and_streaming(tmp_path: Path) -> None:
    """Default settings (the bundled embedder), still the extractive LLM."""
    bundled = {"RAG_EMBEDDING_MODEL": "bundled"}
    data = index_seed(tmp_path / "data", **bundled)
    with running_api(data, tmp_path, timeout=180, **bundled) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", timeout=300, max_retries=0)
        messages = [{"role": "user", "content": KFOR_Q}]
        reply = client.chat.completions.create(model="rag", messages=messages)
        assert "3,700" in reply.choices[0].message.content
        assert any(KFOR_SENTENCE in c["quote"] for c in reply.model_extra["citations"])
        chunks = list(client.chat.completions.create(model="rag", messages=messages, stream=True))
        assert "3,700" in "".join(c.choices[0].delta.content or "" for c in chunks)
        final = next(c.model_extra for c in chunks if (c.model_extra or {}).get("citations"))
        assert any(KFOR_SENTENCE in c["quote"] for c in final["citations"])
        assert final["citations"] == reply.model_extra["citations"]
    assert "Traceback" not in server.log_text()


# --- pieces, in process --------------------------------------------------------------------------
def test_gate_queues_then_refuses() -> None:
    async def scenario() -> list[str]:
        gate = Gate(1, queue=1, wait_s=0.2)
        await gate.acquire()
        waiting = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0.01)
        outcomes = []
        try:
            await gate.acquire()  # one running, one waiting: no room
        except ApiException as exc:
            outcomes.append(f"{exc.status} {exc.headers}")
        gate.release()
        await waiting
        outcomes.append("queued one got the slot")
        try:
            await gate.acquire()
        except ApiException as exc:
            outcomes.append(f"{exc.status} after waiting")
        return outcomes

    assert asyncio.run(scenario()) == [
        "429 {'Retry-After': '2'}",
        "queued one got the slot",
        "429 after waiting",
    ]


def test_sources_text_and_strip() -> None:
    cites = [
        {"n": 2, "title": "B", "source": "b.org", "published": "2023-01-02", "url": "https://b"},
        {"n": 1, "title": "A", "source": "", "published": "", "url": ""},
        {"n": 2, "title": "B", "source": "b.org", "published": "2023-01-02", "url": "https://b"},
    ]
    text = sources_text(cites)
    assert text == "\n\nSources:\n[1] A\n[2] B (b.org, 2023-01-02) https://b"
    assert strip_sources("Answer [1]." + text) == "Answer [1]."
    assert sources_text([]) == ""


def test_parse_api_keys(tmp_path: Path) -> None:
    assert parse_api_keys(None) == []
    assert parse_api_keys(" a, b ,,c") == ["a", "b", "c"]
    empty = tmp_path / "keys"
    empty.write_text("# none yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="No keys found"):
        parse_api_keys(str(empty))


class _ScriptedChain:
    """Stands in for the chain: streams the given events, sleeping ``pause`` before the last."""

    def __init__(self, events: list[Any], pause: float = 0.0) -> None:
        self.events = events
        self.pause = pause

    def stream(self, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        import time

        for i, event in enumerate(self.events):
            if i == len(self.events) - 1 and self.pause:
                time.sleep(self.pause)
            if isinstance(event, BaseException):
                raise event
            yield event


def _scripted_app(tmp_path: Path, chain: _ScriptedChain, **settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from rag.api.app import build_api_app
    from rag.config import Settings

    return TestClient(build_api_app(Settings(data_dir=tmp_path, **settings), chain=chain))


def _sse_chunks(text: str) -> list[Any]:
    lines = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_a_verified_answer_that_differs_is_sent_after_the_tokens(tmp_path: Path) -> None:
    from langchain_core.documents import Document

    doc = Document("KFOR has 3,700 troops.", metadata={"n": 1, "title": "T", "article_id": "a"})
    cite = {
        "n": 1,
        "title": "T",
        "source": "",
        "url": "",
        "published": "",
        "quote": "KFOR has 3,700 troops.",
        "article_id": "a",
        "chunk_id": "a#1",
        "support": 0.9,
    }
    chain = _ScriptedChain(
        [
            {"standalone_question": "q"},
            {"context": [doc]},
            {"answer": "KFOR has 3,700 troops "},
            {"answer": "and 900 tanks."},
            {
                "final": {
                    "answer": "KFOR has 3,700 troops [1].",
                    "citations": [cite],
                    "refused": False,
                }
            },
        ]
    )
    with _scripted_app(tmp_path, chain) as client:
        reply = client.post("/v1/chat/completions", json=_chat("q", stream=True))
    chunks = _sse_chunks(reply.text)
    assert chunks[0]["sources"][0]["title"] == "T"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == (
        "KFOR has 3,700 troops and 900 tanks.\n\nChecked against the passages:\n"
        "KFOR has 3,700 troops [1].\n\nSources:\n[1] T"
    )
    assert chunks[-2]["answer"] == "KFOR has 3,700 troops [1]."


def test_a_failure_mid_stream_is_an_error_event(tmp_path: Path) -> None:
    from rag.errors import ModelError

    chain = _ScriptedChain(
        [
            {"standalone_question": "q"},
            {"context": []},
            {"answer": "Half an"},
            ModelError("The language model failed: boom", hint="Check the LLM settings."),
        ]
    )
    with _scripted_app(tmp_path, chain) as client:
        reply = client.post("/v1/chat/completions", json=_chat("q", stream=True))
        assert reply.status_code == 200  # the tokens had started
        error = _sse_chunks(reply.text)[-1]["error"]
        assert error["code"] == "model_unavailable"
        assert error["message"] == "The language model failed: boom Check the LLM settings."
        plain = client.post("/v1/chat/completions", json=_chat("q"))
        assert plain.status_code == 503 and plain.json()["error"]["code"] == "model_unavailable"


def test_a_slot_is_held_until_the_answer_stops_even_if_the_client_left(tmp_path: Path) -> None:
    from rag.api.service import Assistant
    from rag.config import Settings

    chain = _ScriptedChain([{"standalone_question": "q"}, {"final": {"answer": "a"}}], pause=0.3)
    assistant = Assistant(Settings(data_dir=tmp_path, concurrency=1), chain=chain)

    async def scenario() -> list[bool]:
        events = assistant.events({"input": "q"})
        await events.__anext__()
        await events.aclose()  # the client hung up
        held = assistant.gate._sem.locked()
        await asyncio.sleep(0.6)
        return [held, assistant.gate._sem.locked()]

    assert asyncio.run(scenario()) == [True, False]


def test_an_answer_still_running_when_the_server_loop_closes_ends_quietly(
    tmp_path: Path,
) -> None:
    import threading

    from rag.api.service import Assistant
    from rag.config import Settings

    chain = _ScriptedChain([{"standalone_question": "q"}, {"final": {"answer": "a"}}], pause=0.3)
    assistant = Assistant(Settings(data_dir=tmp_path, concurrency=1), chain=chain)
    failures: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)
    try:

        async def scenario() -> None:
            events = assistant.events({"input": "q"})
            await events.__anext__()  # the answer thread is now mid-stream

        loop = asyncio.new_event_loop()
        loop.run_until_complete(scenario())
        loop.close()  # shutdown while the model is still generating
        worker = next(t for t in threading.enumerate() if t.name == "rag-api-answer")
        worker.join(timeout=5)
        assert not worker.is_alive()
    finally:
        threading.excepthook = previous
    assert failures == []


def test_the_chat_page_can_share_the_api_port(tmp_path: Path) -> None:
    """`rag api --ui`: the page at /ui with its own login, the API still behind its key."""
    pytest.importorskip("gradio")
    from fastapi.testclient import TestClient

    from rag.api.app import build_api_app
    from rag.config import Settings

    app = build_api_app(
        Settings(data_dir=tmp_path, api_key="s3cret", llm="extractive"),
        chain=_ScriptedChain([]),
        ui=True,
    )
    client = TestClient(app)
    page = client.get("/ui/")
    assert page.status_code == 200
    assert "Ask the news" in page.text
    assert client.get("/v1/models").status_code == 401
    models = client.get("/v1/models", headers={"Authorization": "Bearer s3cret"})
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "rag"
