"""The chat page's event handlers: asking, stopping, new chat, sources, votes, uploads.

Holds :class:`ChatHandlers`, whose plain methods Gradio calls on the page's events (so tests
can drive them without a browser), and the chain it builds on first use. The page's layout
and serving are :mod:`rag.ui.app`, which re-exports :class:`ChatHandlers`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag.answer.result import AnswerFolder
from rag.errors import RagError
from rag.ui import render
from rag.ui.feedback import FeedbackLog, feedback_record, rating_of
from rag.ui.turns import (
    apply_final,
    chat_history,
    chat_messages,
    new_turn,
    sources_html,
    turn_of_message,
)
from rag.ui.uploads import ingest_uploads

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["ChatHandlers"]

logger = logging.getLogger(__name__)

_STREAM_INTERVAL = 0.06  # seconds between chat repaints while tokens stream in


class _LazyChain:
    """Builds the chain on first use (so the page comes up even when the index is missing)."""

    def __init__(self, settings: Settings, chain: Any = None) -> None:
        self.settings = settings
        self._chain = chain
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._chain is None:
            with self._lock:
                if self._chain is None:
                    from rag.answer.chain import build_chain

                    self._chain = build_chain(self.settings)
        return self._chain


class ChatHandlers:
    """The page's event handlers (plain methods, so tests can drive them without a browser)."""

    def __init__(self, settings: Settings, chain: Any = None) -> None:
        self.settings = settings
        self.chain = _LazyChain(settings, chain)
        self.feedback = FeedbackLog(settings.data_dir / "feedback.jsonl")
        self._ingest_lock = threading.Lock()

    def warm_up(self) -> None:
        """Build the chain now (loads the models) so the first question is quick."""
        try:
            self.chain.get()
        except Exception as exc:  # shown again on the first question
            logger.warning("could not prepare the answering chain yet: %s", exc)

    def corpus_html(self) -> str:
        """Articles and chunks in the index."""
        try:
            from rag.status import collect_info

            return render.render_corpus(collect_info(self.settings))
        except RagError as exc:
            return render.render_corpus(None, error=str(exc))
        except Exception as exc:  # the page must come up regardless
            logger.exception("corpus statistics failed")
            return render.render_corpus(None, error=f"{type(exc).__name__}: {exc}")

    def respond(self, message: str, turns: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
        """Ask the chain; yields (chat messages, turns, sources html, question box) as it goes."""
        question = (message or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        turns = list(turns or [])
        history = chat_history(turns)
        turn = new_turn(question)
        turns.append(turn)
        i = len(turns) - 1
        yield (
            chat_messages(turns, i),
            turns,
            render.render_sources(i, question, [], pending=True),
            "",
        )
        last = time.monotonic()
        try:
            folder = AnswerFolder()
            for event in self.chain.get().stream({"input": question, "chat_history": history}):
                token = folder.add(event)
                if "standalone_question" in event:
                    turn["standalone"] = event["standalone_question"]
                if "context" in event:
                    turn["context"] = [render.passage_from_doc(d) for d in event["context"] or []]
                    yield (
                        chat_messages(turns, i),
                        turns,
                        sources_html(i, turn, live=True),
                        gr.skip(),
                    )
                    last = time.monotonic()
                if token is not None:
                    turn["answer"] = folder.streamed
                    if time.monotonic() - last >= _STREAM_INTERVAL:
                        yield chat_messages(turns, i), turns, gr.skip(), gr.skip()
                        last = time.monotonic()
            if not folder.complete:
                raise RagError("The answer ended before it was complete.")
            apply_final(turn, folder.result())
            turn["pending"] = False
        except RagError as exc:
            logger.warning("answer failed: %s", exc)
            turn.update(error=exc.message, hint=exc.hint, pending=False)
        except Exception as exc:
            logger.exception("answer failed")
            turn.update(
                error=f"Something went wrong while answering ({type(exc).__name__}).", pending=False
            )
        yield chat_messages(turns, i), turns, sources_html(i, turn), gr.skip()

    def stop(self, turns: list[dict[str, Any]]) -> tuple[Any, ...]:
        """The Stop button: the answer in progress is marked as stopped."""
        turns = list(turns or [])
        for turn in turns:
            if turn.get("pending"):
                turn.update(
                    pending=False, error="You stopped this answer before it finished.", hint=""
                )
        if not turns:
            return gr.skip(), gr.skip(), gr.skip()
        return chat_messages(turns), turns, sources_html(len(turns) - 1, turns[-1])

    def new_chat(self) -> tuple[Any, ...]:
        """Forget this session's conversation."""
        return [], [], render.render_sources_empty(), ""

    def show_sources(self, turns: list[dict[str, Any]], evt: gr.SelectData) -> Any:
        """Clicking an answer (or its [n] marker) shows that answer's sources."""
        i = turn_of_message(evt.index)
        if i is None or not turns or i >= len(turns):
            return gr.skip()
        return sources_html(i, turns[i])

    def vote(self, turns: list[dict[str, Any]], evt: gr.LikeData) -> None:
        """Thumbs up/down: one line in feedback.jsonl."""
        i = turn_of_message(evt.index)
        if i is None or not turns or i >= len(turns) or turns[i].get("pending"):
            return
        self.feedback.append(feedback_record(turns[i], rating_of(evt.liked)))

    def pick_example(self, evt: gr.SelectData) -> str:
        """The text of the example question clicked."""
        value = evt.value
        return str(value.get("text", "") if isinstance(value, dict) else value or "")

    def add_files(self, files: list[Any] | None) -> Iterator[tuple[Any, ...]]:
        """Save uploads, ingest them with visible progress; yields (status, corpus, file box)."""
        yield from ingest_uploads(files or [], self.settings, self._ingest_lock, self.corpus_html)
