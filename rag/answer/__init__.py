"""Stage 4, answer: the chain from a question (and history) to a verified, cited answer.

``question`` reads the question and history; ``evidence`` decides refusals from the passages;
``extractive`` answers without an LLM and trims passages for prompts; ``prompts`` holds every
prompt; ``cite`` verifies citations; ``chain`` ties them into a LangChain ``Runnable``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.answer.chain import RagChain, build_chain

__all__ = ["RagChain", "build_chain"]


def __getattr__(name: str) -> Any:
    """Lazy exports: the chain pulls in LangChain's runnables."""
    if name in __all__:
        from rag.answer import chain

        return getattr(chain, name)
    msg = f"module 'rag.answer' has no attribute {name!r}"
    raise AttributeError(msg)
