"""Pure functions that turn chain output into HTML strings for the chat page.

Everything that comes from articles or the model (text, titles, sources, urls, questions) is
untrusted: it is HTML-escaped here, and in chat messages every character Markdown gives a
meaning to is turned into a numeric entity too, so neither HTML nor Markdown (links, images,
LaTeX) can be injected. The only markup on the page is the markup written in this module.
Only ``http``/``https`` urls become links, always ``target="_blank" rel="noopener noreferrer"``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from rag.cite import SOURCE_KEYS

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

Passage = dict[str, Any]

# Characters Markdown (and Gradio's LaTeX / HTML passes) give a meaning to. In chat messages they
# become numeric entities: the browser shows them as typed, Markdown sees no syntax.
_MD_SPECIAL = set("\\`*_{}[]()#+-!|~<>&\"'$=:.^%@")
_MARKER = re.compile(r"\[(\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*)\]")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- escaping ------------------------------------------------------------------------------
def escape_html(text: Any) -> str:
    """HTML-escape ``text`` (quotes too), dropping control characters."""
    return html.escape(_CTRL.sub("", "" if text is None else str(text)), quote=True)


def escape_attr(text: Any) -> str:
    """Escape ``text`` for a double-quoted attribute value: every character but letters, digits
    and spaces becomes a numeric entity, so no parser (HTML or Markdown) sees syntax in it."""
    clean = _CTRL.sub("", "" if text is None else str(text)).replace("\r\n", "\n")
    return "".join(ch if ch.isalnum() or ch == " " else f"&#{ord(ch)};" for ch in clean)


def escape_chat(text: Any) -> str:
    """Escape ``text`` for a chat message rendered as Markdown: no HTML, no Markdown syntax.

    Newlines become ``<br>`` so the message stays one line and Markdown never starts a block.
    """
    out: list[str] = []
    for ch in _CTRL.sub("", "" if text is None else str(text)).replace("\r\n", "\n"):
        if ch == "\n":
            out.append("<br>")
        elif ch in _MD_SPECIAL:
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def safe_url(url: Any) -> str | None:
    """``url`` if it is a well-formed http(s) url, else ``None`` (no javascript:, data:, ...)."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > 2048 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "\\" in url:
        return None
    return url


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


# --- passages and citations --------------------------------------------------------------
def passage_from_doc(doc: Any) -> Passage:
    """A plain dict of what the page shows of one context passage (a LangChain ``Document``)."""
    meta = dict(getattr(doc, "metadata", None) or {})
    text = getattr(doc, "page_content", None)
    if text is None and isinstance(doc, Mapping):
        meta = dict(doc.get("metadata") or doc)
        text = doc.get("page_content") or doc.get("text") or ""
    keys = (
        *SOURCE_KEYS,
        "dense_rank",
        "bm25_rank",
        "fused_rank",
        "score",
    )
    out: Passage = {k: meta.get(k) for k in keys}
    out["text"] = str(text or "")
    return out


def cite_anchor(turn: int, n: Any) -> str:
    """The element id of source card ``n`` of answer ``turn``."""
    return f"src-{int(turn)}-{int(n)}"


def merge_spans(spans: Iterable[tuple[Any, Any]], length: int) -> list[tuple[int, int]]:
    """Clamp ``(start, end)`` spans to ``[0, length]``, drop empty/invalid ones, merge overlaps."""
    clean: list[tuple[int, int]] = []
    for start, end in spans:
        try:
            s, e = max(0, int(start)), min(length, int(end))
        except (TypeError, ValueError):
            continue
        if s < e:
            clean.append((s, e))
    merged: list[tuple[int, int]] = []
    for s, e in sorted(clean):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def highlight(passage: str, spans: Iterable[tuple[Any, Any]]) -> str:
    """``passage`` escaped, with each span (character offsets into it) wrapped in ``<mark>``."""
    text = "" if passage is None else str(passage)
    out: list[str] = []
    cursor = 0
    for s, e in merge_spans(spans, len(text)):
        out.append(escape_html(text[cursor:s]))
        out.append(f'<mark class="rag-quote">{escape_html(text[s:e])}</mark>')
        cursor = e
    out.append(escape_html(text[cursor:]))
    return "".join(out)


def link_citations(answer: str, turn: int, known: Iterable[int] | None = None) -> str:
    """Chat-escaped ``answer`` whose ``[n]`` / ``[n, m]`` markers link to source card ``n``.

    Numbers not in ``known`` (when given) stay plain text.
    """
    allowed = None if known is None else {int(k) for k in known}
    out: list[str] = []
    cursor = 0
    for match in _MARKER.finditer(answer or ""):
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        if allowed is not None and not any(n in allowed for n in numbers):
            continue
        out.append(escape_chat(answer[cursor : match.start()]))
        for n in numbers:
            if allowed is None or n in allowed:
                out.append(
                    f'<a class="rag-cite" href="#{cite_anchor(turn, n)}" title="Source {n}">[{n}]</a>'
                )
            else:
                out.append(escape_chat(f"[{n}]"))
        cursor = match.end()
    out.append(escape_chat((answer or "")[cursor:]))
    return "".join(out)


def _known(context: Sequence[Passage]) -> set[int]:
    return {int(p["n"]) for p in context if p.get("n") is not None}


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


# --- chat messages -----------------------------------------------------------------------
def render_user(question: str) -> str:
    """A user message, escaped."""
    return escape_chat(question)


def _copy_button(text: str, label: str = "Copy answer") -> str:
    # Gradio's sanitizer drops data-* attributes: the text to copy rides in a hidden span.
    return (
        f'<button type="button" class="rag-copy" title="Copy the answer with its sources">'
        f'{escape_html(label)}</button><span class="rag-copy-text" hidden>{escape_attr(text)}</span>'
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
            note = '<div class="rag-refusal-note">The closest passages found are listed on the right.</div>'

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
                f"<tr><td>{escape_chat(n)}</td><td>{escape_chat(_short(p.get('title') or 'Untitled'))}</td>"
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
    if refused and extra.get("refusal_reason"):
        parts.append(
            f'<div class="rag-trace-row"><b>Refused because:</b> {escape_chat(extra["refusal_reason"])}</div>'
        )
    ver = extra.get("verification")
    if isinstance(ver, Mapping) and ver:
        bits = ", ".join(f"{escape_chat(k)} {escape_chat(v)}" for k, v in ver.items())
        parts.append(f'<div class="rag-trace-row"><b>Citation check:</b> {bits}</div>')
    return (
        '<details class="rag-trace"><summary>How this was answered</summary>'
        f"{''.join(parts)}</details>"
    )


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
            f'<div class="rag-sources" data-turn="{int(turn)}"><div class="rag-sources-title">Sources</div>'
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
        return f'<div class="rag-corpus rag-corpus-error">Index unavailable: {escape_html(error)}</div>'
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
        f'<div class="rag-corpus"><b class="rag-articles">{escape_html(articles)}</b> article{s_a} · '
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
