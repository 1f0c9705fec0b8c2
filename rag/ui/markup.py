"""Safe-markup building blocks for the chat page: escaping, the url allowlist, citations.

Everything that comes from articles or the model (text, titles, sources, urls, questions) is
untrusted: it is HTML-escaped with the functions here, and in chat messages every character
Markdown gives a meaning to is turned into a numeric entity too, so neither HTML nor Markdown
(links, images, LaTeX) can be injected. The only markup on the page is the markup written in
:mod:`rag.ui.markup`, :mod:`rag.ui.render` and :mod:`rag.ui.panels`. Only ``http``/``https``
urls (:func:`safe_url`) become links, always ``target="_blank" rel="noopener noreferrer"``.

Also here: the plain dict of a context passage, ``[n]`` citation markers linked to their source
cards, and cited quotes highlighted in a passage.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from rag.answer.cite import SOURCE_KEYS

__all__ = [
    "Passage",
    "cite_anchor",
    "escape_attr",
    "escape_chat",
    "escape_html",
    "highlight",
    "link_citations",
    "merge_spans",
    "passage_from_doc",
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
    """Escape ``text`` for a double-quoted attribute value.

    Every character but letters, digits and spaces becomes a numeric entity, so no parser (HTML
    or Markdown) sees syntax in it.
    """
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
                href = f"#{cite_anchor(turn, n)}"
                out.append(f'<a class="rag-cite" href="{href}" title="Source {n}">[{n}]</a>')
            else:
                out.append(escape_chat(f"[{n}]"))
        cursor = match.end()
    out.append(escape_chat((answer or "")[cursor:]))
    return "".join(out)
