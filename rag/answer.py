"""The answering steps that need no LLM: follow-up detection, passage trimming, extractive
answers and the evidence checks behind refusals. Pure functions, easy to test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag.bm25 import tokenize
from rag.cite import support
from rag.text import split_sentences

__all__ = [
    "Evidence",
    "assess_evidence",
    "extractive_answer",
    "is_refusal_text",
    "is_small_talk",
    "needs_rewrite",
    "normalize_history",
    "select_sentences",
]

_WANTS_NUMBER = re.compile(r"\bhow (many|much|old|long|far)\b|\bwhat (year|percentage|number|price)\b", re.I)
_SMALL_TALK = re.compile(
    r"^\s*(hi|hello|hey|hiya|yo|good (morning|afternoon|evening)|thanks?( you)?|thank you( very much)?|"
    r"ok(ay)?|cool|great|bye|goodbye|cheers)\W*$",
    re.IGNORECASE,
)
# Words that make a question lean on the conversation before it.
_ANAPHORA = re.compile(
    r"\b(they|them|their|theirs|it|its|he|him|his|she|her|hers|this|that|these|those|there|"
    r"the same|the other|what about|how about|and what|which ones?|the former|the latter)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"(articles? (don'?t|do not|doesn'?t|does not) (say|mention|contain|specify|state)|"
    r"passages? (don'?t|do not|doesn'?t|does not) (say|mention|contain|specify|state|provide)|"
    r"(no|not enough) information|not (mentioned|provided|stated|specified|available) in|"
    r"(cannot|can'?t|unable to) (find|answer|determine)|there is no mention)",
    re.IGNORECASE,
)
# Question words and time words: present in questions, rarely telling about the topic.
_GENERIC = frozenset(tokenize(
    "what which who whom whose when where why how many much week weeks month year today yesterday "
    "tomorrow recently recent latest new news announced reported according called named"
))


def normalize_history(history: Any) -> list[BaseMessage]:
    """Chat history as LangChain messages; accepts messages, (role, text) pairs or
    ``{"role", "content"}`` dicts (Gradio's format, whose content may be a list of parts)."""
    out: list[BaseMessage] = []
    for item in history or []:
        if isinstance(item, BaseMessage):
            out.append(item)
            continue
        if isinstance(item, dict):
            role, content = item.get("role", "user"), item.get("content", "")
        elif isinstance(item, list | tuple) and len(item) == 2:
            role, content = item
        else:
            continue
        if isinstance(content, list):
            content = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        content = str(content or "")
        if not content.strip():
            continue
        if role in ("assistant", "ai", "bot"):
            out.append(AIMessage(content=content))
        elif role == "system":
            out.append(SystemMessage(content=content))
        else:
            out.append(HumanMessage(content=content))
    return out


def is_small_talk(question: str) -> bool:
    return bool(_SMALL_TALK.match(question))


def needs_rewrite(question: str, history: Sequence[BaseMessage]) -> bool:
    """Whether a follow-up depends on the conversation (pronouns, or too short to stand alone)."""
    if not any(isinstance(m, HumanMessage) for m in history) or is_small_talk(question):
        return False
    if _ANAPHORA.search(question):
        return True
    content = [t for t in tokenize(question) if t not in _GENERIC]
    return len(content) <= 1


def keyword_rewrite(question: str, history: Sequence[BaseMessage]) -> str:
    """An LLM-free standalone question: the follow-up plus the previous question's topic words."""
    previous = next((m for m in reversed(history) if isinstance(m, HumanMessage)), None)
    if previous is None:
        return question
    topic = [w for w in re.findall(r"[\w'’,.-]+", str(previous.content)) if tokenize(w) and not set(tokenize(w)) <= _GENERIC]
    return f"{question.strip()} ({' '.join(topic)})" if topic else question


def _sentence_score(q_tokens: set[str], sentence: str) -> float:
    tokens = set(tokenize(sentence))
    if not tokens:
        return 0.0
    return len(q_tokens & tokens) / (len(q_tokens) or 1)


def select_sentences(question: str, text: str, *, max_chars: int = 600) -> str:
    """The sentences of ``text`` most related to ``question``, in order, within ``max_chars``;
    gaps marked with "…". Keeps prompts short, which is what makes a local model fast."""
    if len(text) <= max_chars:
        return text
    spans = split_sentences(text)
    if not spans:
        return text[:max_chars]
    q_tokens = {t for t in tokenize(question) if t not in _GENERIC} or set(tokenize(question))
    wants_number = bool(_WANTS_NUMBER.search(question))

    def score(i: int) -> float:
        sentence = text[spans[i][0] : spans[i][1]]
        bonus = 0.25 if wants_number and re.search(r"\d", sentence) else 0.0
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
            if 0 <= j < len(spans) and j not in chosen and used + spans[j][1] - spans[j][0] <= max_chars * 0.6:
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


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def assess_evidence(question: str, docs: Sequence[Document], today: date | None) -> Evidence:
    """Measure the evidence the passages give for ``question`` (see :class:`Evidence`)."""
    topic = {t for t in tokenize(question) if t not in _GENERIC}
    coverage = 0.0
    dense = 0.0
    newest: date | None = None
    for doc in docs:
        have = set(tokenize(f"{doc.metadata.get('title', '')} {doc.page_content}"))
        if topic:
            coverage = max(coverage, len(topic & have) / len(topic))
        score = doc.metadata.get("dense_score")
        if isinstance(score, int | float):
            dense = max(dense, float(score))
        published = _parse_date(doc.metadata.get("published"))
        if published and (newest is None or published > newest):
            newest = published
    age = (today - newest).days if today and newest else None
    return Evidence(coverage=coverage, dense=dense, newest=newest, age_days=age)


def extractive_answer(question: str, docs: Sequence[Document], *, embedder: Any = None) -> tuple[str, float]:
    """The best supporting sentence with its citation, and the share of the question's topic
    words it holds (the confidence used for refusing).

    Sentences are ranked by that share plus dense similarity when an embedder is given;
    answer-type hints (numbers for "how many") break ties.
    """
    q_tokens = {t for t in tokenize(question) if t not in _GENERIC} or set(tokenize(question))
    wants_number = bool(_WANTS_NUMBER.search(question))
    candidates: list[tuple[int, str]] = []
    for n, doc in enumerate(docs, start=1):
        for start, end in split_sentences(doc.page_content):
            sentence = doc.page_content[start:end]
            candidates.append((n, sentence))
            if len(sentence) > 160:  # long quotes: the clause after the quote often holds the fact
                candidates.extend((n, clause) for clause in _clauses(sentence))
    if not candidates:
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
    best = min((i for i in range(len(candidates)) if scores[i] >= top - 0.05 * abs(top)),
               key=lambda i: (len(candidates[i][1]), -scores[i]))
    n, sentence = candidates[best]
    text = sentence.strip()
    if text and text[-1] in ".!?":
        text = text[:-1]
    # confidence = how much of the question's topic the chosen sentence actually holds
    return f"{text} [{n}].", lexical[best]


_DENSE_SHORTLIST = 12
_CLAUSE_BREAK = re.compile(r"[”\";]\s*|\s+[–—]\s+")
_REPORTING = re.compile(r"^(?:said|says|added|adds|noted|notes|recalled|stressed|warned)\b[^,]{0,60},\s*(?:who\s+\w+\s+that\s+)?", re.I)


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
