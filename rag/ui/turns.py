"""Turns: one question and its answer, kept per browser session in ``gr.State``.

A turn is a plain dict (question, passages, answer, citations, timings, error, pending). Here:
making one, folding the chain's final event into it, the chat history the chain is given, and
the chat messages and sources panel drawn from the turns (HTML from :mod:`rag.ui.render`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag.ui import render

__all__ = [
    "apply_final",
    "assistant_html",
    "chat_history",
    "chat_messages",
    "new_turn",
    "sources_html",
    "turn_of_message",
]


def new_turn(question: str) -> dict[str, Any]:
    """A turn for ``question``, pending until the chain has answered."""
    return {
        "question": question,
        "standalone": None,
        "context": [],
        "answer": "",
        "citations": [],
        "refused": False,
        "timings": {},
        "model": None,
        "extra": {},
        "error": None,
        "hint": "",
        "pending": True,
    }


def chat_history(turns: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Earlier completed turns in the chain's chat_history format."""
    out: list[dict[str, str]] = []
    for turn in turns:
        if turn.get("pending") or turn.get("error"):
            continue
        out.append({"role": "user", "content": turn["question"]})
        out.append({"role": "assistant", "content": turn["answer"]})
    return out


def assistant_html(index: int, turn: dict[str, Any], *, live: bool) -> str:
    """The assistant message of turn ``index``; ``live``: it is being written right now."""
    if turn.get("error"):
        return render.render_error(turn["error"], hint=turn.get("hint", ""))
    if turn.get("pending"):
        if turn["answer"]:
            if live:
                return render.render_answer(
                    index, turn["answer"], context=turn["context"], streaming=True
                )
            return render.render_error("The answer was stopped before it finished.")
        if not live:
            return render.render_error("The answer was stopped before it finished.")
        step = "Reading the passages…" if turn["context"] else "Searching the articles…"
        return f'<div class="rag-answer rag-waiting">{step}</div>'
    trace = render.render_trace(
        question=turn["question"],
        standalone=turn["standalone"],
        context=turn["context"],
        citations=turn["citations"],
        timings=turn["timings"],
        model=turn["model"],
        refused=turn["refused"],
        extra=turn["extra"],
    )
    return render.render_answer(
        index,
        turn["answer"],
        context=turn["context"],
        citations=turn["citations"],
        refused=turn["refused"],
        trace_html=trace,
    )


def chat_messages(turns: Sequence[dict[str, Any]], live: int | None = None) -> list[dict[str, str]]:
    """The chat as Gradio messages; ``live`` is the index of the turn being written, if any."""
    out: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        out.append({"role": "user", "content": render.render_user(turn["question"])})
        out.append({"role": "assistant", "content": assistant_html(i, turn, live=i == live)})
    return out


def sources_html(index: int, turn: dict[str, Any], *, live: bool = False) -> str:
    """The sources panel for turn ``index``."""
    return render.render_sources(
        index,
        turn["question"],
        turn["context"],
        citations=turn["citations"],
        refused=turn["refused"],
        pending=bool(turn.get("pending") and live and not turn.get("error")),
        error=bool(turn.get("error")),
    )


def turn_of_message(index: Any) -> int | None:
    """The turn a chat message belongs to (Gradio gives the message index), or ``None``."""
    if isinstance(index, (list, tuple)):
        index = index[0] if index else None
    try:
        return int(index) // 2
    except (TypeError, ValueError):
        return None


def apply_final(turn: dict[str, Any], final: Mapping[str, Any]) -> None:
    """Fold the chain's final event (answer, citations, refusal, timings, model) into ``turn``."""
    final = dict(final)
    turn["answer"] = str(final.pop("answer", turn["answer"]) or "")
    turn["citations"] = list(final.pop("citations", None) or [])
    turn["refused"] = bool(final.pop("refused", False))
    turn["timings"] = dict(final.pop("timings", None) or {})
    turn["model"] = final.pop("model", None)
    turn["extra"] = {
        k: v for k, v in final.items() if k in ("refusal_reason", "verification", "kind")
    }
