"""A consistent, cached view of the index for readers (retriever, UI, `rag info`).

A :class:`Snapshot` is the manifest, the set of live chunk ids and the BM25 index, all taken
at one store generation. :class:`Index` hands out the current snapshot and refreshes it only
when the generation moves, so a long-running app sees articles another process ingested
without rebuilding anything per query.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.index.bm25 import BM25Index, sync_bm25
from rag.index.store import ArticleRecord, ChunkStore, open_store

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["Index", "Snapshot", "bm25_path"]


@dataclass(frozen=True)
class Snapshot:
    """The committed state of the store at one generation."""

    generation: int
    articles: dict[str, ArticleRecord]
    chunk_article: dict[str, str]
    bm25: BM25Index

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_article)

    def is_live(self, chunk_id: str) -> bool:
        return chunk_id in self.chunk_article


def bm25_path(settings: Settings, store: ChunkStore) -> Path:
    """Where the BM25 cache for this store lives (one file per store location + collection)."""
    where = hashlib.sha256(f"{store.location}|{store.name}".encode()).hexdigest()[:12]
    return settings.data_dir / "bm25" / f"{store.name}-{where}.npz"


class Index:
    """Hands out the current :class:`Snapshot` of a store."""

    def __init__(self, settings: Settings, store: ChunkStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings, create=False)
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """The snapshot at the store's current generation (rebuilt only when it moved)."""
        generation = self.store.generation()
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            current = self._snapshot
            if current is not None and current.generation == generation:
                return current
            articles = self.store.manifest()
            chunk_article = {cid: art.id for art in articles.values() for cid in art.chunk_ids}
            bm25 = sync_bm25(
                self.store, bm25_path(self.settings, self.store), sorted(chunk_article), generation
            )
            self._snapshot = Snapshot(generation, articles, chunk_article, bm25)
            return self._snapshot
