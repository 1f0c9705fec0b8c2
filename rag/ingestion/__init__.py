"""Stage 1, ingest: read article files, clean them, chunk them and commit them to the index.

``load`` (files and folders → :class:`Article`) uses ``formats`` (one parser per file type) and
``clean`` (news boilerplate); ``chunk`` splits articles into sentence-whole chunks; ``pipeline``
embeds and commits them crash-safely and incrementally (:func:`ingest`).
"""

from __future__ import annotations

from rag.ingestion.chunk import Chunk, split_article
from rag.ingestion.load import SUPPORTED_SUFFIXES, Article, LoadFailure, iter_articles, load_file
from rag.ingestion.pipeline import IngestProgress, IngestReport, ingest

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Article",
    "Chunk",
    "IngestProgress",
    "IngestReport",
    "LoadFailure",
    "ingest",
    "iter_articles",
    "load_file",
    "split_article",
]
