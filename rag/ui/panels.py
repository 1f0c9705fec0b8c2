"""The page's side panels.

The source cards of an answer, the corpus statistics in the header, and the report of an upload.

Untrusted text is escaped with :mod:`rag.ui.markup`; only ``http``/``https`` urls become links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag.ui.markup import Passage, cite_anchor, escape_html, highlight, safe_url

__all__ = [
    "render_corpus",
    "render_sources",
    "render_sources_empty",
    "render_upload_report",
]


def _link(url: Any, label_html: str, cls: str = "") -> str:
    """An external link to ``url`` around ``label_html`` (already escaped), or just the label."""
    good = safe_url(url)
    if good is None:
        return f'<span class="{cls}">{label_html}</span>' if cls else label_html
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<a{klass} href="{escape_html(good)}" target="_blank" rel="noopener noreferrer">'
        f"{label_html}</a>"
    )


def _spans_by_n(citations: Sequence[Mapping[str, Any]]) -> dict[int, list[tuple[Any, Any]]]:
    out: dict[int, list[tuple[Any, Any]]] = {}
    for c in citations:
        if c.get("n") is None:
            continue
        n = int(c["n"])
        out.setdefault(n, [])
        if (
            c.get("supported", True)
            and c.get("quote_start") is not None
            and c.get("quote_end") is not None
        ):
            out[n].append((c["quote_start"], c["quote_end"]))
    return out


# --- the sources panel -------------------------------------------------------------------
def render_sources_empty() -> str:
    """The sources panel before any question."""
    return (
        '<div class="rag-sources rag-sources-empty"><div class="rag-sources-title">Sources</div>'
        "<p>Ask a question: the passages an answer comes from appear here, with the cited "
        "sentence highlighted. Click a [n] marker in an answer to jump to its source, or click "
        "an earlier answer to see its sources again.</p></div>"
    )


def _card(turn: int, p: Passage, spans: list[tuple[Any, Any]] | None, *, cited: bool) -> str:
    n = p.get("n")
    title = escape_html(p.get("title") or "Untitled article")
    head = _link(p.get("url"), title, "rag-card-title")
    meta = [escape_html(p["source"])] if p.get("source") else []
    if p.get("published"):
        meta.append(escape_html(str(p["published"])[:10]))
    meta_html = f'<div class="rag-card-meta">{" · ".join(meta)}</div>' if meta else ""
    passage = highlight(p.get("text", ""), spans or [])
    klass = "rag-card rag-cited" if cited else "rag-card"
    ident = f' id="{cite_anchor(turn, n)}"' if n is not None else ""
    num = escape_html(n) if n is not None else "•"
    return (
        f'<div class="{klass}"{ident} data-n="{num}">'
        f'<div class="rag-card-head"><span class="rag-num">{num}</span>{head}</div>'
        f'{meta_html}<div class="rag-passage">{passage}</div></div>'
    )


def render_sources(
    turn: int,
    question: str,
    context: Sequence[Passage],
    *,
    citations: Sequence[Mapping[str, Any]] = (),
    refused: bool = False,
    pending: bool = False,
    error: bool = False,
) -> str:
    """Source cards of answer ``turn``: cited passages first with their quotes highlighted.

    ``pending``: the answer is still being written (passages known, citations not yet).
    ``refused``: the cards are "the closest passages found".
    """
    q = f'<div class="rag-sources-q">for “{escape_html(question)}”</div>'
    if not context:
        if error:
            msg = "The answer failed before any passage was found."
        elif pending:
            msg = "Searching the articles…"
        else:
            msg = "No passages were retrieved."
        return (
            f'<div class="rag-sources" data-turn="{int(turn)}">'
            '<div class="rag-sources-title">Sources</div>'
            f"{q}<p>{msg}</p></div>"
        )
    spans = _spans_by_n(citations)
    cards_cited = [p for p in context if p.get("n") is not None and int(p["n"]) in spans]
    others = [p for p in context if p not in cards_cited]
    if pending:
        title, note = "Passages found", "Writing the answer…"
        body = "".join(_card(turn, p, None, cited=False) for p in context)
    elif refused or error:
        title = "Closest passages found"
        note = (
            "None of them answers the question."
            if refused
            else "The answer failed; these are the passages that were found."
        )
        body = "".join(_card(turn, p, None, cited=False) for p in context)
    else:
        title = "Sources"
        note = (
            f"{len(cards_cited)} of {len(context)} passages cited"
            if cards_cited
            else "No passage was cited."
        )
        body = "".join(_card(turn, p, spans.get(int(p["n"])), cited=True) for p in cards_cited)
        if others:
            rest = "".join(_card(turn, p, None, cited=False) for p in others)
            body += (
                f'<details class="rag-uncited"><summary>Also retrieved, not cited ({len(others)})'
                f"</summary>{rest}</details>"
            )
    klass = "rag-sources rag-sources-refused" if refused else "rag-sources"
    return (
        f'<div class="{klass}" data-turn="{int(turn)}">'
        f'<div class="rag-sources-title">{title}</div>{q}'
        f'<div class="rag-sources-note">{escape_html(note)}</div>{body}</div>'
    )


# --- corpus panel ------------------------------------------------------------------------
def render_corpus(info: Mapping[str, Any] | None, *, error: str | None = None) -> str:
    """Articles and chunks in the index (from :func:`rag.status.collect_info`)."""
    if error:
        return (
            '<div class="rag-corpus rag-corpus-error">'
            f"Index unavailable: {escape_html(error)}</div>"
        )
    index = (info or {}).get("index") or {}
    articles, chunks = index.get("articles"), index.get("chunks")
    if articles is None:
        return '<div class="rag-corpus">Index not built yet: upload articles below.</div>'
    s_a = "" if articles == 1 else "s"
    s_c = "" if chunks == 1 else "s"
    extra = ""
    rng = index.get("published_range")
    if isinstance(rng, Sequence) and not isinstance(rng, str) and len(rng) == 2:
        first, last = str(rng[0])[:10], str(rng[1])[:10]
        span = first if first == last else f"{first} – {last}"
        extra = f" · published {escape_html(span)}"
    return (
        '<div class="rag-corpus">'
        f'<b class="rag-articles">{escape_html(articles)}</b> article{s_a} · '
        f'<b class="rag-chunks">{escape_html(chunks)}</b> chunk{s_c}{extra}</div>'
    )


def render_upload_report(
    saved: Sequence[str],
    rejected: Sequence[tuple[str, str]],
    *,
    summary: str = "",
    failed: Sequence[tuple[str, str]] = (),
    running: str = "",
) -> str:
    """What happened to an upload: files taken, files refused (and why), ingest summary."""
    parts: list[str] = []
    if running:
        parts.append(f'<div class="rag-upload-running">{escape_html(running)}</div>')
    if saved:
        names = ", ".join(escape_html(s) for s in saved)
        parts.append(f'<div class="rag-upload-ok">Received: {names}</div>')
    if summary:
        parts.append(f'<div class="rag-upload-summary">{escape_html(summary)}</div>')
    bad = [*rejected, *failed]
    if bad:
        items = "".join(
            f"<li><b>{escape_html(name)}</b>: {escape_html(reason)}</li>" for name, reason in bad
        )
        parts.append(f'<ul class="rag-upload-errors">{items}</ul>')
    return f'<div class="rag-upload">{"".join(parts)}</div>' if parts else ""
