"""Drop-in fakes for tests and demos: deterministic, instant, no model files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.bm25 import tokenize

__all__ = ["KeywordEmbedder", "StaticRetriever"]


class KeywordEmbedder(Embeddings):
    """Hashes content words into a normalised bag-of-words vector.

    Texts sharing words get similar vectors, so retrieval tests behave sensibly without a
    neural model. Same interface as :class:`rag.models.Embedder`.
    """

    name = "keyword-fake"
    dtype = "float32"

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension
        self.calls = 0
        self.texts_encoded = 0

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        for token in tokenize(text):
            slot = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
            vec[slot % self.dimension] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text).tolist()


from typing import Any  # noqa: E402

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402


class StaticRetriever(BaseRetriever):
    """Returns fixed documents ranked by shared words with the query; records each call."""

    docs: list[Document]
    k: int = 5
    calls: list[dict[str, Any]] = []

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        self.calls.append({"query": query, **kwargs})
        words = set(tokenize(query))
        ranked = sorted(self.docs, key=lambda d: -len(words & set(tokenize(d.page_content))))
        return ranked[: self.k]
