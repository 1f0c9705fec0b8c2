"""Hybrid retrieval: dense (Chroma) + sparse (BM25) fused by weighted reciprocal rank fusion.

One query runs: parse the question's time window (:mod:`rag.timeparse`) → dense top
``fetch_k`` (Chroma ``where`` from the filters) and BM25 top ``fetch_k`` (a boolean row mask
from the same filters, cached per snapshot generation) → weighted RRF → time-window boost and
recency prior (news: recent articles answer most questions; articles published after
``today`` are dropped) → optional article aggregation → one Chroma ``get`` for the best
candidates → near-duplicate collapse → optional cross-encoder rerank → top ``k``
:class:`~langchain_core.documents.Document` s carrying their scores, ranks and timings.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from rag.config import Settings
from rag.dates import require_date, to_date
from rag.index.schema import ChunkFilter
from rag.index.snapshot import Index, Snapshot
from rag.retrieve.filters import (
    PYTHON_FILTER_MIN,
    FilterRows,
    Filters,
    chunk_filter,
    filter_mask,
    filter_rows,
    parse_filters,
)
from rag.retrieve.timeparse import DateWindow, parse_time

__all__ = ["HybridRetriever", "build_retriever"]

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")


@dataclass
class _Candidate:
    chunk_id: str
    article_id: str
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None
    fused: float = 0.0
    score: float = 0.0
    fused_rank: int = 0
    in_window: bool = False
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    if len(words) < 3:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def _is_duplicate(
    a: _Candidate, b: _Candidate, sa: set[Any], sb: set[Any], threshold: float
) -> bool:
    """Same-article chunks overlapping by half the shorter, or near-identical text anywhere."""
    if a.article_id == b.article_id:
        start_a, end_a = int(a.meta.get("start", 0)), int(a.meta.get("end", 0))
        start_b, end_b = int(b.meta.get("start", 0)), int(b.meta.get("end", 0))
        overlap = min(end_a, end_b) - max(start_a, start_b)
        shorter = max(1, min(end_a - start_a, end_b - start_b))
        if overlap > 0 and overlap / shorter >= 0.5:
            return True
    if not sa or not sb:
        return False
    return len(sa & sb) / min(len(sa), len(sb)) >= threshold


class HybridRetriever(BaseRetriever):
    """Dense + BM25 retrieval with time awareness. Build with :func:`build_retriever`.

    ``retriever.invoke(question, filters={...}, today=date(...), k=10)`` passes the keyword
    arguments through to :meth:`_get_relevant_documents`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: Settings
    index: Index
    embedder: Any  # an Embedder or any LangChain Embeddings (tests pass fakes)
    reranker: Any | None = None  # a sentence-transformers CrossEncoder, imported lazily

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _rows: dict[int, FilterRows] = PrivateAttr(default_factory=dict)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        filters: Mapping[str, Any] | Filters | None = None,
        today: date | str | None = None,
        k: int | None = None,
    ) -> list[Document]:
        return self.retrieve(query, filters=filters, today=today, k=k)

    # --- helpers -------------------------------------------------------------------------
    def _dense(
        self,
        snapshot: Snapshot,
        vector: list[float],
        flt: Filters,
        today_int: int | None,
        mask: np.ndarray | None,
    ) -> list[tuple[str, float]]:
        """Dense candidates (chunk id, cosine similarity), live chunks only.

        A ``where`` clause makes Chroma's HNSW search far slower (24 ms -> 0.3-0.4 s at 100k
        chunks, ``benchmarks/bench_retrieval.py``). So when the filters (and dropping future
        articles) keep at least ``PYTHON_FILTER_MIN`` of the chunks, Chroma gets no clause and a
        larger ``n``, and the BM25 row mask (the same filters, already computed) removes the rest
        here. Only narrow filters, where an unfiltered top-n would hold too few survivors, go to
        Chroma.
        """
        s = self.settings
        where: ChunkFilter | None = chunk_filter(flt, today_int)
        n = s.fetch_k
        keep: np.ndarray | None = None
        if where is not None and not where.active:
            where = None
        if where is not None and mask is not None and len(mask):
            kept = float(mask.mean())
            if kept >= PYTHON_FILTER_MIN:
                where, keep = None, mask
                n = int(s.fetch_k / kept * 1.5) + 1
        rows = snapshot.bm25.row_of if keep is not None else {}
        out: list[tuple[str, float]] = []
        for cid, dist in self.index.store.query(vector, n, where):
            if not snapshot.is_live(cid):
                continue
            if keep is not None:
                row = rows.get(cid)
                if row is None or not keep[row]:
                    continue
            out.append((cid, 1.0 - dist))
        return out[: s.fetch_k]

    def _bm25_mask(
        self, snapshot: Snapshot, flt: Filters, today_int: int | None
    ) -> np.ndarray | None:
        if not flt.active and not today_int:
            return None
        with self._lock:
            rows = self._rows.get(snapshot.generation)
            if rows is None:
                rows = filter_rows(snapshot)
                self._rows = {snapshot.generation: rows}  # older generations are dropped
            key = (flt, today_int)
            mask = rows.masks.get(key)
            if mask is None:
                mask = filter_mask(rows, flt, today_int)
                rows.masks[key] = mask
                while len(rows.masks) > 256:
                    rows.masks.popitem(last=False)
            return mask

    def _prior(self, published: str, window: DateWindow | None, today: date) -> tuple[float, bool]:
        """Multiplier from the time window and the recency prior; whether it is in the window."""
        day = to_date(published)
        if day is None:
            return 1.0, False
        s = self.settings
        factor = 1.0
        # News reports an event on the day or in the days after it: widen the end more.
        inside = window is not None and window.contains(day, s.time_slack_days, before_days=1)
        if inside:
            factor *= 1.0 + s.time_boost
        if s.recency_weight:
            age = max(0, (today - day).days)
            factor *= 1.0 + s.recency_weight * 0.5 ** (age / s.recency_half_life_days)
        return factor, inside

    # --- the query -----------------------------------------------------------------------
    def retrieve(
        self,
        query: str,
        *,
        filters: Mapping[str, Any] | Filters | None = None,
        today: date | str | None = None,
        k: int | None = None,
    ) -> list[Document]:
        """The top ``k`` (default ``settings.k``) chunks for ``query``; see the module doc."""
        s = self.settings
        k = k or s.k
        flt = parse_filters(filters)
        day = require_date(today, "today") or s.today_or_now()
        today_int = day.year * 10000 + day.month * 100 + day.day if s.drop_future else None
        timings = {"dense_ms": 0.0, "bm25_ms": 0.0, "fuse_ms": 0.0, "rerank_ms": 0.0}
        if not query.strip():
            return []
        snapshot = self.index.snapshot()
        if not snapshot.chunk_article:
            return []
        tq = parse_time(query, day)

        t0 = time.perf_counter()
        vector = self.embedder.embed_query(query)
        mask = self._bm25_mask(snapshot, flt, today_int)
        dense = self._dense(snapshot, vector, flt, today_int, mask)
        t1 = time.perf_counter()
        sparse = snapshot.bm25.search(tq.cleaned, s.fetch_k, mask)
        t2 = time.perf_counter()

        cands: dict[str, _Candidate] = {}
        for weight, hits, kind in (
            (s.dense_weight, dense, "dense"),
            (s.bm25_weight, sparse, "bm25"),
        ):
            for rank, (cid, value) in enumerate(hits, start=1):
                c = cands.get(cid) or cands.setdefault(
                    cid, _Candidate(cid, snapshot.chunk_article.get(cid, ""))
                )
                setattr(c, f"{kind}_rank", rank)
                setattr(c, f"{kind}_score", float(value))
                c.fused += weight / (s.rrf_k + rank)
        for c in cands.values():
            record = snapshot.articles.get(c.article_id)
            factor, c.in_window = self._prior(record.published if record else "", tq.window, day)
            c.score = c.fused * factor
        if s.article_weight:
            totals: dict[str, float] = {}
            for c in cands.values():
                totals[c.article_id] = totals.get(c.article_id, 0.0) + c.score
            for c in cands.values():
                c.score += s.article_weight * (totals[c.article_id] - c.score)
        ranked = sorted(cands.values(), key=lambda c: (-c.score, c.chunk_id))
        for rank, c in enumerate(ranked, start=1):
            c.fused_rank = rank
        pool = ranked[: max(3 * k, s.rerank_top if self.reranker is not None else 0, 15)]
        if pool:
            found = self.index.store.get_chunks([c.chunk_id for c in pool])
            pool = [c for c in pool if c.chunk_id in found]
            for c in pool:
                c.text, c.meta = found[c.chunk_id]
        kept = self._diversify(self._collapse(pool))
        t3 = time.perf_counter()
        if self.reranker is not None and kept:
            kept = self._rerank(query, kept[: s.rerank_top]) + kept[s.rerank_top :]
        t4 = time.perf_counter()
        kept = self._cap(kept)[:k]
        timings.update(
            dense_ms=round((t1 - t0) * 1000, 2),
            bm25_ms=round((t2 - t1) * 1000, 2),
            fuse_ms=round((t3 - t2) * 1000, 2),
            rerank_ms=round((t4 - t3) * 1000, 2),
        )
        logger.debug(
            "retrieved %d of %d candidates for %r in %s", len(kept), len(cands), query, timings
        )
        return [self._document(c, timings, tq.window) for c in kept]

    def _collapse(self, pool: Sequence[_Candidate]) -> list[_Candidate]:
        kept: list[_Candidate] = []
        shingles: list[set[Any]] = []
        for c in pool:
            sc = _shingles(c.text)
            if any(
                _is_duplicate(c, o, sc, so, self.settings.dedup_threshold)
                for o, so in zip(kept, shingles, strict=True)
            ):
                continue
            kept.append(c)
            shingles.append(sc)
        return kept

    def _diversify(self, kept: list[_Candidate]) -> list[_Candidate]:
        """An article's n-th chunk keeps ``article_penalty ** (n - 1)`` of its score."""
        penalty = self.settings.article_penalty
        if penalty >= 1.0:
            return kept
        counts: dict[str, int] = {}
        for c in kept:  # best first, so n counts the article's better chunks
            counts[c.article_id] = counts.get(c.article_id, 0) + 1
            c.score *= penalty ** (counts[c.article_id] - 1)
        return sorted(kept, key=lambda c: -c.score)

    def _cap(self, kept: list[_Candidate]) -> list[_Candidate]:
        cap = self.settings.max_chunks_per_article
        if not cap:
            return kept
        counts: dict[str, int] = {}
        out: list[_Candidate] = []
        rest: list[_Candidate] = []
        for c in kept:
            counts[c.article_id] = counts.get(c.article_id, 0) + 1
            (out if counts[c.article_id] <= cap else rest).append(c)
        # Diversity first, then backfill: with few articles (a one-article corpus) the answer
        # step still gets k passages, ranked after every article's best chunk.
        return out + rest

    def _rerank(self, query: str, cands: list[_Candidate]) -> list[_Candidate]:
        assert self.reranker is not None  # the caller reranks only when there is a reranker
        scores = self.reranker.predict([(query, c.text) for c in cands], show_progress_bar=False)
        for c, value in zip(cands, scores, strict=True):
            c.score = float(value)
        return sorted(cands, key=lambda c: -c.score)

    @staticmethod
    def _document(c: _Candidate, timings: dict[str, float], window: DateWindow | None) -> Document:
        m = c.meta
        return Document(
            page_content=c.text,
            id=c.chunk_id,
            metadata={
                "chunk_id": c.chunk_id,
                "article_id": c.article_id,
                "title": m.get("title", ""),
                "source": m.get("source", ""),
                "url": m.get("url", ""),
                "published": m.get("published", ""),
                "chunk_index": m.get("chunk_index"),
                "start": m.get("start"),
                "end": m.get("end"),
                "dense_rank": c.dense_rank,
                "dense_score": None if c.dense_score is None else round(c.dense_score, 6),
                "bm25_rank": c.bm25_rank,
                "bm25_score": None if c.bm25_score is None else round(c.bm25_score, 6),
                "fused_rank": c.fused_rank,
                "score": round(c.score, 6),
                "in_time_window": c.in_window,
                "time_window": [window.start.isoformat(), window.end.isoformat()]
                if window
                else None,
                "retrieval_ms": dict(timings),
            },
        )


def build_retriever(
    settings: Settings | None = None, *, index: Index | None = None, embedder: Any | None = None
) -> HybridRetriever:
    """A :class:`HybridRetriever` over the configured store (models loaded once per process).

    Args:
        settings: configuration (default: from the environment and rag.toml).
        index: an :class:`~rag.index.Index` to read (default: the configured store).
        embedder: the embedding model, ours or any LangChain ``Embeddings`` (default: the
            configured one); it must be the one the index was built with.

    Raises:
        IndexNotFoundError: there is no index yet (run ``rag ingest``).
        IndexMismatchError: the index was built with another embedding model.
    """
    from rag.index.build import check_build, embedder_name
    from rag.models.embedder import as_embedder, load_embedder
    from rag.models.reranker import load_reranker

    settings = settings or Settings()
    index = index or Index(settings)
    # Questions embedded by another model than the index's would find the wrong passages.
    check_build(index.store, {"embedding_model": embedder_name(settings, embedder)})
    embedder = as_embedder(embedder) if embedder is not None else load_embedder(settings)
    return HybridRetriever(
        settings=settings, index=index, embedder=embedder, reranker=load_reranker(settings)
    )
