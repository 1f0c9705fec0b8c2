"""The evidence behind refusals: how well the passages cover a question, and refusal wording."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from langchain_core.documents import Document

from rag.answer.question import GENERIC_WORDS
from rag.dates import to_date
from rag.text import tokenize

__all__ = ["Evidence", "assess_evidence", "is_refusal_text", "topic_coverage"]

_REFUSAL = re.compile(
    r"(articles? (don'?t|do not|doesn'?t|does not) (say|mention|contain|specify|state)|"
    r"passages? (don'?t|do not|doesn'?t|does not) (say|mention|contain|specify|state|provide)|"
    r"(no|not enough) information|not (mentioned|provided|stated|specified|available) in|"
    r"(cannot|can'?t|unable to) (find|answer|determine)|there is no mention)",
    re.IGNORECASE,
)


def is_refusal_text(answer: str) -> bool:
    """Whether the model said, in its own words, that the passages don't hold the answer."""
    return bool(_REFUSAL.search(answer))


@dataclass
class Evidence:
    """How well the retrieved passages cover a question."""

    coverage: float  # share of the question's topic words found in the best passage
    dense: float  # best dense cosine similarity among the passages
    newest: date | None  # newest publication date among the passages
    age_days: int | None  # days between that date and "today", when today was given

    def to_dict(self) -> dict[str, Any]:
        return {
            "coverage": round(self.coverage, 3),
            "dense": round(self.dense, 3),
            "newest": self.newest.isoformat() if self.newest else None,
            "age_days": self.age_days,
        }


def topic_coverage(question: str, docs: Sequence[Document]) -> float:
    """The largest share of ``question``'s topic words one passage (with its title) holds."""
    topic = {t for t in tokenize(question) if t not in GENERIC_WORDS}
    if not topic:
        return 0.0
    return max(
        (
            len(topic & set(tokenize(f"{d.metadata.get('title', '')} {d.page_content}")))
            / len(topic)
            for d in docs
        ),
        default=0.0,
    )


def assess_evidence(question: str, docs: Sequence[Document], today: date | None) -> Evidence:
    """Measure the evidence the passages give for ``question`` (see :class:`Evidence`)."""
    coverage = topic_coverage(question, docs)
    dense = 0.0
    newest: date | None = None
    for doc in docs:
        score = doc.metadata.get("dense_score")
        if isinstance(score, int | float):
            dense = max(dense, float(score))
        published = to_date(doc.metadata.get("published"))
        if published and (newest is None or published > newest):
            newest = published
    age = (today - newest).days if today and newest else None
    return Evidence(coverage=coverage, dense=dense, newest=newest, age_days=age)
