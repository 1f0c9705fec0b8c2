"""Errors raised by the library.

Every message says what happened and what to do next; the edges (CLI, UI, evals) translate
them, the library never prints.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error the library raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class ConfigError(RagError):
    """A setting is missing, malformed or contradicts another."""


class DocumentError(RagError):
    """An article file could not be read; ingest reports it and goes on."""


class IndexNotFoundError(RagError):
    """The index does not exist yet."""

    hint = "Did you forget to run `rag ingest corpus/` (or `make run`)?"


class StoreError(RagError):
    """The vector store could not be opened or written."""


class StoreUnavailableError(StoreError):
    """The Chroma server did not answer (stopped, restarting, wrong URL); retrying later works."""


class IndexMismatchError(StoreError):
    """The index was built with another embedding model or other chunk settings."""

    hint = "Re-index with `rag ingest --rebuild <paths>`, or go back to the old settings."


class ModelError(RagError):
    """A model (embedder, reranker, LLM) could not be loaded or failed while running."""


class MissingDependencyError(ModelError):
    """An optional package is not installed."""

    def __init__(self, package: str, extra: str, what: str) -> None:
        super().__init__(
            f"{what} needs the Python package '{package}', which is not installed.",
            hint=f"Install it with: pip install 'article-rag[{extra}]'",
        )


class InputError(RagError):
    """A question or request is empty, too long or malformed."""
