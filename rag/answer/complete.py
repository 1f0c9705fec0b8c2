"""Completing a short broad answer with the passages' own sentences.

The small model often answers an overview, a "why" or a "what did X say" in one or two
sentences while its passages hold more of what was asked (measured on the overview suite: the
facts were in what the model saw twice as often as in its answer). When a verified broad answer
has fewer supported sentences than the kind asks for, the passages' best remaining sentences
(ranked like the extractive answer: the question's topic words plus dense similarity, and for
"what did X say" only X's own words) follow it, each cited, until the answer has
``target`` sentences. A sentence that repeats one the answer already has, or the span an answer
sentence was verified against, is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rag.answer.attribution import speaker_supported
from rag.answer.cite import Verified, merge_verified, parse_markers, strip_markers, verify_answer
from rag.answer.extractive import extractive_answer
from rag.answer.kinds import QuestionKind
from rag.text import split_sentences, tokenize

__all__ = ["TARGET_SENTENCES", "complete_broad", "completion_sentences"]

# Supported sentences a broad answer should have, by question kind (rag.answer.kinds): the
# middle of what its prompt asks for (rag.answer.prompts).
TARGET_SENTENCES = {"overview": 5, "comparison": 5, "why": 4, "how": 4, "said": 4}

# Two sentences sharing this share of their words say the same thing.
_SAME = 0.6
# Page furniture that reads like a sentence: "MORE COVERAGE:Burning Man is ...", "READ MORE: ..."
_LABEL = re.compile(r"^\W*[A-Z]{2,}(?:\s+[A-Z]{2,})*\s*:")


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / (min(len(a), len(b)) or 1)


def completion_sentences(
    verified: Verified,
    context: Sequence[Document],
    topic: str,
    *,
    target: int,
    embedder: Any = None,
    speaker: str | None = None,
) -> list[str]:
    """Cited passage sentences ("... [2].") to append to ``verified``.

    At most ``target`` minus the supported sentences it has; ``[]`` when it has enough or the
    passages hold nothing it does not already say.
    """
    have = [
        tokenize(strip_markers(verified.answer[a:b])) for a, b in split_sentences(verified.answer)
    ]
    missing = target - verified.supported_claims
    if missing <= 0 or not context:
        return []
    if speaker is not None and not any(
        speaker_supported(speaker, d.page_content, a, b)
        for d in context
        for a, b in split_sentences(d.page_content)
    ):
        return []  # only the asked speaker's own words complete a "what did X say" answer
    seen = [set(t) for t in have if t]
    seen += [
        set(tokenize(c.doc.page_content[c.quote_start : c.quote_end]))
        for c in verified.citations
        if c.supported
    ]
    extract, _ = extractive_answer(
        topic, context, embedder=embedder, sentences=target + 2, speaker=speaker
    )
    out: list[str] = []
    for start, end in split_sentences(extract):
        sentence = extract[start:end].strip()
        body = strip_markers(sentence).rstrip(". ")
        words = set(tokenize(body))
        if len(words) < 4 or any(_overlap(words, other) >= _SAME for other in seen):
            continue
        cited = [n for n in parse_markers(sentence) if 1 <= n <= len(context)]
        source = context[cited[0] - 1].page_content if cited else ""
        if _LABEL.match(body) or f"{body}?" in source:  # a label or a question-style heading
            continue
        out.append(sentence)
        seen.append(words)
        if len(out) >= missing:
            break
    return out


def complete_broad(
    verified: Verified,
    context: Sequence[Document],
    question: str,
    qkind: QuestionKind,
    *,
    embedder: Any = None,
) -> tuple[Verified, int]:
    """``verified`` followed by the verified :func:`completion_sentences` for its kind.

    Returns the answer and how many sentences were added (``verified`` and ``0`` when none
    was needed or none held).
    """
    extra = completion_sentences(
        verified,
        context,
        qkind.topic,
        target=TARGET_SENTENCES.get(qkind.kind, 0),
        embedder=embedder,
        speaker=qkind.speaker,
    )
    if not extra:
        return verified, 0
    more = verify_answer(" ".join(extra), list(context), question=question, lenient=True)
    if not more.any_supported:
        return verified, 0
    return merge_verified(verified, more), more.supported_claims
