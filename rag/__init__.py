"""article-rag: answer questions about news articles, every claim tied to its passage.

Public API::

    from rag import Settings, build_chain, build_retriever, ingest

    ingest(["corpus/"])
    chain = build_chain(Settings(llm="extractive"))
    chain.invoke({"input": "How many KFOR troops are there?", "chat_history": []})

Heavy modules load on first use, so ``import rag`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.answer.chain import build_chain
    from rag.ingest.pipeline import ingest
    from rag.retrieve.hybrid import build_retriever

__all__ = ["RagError", "Settings", "build_chain", "build_retriever", "ingest"]
__version__ = "0.1.0"

_LAZY = {
    "build_chain": "rag.answer.chain",
    "build_retriever": "rag.retrieve.hybrid",
    "ingest": "rag.ingest.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'rag' has no attribute {name!r}"
    raise AttributeError(msg)
