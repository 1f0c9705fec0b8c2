"""Read article files into clean :class:`Article` objects.

Every bad file becomes a :class:`LoadFailure` with a human reason; nothing raises out of
:func:`iter_articles` for a bad file. Format parsers live in :mod:`rag.ingestion.formats`.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.dates import parse_date
from rag.ingestion.clean import clean_body, host_of
from rag.ingestion.formats import Failure, parse_html, parse_json_records, parse_pdf, parse_text
from rag.text import normalize

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Article",
    "LoadFailure",
    "article_id_for_path",
    "iter_articles",
    "load_file",
]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".pdf"}
_MB = 1024 * 1024
# Lone surrogates: from JSON escapes such as "\\ud800", or undecodable bytes in a file name.
# They cannot be encoded as UTF-8, so the store would fail on them.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Article:
    """One cleaned news article; chunk offsets refer into :attr:`text`."""

    id: str
    title: str
    text: str
    source: str | None
    url: str | None
    published: str | None
    origin: str

    def content_hash(self) -> str:
        """Return a sha256 hex digest over title, text, source, url and published."""
        payload = json.dumps(
            [self.title, self.text, self.source, self.url, self.published], ensure_ascii=False
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoadFailure:
    """A file (or one record of it) that could not be loaded, and why."""

    path: str
    reason: str


def article_id_for_path(path: Path) -> str:
    """Return the posix path relative to the working directory when under it, else absolute.

    The parent directory is resolved (symlinks, ``..``) but the file name is kept as given.
    """
    path = Path(path)
    full = Path(os.path.realpath(path.parent if str(path.parent) else ".")) / path.name
    try:
        return full.relative_to(Path(os.path.realpath(Path.cwd()))).as_posix()
    except ValueError:
        return full.as_posix()


def _size(n: float) -> str:
    if n >= 0.1 * _MB:
        return f"{n / _MB:.1f} MB"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{int(n)} bytes"


def _limit(n: int) -> str:
    return f"{n / _MB:g} MB" if n >= 0.1 * _MB else _size(n)


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes`` bytes, checking the size before reading."""
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise Failure("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise Failure("not a regular file (device, pipe or socket)")
        too_large = (
            f"too large: {_size(st.st_size)} > limit {_limit(max_bytes)} (raise RAG_MAX_FILE_MB)"
        )
        if st.st_size > max_bytes:
            raise Failure(too_large)
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise Failure("file not found (moved or deleted while loading?)") from None
    except PermissionError:
        raise Failure("permission denied (cannot read the file)") from None
    except OSError as exc:
        raise Failure(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise Failure(too_large)
    if not data:
        raise Failure("empty file")
    return data


def _looks_binary(sample: str | bytes) -> bool:
    if not sample:
        return False
    if isinstance(sample, bytes):
        controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    else:
        controls = sum(1 for c in sample if c < " " and c not in "\t\n\f\r")
    return controls > 0.1 * len(sample)


def _decode(data: bytes) -> str:
    """Decode UTF-8 (BOM optional) or UTF-16/32 with a BOM; refuse binary data."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encoding = "utf-32"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
        if b"\x00" in data[:8192] or _looks_binary(data[:8192]):
            raise Failure("binary file (not text)")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        raise Failure(f"not valid {name} (byte {exc.start}); re-save the file as UTF-8") from None
    if "\x00" in text[:8192] or _looks_binary(text[:8192]):
        raise Failure("binary file (not text)")
    if not text.strip():
        raise Failure("empty file (only whitespace)")
    return text


def _fallback_title(body: str) -> str:
    line = body.strip().split("\n", 1)[0]
    if len(line) <= 120:
        return line
    cut = line.rfind(" ", 0, 120)
    return line[: cut if cut > 40 else 120].rstrip() + "…"


def _article(
    path: Path, fields: dict[str, Any], number: int | None = None, where: str = ""
) -> Article | LoadFailure:
    """Build a cleaned :class:`Article` from parsed fields (title, text, url, source, ...)."""
    fields = {
        k: _SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for k, v in fields.items()
    }
    text, found_source = clean_body(fields["text"])
    title = " ".join(str(fields.get("title") or "").split())
    paras = text.split("\n\n")
    if title and paras and normalize(paras[0]) == normalize(title):  # the title repeated
        text = "\n\n".join(paras[1:])
    if not text:
        return LoadFailure(article_id_for_path(path), f"{where}no article text after cleaning")
    url = str(fields.get("url") or "").strip() or None
    source = str(fields.get("source") or "").strip() or found_source or (url and host_of(url))
    raw_id = fields.get("id")
    article_id = "" if raw_id is None else str(raw_id).strip()
    if not article_id:
        article_id = article_id_for_path(path) + (f"#{number}" if number is not None else "")
    return Article(
        id=article_id,
        title=title or _fallback_title(text),
        text=text,
        source=source or None,
        url=url,
        published=parse_date(fields.get("published")),
        # the file as found (a symlink's own path, not its target's): prune must see it go
        origin=os.path.abspath(article_id_for_path(path)),
    )


def load_file(path: Path, *, max_bytes: int) -> list[Article | LoadFailure]:
    """Load one file into articles (several for .json lists and .jsonl) and failures.

    Args:
        path: A file with a supported suffix.
        max_bytes: Files larger than this are refused before being read.

    Returns:
        Articles and :class:`LoadFailure` s; never raises for a bad file.
    """
    path = Path(path)
    shown = article_id_for_path(path)
    suffix = path.suffix.lower()
    try:
        if suffix not in SUPPORTED_SUFFIXES:
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise Failure(f"unsupported file type {suffix or '(none)'!r} (supported: {supported})")
        if _SURROGATE.search(shown):
            raise Failure("the file name is not valid UTF-8 (rename the file)")
        data = _read_bytes(path, max_bytes)
        if suffix == ".pdf":
            return [_article(path, parse_pdf(data, path), None)]
        text = _decode(data)
        if suffix in {".json", ".jsonl"}:
            out: list[Article | LoadFailure] = []
            jsonl = suffix == ".jsonl"
            for number, record in parse_json_records(text, lines=jsonl):
                if isinstance(record, Failure):
                    out.append(LoadFailure(shown, record.reason))
                else:
                    where = f"{'line' if jsonl else 'record'} {number}: " if number else ""
                    out.append(_article(path, record, number, where))
            return out
        fields = parse_html(text) if suffix in {".html", ".htm"} else parse_text(text, path, suffix)
        return [_article(path, fields, None)]
    except Failure as exc:
        return [LoadFailure(shown, exc.reason)]
    except Exception as exc:  # a parser bug must not stop the ingest of other files
        logger.warning("unexpected error loading %s", shown, exc_info=True)
        return [LoadFailure(shown, f"unexpected error: {type(exc).__name__}: {exc}")]


def _walk(top: Path) -> Iterator[Path | LoadFailure]:
    """Yield supported, non-hidden files under ``top`` in sorted order, and unreadable dirs."""
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=errors.append):
        while errors:
            err = errors.pop(0)
            yield LoadFailure(
                article_id_for_path(Path(err.filename or dirpath)),
                f"cannot read directory: {err.strerror or err}",
            )
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                yield Path(dirpath) / name
    for err in errors:
        yield LoadFailure(
            article_id_for_path(Path(err.filename or top)),
            f"cannot read directory: {err.strerror or err}",
        )


def iter_articles(paths: Iterable[Path], *, max_bytes: int) -> Iterator[Article | LoadFailure]:
    """Load files and directories (walked recursively) into articles and failures.

    In a directory walk, hidden files/directories and unsupported suffixes are skipped
    silently; an explicitly named unsupported file or a missing path is a failure. A file
    reached twice is loaded once; an article whose id was already loaded is a failure.

    Args:
        paths: Files or directories.
        max_bytes: Per-file size limit.

    Yields:
        :class:`Article` or :class:`LoadFailure`, in a deterministic order.
    """
    seen_files: set[str] = set()
    seen_ids: dict[str, str] = {}
    for raw in paths:
        top = Path(raw)
        try:
            is_dir = top.is_dir()
            exists = is_dir or os.path.lexists(top)
        except OSError:
            is_dir, exists = False, True
        if not exists:
            yield LoadFailure(article_id_for_path(top), "no such file or directory")
            continue
        items: Iterable[Path | LoadFailure] = _walk(top) if is_dir else [top]
        for item in items:
            if isinstance(item, LoadFailure):
                yield item
                continue
            key = os.path.realpath(item)
            if key in seen_files:
                continue
            seen_files.add(key)
            for loaded in load_file(item, max_bytes=max_bytes):
                if isinstance(loaded, Article):
                    if loaded.id in seen_ids:
                        first = article_id_for_path(Path(seen_ids[loaded.id]))
                        reason = f"duplicate article id {loaded.id!r} (already loaded from {first})"
                        yield LoadFailure(article_id_for_path(Path(loaded.origin)), reason)
                        continue
                    seen_ids[loaded.id] = loaded.origin
                yield loaded
