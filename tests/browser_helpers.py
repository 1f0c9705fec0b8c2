"""Test helpers for the chat page: a scripted fake chain and an in-process app server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig

from rag.answer.cite import SOURCE_KEYS
from rag.errors import ModelError

KFOR_PASSAGE = (
    "Should the situation worsen, Stoltenberg stressed that KFOR is ready to intervene. "
    "He recalled that KFOR is made up of 3,700 troops from 20 allied and 7 associated countries. "
    "Talks continue in Brussels."
)
KFOR_QUOTE = (
    "He recalled that KFOR is made up of 3,700 troops from 20 allied and 7 associated countries."
)
OTHER_PASSAGE = "Kosovo proclaimed its independence in 2008, which Serbia does not recognise."
EVIL_PASSAGE = (
    'Payload <script>window.__xss = "passage"</script> and '
    "<img src=x onerror=\"window.__xss='img'\">."
)
EVIL_ANSWER = (
    "Injected <img src=x onerror=\"window.__xss='answer'\"> and "
    "[click me](javascript:window.__xss='md') and <script>window.__xss='script'</script> [1]."
)


def _doc(n: int, text: str, **meta: Any) -> Document:
    base = {
        "n": n,
        "chunk_id": f"fake-{n}",
        "article_id": f"article-{n}",
        "title": f"Article {n}",
        "source": "example.org",
        "url": f"https://example.org/{n}",
        "published": "2022-08-17",
        "start": 0,
        "end": len(text),
        "dense_rank": n,
        "bm25_rank": n + 1,
        "fused_rank": n,
        "score": round(1 / (60 + n), 4),
    }
    base.update(meta)
    return Document(page_content=text, metadata=base)


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


class FakeChain(Runnable[dict[str, Any], dict[str, Any]]):
    """Emits the events of :func:`rag.chain.build_chain`'s ``stream()`` from a script.

    Questions mentioning "KFOR" are answered with a citation; "boom" fails like a timed-out
    model; "payload" returns hostile answer and article text; anything else is refused.
    ``token_delay`` pauses before the first token (sources must show meanwhile).
    """

    def __init__(self, *, token_delay: float = 0.0, model: str = "fake-model") -> None:
        self.token_delay = token_delay
        self.model = model
        self.calls: list[dict[str, Any]] = []

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for event in self.stream(input, config):
            if "final" in event:
                out.update(event["final"])
        return out

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        started = time.perf_counter()
        self.calls.append(
            {"input": input["input"], "chat_history": list(input.get("chat_history") or [])}
        )
        question = input["input"]
        history = input.get("chat_history") or []
        standalone = question
        if history and len(question.split()) < 6:
            standalone = f"{question} (about: {history[-2]['content']})"
        yield {"standalone_question": standalone}
        lower = standalone.lower()
        if "payload" in lower:
            context = [
                _doc(
                    1,
                    EVIL_PASSAGE,
                    title="<img src=x onerror=\"window.__xss='title'\">Evil",
                    url="javascript:window.__xss='url'",
                    source="<b>bold</b>",
                )
            ]
        else:
            context = [
                _doc(1, KFOR_PASSAGE, title="NATO ready to intervene in Kosovo"),
                _doc(2, OTHER_PASSAGE),
            ]
        yield {"context": context}
        if "boom" in lower:
            raise ModelError(
                "The language model took longer than 120s.",
                hint="Raise RAG_LLM_TIMEOUT or use a faster backend.",
            )
        if self.token_delay:
            time.sleep(self.token_delay)
        first = round(time.perf_counter() - started, 3)
        if "kfor" in lower:
            answer = (
                "KFOR is made up of 3,700 troops from 20 allied and 7 associated countries [1]."
            )
            start = KFOR_PASSAGE.index(KFOR_QUOTE)
            citations = [
                {
                    **{k: context[0].metadata[k] for k in SOURCE_KEYS},
                    "passage": KFOR_PASSAGE,
                    "quote": KFOR_QUOTE,
                    "quote_start": start,
                    "quote_end": start + len(KFOR_QUOTE),
                    "supported": True,
                }
            ]
            refused = False
        elif "payload" in lower:
            answer = EVIL_ANSWER
            citations = [
                {
                    **{k: context[0].metadata[k] for k in SOURCE_KEYS},
                    "passage": EVIL_PASSAGE,
                    "quote": EVIL_PASSAGE[:20],
                    "quote_start": 0,
                    "quote_end": 20,
                    "supported": True,
                }
            ]
            refused = False
        else:
            answer = "The articles don't say."
            citations = []
            refused = True
        for token in _tokens(answer):
            yield {"answer": token}
        yield {
            "final": {
                "answer": answer,
                "citations": citations,
                "refused": refused,
                "timings": {
                    "condense_s": 0.0,
                    "retrieve_s": 0.01,
                    "first_token_s": first,
                    "total_s": round(time.perf_counter() - started, 3),
                },
                "model": self.model,
            }
        }


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningApp:
    """A chat page served in this process."""

    url: str
    settings: Any
    demo: Any
    chain: Any = None

    def close(self) -> None:
        self.demo.close()


def start_app(settings: Any, chain: Any = None) -> RunningApp:
    """Build and serve the page on a free 127.0.0.1 port without blocking."""
    from rag.ui.app import build_app, launch_app

    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    demo = build_app(settings, chain=chain)
    launch_app(demo, settings, prevent_thread_lock=True, quiet=True)
    return RunningApp(url=f"http://127.0.0.1:{port}/", settings=settings, demo=demo, chain=chain)
