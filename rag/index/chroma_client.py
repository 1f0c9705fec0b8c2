"""The Chroma client: one cached connection per store, and what a failed call means.

Holds :func:`_client` (the process's cached ``PersistentClient`` for a data dir, or
``HttpClient`` for ``RAG_CHROMA_URL``, with a request timeout), the server checks
(:func:`_server_answers`, a heartbeat; :func:`_unreachable`, whether an error says the server did
not answer; :func:`server_unavailable`, the one-line error for it), :func:`_not_found` (a missing
collection) and :func:`forget_client` (release an embedded client before its files are deleted).
:mod:`rag.index.store` builds the :class:`~rag.index.store.ChunkStore` on these and re-exports
the public names; ``SERVER_TIMEOUT`` and ``_CONNECT_TIMEOUT`` are read here, when a client is made.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rag.errors import StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["SERVER_TIMEOUT", "forget_client", "server_unavailable"]

logger = logging.getLogger(__name__)

# Seconds a Chroma server request may take (chromadb's own client waits forever): a server that
# hangs (stopped, swapping) fails the question with StoreUnavailableError instead of blocking it.
SERVER_TIMEOUT = 120.0
_CONNECT_TIMEOUT = 10.0

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings, *, fresh: bool = False) -> tuple[Any, str]:
    """The process's cached client for the settings' store; ``fresh`` replaces a server's."""
    import chromadb

    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    if settings.chroma_url:
        parsed = urlparse(settings.chroma_url)
        key = f"http:{settings.chroma_url}"
        location = settings.chroma_url
        with _clients_lock:
            if key not in _clients or fresh:
                # chromadb would build a whole client (never freed) just to find the server
                # down: ask its heartbeat first
                if not _server_answers(location):
                    raise server_unavailable(location, None)
                try:
                    client = chromadb.HttpClient(
                        host=parsed.hostname or "127.0.0.1",
                        port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                        ssl=parsed.scheme == "https",
                        settings=chroma_settings,
                    )
                except Exception as exc:
                    if _unreachable(exc):
                        raise server_unavailable(location, exc) from exc
                    msg = f"Could not reach the Chroma server at {settings.chroma_url}: {exc}"
                    raise StoreError(msg, hint="Is `chroma run` up? Check RAG_CHROMA_URL.") from exc
                _set_timeout(client)
                _clients[key] = client
            return _clients[key], location
    path = settings.chroma_path.resolve()
    key = f"path:{path}"
    with _clients_lock:
        if key not in _clients:
            path.mkdir(parents=True, exist_ok=True)
            try:
                _clients[key] = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            except Exception as exc:
                msg = f"Could not open the Chroma database at {path}: {exc}"
                raise StoreError(
                    msg,
                    hint="Is another process holding it, or the disk full? If it is damaged, "
                    "run `rag ingest --rebuild <paths>`.",
                ) from exc
        return _clients[key], str(path)


def _set_timeout(client: Any) -> None:
    """Give the server client's HTTP session a timeout.

    chromadb sets none: a hung server would block a question forever.
    """
    try:
        import httpx

        client._server._session.timeout = httpx.Timeout(SERVER_TIMEOUT, connect=_CONNECT_TIMEOUT)
    except Exception as exc:  # chromadb internals moved: keep its default
        logger.debug("could not set the Chroma client timeout: %s", exc)


def _server_answers(url: str) -> bool:
    """Whether the Chroma server at ``url`` answers its heartbeat now."""
    try:
        with urllib.request.urlopen(  # http(s) only: Settings checks chroma_url
            f"{url.rstrip('/')}/api/v2/heartbeat", timeout=_CONNECT_TIMEOUT
        ) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):
        return False


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it wraps) says the Chroma server did not answer.

    Refused or dropped connections and timeouts count; errors the server answered with do not.
    """
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current, StoreUnavailableError | httpx.TransportError | ConnectionError | TimeoutError
        ):
            return True
        if "could not connect to a chroma server" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def server_unavailable(url: str, exc: BaseException | None) -> StoreUnavailableError:
    """The one-line error for a Chroma server that does not answer."""
    detail = "no reply to its heartbeat"
    if exc is not None:
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
    port = urlparse(url).port or 8000
    return StoreUnavailableError(
        f"The Chroma server at {url} is not answering ({detail}).",
        hint=f"Start it again (`chroma run --path <its data dir> --port {port}`) or fix "
        "RAG_CHROMA_URL, then retry: running apps reconnect by themselves.",
    )


def _not_found(exc: BaseException) -> bool:
    """Whether Chroma's ``exc`` says the collection does not exist (not that it is unreadable)."""
    from chromadb.errors import NotFoundError

    text = str(exc).lower()
    return isinstance(exc, NotFoundError) or "does not exist" in text or "not found" in text


def forget_client(settings: Settings) -> None:
    """Close and forget the embedded client of ``settings.chroma_path`` (before deleting it)."""
    path = settings.chroma_path.resolve()
    with _clients_lock:
        _clients.pop(f"path:{path}", None)
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        systems = SharedSystemClient._identifier_to_system
        system = systems.pop(str(path), None)
        SharedSystemClient._identifier_to_refcount.pop(str(path), None)
        if system is not None:
            system.stop()
    except Exception as exc:  # chromadb internals moved: the next open may reuse stale state
        logger.debug("could not release the Chroma client of %s: %s", path, exc)
