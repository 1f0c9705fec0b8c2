"""An evaluation report whose questions, ids, answers and errors carry hostile text.

What an article, a generated suite or a model answer could bring into ``report.md``: HTML,
script, image and link markup, Markdown emphasis, code spans and table pipes, character
references, a terminal escape and line breaks. Used by ``tests/test_evals.py`` (rendered with
markdown-it, raw HTML allowed, as the least careful viewer would) and ``tests/test_browser.py``
(the rendered report in Chromium).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.evals.report import write_report

__all__ = ["HOSTILE_TEXT", "render_report", "shown_text", "write_hostile_report"]

HOSTILE_TEXT = (
    "<script>window.__xss='script'</script> <img src=x onerror=\"window.__xss='img'\"> "
    "[click](javascript:window.__xss='link') ![pic](http://evil.example/x.png) "
    "<https://evil.example/auto> <b onmouseover=\"window.__xss='b'\">bold</b> **strong** "
    "`code` | cell | &lt;i&gt; # 1. \x1b[31mred\x1b[0m\nsecond line"
)


def shown_text(text: str) -> str:
    """What a reader must see of ``text``: the same characters, control characters as spaces."""
    return " ".join(text.replace("\x1b", " ").split())


def write_hostile_report(out: Path) -> Path:
    """Write a report with hostile text in every free-text field; returns ``report.md``."""
    from rag.evals.runner import summarize

    questions = [
        {
            "id": f"q{i}`<b>`|{i}",
            "question": f"{HOSTILE_TEXT} {i}",
            "answerable": True,
            "error": HOSTILE_TEXT if i == 2 else None,
            "answer": HOSTILE_TEXT,
            "retrieval_ms": 10.0,
            "total_ms": 100.0,
            "ttft_ms": 50.0,
            "metrics": {"hit@5": 0.0, "hit@10": 0.0, "correct": 0.0},
        }
        for i in range(3)
    ]
    report: dict[str, Any] = {
        "suite": "<i>suite</i>",
        "mode": "answer",
        "created": "now",
        "seconds": 1,
        "model": "[model](javascript:alert(1))",
        "settings": {"k": 5},
        "systems": {"rag": {"summary": summarize(questions), "questions": questions}},
    }
    return write_report(report, out)["md"]


def render_report(md: Path) -> str:
    """``report.md`` as HTML, by CommonMark with tables and raw HTML passed through."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md.read_text("utf-8"))
