"""The optional cross-encoder reranker (none is bundled; a local path turns it on)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["load_reranker"]


_rerankers: dict[str, Any] = {}
_rerankers_lock = threading.Lock()


def load_reranker(settings: Settings) -> Any | None:
    """Load the configured sentence-transformers ``CrossEncoder``, or ``None`` when unset."""
    name = settings.reranker
    if not name:
        return None
    with _rerankers_lock:
        if name in _rerankers:
            return _rerankers[name]
        if Path(name).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(name, device="cpu")
        except Exception as exc:
            msg = f"Could not load the reranker {name!r}: {exc}"
            raise ModelError(
                msg, hint="Set RAG_RERANKER to a local CrossEncoder folder, or unset it."
            ) from exc
        _rerankers[name] = model
        return model
