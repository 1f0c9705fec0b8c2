"""article-rag: answer questions about news articles, every claim tied to its passage.

Public API::

    from rag import Settings, build_chain, build_retriever, ingest

    ingest(["corpus/"])
    chain = build_chain(Settings(llm="extractive"))
    out: RagAnswer = chain.invoke({"input": "How many KFOR troops are there?"})

``build_chain`` gives a LangChain ``Runnable`` (``invoke``, ``stream``, ``batch``, ``ainvoke``,
``astream``); ``build_retriever`` a LangChain ``BaseRetriever``; :class:`RagAnswer` types the
output and :class:`AnswerFolder` / :func:`fold_events` turn ``stream()`` events back into one.

Heavy modules load on first use, so ``import rag`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.answer.chain import RagChain, build_chain
    from rag.answer.result import AnswerFolder, CitationDict, RagAnswer, fold_events
    from rag.ingestion.pipeline import IngestReport, ingest
    from rag.retrieve.hybrid import HybridRetriever, build_retriever

__all__ = [
    "AnswerFolder",
    "CitationDict",
    "HybridRetriever",
    "IngestReport",
    "RagAnswer",
    "RagChain",
    "RagError",
    "Settings",
    "build_chain",
    "build_retriever",
    "fold_events",
    "ingest",
]
__version__ = "0.1.0"

_LAZY = {
    "AnswerFolder": "rag.answer.result",
    "CitationDict": "rag.answer.result",
    "HybridRetriever": "rag.retrieve.hybrid",
    "IngestReport": "rag.ingestion.pipeline",
    "RagAnswer": "rag.answer.result",
    "RagChain": "rag.answer.chain",
    "build_chain": "rag.answer.chain",
    "build_retriever": "rag.retrieve.hybrid",
    "fold_events": "rag.answer.result",
    "ingest": "rag.ingestion.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'rag' has no attribute {name!r}"
    raise AttributeError(msg)
