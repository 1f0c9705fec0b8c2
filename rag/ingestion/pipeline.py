"""Ingest: load → clean → split → embed → upsert, incrementally and crash-safe.

Each article's content hash decides its fate: unchanged articles cost nothing, changed ones
have their new chunks written *before* the manifest flips to them and the old chunks go, and
articles whose files vanished are removed (``prune``). Because readers only trust chunks the
manifest names, an interrupted run leaves the previous index fully usable; the next run
finishes the work and sweeps up chunks the interrupted one left behind.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import StoreError, StoreUnavailableError
from rag.index.build import check_build, embedder_name
from rag.index.schema import ChunkMeta, chunk_meta, embedding_text
from rag.index.snapshot import Index
from rag.index.store import ArticleRecord, ChunkStore, open_store
from rag.ingestion.chunk import Chunk, split_article
from rag.ingestion.load import Article, LoadFailure, iter_articles
from rag.ingestion.report import IngestProgress, IngestReport

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.models.embedder import Embedder

__all__ = ["IngestProgress", "IngestReport", "chunk_metadata", "ingest"]

logger = logging.getLogger(__name__)

# Chunks are embedded this many at a time (sorted by length inside the call: full batches with
# little padding) and committed in groups of about _COMMIT_CHUNKS (an interrupted run loses
# little work).
_EMBED_CHUNKS = 2048
_COMMIT_CHUNKS = 512


def chunk_metadata(article: Article, chunk: Chunk) -> ChunkMeta:
    """The stored metadata of one chunk (:class:`rag.index.schema.ChunkMeta`)."""
    return chunk_meta(
        article_id=article.id,
        title=article.title,
        source=article.source,
        url=article.url,
        published=article.published,
        chunk_index=chunk.index,
        start=chunk.start,
        end=chunk.end,
    )


def _record(article: Article, chunks: Sequence[Chunk]) -> ArticleRecord:
    return ArticleRecord(
        id=article.id,
        hash=article.content_hash(),
        title=article.title or "",
        chunk_ids=[c.id for c in chunks],
        source=article.source or "",
        url=article.url or "",
        published=article.published or "",
        origin=article.origin,
        chars=len(article.text),
    )


def _under(origin: str, root: Path) -> bool:
    try:
        Path(origin).relative_to(root)
    except ValueError:
        return False
    return True


def _groups(
    pending: Sequence[tuple[Article, list[Chunk]]], size: int
) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    """Whole articles, in order, in groups of at least ``size`` chunks (the last may be smaller)."""
    group: list[tuple[Article, list[Chunk]]] = []
    count = 0
    for article, chunks in pending:
        group.append((article, chunks))
        count += len(chunks)
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it wraps) says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current).lower()
        if "no space left on device" in text or "database or disk is full" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def ingest(
    paths: Iterable[str | Path],
    settings: Settings | None = None,
    *,
    prune: bool = True,
    store: ChunkStore | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[IngestProgress], None] | None = None,
) -> IngestReport:
    """Bring the index in line with the article files under ``paths``.

    Args:
        paths: files and/or directories (walked recursively).
        settings: defaults to :class:`~rag.config.Settings` from the environment.
        prune: remove indexed articles that came from under ``paths`` but are gone now.
        store: an open store (default: the one the settings name).
        embedder: an embedder (default: the configured sentence-transformers model).
        progress: called after each committed group with an :class:`IngestProgress`.

    Returns:
        An :class:`IngestReport`; bad files are listed in ``failed``, never raised.

    Raises:
        IndexMismatchError: the index was built with another embedding model or other chunk
            settings (re-index with ``rag ingest --rebuild``).
        StoreError: the disk filled up while writing; the previous index stays usable.
        StoreUnavailableError: the Chroma server stopped answering; what was committed stays,
            and running the ingest again once it is back finishes the work.
    """
    from rag.config import Settings

    settings = settings or Settings()
    try:
        return _ingest(
            paths, settings, prune=prune, store=store, embedder=embedder, progress=progress
        )
    except StoreUnavailableError as exc:
        raise StoreUnavailableError(
            f"Ingest stopped: {exc.message}",
            hint="Articles committed before that are kept and searchable; start the server "
            "again and run the same ingest again (`rag ingest` or the upload) to finish; "
            "nothing is stored twice.",
        ) from exc
    except Exception as exc:
        if not _disk_full(exc):
            raise
        where = store.location if store is not None else _store_location(settings)
        msg = (
            f"disk full while writing the index at {where}; the previous index is still "
            "usable: free space and run `rag ingest` again."
        )
        raise StoreError(msg) from exc


def _store_location(settings: Settings) -> str:
    return settings.chroma_url or str(settings.chroma_path.resolve())


def _ingest(
    paths: Iterable[str | Path],
    settings: Settings,
    *,
    prune: bool,
    store: ChunkStore | None,
    embedder: Embedder | None,
    progress: Callable[[IngestProgress], None] | None,
) -> IngestReport:
    """The work of :func:`ingest`."""
    started = time.perf_counter()
    roots = [Path(p).expanduser() for p in paths]
    store = store or open_store(settings)
    report = IngestReport()
    manifest = store.manifest()

    # Vectors of another model, or chunks cut another way, must not be mixed into the index.
    build: dict[str, Any] = {
        "embedding_model": embedder_name(settings, embedder),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
    }
    stored_count = store.chunk_count()
    fresh = not manifest and stored_count == 0
    if not fresh:
        check_build(store, build)
    build_recorded = False

    # Articles the manifest names chunks of that the store lacks (a damaged store) are written
    # again even if unchanged. Only looked for when the counts disagree (ids only, no texts).
    damaged: set[str] = set()
    if stored_count != sum(len(art.chunk_ids) for art in manifest.values()):
        stored = store.all_chunk_ids()
        damaged = {
            art.id for art in manifest.values() if any(c not in stored for c in art.chunk_ids)
        }
        if damaged:
            logger.warning(
                "%d articles lack some of their chunks; writing them again", len(damaged)
            )

    # 1. Load and split everything (cheap next to embedding), deciding what must be written.
    pending: list[tuple[Article, list[Chunk]]] = []
    seen: dict[str, str] = {}
    failed_origins: set[str] = set()
    origins: set[str] = set()
    for item in iter_articles(roots, max_bytes=settings.max_file_bytes):
        if isinstance(item, LoadFailure):
            report.failed.append(item)
            failed_origins.add(os.path.abspath(item.path))  # the form of Article.origin
            logger.warning("skipped %s: %s", item.path, item.reason)
            continue
        origins.add(item.origin)
        if item.id in seen:
            reason = (
                f"duplicate article id {item.id!r} (already read from {seen[item.id]}); skipped"
            )
            report.failed.append(LoadFailure(path=item.origin, reason=reason))
            continue
        seen[item.id] = item.origin
        old = manifest.get(item.id)
        if old is not None and old.hash == item.content_hash() and item.id not in damaged:
            report.unchanged.append(item.id)
            continue
        chunks = split_article(
            item, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
        )
        if not chunks:
            report.failed.append(
                LoadFailure(path=item.origin, reason="no text left after cleaning")
            )
            continue
        pending.append((item, chunks))

    # 2. Embed and commit in groups: chunks first, then the manifest, then old chunks go.
    files_total = len(origins)
    chunks_total = sum(len(c) for _, c in pending)
    done_chunks = 0
    done_files: set[str] = set(origins) - {a.origin for a, _ in pending}
    if embedder is not None:
        from rag.models.embedder import as_embedder

        embedder = as_embedder(embedder)
    if pending and embedder is None:
        from rag.models.embedder import load_embedder

        embedder = load_embedder(settings)
    if pending and progress is not None:
        progress(
            IngestProgress(
                len(done_files), files_total, 0, chunks_total, time.perf_counter() - started
            )
        )
    write_started = time.perf_counter()

    def write(group: list[tuple[Article, list[Chunk]]], vectors: Any) -> int:
        """Commit one embedded group: chunks, then manifest records, then the stale chunks go."""
        flat = [(a, c) for a, cs in group for c in cs]
        store.upsert_chunks(
            ids=[c.id for _, c in flat],
            embeddings=vectors[: len(flat)],
            documents=[c.text for _, c in flat],
            metadatas=[chunk_metadata(a, c) for a, c in flat],
        )
        store.commit_articles([_record(a, cs) for a, cs in group])
        stale: list[str] = []
        for a, cs in group:
            old = manifest.get(a.id)
            (report.updated if old is not None else report.added).append(a.id)
            if old is not None:
                keep = {c.id for c in cs}
                stale.extend(cid for cid in old.chunk_ids if cid not in keep)
            manifest[a.id] = _record(a, cs)
            done_files.add(a.origin)
        store.delete_chunks(stale)
        store.bump_generation()
        report.chunks_added += len(flat)
        report.chunks_removed += len(stale)
        return len(flat)

    # Embedding runs over big batches (sorted by length inside, so little padding and few idle
    # tails); commits stay small so an interrupted run loses little. A writer thread overlapping
    # Chroma writes with embedding measured no faster on 2 cores (both are CPU-bound).
    for batch in _groups(pending, _EMBED_CHUNKS):
        assert embedder is not None
        t0 = time.perf_counter()
        vectors = embedder.encode([embedding_text(a.title, c.text) for a, cs in batch for c in cs])
        report.embed_seconds += time.perf_counter() - t0
        if not build_recorded and len(vectors):
            build["embedding_dim"] = int(np.asarray(vectors[:1]).shape[-1])
            if not fresh:
                check_build(store, build)
            store.record_build(build)
            build_recorded = True
        offset = 0
        for group in _groups(batch, _COMMIT_CHUNKS):
            n = write(group, vectors[offset:])
            offset += n
            done_chunks += n
            if progress is not None:
                progress(
                    IngestProgress(
                        len(done_files),
                        files_total,
                        done_chunks,
                        chunks_total,
                        time.perf_counter() - started,
                    )
                )

    report.write_seconds = time.perf_counter() - write_started

    # 3. Prune articles whose files vanished (never those whose file merely failed to load).
    swept = set(seen)  # articles whose leftover chunks this run may sweep (step 4)
    if prune:
        resolved_roots = [r.resolve() for r in roots if r.exists()]
        gone = [
            art
            for art in manifest.values()
            if art.id not in seen
            and art.origin not in failed_origins
            and any(_under(art.origin, root) for root in resolved_roots)
        ]
        swept.update(a.id for a in gone)
        if gone:
            store.remove_articles([a.id for a in gone])
            store.delete_chunks([cid for a in gone for cid in a.chunk_ids])
            store.bump_generation()
            for art in gone:
                report.removed.append(art.id)
                report.chunks_removed += len(art.chunk_ids)
                manifest.pop(art.id, None)

    # 4. Sweep chunks no manifest entry names (left by an interrupted run), for this run's
    #    articles only: other writers may be ingesting other folders into the same store, and
    #    their chunks are unnamed until their manifest records land.
    if store.chunk_count() != sum(len(art.chunk_ids) for art in manifest.values()):
        live = {cid for art in store.manifest().values() for cid in art.chunk_ids}
        orphans = {cid for cid in store.all_chunk_ids() - live if cid.rpartition("#")[0] in swept}
        if orphans:
            logger.info("removing %d chunks left by an interrupted ingest", len(orphans))
            store.delete_chunks(sorted(orphans))
            store.bump_generation()

    # 5. Bring the BM25 index in step (rebuilt only when the generation moved).
    snapshot = Index(settings, store).snapshot()
    report.articles_total = len(snapshot.articles)
    report.chunks_total = snapshot.chunk_count
    report.seconds = time.perf_counter() - started
    return report
