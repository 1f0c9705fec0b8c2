"""Locust users for the real servers: chat sessions through `rag api` and through `rag serve`.

Run headless against a server you started (``benchmarks/bench_load.py`` and
``tests/test_load.py`` start one, index corpus/, and ingest new articles during the run):

    locust -f benchmarks/locustfile.py --headless -u 24 -r 8 -t 60s \\
        --host http://127.0.0.1:8000 ApiChatUser
    locust -f benchmarks/locustfile.py --headless -u 24 -r 8 -t 60s \\
        --host http://127.0.0.1:7860 PageChatUser

A session is a question from the seed suite (evals/seed/qa.jsonl), then a follow-up that only
makes sense with the history. ``ApiChatUser`` goes through the OpenAI-compatible
``/v1/chat/completions`` (plain, and streamed every other session) and ``/v1/ask``;
``PageChatUser`` goes through the page's own Gradio queue (``/gradio_api/call/respond``, the
event the Ask button fires, one Gradio session per chat so the follow-up has the history) and
also loads the page, to see that it stays responsive.

A 429 from the API's gate ("The assistant is busy ...; try again shortly." with Retry-After)
is not an error: it is logged under its own name ("... [429 busy]"), counted, and the user
retries after Retry-After seconds like a polite client. A 429 without that message or header,
any other status, a malformed answer, an answer without citations that is not a refusal, or a
page event that ends in an error is a failure.

Counters that Locust's table does not hold (answers, refusals, answers with citations, 429s
with and without the clear message, retries given up) are written as JSON to the file named
by ``RAG_LOAD_REPORT`` when the run ends.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

SEED = Path(__file__).resolve().parents[1] / "evals" / "seed" / "qa.jsonl"
FOLLOW_UPS = [
    "Who said that?",
    "When did that happen?",
    "Can you tell me more about that?",
    "Why does that matter?",
    "How many troops is that?",
]
MAX_RETRIES = 5
"""429s in a row before a user gives up on one question (each one waits Retry-After)."""
BUSY_WORDS = ("busy", "try again")
"""What the API's 429 message says (rag.api.service.Gate)."""

COUNTS: Counter[str] = Counter()
ANSWER_MS: list[float] = []
"""Time of every answered question (queue wait included; 429 waits not), for p50/p95."""
_LOCK = threading.Lock()


def _count(key: str, n: int = 1) -> None:
    with _LOCK:
        COUNTS[key] += n


def seed_questions() -> list[dict[str, Any]]:
    """The seed suite's questions (answerable ones, and unanswerable ones that should refuse)."""
    rows = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines() if line]
    return [{"question": r["question"], "answerable": bool(r["answerable"])} for r in rows]


QUESTIONS = seed_questions()


@events.test_stop.add_listener
@events.quitting.add_listener
def _write_report(environment: Any, **_kwargs: Any) -> None:
    path = os.environ.get("RAG_LOAD_REPORT")
    if path:
        report = {**COUNTS, "answer_ms": [round(ms, 1) for ms in ANSWER_MS]}
        Path(path).write_text(json.dumps(report) + "\n", encoding="utf-8")


class _BusyError(Exception):
    """A 429 with the clear message: wait ``seconds`` and send again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _busy_ok(response: Any) -> bool:
    """A 429 that tells the user what happened (message) and when to come back (Retry-After)."""
    try:
        message = str(response.json()["error"]["message"]).lower()
    except (ValueError, KeyError, TypeError):
        return False
    retry_after = response.headers.get("Retry-After", "")
    return all(w in message for w in BUSY_WORDS) and retry_after.strip().isdigit()


def _sse_lines(response: Any) -> list[str]:
    return [
        line if isinstance(line, str) else line.decode("utf-8", "replace")
        for line in response.iter_lines()
        if line
    ]


class ApiChatUser(HttpUser):
    """Chat sessions through `rag api`: OpenAI-compatible chat (plain and streamed) and /v1/ask."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.sessions = 0

    # --- one request, with the 429 protocol -----------------------------------------------
    def _send(self, name: str, path: str, body: dict[str, Any], *, stream: bool) -> Any:
        """POST ``body``; returns the parsed answer (dict), or None when it failed or gave up."""
        for _attempt in range(MAX_RETRIES):
            try:
                return self._send_once(name, path, body, stream=stream)
            except _BusyError as retry:
                time.sleep(retry.seconds)
        _count("gave_up_after_429s")
        return None

    def _send_once(self, name: str, path: str, body: dict[str, Any], *, stream: bool) -> Any:
        started = time.perf_counter()
        with self.client.post(
            path, json=body, name=name, stream=stream, catch_response=True, timeout=180
        ) as reply:
            if reply.status_code == 429:
                if _busy_ok(reply):
                    _count("busy_429_clear")
                    reply.request_meta["name"] = f"{name} [429 busy]"
                    reply.success()
                    raise _BusyError(float(reply.headers["Retry-After"]))
                _count("busy_429_unclear")
                reply.failure(f"429 without the clear message or Retry-After: {reply.text[:200]}")
                return None
            if reply.status_code != 200:
                reply.failure(f"HTTP {reply.status_code}: {reply.text[:200]}")
                return None
            try:
                out = self._stream_answer(reply) if stream else reply.json()
            except Exception as exc:
                reply.failure(f"unreadable answer: {type(exc).__name__}: {exc}")
                return None
            # a streamed request is timed to its last byte, not to the headers
            elapsed_ms = (time.perf_counter() - started) * 1000
            reply.request_meta["response_time"] = elapsed_ms
            problem = self._check(out)
            if problem:
                reply.failure(problem)
                return None
            reply.success()
            ANSWER_MS.append(elapsed_ms)
            return out

    @staticmethod
    def _stream_answer(reply: Any) -> dict[str, Any]:
        """The last chunk with the verified answer and citations, from an SSE chat stream."""
        final: dict[str, Any] = {}
        text = []
        done = False
        for line in _sse_lines(reply):
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(f"error event in the stream: {chunk['error']}")
            text.append(chunk["choices"][0]["delta"].get("content") or "")
            if "refused" in chunk:
                final = chunk
        if not done or not final:
            raise RuntimeError("the stream ended without the final chunk and [DONE]")
        return {**final, "content": "".join(text)}

    @staticmethod
    def _check(out: dict[str, Any]) -> str:
        """'' when ``out`` is a well-formed answer: cited, or an explicit refusal."""
        if out.get("refused"):
            _count("refusals")
            return ""
        if not out.get("citations"):
            return "an answer that is neither refused nor cited"
        _count("answers_with_citations")
        return ""

    # --- the sessions ---------------------------------------------------------------------
    @task(3)
    def chat_session(self) -> None:
        """A question, then a follow-up with the history (streamed every other session)."""
        self.sessions += 1
        stream = self.sessions % 2 == 0
        first = random.choice(QUESTIONS)["question"]
        messages: list[dict[str, str]] = [{"role": "user", "content": first}]
        body = {"model": "rag", "messages": messages, "stream": False}
        out = self._send("POST /v1/chat/completions", "/v1/chat/completions", body, stream=False)
        if out is None:
            return
        _count("questions")
        answer = out["choices"][0]["message"]["content"]
        messages += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": random.choice(FOLLOW_UPS)},
        ]
        body = {"model": "rag", "messages": messages, "stream": stream}
        name = "POST /v1/chat/completions (follow-up" + (", stream)" if stream else ")")
        if self._send(name, "/v1/chat/completions", body, stream=stream) is not None:
            _count("questions")

    @task(1)
    def ask_session(self) -> None:
        """/v1/ask: the whole typed output (passages, citations), then a follow-up."""
        first = random.choice(QUESTIONS)["question"]
        out = self._send("POST /v1/ask", "/v1/ask", {"question": first}, stream=False)
        if out is None:
            return
        _count("questions")
        if not out.get("context") and not out.get("refused"):
            _count("ask_without_passages")
        history = [
            {"role": "user", "content": first},
            {"role": "assistant", "content": out["answer"]},
        ]
        body = {"question": random.choice(FOLLOW_UPS), "chat_history": history}
        if self._send("POST /v1/ask (follow-up)", "/v1/ask", body, stream=False) is not None:
            _count("questions")

    @task(1)
    def health(self) -> None:
        self.client.get("/health", name="GET /health")


class PageChatUser(HttpUser):
    """Chat sessions through the page of `rag serve`, as the browser's Ask button sends them."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.client.get("/", name="GET / (page)")

    def _respond(self, session: str, question: str, name: str) -> dict[str, Any] | None:
        """One question through the page's queue; the final outputs, or None on failure.

        Timed from joining the queue to the completed answer (queue wait included); the
        outputs are (chat messages, sources panel HTML, question box).
        """
        started = time.perf_counter()
        exc: Exception | None = None
        outputs: Any = None
        length = 0
        try:
            join = self.client.post(
                "/gradio_api/call/respond",
                json={"data": [question, None], "session_hash": session},
                name="POST /gradio_api/call/respond (join queue)",
                timeout=60,
            )
            join.raise_for_status()
            event_id = join.json()["event_id"]
            event = ""
            with self.client.get(
                f"/gradio_api/call/respond/{event_id}",
                name="GET /gradio_api/call/respond/{id} (stream headers)",
                stream=True,
                catch_response=True,
                timeout=300,
            ) as reply:
                if reply.status_code == 200:
                    for line in _sse_lines(reply):
                        length += len(line)
                        if line.startswith("event: "):
                            event = line[7:].strip()
                        elif line.startswith("data: ") and event in ("complete", "error"):
                            outputs = json.loads(line[6:])
                            break
                    reply.success()  # the answer itself is judged by the PAGE row below
                else:
                    reply.failure(f"HTTP {reply.status_code}: {reply.text[:200]}")
            if event != "complete":
                raise RuntimeError(f"the page's event ended with {event or 'nothing'}: {outputs}")
            problem = self._check(outputs)
            if problem:
                raise RuntimeError(problem)
        except Exception as error:
            exc = error
        elapsed_ms = (time.perf_counter() - started) * 1000
        if exc is None:
            ANSWER_MS.append(elapsed_ms)
        self.environment.events.request.fire(
            request_type="PAGE",
            name=name,
            response_time=elapsed_ms,
            response_length=length,
            exception=exc,
            context={},
        )
        return None if exc else {"outputs": outputs}

    @staticmethod
    def _check(outputs: Any) -> str:
        """'' when the last chat message is an answer with citations, or a refusal."""
        messages = outputs[0] if isinstance(outputs, list) and outputs else None
        if not messages:
            return f"no chat messages in the page's outputs: {str(outputs)[:200]}"
        last = messages[-1]
        content = str(last.get("content") if isinstance(last, dict) else last)
        if "rag-error" in content:
            return f"the page shows an error: {content[:300]}"
        if "rag-refusal" in content:
            _count("refusals")
            return ""
        if "rag-cite" not in content:
            return f"an answer without citations that is not a refusal: {content[:300]}"
        _count("answers_with_citations")
        sources = json.dumps(outputs[1:])  # the sources panel, after the chat
        if "rag-card" not in sources:
            _count("answers_without_sources_panel")
        return ""

    @task(4)
    def chat_session(self) -> None:
        """A question and a follow-up in one Gradio session (the page keeps the history)."""
        session = uuid.uuid4().hex[:11]
        first = random.choice(QUESTIONS)["question"]
        if self._respond(session, first, "page: question (queue + answer)") is None:
            return
        _count("questions")
        follow = random.choice(FOLLOW_UPS)
        if self._respond(session, follow, "page: follow-up (queue + answer)") is not None:
            _count("questions")

    @task(1)
    def reload_page(self) -> None:
        """What a new visitor loads first: the page and its config (responsiveness)."""
        self.client.get("/", name="GET / (page)")
        self.client.get("/config", name="GET /config")
