"""Thumbs up/down on answers, appended as JSON lines to ``<data_dir>/feedback.jsonl``."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.answer.cite import SOURCE_KEYS

__all__ = ["FeedbackLog", "feedback_record", "rating_of"]

_lock = threading.Lock()


def rating_of(liked: Any) -> str:
    """Gradio's ``LikeData.liked`` as "up", "down" or "cleared" (a vote taken back)."""
    if liked is True:
        return "up"
    if liked is False:
        return "down"
    text = str(liked or "").strip().lower()
    if text in ("like", "up", "true"):
        return "up"
    if text in ("dislike", "down", "false"):
        return "down"
    return "cleared" if not text else text[:40]


def feedback_record(turn: Mapping[str, Any], rating: str) -> dict[str, Any]:
    """What one vote stores: the question, the answer shown, its citations, a UTC timestamp."""
    citations = [
        {k: c.get(k) for k in (*SOURCE_KEYS, "quote", "supported")}
        for c in turn.get("citations") or []
    ]
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "rating": rating,
        "question": turn.get("question", ""),
        "standalone_question": turn.get("standalone"),
        "answer": turn.get("answer", ""),
        "refused": bool(turn.get("refused")),
        "error": turn.get("error"),
        "model": turn.get("model"),
        "citations": citations,
    }


class FeedbackLog:
    """Appends records to one JSONL file; safe across threads of this process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str)
        with _lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record so far (for tests and reports)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
