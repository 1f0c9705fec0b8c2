"""What an index was built with (embedding model and dimension, chunking), checked on use.

Ingest refuses to mix another build into an index, and retrieval refuses to query it with
another embedding model, each with a one-line error naming both and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rag.errors import IndexMismatchError

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.index.store import ChunkStore

__all__ = ["BUILD_KEYS", "build_mismatch", "check_build", "embedder_name", "mismatch_error"]

# What the chunk collection's metadata records about how the index was built (next to
# ``generation``): vectors of another model, or chunks cut another way, must not be mixed in.
BUILD_KEYS = ("embedding_model", "embedding_dim", "chunk_size", "chunk_overlap")


def embedder_name(settings: Settings, embedder: Any = None) -> str:
    """The identity recorded for an embedder: its ``name``, or the configured model's name.

    Matches the ``name`` :func:`rag.models.embedder.load_embedder` gives the model it would load,
    without loading it.
    """
    if embedder is not None:
        inner = getattr(embedder, "embeddings", None)  # a wrapped LangChain Embeddings
        return str(getattr(embedder, "name", None) or type(inner or embedder).__name__)
    if settings.embedding_model == "keyword":
        from rag.models.keyword import KeywordEmbedder

        return KeywordEmbedder.name
    from rag.models.embedder import describe_embedder

    return describe_embedder(settings)


def _describe(info: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if "embedding_model" in info or "embedding_dim" in info:
        model = f"embedding model {info.get('embedding_model', '?')!r}"
        if info.get("embedding_dim") is not None:
            model += f" ({info['embedding_dim']}-d)"
        parts.append(model)
    if "chunk_size" in info or "chunk_overlap" in info:
        size, overlap = info.get("chunk_size", "?"), info.get("chunk_overlap", "?")
        parts.append(f"chunk_size {size}, chunk_overlap {overlap}")
    return " and ".join(parts)


def build_mismatch(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``wanted`` (known, not None) whose recorded value differs (empty: they agree).

    ``embedding_dim`` is compared with the model: a different dimension is another model.
    """
    return {
        key: value
        for key, value in wanted.items()
        if value is not None and key in recorded and recorded[key] != value
    }


def mismatch_error(
    location: str, recorded: Mapping[str, Any], wanted: Mapping[str, Any]
) -> IndexMismatchError:
    """The one-line error for a store built with other settings than ``wanted``."""
    differ = build_mismatch(recorded, wanted) or dict(wanted)
    keys = set(differ)
    if keys & {"embedding_model", "embedding_dim"}:
        keys |= {"embedding_model", "embedding_dim"}
    if keys & {"chunk_size", "chunk_overlap"}:
        keys |= {"chunk_size", "chunk_overlap"}
    old = {k: recorded[k] for k in BUILD_KEYS if k in keys and k in recorded}
    new = {k: wanted[k] for k in BUILD_KEYS if k in keys and wanted.get(k) is not None}
    back = []
    if "embedding_model" in old:
        back.append(f"embedding model {old['embedding_model']!r}")
    if "chunk_size" in old:
        back.append(f"RAG_CHUNK_SIZE={old['chunk_size']}")
    if "chunk_overlap" in old:
        back.append(f"RAG_CHUNK_OVERLAP={old['chunk_overlap']}")
    msg = (
        f"The index at {location} was built with {_describe(old)}, "
        f"but this run uses {_describe(new)}."
    )
    hint = "Re-index with `rag ingest --rebuild <paths>`" + (
        f", or go back to the old settings ({', '.join(back)})." if back else "."
    )
    return IndexMismatchError(msg, hint=hint)


def check_build(store: ChunkStore, wanted: Mapping[str, Any]) -> None:
    """Raise :class:`~rag.errors.IndexMismatchError` if ``store`` was built otherwise.

    Stores that recorded nothing (built before the record existed) pass.
    """
    recorded = store.build_info()
    if build_mismatch(recorded, wanted):
        raise mismatch_error(store.location, recorded, wanted)
