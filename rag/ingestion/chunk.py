"""Split an article into overlapping chunks of whole sentences, each with its offsets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rag.ingestion.load import Article
from rag.text import PARA_BREAK, split_sentences

__all__ = ["Chunk", "pack_spans", "split_article"]


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Split an over-long span at word boundaries into pieces of at most ``size`` chars."""
    pieces: list[tuple[int, int]] = []
    while end - start > size:
        cut = start + size
        while cut > start and not text[cut].isspace():
            cut -= 1
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end <= start:  # a single "word" longer than size: hard cut
            piece_end = cut = start + size
        pieces.append((start, piece_end))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def pack_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Pack sentences of ``text`` into chunk spans.

    Consecutive sentences are packed up to ``size`` characters; a chunk at least half full
    ends at a paragraph boundary; the next chunk starts with whole trailing sentences of the
    previous one totalling at most ``overlap`` characters; sentences longer than ``size`` are
    split at word boundaries.

    Returns:
        ``(start, end)`` spans into ``text``, each at most ``size`` characters long.
    """
    if size < 1 or overlap < 0:
        raise ValueError(f"need size >= 1 and overlap >= 0, got {size} and {overlap}")
    units: list[tuple[int, int]] = []
    for s, e in split_sentences(text):
        units.extend(_split_long(text, s, e, size) if e - s > size else [(s, e)])
    chunks: list[tuple[int, int]] = []
    first = 0  # index of the first unit of the current chunk (may be overlap)
    i = 0  # index of the next unit not yet in any chunk
    while i < len(units):
        last = i  # always take one new unit; it fits next to the overlap by construction
        i += 1
        while i < len(units):
            if units[i][1] - units[first][0] > size:
                break
            para = PARA_BREAK.search(text, units[i - 1][1], units[i][0]) is not None
            if para and units[last][1] - units[first][0] >= size / 2:
                break
            last = i
            i += 1
        chunks.append((units[first][0], units[last][1]))
        new_first = i
        if i < len(units):
            for k in range(last, first, -1):  # whole sentences, a strict suffix of the chunk
                if units[last][1] - units[k][0] > overlap or units[i][1] - units[k][0] > size:
                    break
                new_first = k
        first = new_first
    return chunks


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences of an article: ``text == article.text[start:end]``."""

    id: str
    article_id: str
    index: int
    text: str
    start: int
    end: int


def split_article(article: Article, *, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split an article body into chunks of whole sentences.

    Sentences are packed up to ``chunk_size`` characters (a chunk at least half full ends at a
    paragraph break), the next chunk repeats whole trailing sentences of at most
    ``chunk_overlap`` characters, over-long sentences are split at word boundaries. The title
    is not part of any chunk. A chunk whose text already occurred in the article is skipped.

    Returns:
        Chunks in article order with ``index`` 0..n-1 and ``text == article.text[start:end]``.
    """
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for start, end in pack_spans(article.text, chunk_size, chunk_overlap):
        text = article.text[start:end]
        chunk_id = f"{article.id}#{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"
        if chunk_id in seen:
            continue
        seen.add(chunk_id)
        chunks.append(Chunk(chunk_id, article.id, len(chunks), text, start, end))
    return chunks
