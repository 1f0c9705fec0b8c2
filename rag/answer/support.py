"""How well a passage supports a claim: its words, its figures, its speaker, its meaning.

A claim's content words must be in the passage; a figure missing from the passage sinks it.
Lenient matching (for answers of several sentences, which paraphrase) also accepts words that
share a stem-like prefix, refuses names the passage does not have, and can accept a passage
sentence close in meaning by embedding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from rag.answer.attribution import speaker_supported
from rag.text import split_sentences, tokenize

__all__ = [
    "DENSE_MIN_LEXICAL",
    "DENSE_SUPPORT",
    "MARKER",
    "SUPPORT_THRESHOLD",
    "best_quote",
    "dense_matches",
    "names_missing",
    "strip_markers",
    "support",
]

# [1], [1, 2], [1][2], [1-2] and the full-width variants some models emit.
MARKER = re.compile(r"\s*[\[【]\s*(\d{1,2}(?:\s*(?:[,;]|-|–|and)\s*\d{1,2})*)\s*[\]】]")
_NUM = re.compile(r"\d")
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
SUPPORT_THRESHOLD = 0.5


def strip_markers(text: str) -> str:
    """``text`` without its ``[n]`` citation markers."""
    return MARKER.sub("", text).strip()


def _figures(tokens: Sequence[str]) -> list[str]:
    """Tokens with ordinals as their number: "15th" is "15" (articles write "Aug. 15-18")."""
    return [m.group(1) if (m := _ORDINAL.match(t)) else t for t in tokens]


def _weights(tokens: Sequence[str]) -> dict[str, float]:
    # Figures carry the facts most often invented: they weigh double.
    return {t: (2.0 if _NUM.search(t) else 1.0) for t in tokens}


def _fuzzy_have(tokens: dict[str, float], have: set[str]) -> set[str]:
    """Claim tokens found in ``have`` exactly or by a shared stem-like prefix.

    "escalating" finds "escalation", "warning" finds "warned", "intervention" finds
    "intervene": a summary rarely keeps its passage's word forms. Figures never match this way.
    """
    found = {t for t in tokens if t in have}
    for token in tokens:
        if token in found or _NUM.search(token) or len(token) < 4:
            continue
        stem = token[: max(4, min(len(token) - 2, 6))]
        if any(h.startswith(stem) and abs(len(h) - len(token)) <= 5 for h in have):
            found.add(token)
    return found


def support(
    claim: str,
    evidence: str,
    question: str = "",
    *,
    lenient: bool = False,
    context: str | None = None,
) -> float:
    """How well ``evidence`` supports ``claim``, from 0 to 1.

    The weighted share of the claim's content words found in the evidence, 0 when a figure of
    the claim is missing from it. A figure the claim only repeats from the question (its
    premise: "under 14" in "Which state banned children under 14 ...?") must be in the
    ``context`` (the whole passage the evidence is quoted from), not necessarily in the quoted
    sentence itself; ordinals match their number ("15th" = "15").

    Given the ``question``, only the words the claim adds to it count (its actual answer:
    "euro" in "Kosovo uses the euro"): echoing the question can't pass for support, and an
    answer that restates a long question isn't penalised for words the passage phrases
    differently. ``lenient`` (several-sentence answers, which paraphrase) also counts words
    that share a stem-like prefix with a passage word; figures stay exact.
    """
    weights = _weights(_figures(tokenize(strip_markers(claim))))
    if not weights:
        return 0.0
    have = set(_figures(tokenize(evidence)))
    asked = set(_figures(tokenize(question))) if question else set()
    around = set(_figures(tokenize(context))) | have if context is not None else have
    for token in weights:
        if _NUM.search(token) and token not in (around if token in asked else have):
            return 0.0
    found = _fuzzy_have(weights, have) if lenient else {t for t in weights if t in have}
    total = sum(weights.values())
    share = sum(w for t, w in weights.items() if t in found) / total
    novel = {t: w for t, w in weights.items() if t not in asked}
    if asked and novel:
        share = sum(w for t, w in novel.items() if t in found) / sum(novel.values())
    return share


def best_quote(
    claim: str,
    passage: str,
    question: str = "",
    *,
    speaker: str | None = None,
    lenient: bool = False,
) -> tuple[float, int, int]:
    """(score, start, end) of the sentence (or pair) of ``passage`` best supporting ``claim``.

    With a ``speaker`` ("Kurti said ..."), only spans that are that person's words count.
    """
    spans = split_sentences(passage) or [(0, len(passage))]
    best = (0.0, spans[0][0], spans[0][1])
    for i, (start, end) in enumerate(spans):
        for stop in (end, spans[i + 1][1] if i + 1 < len(spans) else None):
            if stop is None:
                continue
            if speaker is not None and not speaker_supported(speaker, passage, start, stop):
                continue
            score = support(claim, passage[start:stop], question, lenient=lenient, context=passage)
            # prefer the single sentence unless the pair is clearly better
            if score > best[0] + (0.05 if stop != end else 0.0):
                best = (score, start, stop)
    return best


_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]{2,}")


def names_missing(claim: str, passage: str, question: str) -> bool:
    """Whether the claim names someone or something neither passage nor question mentions.

    A name is a capitalised word after the claim's first: paraphrase must not invent names.
    """
    known = set(tokenize(passage)) | set(tokenize(question))
    text = strip_markers(claim).strip()
    for match in _CAPITALISED.finditer(text):
        if match.start() == 0:  # the first word is capitalised anyway
            continue
        tokens = tokenize(match.group(0))
        if tokens and not any(
            t in known or any(k.startswith(t[:5]) for k in known) for t in tokens
        ):
            return True
    return False


def dense_matches(
    claims: list[str], docs: Sequence[Document], embedder: Any
) -> list[tuple[float, int, int, int]]:
    """For each claim, the passage sentence most similar by embedding.

    Each is (cosine, doc index, start, end). One batched encode for all claims and sentences.
    """
    import numpy as np

    units: list[tuple[int, int, int]] = []
    for i, doc in enumerate(docs):
        for start, end in split_sentences(doc.page_content) or [(0, len(doc.page_content))]:
            units.append((i, start, end))
    if not claims or not units:
        return [(0.0, 0, 0, 0)] * len(claims)
    texts = [strip_markers(c) for c in claims] + [docs[i].page_content[a:b] for i, a, b in units]
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    sims = vectors[: len(claims)] @ vectors[len(claims) :].T
    out = []
    for row in sims:
        j = int(row.argmax())
        i, a, b = units[j]
        out.append((float(row[j]), i, a, b))
    return out


# A paraphrased sentence counts as supported by a passage sentence this similar (all-MiniLM
# cosine), provided it also shares a fair part of its words (fuzzily) and invents no name.
DENSE_SUPPORT = 0.6
DENSE_MIN_LEXICAL = 0.3
