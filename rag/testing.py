"""Drop-in fakes for tests and demos: deterministic, instant, no model files.

Production code never imports this module; the model-free embedder it re-exports lives in
:mod:`rag.models.keyword` because ``embedding_model = "keyword"`` is a real setting.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from rag.models.keyword import KeywordEmbedder
from rag.text import tokenize

__all__ = ["KeywordEmbedder", "StaticRetriever"]


class StaticRetriever(BaseRetriever):
    """Returns fixed documents ranked by shared words with the query; records each call."""

    docs: list[Document]
    k: int = 5
    calls: list[dict[str, Any]] = Field(default_factory=list)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        self.calls.append({"query": query, **kwargs})
        words = set(tokenize(query))
        ranked = sorted(self.docs, key=lambda d: -len(words & set(tokenize(d.page_content))))
        return ranked[: self.k]
