"""Stage 2, index: the Chroma store with its article manifest, the BM25 index, snapshots.

``schema`` declares what a stored chunk carries; ``store`` (collections, manifest, generation)
and ``chroma_client`` (the cached client, server checks) are the only code that speaks Chroma;
``bm25`` is the sparse index derived from the store; ``snapshot`` hands readers a consistent
view (manifest, live chunk ids, BM25) at one store generation.
"""

from __future__ import annotations

from rag.index.bm25 import BM25Index
from rag.index.snapshot import Index, Snapshot, bm25_path
from rag.index.store import ArticleRecord, ChunkStore, open_store

__all__ = [
    "ArticleRecord",
    "BM25Index",
    "ChunkStore",
    "Index",
    "Snapshot",
    "bm25_path",
    "open_store",
]
