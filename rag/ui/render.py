"""Chat messages for the chat page.

The question, the answer (citations linked, refusal styling, copy button, the "How this was
answered" trace) and the error message.

Built from the escaping and citation helpers of :mod:`rag.ui.markup` (which says how untrusted
text is kept inert). This module is also the one place to import all of the page's HTML from:
it re-exports :mod:`rag.ui.markup` and the side panels of :mod:`rag.ui.panels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag.ui.markup import (
    Passage,
    cite_anchor,
    escape_attr,
    escape_chat,
    escape_html,
    highlight,
    link_citations,
    merge_spans,
    passage_from_doc,
    safe_url,
)
from rag.ui.panels import (
    render_corpus,
    render_sources,
    render_sources_empty,
    render_upload_report,
)

__all__ = [
    "Passage",
    "answer_plain_text",
    "cite_anchor",
    "escape_attr",
    "escape_chat",
    "escape_html",
    "highlight",
    "link_citations",
    "merge_spans",
    "passage_from_doc",
    "render_answer",
    "render_corpus",
    "render_error",
    "render_sources",
    "render_sources_empty",
    "render_trace",
    "render_upload_report",
    "render_user",
    "safe_url",
]


# --- chat messages -----------------------------------------------------------------------
def _known(context: Sequence[Passage]) -> set[int]:
    return {int(p["n"]) for p in context if p.get("n") is not None}


def render_user(question: str) -> str:
    """A user message, escaped."""
    return escape_chat(question)


def _copy_button(text: str, label: str = "Copy answer") -> str:
    # Gradio's sanitizer drops data-* attributes: the text to copy rides in a hidden span.
    return (
        f'<button type="button" class="rag-copy" title="Copy the answer with its sources">'
        f"{escape_html(label)}</button>"
        f'<span class="rag-copy-text" hidden>{escape_attr(text)}</span>'
    )


def answer_plain_text(answer: str, citations: Sequence[Mapping[str, Any]]) -> str:
    """The answer as plain text followed by its numbered sources (what "Copy answer" copies)."""
    lines = [str(answer or "").strip()]
    seen: set[int] = set()
    refs: list[str] = []
    for c in sorted(citations, key=lambda c: int(c.get("n") or 0)):
        n = int(c.get("n") or 0)
        if n in seen:
            continue
        seen.add(n)
        bits = [str(c.get("title") or "Untitled")]
        if c.get("source"):
            bits.append(str(c["source"]))
        if c.get("published"):
            bits.append(str(c["published"])[:10])
        ref = f"[{n}] " + ", ".join(bits)
        if safe_url(c.get("url")):
            ref += f" <{c['url']}>"
        refs.append(ref)
    if refs:
        lines += ["", "Sources:", *refs]
    return "\n".join(lines)


def render_answer(
    turn: int,
    answer: str,
    *,
    context: Sequence[Passage] = (),
    citations: Sequence[Mapping[str, Any]] = (),
    refused: bool = False,
    streaming: bool = False,
    trace_html: str = "",
) -> str:
    """An assistant message: the answer with linked citations, refusal styling, copy, trace."""
    known = _known(context) | {int(c["n"]) for c in citations if c.get("n") is not None}
    body = link_citations(answer, turn, known)
    if streaming:
        body += '<span class="rag-cursor">▍</span>'
        return f'<div class="rag-answer rag-streaming">{body}</div>'
    if refused:
        head = '<div class="rag-refusal-head">Not found in the articles</div>'
        if not context:
            note = '<div class="rag-refusal-note">Nothing in the index matched this question.</div>'
        elif "closest passages" in (answer or "").lower():
            note = '<div class="rag-refusal-note">They are listed on the right.</div>'
        else:
            note = (
                '<div class="rag-refusal-note">'
                "The closest passages found are listed on the right.</div>"
            )

        inner = f'<div class="rag-answer rag-refusal">{head}<div>{body}</div>{note}</div>'
    else:
        inner = f'<div class="rag-answer">{body}</div>'
    tools = f'<div class="rag-tools">{_copy_button(answer_plain_text(answer, citations))}</div>'
    return inner + tools + trace_html


def render_error(message: str, *, hint: str = "") -> str:
    """A failed answer: says what happened; the chat stays usable."""
    extra = f'<div class="rag-error-hint">{escape_chat(hint)}</div>' if hint else ""
    return (
        '<div class="rag-answer rag-error"><div class="rag-error-head">⚠ No answer this time'
        f"</div><div>{escape_chat(message)}</div>{extra}"
        '<div class="rag-error-hint">You can ask again or rephrase the question.</div></div>'
    )


def _short(text: Any, limit: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fmt_seconds(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def _fmt_rank(value: Any) -> str:
    return "—" if value is None or value == "" else escape_html(value)


_TIMING_LABELS = (
    ("condense_s", "Rewrite question"),
    ("retrieve_s", "Retrieve passages"),
    ("first_token_s", "First token"),
    ("generate_s", "Generate answer"),
    ("verify_s", "Verify citations"),
    ("total_s", "Total"),
)


def render_trace(
    *,
    question: str,
    standalone: str | None,
    context: Sequence[Passage],
    citations: Sequence[Mapping[str, Any]] = (),
    timings: Mapping[str, Any] | None = None,
    model: str | None = None,
    refused: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The collapsible "How this was answered" block of one answer."""
    parts: list[str] = []
    if standalone and standalone.strip() != (question or "").strip():
        parts.append(
            '<div class="rag-trace-row"><b>Follow-up rewritten for search:</b> '
            f"{escape_chat(standalone)}</div>"
        )
    else:
        parts.append('<div class="rag-trace-row"><b>Searched for:</b> the question as asked</div>')
    cited = {int(c["n"]) for c in citations if c.get("n") is not None}
    if context:
        rows = []
        for p in context:
            n = p.get("n")
            mark = "✓" if n is not None and int(n) in cited else ""
            score = p.get("score")
            score_txt = f"{float(score):.3f}" if isinstance(score, (int, float)) else "—"
            rows.append(
                f"<tr><td>{escape_chat(n)}</td>"
                f"<td>{escape_chat(_short(p.get('title') or 'Untitled'))}</td>"
                f"<td>{_fmt_rank(p.get('dense_rank'))}</td><td>{_fmt_rank(p.get('bm25_rank'))}</td>"
                f"<td>{_fmt_rank(p.get('fused_rank'))}</td><td>{score_txt}</td><td>{mark}</td></tr>"
            )
        parts.append(
            '<table class="rag-trace-table"><thead><tr><th>#</th><th>Passage from</th>'
            "<th>Dense</th><th>BM25</th><th>Fused</th><th>Score</th><th>Cited</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        parts.append('<div class="rag-trace-row">No passages were retrieved.</div>')
    if timings:
        cells = [
            f"<span>{label}: <b>{_fmt_seconds(timings[key])}</b></span>"
            for key, label in _TIMING_LABELS
            if key in timings and timings[key] is not None
        ]
        parts.append(f'<div class="rag-trace-row rag-trace-times">{" · ".join(cells)}</div>')
    if model:
        parts.append(f'<div class="rag-trace-row"><b>Model:</b> {escape_chat(model)}</div>')
    extra = extra or {}
    if extra.get("kind"):
        parts.append(
            f'<div class="rag-trace-row"><b>Question kind:</b> {escape_chat(extra["kind"])}</div>'
        )
    if refused and extra.get("refusal_reason"):
        parts.append(
            '<div class="rag-trace-row"><b>Refused because:</b> '
            f"{escape_chat(extra['refusal_reason'])}</div>"
        )
    ver = extra.get("verification")
    if isinstance(ver, Mapping) and ver:
        bits = ", ".join(f"{escape_chat(k)} {escape_chat(v)}" for k, v in ver.items())
        parts.append(f'<div class="rag-trace-row"><b>Citation check:</b> {bits}</div>')
    return (
        '<details class="rag-trace"><summary>How this was answered</summary>'
        f"{''.join(parts)}</details>"
    )
