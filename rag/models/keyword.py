"""A model-free embedder (``embedding_model = "keyword"``): hashed bag of content words.

Deterministic and instant; for demos, tests and machines without the bundled model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.text import tokenize

__all__ = ["KeywordEmbedder"]


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
