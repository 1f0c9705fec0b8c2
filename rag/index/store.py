"""The Chroma store: chunk vectors plus a manifest of committed articles.

Two collections live side by side:

* ``<name>`` holds one record per chunk (embedding, text, metadata);
* ``<name>-articles`` is the manifest: one record per article, naming its content hash and the
  ids of its chunks. An article counts as indexed only once its manifest record is written,
  which happens after all its chunks are in. Readers only trust chunks the manifest names, so a
  crash mid-ingest never exposes half an article, and the previous version stays searchable.

The collection metadata carries a ``generation`` bumped on every commit; derived indexes (BM25)
and caches compare it to know when they are stale. It is ``commits * 10**6 + nonce`` with a
random nonce: two processes committing at once (two apps taking uploads) may both read the same
count, and the nonce keeps their generations distinct so no reader misses either commit.
The same code works against
an embedded ``PersistentClient`` (default) and a Chroma server (``RAG_CHROMA_URL``).

Connecting (the cached client, its timeout, the server's heartbeat, which errors mean the
server is down) is :mod:`rag.index.chroma_client`; ``SERVER_TIMEOUT``, ``forget_client`` and
``server_unavailable`` are re-exported here.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from rag.errors import IndexNotFoundError, RagError, StoreError, StoreUnavailableError
from rag.index.build import BUILD_KEYS, mismatch_error
from rag.index.chroma_client import (
    SERVER_TIMEOUT,
    _client,
    _not_found,
    _server_answers,
    _unreachable,
    forget_client,
    server_unavailable,
)

# the cache of open clients, importable from here as before (tests clear it)
from rag.index.chroma_client import _clients as _clients
from rag.index.schema import ChunkFilter

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "GENERATION_NONCE",
    "SERVER_TIMEOUT",
    "ArticleRecord",
    "ChunkStore",
    "forget_client",
    "open_store",
    "server_unavailable",
]

logger = logging.getLogger(__name__)

GENERATION_NONCE = 10**6  # generation = commits * GENERATION_NONCE + random nonce

_SCHEMA = 1

_T = TypeVar("_T")


@dataclass
class ArticleRecord:
    """What the manifest knows about one committed article."""

    id: str
    hash: str
    title: str
    chunk_ids: list[str] = field(default_factory=list)
    source: str = ""
    url: str = ""
    published: str = ""
    origin: str = ""
    chars: int = 0

    def to_chroma(self) -> tuple[str, dict[str, Any]]:
        meta = asdict(self)
        meta.pop("chunk_ids")
        meta.pop("id")
        return json.dumps(self.chunk_ids), meta

    @classmethod
    def from_chroma(
        cls, id_: str, document: str | None, meta: dict[str, Any] | None
    ) -> ArticleRecord:
        meta = dict(meta or {})
        known = {
            k: meta[k]
            for k in ("hash", "title", "source", "url", "published", "origin", "chars")
            if k in meta
        }
        return cls(id=id_, chunk_ids=list(json.loads(document or "[]")), **known)


class ChunkStore:
    """Chunks and manifest in Chroma. Create with :func:`open_store`."""

    # ``client``: a chromadb PersistentClient or HttpClient (two classes, one duck-typed API).
    def __init__(
        self,
        client: Any,
        name: str,
        *,
        location: str,
        create: bool = True,
        reconnect: Callable[[], Any] | None = None,
    ) -> None:
        """Open (or create) the two collections through ``client``.

        ``reconnect`` (servers only) returns a fresh client once the server answers again;
        with it, a call that finds the server gone is retried once on a new connection, and
        fails with :class:`StoreUnavailableError` while the server stays down.
        """
        self.client = client
        self.name = name
        self.location = location
        self._create = create
        self._reconnect = reconnect
        self._lock = threading.Lock()
        self._reconnect_lock = threading.Lock()
        self._open_collections()
        try:
            self.max_batch = int(client.get_max_batch_size())
        except Exception:  # older servers
            self.max_batch = 1000
        self.max_batch = max(1, min(self.max_batch, 2000))

    def _open_collections(self) -> None:
        client, name = self.client, self.name
        try:
            if self._create:
                self.chunks = client.get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine", "ef_search": 100}},
                    metadata={"schema": _SCHEMA, "generation": 0},
                    embedding_function=None,
                )
                self.articles = client.get_or_create_collection(
                    f"{name}-articles", metadata={"schema": _SCHEMA}, embedding_function=None
                )
            else:
                self.chunks = client.get_collection(name, embedding_function=None)
                self.articles = client.get_collection(f"{name}-articles", embedding_function=None)
        except Exception as exc:
            if not self._create and _not_found(exc):
                msg = f"No index named {name!r} at {self.location}."
                raise IndexNotFoundError(msg) from exc
            if self._reconnect is not None and _unreachable(exc):
                raise server_unavailable(self.location, exc) from exc
            msg = f"Could not open the Chroma collection {name!r} at {self.location}: {exc}"
            raise StoreError(
                msg,
                hint="Check RAG_DATA_DIR / RAG_CHROMA_URL; if the index is damaged, "
                "run `rag ingest --rebuild <paths>`.",
            ) from exc

    def _remote(self, call: Callable[[], _T]) -> _T:
        """Run one Chroma call, surviving a server restart.

        Against a server, a connection error is retried once on a fresh client if the server
        answers again (it was restarted), else it becomes a :class:`StoreUnavailableError`;
        every other error passes through unchanged.
        """
        try:
            return call()
        except Exception as exc:
            if self._reconnect is None or isinstance(exc, RagError) or not _unreachable(exc):
                raise
            first = exc
        with self._reconnect_lock:
            if not _server_answers(self.location):
                raise server_unavailable(self.location, first) from first
            logger.info("the Chroma server at %s is back; reconnecting", self.location)
            self.client = self._reconnect()
            self._open_collections()
        try:
            return call()
        except Exception as exc:
            if isinstance(exc, RagError) or not _unreachable(exc):
                raise
            raise server_unavailable(self.location, exc) from exc

    # --- generation ----------------------------------------------------------------------
    def generation(self) -> int:
        """Changes on every committed change (cheap to read); see the module docstring."""
        meta = self._collection_meta()
        return int(meta.get("generation", 0))

    def _collection_meta(self) -> dict[str, Any]:
        """The chunk collection's metadata as the store has it now (not a cached copy)."""
        got = self._remote(lambda: self.client.get_collection(self.name, embedding_function=None))
        return dict(got.metadata or {})

    def bump_generation(self) -> int:
        with self._lock:
            commits = self.generation() // GENERATION_NONCE + 1
            gen = commits * GENERATION_NONCE + secrets.randbelow(GENERATION_NONCE)
            meta = self._collection_meta()
            meta["generation"] = gen
            meta["schema"] = _SCHEMA
            self._remote(lambda: self.chunks.modify(metadata=meta))
            return gen

    # --- what the store was built with ---------------------------------------------------
    def build_info(self) -> dict[str, Any]:
        """The embedding model, dimension and chunk settings recorded at ingest ({} if none)."""
        meta = self._collection_meta()
        return {key: meta[key] for key in BUILD_KEYS if key in meta}

    def record_build(self, info: Mapping[str, Any]) -> None:
        """Merge ``info`` (keys of :data:`BUILD_KEYS`) into the chunk collection's metadata."""
        with self._lock:
            meta = self._collection_meta()
            meta.update({key: info[key] for key in BUILD_KEYS if info.get(key) is not None})
            meta["schema"] = _SCHEMA
            self._remote(lambda: self.chunks.modify(metadata=meta))

    # --- manifest ------------------------------------------------------------------------
    def manifest(self) -> dict[str, ArticleRecord]:
        """Every committed article, by id."""
        out: dict[str, ArticleRecord] = {}
        total = self._remote(lambda: self.articles.count())
        offset = 0
        page = 5000
        while offset < total:
            got = self._remote(
                lambda: self.articles.get(
                    include=["documents", "metadatas"],
                    limit=page,
                    offset=offset,  # noqa: B023 - called right here
                )
            )
            for id_, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                out[id_] = ArticleRecord.from_chroma(id_, doc, meta)
            if not got["ids"]:
                break
            offset += len(got["ids"])
        return out

    def commit_articles(self, records: Sequence[ArticleRecord]) -> None:
        """Write manifest records; call only after their chunks are stored."""
        for batch in _batched(list(records), self.max_batch):
            docs, metas = zip(*(r.to_chroma() for r in batch), strict=True)
            self._remote(
                lambda: self.articles.upsert(
                    ids=[r.id for r in batch],  # noqa: B023 - called right here
                    documents=list(docs),  # noqa: B023
                    metadatas=list(metas),  # noqa: B023
                    embeddings=[[1.0]] * len(batch),  # noqa: B023
                )
            )

    def remove_articles(self, ids: Sequence[str]) -> None:
        for batch in _batched(list(ids), self.max_batch):
            self._remote(lambda: self.articles.delete(ids=batch))  # noqa: B023

    # --- chunks --------------------------------------------------------------------------
    def upsert_chunks(
        self,
        ids: Sequence[str],
        embeddings: Any,
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write chunks: ``add`` for ids not stored yet (~10% cheaper), ``upsert`` for the rest.

        Ids already present are unchanged chunks of an updated article, or chunks an interrupted
        run wrote without committing them.
        """
        n = len(ids)
        for start in range(0, n, self.max_batch):
            end = min(n, start + self.max_batch)
            # a retry after a reconnect asks again which ids are present: add never repeats
            self._remote(
                lambda: self._write_chunks(
                    ids,
                    range(start, end),  # noqa: B023 - called right here
                    embeddings,
                    documents,
                    metadatas,
                )
            )

    def _write_chunks(
        self,
        ids: Sequence[str],
        rows: range,
        embeddings: Any,
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write ``rows`` of the arrays: ``add`` the ids not stored yet, ``upsert`` the rest."""
        present = set(self.chunks.get(ids=[ids[i] for i in rows], include=[])["ids"])
        for write, picked in (
            (self.chunks.add, [i for i in rows if ids[i] not in present]),
            (self.chunks.upsert, [i for i in rows if ids[i] in present]),
        ):
            if picked:
                write(
                    ids=[ids[i] for i in picked],
                    embeddings=embeddings[picked]
                    if hasattr(embeddings, "shape")
                    else [embeddings[i] for i in picked],
                    documents=[documents[i] for i in picked],
                    metadatas=[metadatas[i] for i in picked],
                )

    def delete_chunks(self, ids: Iterable[str]) -> None:
        for batch in _batched(list(ids), self.max_batch):
            self._remote(lambda: self.chunks.delete(ids=batch))  # noqa: B023

    def chunk_count(self) -> int:
        return int(self._remote(lambda: self.chunks.count()))

    def all_chunk_ids(self) -> set[str]:
        return {id_ for page in self._pages(include=[]) for id_ in page["ids"]}

    def iter_chunks(
        self, ids: Sequence[str] | None = None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of the given chunks, or of all chunks."""
        if ids is not None:
            for batch in _batched(list(ids), self.max_batch):
                got = self._remote(
                    lambda: self.chunks.get(
                        ids=batch,  # noqa: B023 - called right here
                        include=["documents", "metadatas"],
                    )
                )
                yield from zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            return
        for page in self._pages(include=["documents", "metadatas"]):
            yield from zip(page["ids"], page["documents"], page["metadatas"], strict=True)

    def _pages(self, include: list[str], page: int = 5000) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            got = self._remote(
                lambda: self.chunks.get(
                    include=include,
                    limit=page,
                    offset=offset,  # noqa: B023 - called right here
                )
            )
            if not got["ids"]:
                return
            yield got
            offset += len(got["ids"])

    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Text and metadata (:class:`ChunkMeta` fields) of the given chunks that exist."""
        return {cid: (text or "", meta or {}) for cid, text, meta in self.iter_chunks(ids)}

    def query(
        self, embedding: Sequence[float], n: int, flt: ChunkFilter | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunks as (id, cosine distance), best first, among those ``flt`` keeps."""
        count = self.chunk_count()
        if count == 0:
            return []
        try:
            got = self._remote(
                lambda: self.chunks.query(
                    query_embeddings=[list(embedding)],
                    n_results=min(n, count),
                    where=chroma_where(flt) if flt is not None else None,
                    include=["distances"],
                )
            )
        except RagError:
            raise
        except Exception as exc:  # a dimension error means another embedding model built it
            recorded = self.build_info()
            if recorded.get("embedding_dim") not in (None, len(embedding)):
                raise mismatch_error(
                    self.location, recorded, {"embedding_dim": len(embedding)}
                ) from exc
            raise
        return list(zip(got["ids"][0], got["distances"][0], strict=True))

    def drop(self) -> None:
        """Delete both collections (used by tests and `rag ingest --rebuild`)."""
        for name in (self.name, f"{self.name}-articles"):
            try:
                self._remote(lambda: self.client.delete_collection(name))  # noqa: B023
            except StoreUnavailableError:
                raise
            except Exception:  # already gone
                logger.debug("collection %s already absent", name)


def chroma_where(flt: ChunkFilter) -> dict[str, Any] | None:
    """Chroma's ``where`` clause for a :class:`ChunkFilter` (``None`` when it keeps everything)."""
    clauses: list[dict[str, Any]] = []
    if flt.sources:
        clauses.append({"source": {"$in": list(flt.sources)}})
    if flt.article_ids:
        clauses.append({"article_id": {"$in": list(flt.article_ids)}})
    if flt.published_from:
        clauses.append({"published_int": {"$gte": flt.published_from}})
    if flt.published_to:
        clauses.append({"published_int": {"$lte": flt.published_to}})
        clauses.append({"published_int": {"$gt": 0}})
    if flt.published_max:
        clauses.append({"published_int": {"$lte": flt.published_max}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _batched(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def open_store(settings: Settings, *, create: bool = True) -> ChunkStore:
    """Open the chunk store named by the settings (creating it unless ``create=False``)."""
    if not create and not settings.chroma_url and not settings.chroma_path.exists():
        msg = f"No index at {settings.chroma_path.resolve()}."
        raise IndexNotFoundError(msg)
    client, location = _client(settings)
    reconnect = (lambda: _client(settings, fresh=True)[0]) if settings.chroma_url else None
    return ChunkStore(
        client, settings.collection, location=location, create=create, reconnect=reconnect
    )
