"""The assistant behind the HTTP API: one lazily built chain, bounded answers at once.

The chain's output is turned into the API's shapes here too.

Answers run ``chain.stream`` in a worker thread (the work is CPU-bound) and hand events to the
event loop as they come. A slot of the gate is held until that thread has finished, so no more
than ``RAG_CONCURRENCY`` answers ever run at once, even when clients hang up mid-answer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from rag.answer.result import AnswerFolder, RagAnswer
from rag.api.errors import ApiException

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from rag.answer.chain import RagChain
    from rag.config import Settings
    from rag.index.snapshot import Index

__all__ = [
    "Assistant",
    "Gate",
    "citation_fields",
    "source_fields",
    "sources_text",
    "strip_sources",
]

logger = logging.getLogger(__name__)

QUEUE_PER_SLOT = 8
"""Requests that may wait for a slot, per slot; beyond that the API answers 429 at once."""
QUEUE_WAIT_S = 20.0
"""How long a request waits for a slot before it is answered 429."""
SOURCES_HEADER = "\n\nSources:\n"

_DONE = object()


class Gate:
    """At most ``slots`` answers at once; a short queue; 429 ``Retry-After`` beyond it."""

    def __init__(
        self, slots: int, *, queue: int | None = None, wait_s: float = QUEUE_WAIT_S
    ) -> None:
        self.slots = slots
        self.max_waiting = QUEUE_PER_SLOT * slots if queue is None else queue
        self.wait_s = wait_s
        self._sem = asyncio.Semaphore(slots)
        self._waiting = 0

    def _busy(self) -> ApiException:
        return ApiException(
            429,
            f"The assistant is busy ({self.slots} answers at once, "
            f"{self.max_waiting} waiting); try again shortly.",
            code="busy",
            hint="Retry after the number of seconds in the Retry-After header.",
            headers={"Retry-After": "2"},
        )

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if there is room; raises the 429 otherwise."""
        if self._sem.locked() and self._waiting >= self.max_waiting:
            raise self._busy()
        self._waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), self.wait_s)
        except TimeoutError:
            raise self._busy() from None
        finally:
            self._waiting -= 1

    def release(self) -> None:
        """Give a slot back (from the event loop's thread)."""
        self._sem.release()


class Assistant:
    """The answering chain (built on first use, then shared) and the gate in front of it."""

    def __init__(self, settings: Settings, chain: Any = None) -> None:
        self.settings = settings
        self._chain: RagChain | None = chain
        self._lock = threading.Lock()
        self._index: Index | None = None
        self.gate = Gate(settings.concurrency)
        self.ingest_lock = threading.Lock()

    def chain(self) -> RagChain:
        """The chain, built once (a failed build is retried by the next request)."""
        if self._chain is None:
            with self._lock:
                if self._chain is None:
                    from rag.answer.chain import build_chain

                    self._chain = build_chain(self.settings)
        return self._chain

    def warm_up(self) -> None:
        """Build the chain now so the first question is quick (errors wait for a request)."""
        try:
            self.chain()
        except Exception as exc:  # reported on the first request
            logger.warning("could not prepare the answering chain yet: %s", exc)

    def index(self) -> Index:
        """The index snapshot provider (refreshes itself when the store changes)."""
        if self._index is None:
            from rag.index.snapshot import Index

            self._index = Index(self.settings)
        return self._index

    async def events(self, payload: dict[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        """The chain's stream events for ``payload``, holding a gate slot while it runs.

        Raises the 429 :class:`ApiException` before the first event when the gate is full;
        library errors from the chain are re-raised here.
        """
        await self.gate.acquire()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def on_loop(callback: Any, *args: Any) -> None:
            # At shutdown the server's loop may close while a model is still generating: the
            # consumer is gone then, so there is nobody to tell (no "Event loop is closed").
            try:
                loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:
                stop.set()

        def put(item: Any) -> None:
            on_loop(events.put_nowait, item)

        def pump() -> None:
            try:
                stream = cast(
                    "Generator[Mapping[str, Any], None, None]", self.chain().stream(payload)
                )
                try:
                    for event in stream:
                        put(event)
                        if stop.is_set():
                            break
                finally:
                    stream.close()  # stops a model mid-generation when the client left
            except BaseException as exc:  # handed to the consumer
                put(exc)
            finally:
                put(_DONE)
                on_loop(self.gate.release)

        threading.Thread(target=pump, daemon=True, name="rag-api-answer").start()
        try:
            while True:
                item = await events.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    async def answer(self, payload: dict[str, Any]) -> RagAnswer:
        """The whole answer (the stream folded with :class:`AnswerFolder`)."""
        folder = AnswerFolder()
        async for event in self.events(payload):
            folder.add(event)
        return folder.result()


# --- shaping the chain's output -----------------------------------------------------------
def source_fields(doc: Document) -> dict[str, Any]:
    """A retrieved passage as a :class:`rag.api.schemas.Source` dict."""
    meta = doc.metadata
    return {
        "n": int(meta.get("n", 0)),
        "title": str(meta.get("title") or meta.get("article_id") or ""),
        "source": str(meta.get("source") or ""),
        "url": str(meta.get("url") or ""),
        "published": str(meta.get("published") or ""),
        "article_id": meta.get("article_id"),
        "chunk_id": meta.get("chunk_id") or meta.get("id"),
    }


def citation_fields(citation: Mapping[str, Any], *, full: bool = False) -> dict[str, Any]:
    """A chain citation as a :class:`rag.api.schemas.Citation` (or ``FullCitation``) dict."""
    keys = ("n", "title", "source", "url", "published", "quote", "article_id", "chunk_id")
    out = {k: citation.get(k) for k in keys}
    for k in ("title", "source", "url", "published", "quote"):
        out[k] = str(out[k] or "")
    out["support"] = round(float(citation.get("support") or 0.0), 4)
    if full:
        for k in ("passage", "span", "quote_start", "quote_end", "supported"):
            if k in citation:
                out[k] = citation[k]
    return out


def unique_citations(citations: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One citation per passage number, in order of first use."""
    seen: set[int] = set()
    out = []
    for c in citations:
        if c.get("n") not in seen:
            seen.add(int(c.get("n") or 0))
            out.append(c)
    return out


def sources_text(citations: Sequence[Mapping[str, Any]]) -> str:
    """Blank line, ``Sources:``, then ``[1] Title (source, date) url`` lines ("" if none)."""
    lines = []
    for c in sorted(unique_citations(citations), key=lambda c: int(c.get("n") or 0)):
        extra = ", ".join(str(x) for x in (c.get("source"), c.get("published")) if x)
        line = f"[{c.get('n')}] {c.get('title') or c.get('article_id') or 'untitled'}"
        line += f" ({extra})" if extra else ""
        line += f" {c['url']}" if c.get("url") else ""
        lines.append(line)
    return SOURCES_HEADER + "\n".join(lines) if lines else ""


def strip_sources(text: str) -> str:
    """An earlier answer of ours without the 'Sources:' lines appended to it."""
    head, sep, _ = text.rpartition(SOURCES_HEADER)
    return head if sep else text


def completion_id() -> str:
    """A fresh ``chatcmpl-`` id."""
    import uuid

    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Seconds since the epoch (the ``created`` field)."""
    return int(time.time())
