"""Answers without an LLM and prompt trimming: rank the passages' sentences against the question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rag.answer.attribution import speaker_supported
from rag.answer.cite import support
from rag.answer.instructions import mask_instructions
from rag.answer.question import GENERIC_WORDS
from rag.text import split_sentences, tokenize

__all__ = ["answer_support", "extractive_answer", "select_sentences"]

_WANTS_NUMBER = re.compile(
    r"\bhow (many|much|old|long|far)\b|\bwhat (year|percentage|number|price)\b", re.I
)


def _sentence_score(q_tokens: set[str], sentence: str) -> float:
    tokens = set(tokenize(sentence))
    if not tokens:
        return 0.0
    return len(q_tokens & tokens) / (len(q_tokens) or 1)


def select_sentences(
    question: str, text: str, *, max_chars: int = 600, speaker: str | None = None
) -> str:
    """The sentences of ``text`` most related to ``question``, in order, within ``max_chars``.

    Gaps are marked with "…". Keeps prompts short, which is what makes a local model fast.
    With a ``speaker`` ("What did Kurti say?"), that person's own words come first.
    """
    if len(text) <= max_chars:
        return text
    spans = split_sentences(text)
    if not spans:
        return text[:max_chars]
    q_tokens = {t for t in tokenize(question) if t not in GENERIC_WORDS} or set(tokenize(question))
    wants_number = bool(_WANTS_NUMBER.search(question))

    def score(i: int) -> float:
        sentence = text[spans[i][0] : spans[i][1]]
        bonus = 0.25 if wants_number and re.search(r"\d", sentence) else 0.0
        if speaker is not None and speaker_supported(speaker, text, *spans[i]):
            bonus += 1.0
        return _sentence_score(q_tokens, sentence) + bonus

    scored = sorted(range(len(spans)), key=lambda i: (-score(i), i))
    chosen: set[int] = set()
    used = 0
    for i in scored:
        length = spans[i][1] - spans[i][0]
        if used + length > max_chars and chosen:
            continue
        chosen.add(i)
        used += length
        # a best sentence keeps its neighbour for context when there is room
        for j in (i - 1, i + 1):
            if (
                0 <= j < len(spans)
                and j not in chosen
                and used + spans[j][1] - spans[j][0] <= max_chars * 0.6
            ):
                chosen.add(j)
                used += spans[j][1] - spans[j][0]
    parts: list[str] = []
    last = -2
    for i in sorted(chosen):
        if i != last + 1 and parts:
            parts.append("…")
        parts.append(text[spans[i][0] : spans[i][1]])
        last = i
    return " ".join(parts)


def extractive_answer(
    question: str,
    docs: Sequence[Document],
    *,
    embedder: Any = None,
    sentences: int = 1,
    speaker: str | None = None,
) -> tuple[str, float]:
    """The best supporting sentence with its citation, and the confidence used for refusing.

    The confidence is the share of the question's topic words the sentence holds.

    Sentences are ranked by that share plus dense similarity when an embedder is given;
    answer-type hints (numbers for "how many") break ties. With ``sentences`` > 1 (broad
    questions), the next best sentences that are not part of one already chosen follow, in
    passage order, while they score at least half the best. With a ``speaker`` ("What did
    Kurti say?"), only sentences that are that person's words are candidates, when any are.
    """
    q_tokens = {t for t in tokenize(question) if t not in GENERIC_WORDS} or set(tokenize(question))
    wants_number = bool(_WANTS_NUMBER.search(question))
    candidates: list[tuple[int, str]] = []
    for n, doc in enumerate(docs, start=1):
        # instructions planted in the article are never the answer (blanked, offsets kept)
        text = mask_instructions(doc.page_content)
        for start, end in split_sentences(text):
            sentence = text[start:end]
            if text != doc.page_content:
                sentence = re.sub(r"\s{2,}", " ", sentence)
            if speaker is not None and not speaker_supported(speaker, doc.page_content, start, end):
                continue
            candidates.append((n, sentence))
            if len(sentence) > 160:  # long quotes: the clause after the quote often holds the fact
                candidates.extend((n, clause) for clause in _clauses(sentence))
    if not candidates:
        if speaker is not None:
            return extractive_answer(question, docs, embedder=embedder, sentences=sentences)
        return "", 0.0
    lexical = [_sentence_score(q_tokens, s) for _, s in candidates]
    dense = [0.0] * len(candidates)
    if embedder is not None:
        import numpy as np

        # embed only the lexically most promising units: encoding every sentence of every
        # passage costs seconds on a small CPU, and units sharing no topic word rarely win
        shortlist = sorted(range(len(candidates)), key=lambda i: -lexical[i])[:_DENSE_SHORTLIST]
        vectors = np.asarray(embedder.encode([question] + [candidates[i][1] for i in shortlist]))
        for i, value in zip(shortlist, vectors[1:] @ vectors[0], strict=True):
            dense[i] = float(value)
    scores = []
    for i, (n, sentence) in enumerate(candidates):
        score = 0.6 * lexical[i] + 0.4 * max(dense[i], 0.0) if embedder is not None else lexical[i]
        if wants_number and re.search(r"\d", sentence):
            score += 0.1
        score -= 0.01 * (n - 1)  # earlier passages ranked higher by retrieval
        scores.append(score)
    # the shortest unit within 5% of the best score: a clause beats its whole sentence
    top = max(scores)
    best = min(
        (i for i in range(len(candidates)) if scores[i] >= top - 0.05 * abs(top)),
        key=lambda i: (len(candidates[i][1]), -scores[i]),
    )
    chosen = [best]
    for i in sorted(range(len(candidates)), key=lambda i: -scores[i]):
        if len(chosen) >= sentences or scores[i] < 0.5 * top:
            break
        text_i = candidates[i][1]
        if any(text_i in candidates[j][1] or candidates[j][1] in text_i for j in chosen):
            continue
        chosen.append(i)
    parts = []
    for i in sorted(chosen, key=lambda i: (candidates[i][0], i)) if sentences > 1 else chosen:
        n, sentence = candidates[i]
        text = sentence.strip()
        if text and text[-1] in ".!?":
            text = text[:-1]
        parts.append(f"{text} [{n}].")
    # confidence = how much of the question's topic the best sentence actually holds
    return " ".join(parts), lexical[best]


_DENSE_SHORTLIST = 12
_CLAUSE_BREAK = re.compile(r"[”\";]\s*|\s+[–—]\s+")
_REPORTING = re.compile(
    r"^(?:said|says|added|adds|noted|notes|recalled|stressed|warned)\b[^,]{0,60},\s*(?:who\s+\w+\s+that\s+)?",
    re.I,
)


def _clauses(sentence: str) -> list[str]:
    """Clauses of a long sentence, with a leading "said X, who recalled that" removed."""
    out = []
    for part in _CLAUSE_BREAK.split(sentence):
        part = _REPORTING.sub("", part.strip()).strip(" ,")
        if len(part) >= 30 and part != sentence:
            out.append(part[0].upper() + part[1:])
    return out


def answer_support(answer: str, docs: Sequence[Document]) -> float:
    """Best support any passage gives the answer as a whole (0..1)."""
    return max((support(answer, d.page_content) for d in docs), default=0.0)
