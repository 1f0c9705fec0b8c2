"""Stage 3, retrieve: the hybrid retriever (dense + BM25, fused, date-aware), filters, time words.

``hybrid`` holds :class:`HybridRetriever` (a LangChain ``BaseRetriever``); ``filters`` parses
request filters and masks snapshot rows; ``timeparse`` reads "this week", "in March", ...
"""

from __future__ import annotations

from rag.retrieve.filters import Filters, parse_filters
from rag.retrieve.hybrid import HybridRetriever, build_retriever

__all__ = ["Filters", "HybridRetriever", "build_retriever", "parse_filters"]
