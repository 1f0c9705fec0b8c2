"""article-rag: answer questions about news articles, every claim tied to its passage."""

from __future__ import annotations

from rag.config import Settings
from rag.errors import RagError

__all__ = ["RagError", "Settings"]
__version__ = "0.1.0"
