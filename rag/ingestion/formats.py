"""Format parsers: plain text and markdown (with front matter), HTML, JSON/JSONL records, PDF.

Each returns the article fields it found; a bad input is a :class:`Failure` with a reason.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Failure",
    "Fields",
    "parse_html",
    "parse_json_records",
    "parse_pdf",
    "parse_text",
    "strip_markdown",
]

Fields = dict[str, Any]


class Failure(Exception):  # noqa: N818 - a per-file skip with its reason, not a program error
    """A file or record cannot be loaded; ``reason`` is the message for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_FRONT_KEYS = {
    "title": "title", "url": "url", "link": "url", "source": "source", "site": "source",
    "publisher": "source", "published": "published", "date": "published",
}  # fmt: skip
_LONG_TITLE = 200


def _front_matter(text: str) -> tuple[Fields, str]:
    """Split an optional ``---`` block of ``key: value`` lines off the top of ``text``."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, min(len(lines), 60)):
        if lines[end].strip() in {"---", "..."}:
            fields: Fields = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                name = _FRONT_KEYS.get(key.strip().lower())
                if sep and name and name not in fields:
                    fields[name] = value.strip().strip("\"'") or None
            return fields, "\n".join(lines[end + 1 :])
    return {}, text


_MD_LINE_RULES = [
    (re.compile(r"^ {0,3}(```|~~~).*$", re.M), ""),  # code fences (content kept)
    (re.compile(r"^ {0,3}([-*_])(?: *\1){2,} *$", re.M), ""),  # horizontal rules
    (re.compile(r"^ {0,3}(?:=+|-+) *$", re.M), ""),  # setext heading underlines
    (re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M), r"\1"),  # ATX headings
    (re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S+.*$", re.M), ""),  # reference definitions
    (re.compile(r"^[ \t]*(?:>[ \t]?)+", re.M), ""),  # blockquote markers
    (re.compile(r"^([ \t]*)[*+][ \t]+", re.M), r"\1- "),  # bullets
]
_MD_INLINE_RULES = [
    (re.compile(r"!\[[^\]\n]*\](?:\([^)\n]*\)|\[[^\]\n]*\])"), ""),  # images
    (re.compile(r"\[([^\]\n]+)\](?:\([^)\n]*\)|\[[^\]\n]*\])"), r"\1"),  # links
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # emphasis
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
]


def strip_markdown(text: str) -> str:
    """Remove markdown syntax that hurts reading; link text and list dashes are kept."""
    for pattern, repl in _MD_LINE_RULES + _MD_INLINE_RULES:
        text = pattern.sub(repl, text)
    return text


def _stem_title(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip() or path.name


def parse_text(text: str, path: Path, suffix: str) -> Fields:
    """Parse ``.txt`` / ``.md``: front matter, then title = ``# `` heading or first line.

    A first line longer than 200 characters is prose, not a title: the title then comes from
    the file name and the whole text is the body.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fields, body = _front_matter(text)
    title = fields.get("title")
    markdown = suffix in {".md", ".markdown"}
    if markdown and not title:
        m = re.search(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", body, re.M)
        if m:
            title, body = m.group(1), body[: m.start()] + body[m.end() :]
    if markdown:
        body = strip_markdown(body)
        title = strip_markdown(title) if title else title
    if not title:
        lines = body.lstrip().split("\n", 1)
        first = lines[0].strip()
        if len(first) <= _LONG_TITLE and len(lines) > 1 and lines[1].strip():
            title, body = first, lines[1]
        else:
            title = _stem_title(path)
    return {**fields, "title": title, "text": body}


_DROP_TAGS = [
    "script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template",
    "svg", "iframe", "button", "select", "figcaption", "figure", "picture", "video", "audio",
]  # fmt: skip
_BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul",
    "ol", "blockquote", "pre", "table", "tr", "dl", "dt", "dd", "hr", "address",
]  # fmt: skip
_DATE_META = (
    "article:published_time", "og:published_time", "datepublished", "date", "pubdate",
    "publishdate", "publish-date", "publish_date", "dc.date", "dc.date.issued",
    "dcterms.created", "dcterms.date", "sailthru.date", "parsely-pub-date", "article.published",
)  # fmt: skip
_PARA = "\u2029"
_LINE = "\u2028"
_HTML_WS = re.compile(r"[^\S\u2028\u2029]+")


def _attr(tag: Any, name: str) -> str | None:
    """An attribute of a bs4 tag as a stripped string (multi-valued ones joined)."""
    value = tag.get(name) if tag is not None else None
    if isinstance(value, list):
        value = " ".join(value)
    return (value.strip() or None) if isinstance(value, str) else None


def _block_text(root: Any) -> str:
    """The text under ``root`` with _PARA around block tags and _LINE for ``<br>``.

    An explicit stack, not tag.insert_after (which walks the whole subtree on each call):
    linear in the page size, so deeply nested or unclosed markup costs no more than flat.
    """
    from bs4 import CData, NavigableString, Tag

    out: list[str] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            out.append(_PARA)
        elif isinstance(node, Tag):
            if node.name == "br":
                out.append(_LINE)
                continue
            if node.name in _BLOCK_TAGS:
                out.append(_PARA)
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        elif type(node) in (NavigableString, CData):  # not comments, doctypes, ...
            out.append(str(node))
    return "".join(out)


def parse_html(text: str) -> Fields:
    """Parse an HTML page: metadata from meta/link tags, body text with paragraph breaks."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    meta: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        key = _attr(tag, "property") or _attr(tag, "name") or _attr(tag, "itemprop")
        content = _attr(tag, "content")
        if key and content:
            meta.setdefault(key.lower(), content)
    canonical = soup.find("link", rel="canonical")
    url = _attr(canonical, "href") or meta.get("og:url")
    title = meta.get("og:title") or meta.get("twitter:title")
    if not title and soup.title and soup.title.string:
        title = soup.title.string.strip()
        site = meta.get("og:site_name")
        for sep in (" | ", " - ", " – ", " — "):
            head, _, tail = title.rpartition(sep)
            if head and site and tail.strip().lower() == site.lower():
                title = head
    if not title and (h1 := soup.find("h1")):
        title = h1.get_text(" ", strip=True)
    published = next((meta[k] for k in _DATE_META if k in meta), None)
    if not published:
        found = soup.find(itemprop="datePublished") or soup.find("time", datetime=True)
        if found is not None:
            published = _attr(found, "datetime") or _attr(found, "content") or found.get_text()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    body = _HTML_WS.sub(" ", _block_text(root))
    paras = (p.replace(_LINE, "\n").strip() for p in body.split(_PARA))
    body = "\n\n".join(p for p in paras if p)
    return {
        "title": title,
        "text": body,
        "url": url,
        "source": meta.get("og:site_name"),
        "published": published,
    }


_ALIASES = {
    "text": ("text", "body", "content"),
    "title": ("title", "headline"),
    "url": ("url", "link"),
    "source": ("source", "site", "publisher"),
    "published": ("published", "date", "published_at", "publish_date"),
    "id": ("id",),
}
_CONTAINER_KEYS = ("articles", "records", "data", "items")


def _record(obj: object, label: str) -> Fields | Failure:
    if not isinstance(obj, dict):
        return Failure(f"{label} is not a JSON object")
    fields: Fields = {}
    for name, keys in _ALIASES.items():
        value = next((obj[k] for k in keys if obj.get(k) not in (None, "")), None)
        if isinstance(value, dict) and name == "source":
            value = value.get("name")
        if name == "published" or value is None or isinstance(value, str | int | float):
            fields[name] = value
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        what = (
            "no 'text'"
            if text is None or isinstance(text, str)
            else "a 'text' that is not a string"
        )
        return Failure(f"{label} has {what}")
    return fields


def parse_json_records(text: str, *, lines: bool) -> Iterator[tuple[int | None, Fields | Failure]]:
    """Yield ``(record number, fields or Failure)`` for a .json or .jsonl file.

    For .jsonl the number is the line number and a bad line is a failure for that line only;
    a .json file holds one record object (number ``None``) or a list of records (1-based).
    """
    if lines:
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield (
                    number,
                    Failure(f"invalid JSON on line {number}: {exc.msg} (column {exc.colno})"),
                )
                continue
            except RecursionError:
                yield number, Failure(f"JSON on line {number} is nested too deeply to read")
                continue
            yield number, _record(obj, f"record on line {number}")
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Failure(
            f"invalid JSON on line {exc.lineno}: {exc.msg} (column {exc.colno})"
        ) from None
    except RecursionError:
        raise Failure("JSON nested too deeply to read") from None
    if isinstance(obj, dict) and not any(k in obj for k in _ALIASES["text"]):
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), list)), None)
        obj = inner if inner is not None else obj
    if isinstance(obj, dict):
        yield None, _record(obj, "the record")
    elif isinstance(obj, list):
        if not obj:
            raise Failure("no records (empty JSON list)")
        for number, item in enumerate(obj, start=1):
            yield number, _record(item, f"record {number}")
    else:
        raise Failure("JSON must be a record object or a list of records")


_HYPHEN_BREAK = re.compile(r"(\w)-[ \t]*\n[ \t]*(?=[a-z])")
_JUNK_TITLE = re.compile(r"(?i)^(?:untitled|microsoft word - .*|.*\.(?:docx?|pdf|odt|rtf|tex))$")


def parse_pdf(data: bytes, path: Path) -> Fields:
    """Extract text from a PDF with pypdf: pages joined by blank lines, hyphenation undone."""
    if b"%PDF-" not in data[:1024]:
        raise Failure("not a PDF file (no %PDF header)")
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Failure("encrypted PDF (needs a password)")
        pages = [page.extract_text() or "" for page in reader.pages]
        info: Mapping[str, Any] = reader.metadata or {}
        meta_title = str(info.get("/Title") or "").strip()
        created = info.get("/CreationDate")
    except Failure:
        raise
    except Exception as exc:  # pypdf raises many exception types for damaged files
        raise Failure(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    text = _HYPHEN_BREAK.sub(r"\1", "\n\n".join(p.strip() for p in pages))
    if not text.strip():
        raise Failure("no extractable text (scanned PDF?)")
    title = meta_title if meta_title and not _JUNK_TITLE.match(meta_title) else None
    if not title:
        first, _, rest = text.strip().partition("\n")
        if len(first.strip()) <= _LONG_TITLE and rest.strip():
            title, text = first.strip(), rest
        else:
            title = _stem_title(path)
    return {"title": title, "text": text, "published": str(created) if created else None}
