"""Index health: what `rag info` checks about the store, and the reset of `rag ingest --rebuild`.

:func:`inspect_index` reads only ids and metadata (the manifest, the chunk ids, the collection
metadata, the BM25 cache file): nothing is embedded and no chunk text is read, so it stays fast
on a large store. Each problem comes back as a failed check whose detail names the fix; things
that repair themselves (a stale or missing BM25 cache, chunks an interrupted ingest left
behind) are ``ok`` checks flagged ``warning``.

:func:`reset_index` drops the two collections and the BM25 cache of one data dir/collection
(`rag ingest --rebuild`); when the embedded database cannot even be opened, it removes the
``chroma/`` directory of the data dir instead, and never anything outside the data dir.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import IndexNotFoundError, StoreError
from rag.index.build import build_mismatch, embedder_name, mismatch_error
from rag.index.store import GENERATION_NONCE, forget_client, open_store

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.index.store import ChunkStore

__all__ = ["REBUILD", "inspect_index", "reset_index"]

logger = logging.getLogger(__name__)

REBUILD = "run `rag ingest --rebuild <paths>`"
FINISH = "run `rag ingest <paths>` to finish it"


def _check(name: str, ok: bool, detail: str, *, warning: bool = False) -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "ok": ok, "detail": detail}
    if warning:
        check["warning"] = True
    return check


def _location(settings: Settings) -> str:
    return settings.chroma_url or str(settings.chroma_path.resolve())


def _bm25_file(settings: Settings, location: str) -> Path:
    """:func:`rag.index.snapshot.bm25_path` for a store that may not open."""
    name = settings.collection
    where = hashlib.sha256(f"{location}|{name}".encode()).hexdigest()[:12]
    return settings.data_dir / "bm25" / f"{name}-{where}.npz"


def _reason(exc: BaseException) -> str:
    """The underlying error of ``exc`` in one short line."""
    cause = exc.__cause__ or exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _unopenable(settings: Settings, exc: BaseException) -> str:
    if settings.chroma_url:
        return str(exc)
    return (
        f"the Chroma database at {_location(settings)} cannot be opened ({_reason(exc)}): "
        f"{REBUILD} to rebuild it"
    )


def inspect_index(settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Statistics of the index and its health checks (``name``, ``ok``, ``detail``[, ``warning``]).

    Checks: ``index`` (missing, unopenable, empty), ``index settings`` (built with another
    embedding model or chunk settings), ``manifest`` (chunks it names that are missing; chunks
    nothing names) and ``bm25`` (cache missing, unreadable or behind: rebuilt on the next
    question, never a failure).
    """
    stats: dict[str, Any] = {}
    try:
        store = open_store(settings, create=False)
    except IndexNotFoundError as exc:  # "No index at ...", and the fix: run `rag ingest`
        return stats, [_check("index", False, str(exc))]
    except StoreError as exc:
        return stats, [_check("index", False, _unopenable(settings, exc))]
    try:
        generation = store.generation()
        articles = store.manifest()
        stored = store.all_chunk_ids()
        recorded = store.build_info()
    except Exception as exc:  # the database opened but cannot be read
        return stats, [_check("index", False, _unopenable(settings, exc))]

    named = {cid: art.id for art in articles.values() for cid in art.chunk_ids}
    missing = [cid for cid in named if cid not in stored]
    orphans = len(stored) - (len(named) - len(missing))
    stats.update(
        articles=len(articles),
        chunks=len(named),
        stored_chunks=len(stored),
        commits=generation // GENERATION_NONCE,
        generation=generation,
        sources=sorted({a.source for a in articles.values() if a.source}),
        published_range=_date_range([a.published for a in articles.values()]),
        built_with=recorded,
        missing_chunks=len(missing),
        orphan_chunks=orphans,
    )
    checks = [
        _check(
            "index",
            bool(articles),
            f"{len(articles)} articles, {len(named)} chunks"
            if articles
            else "index is empty: run `rag ingest corpus/`",
        )
    ]
    if articles or stored:
        checks.append(_settings_check(settings, store, recorded))
        checks.append(_manifest_check(missing, named, orphans))
    if articles:
        terms, check = _bm25_check(settings, store, generation)
        stats["bm25_terms"] = terms
        checks.append(check)
    return stats, checks


def _settings_check(
    settings: Settings, store: ChunkStore, recorded: dict[str, Any]
) -> dict[str, Any]:
    wanted = {
        "embedding_model": embedder_name(settings),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
    }
    if build_mismatch(recorded, wanted):
        return _check(
            "index settings", False, str(mismatch_error(store.location, recorded, wanted))
        )
    if not recorded:
        return _check(
            "index settings",
            True,
            "not recorded (built by an older version): cannot tell the embedding model",
            warning=True,
        )
    dim = recorded.get("embedding_dim")
    return _check(
        "index settings",
        True,
        f"built with {recorded.get('embedding_model', '?')}"
        + (f" ({dim}-d)" if dim else "")
        + f", chunk_size {recorded.get('chunk_size', '?')}, "
        f"chunk_overlap {recorded.get('chunk_overlap', '?')}",
    )


def _manifest_check(missing: list[str], named: dict[str, str], orphans: int) -> dict[str, Any]:
    left = (
        f"{orphans} chunks that no article names (left by an interrupted ingest): {FINISH}"
        if orphans
        else ""
    )
    if missing:
        hurt = len({named[cid] for cid in missing})
        detail = (
            f"half-written: the manifest names {len(missing)} chunks of {hurt} articles that "
            f"are not in the store: {FINISH}" + (f"; also {left}" if left else "")
        )
        return _check("manifest", False, detail)
    if orphans:
        return _check("manifest", True, left, warning=True)
    return _check("manifest", True, f"every one of the {len(named)} chunks it names is stored")


def _bm25_check(
    settings: Settings, store: ChunkStore, generation: int
) -> tuple[int | None, dict[str, Any]]:
    from rag.index.bm25 import BM25Index
    from rag.index.snapshot import bm25_path

    path = bm25_path(settings, store)
    later = "it is rebuilt on the next question"
    if not path.exists():
        return None, _check("bm25", True, f"cache {path} missing: {later}", warning=True)
    try:
        cache = BM25Index.load(path)
    except Exception as exc:
        detail = f"cache {path} unreadable ({_reason(exc)}): {later}"
        return None, _check("bm25", True, detail, warning=True)
    if cache.generation != generation:
        detail = f"cache {path} is behind the index: {later}"
        return None, _check("bm25", True, detail, warning=True)
    return len(cache.vocab), _check(
        "bm25", True, f"{len(cache.ids)} chunks, {len(cache.vocab)} terms"
    )


def reset_index(settings: Settings, say: Callable[[str], None] | None = None) -> list[str]:
    """Delete the index of ``settings`` (its two collections and its BM25 cache).

    An embedded database that cannot be opened is removed as a whole: the ``chroma/`` directory
    of the data dir, nothing outside it. With ``RAG_CHROMA_URL`` only the two collections go.

    Args:
        settings: names the data dir / Chroma server and the collection.
        say: called with one line before each removal (the CLI prints it).

    Returns:
        The lines given to ``say``, one per removal.

    Raises:
        StoreError: the Chroma server cannot be reached, or the directory cannot be removed.
    """
    done: list[str] = []

    def note(line: str) -> None:
        done.append(line)
        if say is not None:
            say(line)

    name = settings.collection
    location = _location(settings)
    dropping = f"dropping the collections {name!r} and {name + '-articles'!r} at {location}"
    if settings.chroma_url:
        store = open_store(settings)
        note(dropping)
        store.drop()
    else:
        try:
            store = open_store(settings, create=False)
        except IndexNotFoundError:
            logger.info("no index at %s to drop", location)
        except StoreError as exc:
            _remove_database(settings, exc, note)
        else:
            note(dropping)
            store.drop()
    cache = _bm25_file(settings, location)
    if cache.exists():
        note(f"removing the BM25 cache {cache}")
        cache.unlink()
    from rag.index import bm25

    with bm25._cache_lock:
        bm25._cache.pop(str(cache), None)
    return done


def _remove_database(settings: Settings, exc: BaseException, note: Callable[[str], None]) -> None:
    """Remove the embedded ``chroma/`` directory that cannot be opened (inside the data dir)."""
    data_dir = settings.data_dir.resolve()
    path = settings.chroma_path.resolve()
    if path == data_dir or data_dir not in path.parents:
        msg = f"Refusing to remove {path}: it is not inside the data dir {data_dir}."
        raise StoreError(msg, hint="Remove it yourself, then run `rag ingest` again.") from exc
    note(f"the Chroma database at {path} cannot be opened ({_reason(exc)}); removing it")
    forget_client(settings)
    try:
        shutil.rmtree(path)
    except OSError as err:
        msg = f"Could not remove the damaged Chroma database at {path}: {err}"
        raise StoreError(msg, hint="Remove it yourself, then run `rag ingest` again.") from err


def _date_range(dates: list[str]) -> list[str] | None:
    known = sorted(d for d in dates if d)
    return [known[0], known[-1]] if known else None
