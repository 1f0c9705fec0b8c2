"""Request filters (source, date range, article ids): parsing, and the row mask over a snapshot."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.dates import date_number, require_date, to_date
from rag.errors import InputError
from rag.index.schema import ChunkFilter
from rag.index.snapshot import Snapshot
from rag.text import valid_text

__all__ = ["Filters", "parse_filters"]

_FILTER_KEYS = frozenset({"source", "published_from", "published_to", "article_ids"})


@dataclass(frozen=True)
class Filters:
    """Validated metadata filters (dates as YYYYMMDD ints, 0 = unset)."""

    sources: tuple[str, ...] = ()
    published_from: int = 0
    published_to: int = 0
    article_ids: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.sources or self.published_from or self.published_to or self.article_ids)


def _date_int(value: Any, name: str) -> int:
    return date_number(require_date(value, name))


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, str | list | tuple | set | frozenset):
        raise InputError(f"{name} must be a string or a list of strings, got {value!r:.80}.")
    items = [value] if isinstance(value, str) else list(value)
    return tuple(sorted({valid_text(str(v)).strip() for v in items if str(v).strip()}))


def parse_filters(filters: Mapping[str, Any] | Filters | None) -> Filters:
    """Validate ``{"source", "published_from", "published_to", "article_ids"}``.

    Raises:
        InputError: an unknown key or a malformed date.
    """
    if filters is None or isinstance(filters, Filters):
        return filters or Filters()
    if not isinstance(filters, Mapping):
        msg = f"Filters must be a mapping like {{'source': 'infobae.com'}}, got {filters!r:.80}."
        raise InputError(msg)
    unknown = set(filters) - _FILTER_KEYS
    if unknown:
        msg = f"Unknown filter(s): {', '.join(sorted(map(repr, unknown)))}."
        raise InputError(msg, hint=f"Valid filters: {', '.join(sorted(_FILTER_KEYS))}.")
    return Filters(
        sources=_strings(filters.get("source"), "source"),
        published_from=_date_int(filters.get("published_from"), "published_from"),
        published_to=_date_int(filters.get("published_to"), "published_to"),
        article_ids=_strings(filters.get("article_ids"), "article_ids"),
    )


def chunk_filter(flt: Filters, today_int: int | None) -> ChunkFilter:
    """The store's :class:`ChunkFilter` for request filters plus "nothing dated after today"."""
    return ChunkFilter(
        sources=flt.sources,
        article_ids=flt.article_ids,
        published_from=flt.published_from,
        published_to=flt.published_to,
        published_max=today_int or 0,
    )


# Filters keeping at least this share of chunks are applied in Python, not by Chroma.
PYTHON_FILTER_MIN = 0.3


@dataclass
class FilterRows:
    """Per BM25 row: publication date, source and article id (for masks)."""

    published: np.ndarray
    source: np.ndarray
    article: np.ndarray
    masks: OrderedDict[tuple[Any, ...], np.ndarray] = field(default_factory=OrderedDict)


def filter_rows(snapshot: Snapshot) -> FilterRows:
    n = len(snapshot.bm25.ids)
    published = np.full(n, -1, dtype=np.int64)
    source = np.empty(n, dtype=object)
    article = np.empty(n, dtype=object)
    for row, cid in enumerate(snapshot.bm25.ids):
        aid = snapshot.chunk_article.get(cid)
        record = snapshot.articles.get(aid) if aid else None
        if record is None:
            continue  # not live: -1 fails every mask below
        day = to_date(record.published)
        published[row] = day.year * 10000 + day.month * 100 + day.day if day else 0
        source[row] = record.source
        article[row] = aid
    return FilterRows(published, source, article)


def filter_mask(rows: FilterRows, flt: Filters, today_int: int | None) -> np.ndarray:
    mask = rows.published >= 0
    if flt.sources:
        mask &= np.isin(rows.source, list(flt.sources))
    if flt.article_ids:
        mask &= np.isin(rows.article, list(flt.article_ids))
    if flt.published_from:
        mask &= rows.published >= flt.published_from
    if flt.published_to:
        mask &= (rows.published <= flt.published_to) & (rows.published > 0)
    if today_int:
        mask &= rows.published <= today_int
    return mask
