"""A BM25 index over the store's chunks, kept in step with Chroma.

The index is a sparse (chunks x terms) matrix of precomputed BM25 weights, so a query is one
column slice and a sum: milliseconds at 100k chunks, no per-query rebuild. It is derived data:
saved under the data dir with the store generation it was built from, and rebuilt from the
store's committed chunks whenever the generation differs (another process ingested, or a run
was interrupted before it could save).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.index.schema import bm25_text
from rag.text import tokenize

if TYPE_CHECKING:
    from scipy.sparse import csc_matrix

    from rag.index.store import ChunkStore

__all__ = ["BM25Index", "sync_bm25"]

logger = logging.getLogger(__name__)


@dataclass
class BM25Index:
    """Chunk ids, vocabulary and the BM25 weight matrix (one row per chunk)."""

    ids: list[str]
    vocab: dict[str, int]
    matrix: csc_matrix
    generation: int = -1
    k1: float = 1.2
    b: float = 0.75

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Row number of each chunk id (built on first use)."""
        return {cid: row for row, cid in enumerate(self.ids)}

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Iterable[str],
        *,
        generation: int = -1,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> BM25Index:
        from scipy.sparse import csr_matrix

        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lengths: list[int] = []
        for row, text in enumerate(texts):
            counts: dict[int, int] = {}
            tokens = tokenize(text)
            for tok in tokens:
                col = vocab.setdefault(tok, len(vocab))
                counts[col] = counts.get(col, 0) + 1
            lengths.append(len(tokens))
            rows.extend([row] * len(counts))
            cols.extend(counts.keys())
            vals.extend(counts.values())
        n_docs = len(lengths)
        if n_docs != len(ids):
            msg = f"BM25 build got {len(ids)} ids but {n_docs} texts"
            raise ValueError(msg)
        tf = csr_matrix(
            (np.asarray(vals, dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
            shape=(n_docs, len(vocab)),
            dtype=np.float32,
        )
        if n_docs:
            df = np.bincount(tf.indices, minlength=len(vocab)).astype(np.float32)
            idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
            dl = np.asarray(lengths, dtype=np.float32)
            norm = k1 * (1.0 - b + b * dl / max(float(dl.mean()), 1.0))
            row_of = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
            tf.data = (tf.data * (k1 + 1.0) / (tf.data + norm[row_of]) * idf[tf.indices]).astype(
                np.float32
            )
        return cls(ids=list(ids), vocab=vocab, matrix=tf.tocsc(), generation=generation, k1=k1, b=b)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros when no term matches)."""
        cols = sorted({self.vocab[t] for t in tokenize(query) if t in self.vocab})
        if not cols or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.matrix[:, cols].sum(axis=1)).ravel()

    def search(self, query: str, n: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top ``n`` (chunk id, score) with a positive score; ``mask`` keeps only True rows."""
        scores = self.scores(query)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, int((scores > 0).sum()))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top]

    # --- persistence ---------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically (a crash leaves the old file or none, never half a file).

        The temporary file is private to this process and thread: app processes sharing a data
        dir all rebuild when the generation moves, and would otherwise write into one file.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        m = self.matrix
        try:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    data=m.data,
                    indices=m.indices,
                    indptr=m.indptr,
                    shape=np.asarray(m.shape),
                    meta=np.frombuffer(
                        json.dumps(
                            {
                                "ids": self.ids,
                                "vocab": self.vocab,
                                "generation": self.generation,
                                "k1": self.k1,
                                "b": self.b,
                            }
                        ).encode(),
                        dtype=np.uint8,
                    ),
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        from scipy.sparse import csc_matrix

        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            matrix = csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        return cls(
            ids=meta["ids"],
            vocab=meta["vocab"],
            matrix=matrix,
            generation=meta["generation"],
            k1=meta["k1"],
            b=meta["b"],
        )


_cache: dict[str, BM25Index] = {}
_cache_lock = threading.Lock()


def sync_bm25(store: ChunkStore, path: Path, live_ids: Sequence[str], generation: int) -> BM25Index:
    """The BM25 index for ``generation`` of the store: from memory, from disk, or rebuilt."""
    key = str(path)
    with _cache_lock:
        index = _cache.get(key)
        if index is not None and index.generation == generation:
            return index
        if path.exists():
            try:
                index = BM25Index.load(path)
            except Exception as exc:  # a corrupt cache is rebuilt, never fatal
                logger.warning("BM25 cache %s unreadable (%s); rebuilding", path, exc)
                index = None
            if index is not None and index.generation == generation:
                _cache[key] = index
                return index
        ids: list[str] = []
        texts: list[str] = []
        for id_, text, meta in store.iter_chunks(list(live_ids)):
            ids.append(id_)
            texts.append(bm25_text(text or "", meta or {}))
        index = BM25Index.build(ids, texts, generation=generation)
        try:
            index.save(path)
        except OSError as exc:  # read-only data dir: keep it in memory only
            logger.warning("could not save BM25 index to %s: %s", path, exc)
        _cache[key] = index
        logger.info("built BM25 index: %d chunks, %d terms", len(ids), len(index.vocab))
        return index
