"""The chunk metadata schema: the one place that says what a stored chunk carries.

Ingest writes :class:`ChunkMeta` beside each chunk's text and vector; the store translates a
:class:`ChunkFilter` over these fields into its query language; the retriever, the citations
and the surfaces read the same fields from each passage's ``Document.metadata``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from rag.dates import date_number

__all__ = ["ChunkFilter", "ChunkMeta", "bm25_text", "chunk_meta", "embedding_text"]


class ChunkMeta(TypedDict):
    """Metadata stored with every chunk (the vector store accepts no ``None`` values)."""

    article_id: str
    title: str  # "" when unknown, likewise source, url and published
    source: str
    url: str
    published: str  # ISO date, YYYY-MM-DD
    published_int: int  # the same date as YYYYMMDD, 0 when unknown: range filters need numbers
    chunk_index: int  # position of the chunk in its article
    start: int  # character span of the chunk in the article's cleaned text
    end: int


def chunk_meta(
    *,
    article_id: str,
    title: str | None,
    source: str | None,
    url: str | None,
    published: str | None,
    chunk_index: int,
    start: int,
    end: int,
) -> ChunkMeta:
    """A :class:`ChunkMeta` with empty strings for unknown fields and the date as a number."""
    return ChunkMeta(
        article_id=article_id,
        title=title or "",
        source=source or "",
        url=url or "",
        published=published or "",
        published_int=date_number(published),
        chunk_index=chunk_index,
        start=start,
        end=end,
    )


@dataclass(frozen=True)
class ChunkFilter:
    """Which chunks a search may return; empty fields do not filter.

    Dates are ``YYYYMMDD`` numbers (:func:`rag.dates.date_number`). ``published_to`` also drops
    chunks without a date; ``published_max`` (articles dated after "today") keeps them.
    """

    sources: tuple[str, ...] = ()
    article_ids: tuple[str, ...] = ()
    published_from: int = 0
    published_to: int = 0
    published_max: int = 0

    @property
    def active(self) -> bool:
        return bool(
            self.sources
            or self.article_ids
            or self.published_from
            or self.published_to
            or self.published_max
        )


def embedding_text(title: str, text: str) -> str:
    """What the embedder sees for a chunk: its article title gives it context."""
    return f"{title}\n\n{text}" if title else text


def bm25_text(text: str, metadata: Mapping[str, Any]) -> str:
    """What BM25 indexes for a chunk: its article title, then its text."""
    title = metadata.get("title") or ""
    return f"{title}\n{text}" if title else text
