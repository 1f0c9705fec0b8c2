"""The typed answer every surface receives, and the one fold from stream events to it.

The chain streams events: ``{"standalone_question": str}``, ``{"context": [Document]}``, any
number of ``{"answer": token}`` deltas, then one ``{"final": {...}}`` with the verified answer.
:class:`AnswerFolder` turns that stream back into a :class:`RagAnswer`; ``invoke``, the CLI,
the web page, the evaluation runner and the benchmarks all use it, so they cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypedDict

from langchain_core.documents import Document

__all__ = [
    "AnswerFolder",
    "CitationDict",
    "EvidenceDict",
    "RagAnswer",
    "RefusalReason",
    "ShownPassage",
    "Timings",
    "Verification",
    "fold_events",
]

RefusalReason = Literal[
    "no_passages", "stale", "off_topic", "weak_match", "model", "unsupported", "no_answer"
]
"""Why an answer was refused: nothing retrieved, evidence too old, passages off the topic, no
sentence close enough (extractive), the model said the articles don't say, no claim of the
model's answer is supported by a passage, or its supported answer does not answer the question
(no date for "when", no figure for "how many", only the question's own words, or a cited
passage about something else)."""


class CitationDict(TypedDict):
    """One verified citation: the passage ``[n]`` and the sentence in it that supports the claim."""

    n: int
    chunk_id: str | None
    article_id: str | None
    title: str
    source: str
    url: str
    published: str
    passage: str
    span: list[int | None]  # the passage's character span in its article
    quote: str
    quote_start: int  # the quote's offsets in ``passage``
    quote_end: int
    support: float
    supported: bool


class Timings(TypedDict, total=False):
    """Seconds spent per step (steps that did not run are absent)."""

    condense_s: float
    retrieve_s: float
    first_token_s: float
    generate_s: float
    verify_s: float
    total_s: float


class Verification(TypedDict):
    """What citation verification did to the model's answer."""

    claims: int
    supported_claims: int
    repaired: int
    removed: int
    added: int
    trimmed: int
    dropped: int  # unsupported sentences removed from an answer that kept others
    extractive_fallback: bool  # a broad answer made of the passages' own sentences instead
    completed: int  # passage sentences appended to a short broad answer (rag.answer.complete)


class EvidenceDict(TypedDict, total=False):
    """How well the passages cover the question (see :class:`rag.answer.evidence.Evidence`)."""

    coverage: float
    dense: float
    newest: str | None
    age_days: int | None
    extractive_score: float


class ShownPassage(TypedDict):
    """What the model saw of passage ``n`` (its most relevant sentences, for a local model)."""

    n: int
    text: str


class RagAnswer(TypedDict, total=False):
    """The chain's output (``invoke``), also what :func:`fold_events` builds from ``stream``.

    ``answer`` is the verified answer (a refusal starts with "The articles don't say.");
    ``raw_answer`` is what the model streamed before verification.
    """

    answer: str
    raw_answer: str
    citations: list[CitationDict]
    context: list[Document]
    standalone_question: str
    refused: bool
    refusal_reason: RefusalReason
    timings: Timings
    model: str
    kind: str  # the question's kind (rag.answer.kinds): fact, when, overview, why, said, ...
    evidence: EvidenceDict
    verification: Verification
    unsupported_answer: str
    shown_passages: list[ShownPassage]
    small_talk: bool


class AnswerFolder:
    """Folds stream events, one at a time, into a :class:`RagAnswer`.

    Example:
        >>> folder = AnswerFolder()
        >>> for event in chain.stream({"input": "How many troops?"}):  # doctest: +SKIP
        ...     if (token := folder.add(event)) is not None:
        ...         print(token, end="")
        >>> folder.result()["answer"]  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._out: dict[str, Any] = {}
        self._tokens: list[str] = []
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.complete = False  # the final event arrived

    def add(self, event: Mapping[str, Any]) -> str | None:
        """Take one event; returns the token text when it was an answer delta."""
        token: str | None = None
        for key, value in event.items():
            if key == "answer":
                token = str(value or "")
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                self._tokens.append(token)
            elif key == "final":
                self._out.update(value or {})
                self.complete = True
            else:
                self._out[key] = value
        return token

    @property
    def streamed(self) -> str:
        """The answer text streamed so far (before verification)."""
        return "".join(self._tokens)

    def result(self) -> RagAnswer:
        """The answer folded so far; complete once the final event was added."""
        out: dict[str, Any] = dict(self._out)
        out.setdefault("answer", self.streamed)
        out["raw_answer"] = self.streamed
        return out  # type: ignore[return-value]  # a dict shaped by the chain's final event


def fold_events(events: Iterable[Mapping[str, Any]]) -> RagAnswer:
    """Fold a whole event stream (``chain.stream(...)``) into a :class:`RagAnswer`."""
    folder = AnswerFolder()
    for event in events:
        folder.add(event)
    return folder.result()
