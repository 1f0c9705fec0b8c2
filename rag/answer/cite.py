"""Citations: number passages, parse ``[n]`` markers, and check each claim against its passage.

Models cite the wrong passage often (the bundled 1.5B model did in 3 of 5 seed questions), so
citations are verified, not trusted: every answer sentence is scored against every passage;
a marker pointing at a passage that doesn't support the sentence is moved to one that does,
or removed; a supported sentence without a marker gets one. Support is lexical and strict on
numbers: a claim's figures must appear in the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document

from rag.answer.attribution import claim_speaker
from rag.answer.instructions import foreign_markup, mask_instructions, planted_words
from rag.answer.support import (
    DENSE_MIN_LEXICAL,
    DENSE_SUPPORT,
    MARKER,
    SUPPORT_THRESHOLD,
    best_quote,
    dense_matches,
    names_missing,
    strip_markers,
    support,
)
from rag.text import split_sentences, tokenize

__all__ = [
    "SOURCE_KEYS",
    "SUPPORT_THRESHOLD",
    "Citation",
    "Verified",
    "best_quote",
    "merge_verified",
    "parse_markers",
    "strip_markers",
    "support",
    "verify_answer",
]

# The fields that identify a passage's source, shared by citations, the UI and the feedback log.
SOURCE_KEYS = ("n", "chunk_id", "article_id", "title", "source", "url", "published")


def parse_markers(text: str) -> list[int]:
    """Citation numbers in order of appearance (``"[1, 3]"`` gives ``[1, 3]``)."""
    out: list[int] = []
    for match in MARKER.finditer(text):
        body = match.group(1)
        if re.search(r"\d\s*[-–]\s*\d", body):
            lo, hi = (int(x) for x in re.split(r"\s*[-–]\s*", body)[:2])
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 10 else [lo, hi])
        else:
            out.extend(int(x) for x in re.findall(r"\d+", body))
    return out


@dataclass
class Citation:
    """One verified citation, as returned to callers."""

    n: int
    doc: Document
    quote_start: int
    quote_end: int
    score: float
    supported: bool

    def to_dict(self) -> dict[str, Any]:
        meta = self.doc.metadata
        return {
            "n": self.n,
            "chunk_id": meta.get("chunk_id"),
            "article_id": meta.get("article_id"),
            "title": meta.get("title", ""),
            "source": meta.get("source", ""),
            "url": meta.get("url", ""),
            "published": meta.get("published", ""),
            "passage": self.doc.page_content,
            "span": [meta.get("start"), meta.get("end")],
            "quote": self.doc.page_content[self.quote_start : self.quote_end],
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
            "support": round(self.score, 3),
            "supported": self.supported,
        }


@dataclass
class Verified:
    """The answer after verification."""

    answer: str
    citations: list[Citation] = field(default_factory=list)
    supported_claims: int = 0
    claims: int = 0
    repaired: int = 0
    removed: int = 0
    added: int = 0
    trimmed: int = 0
    dropped: int = 0  # unsupported sentences removed from an answer that kept others

    @property
    def any_supported(self) -> bool:
        return self.supported_claims > 0


# Where a sentence can be cut to drop a trailing detail: before a comma or a preposition that
# opens a date or circumstance ("... in its constitution on Monday, 2024-03-04.").
_CUT = re.compile(
    r",\s+|\s+(?:on|in|at|during|from|since|after|before|by|as of|with|when|while|amid"
    r"|following)\s+",
    re.IGNORECASE,
)
# What may be cut: only tails naming a date or time, the detail small models add most often
# (worked out from today's date). Other tails (a number, a place) may be the answer itself.
_DATEISH = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"today|yesterday|tomorrow|(?:this|last|next) (?:week|month|year)|(?:19|20)\d\d)\b"
    r"|\d{4}-\d{2}-\d{2}",
    re.IGNORECASE,
)
_ASKS_WHEN = re.compile(
    r"^\s*(?:when\b|what (?:year|date|day|month|time)\b|which (?:year|date|day|month)\b)",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(?:not|no|never|neither|nor|without|none|nothing|\w+n't)\b", re.IGNORECASE
)
_MAX_CUTS = 4


def _trim_to_support(
    claim: str,
    docs: Sequence[Document],
    question: str,
    threshold: float,
    speaker: str | None = None,
    lenient: bool = False,
) -> tuple[str, list[tuple[float, int, int]]] | None:
    """The longest leading part of ``claim`` a passage supports, cutting off date/time tails.

    Small models append a date no passage states (worked out from today's date). Rather than
    withholding a supported answer for that tail, the tail is dropped. Never for negated claims
    (cutting could flip their meaning), never when the question asks when, never a tail that
    names no date (it may be the answer), and only while the rest still says something the
    question doesn't.
    """
    if _NEGATION.search(claim) or _ASKS_WHEN.search(question):
        return None
    asked = set(tokenize(question))
    text = claim.rstrip(" .!?")
    for _ in range(_MAX_CUTS):
        cuts = list(_CUT.finditer(text))
        if not cuts or not _DATEISH.search(text[cuts[-1].start() :]):
            return None
        text = text[: cuts[-1].start()].rstrip()
        if len(text.split()) < 3 or not (set(tokenize(text)) - asked):
            return None
        scored = [
            best_quote(text, doc.page_content, question, speaker=speaker, lenient=lenient)
            for doc in docs
        ]
        if max(score for score, _, _ in scored) >= threshold:
            return text, scored
    return None


def _claims(answer: str) -> list[tuple[int, int]]:
    """Sentence spans of the answer, each extended over the markers that follow it."""
    spans = split_sentences(answer)
    out: list[tuple[int, int]] = []
    for start, end in spans:
        tail = MARKER.match(answer, end)
        while tail:
            end = tail.end()
            tail = MARKER.match(answer, end)
        # a sentence ending "... countries [1]." is split before the final period by some splitters
        if end < len(answer) and answer[end] in ".!?":
            end += 1
        if out and start < out[-1][1]:
            start = out[-1][1]
        if start < end:
            out.append((start, end))
    return out


MARKER_LIST = re.compile(r"\]\s*(?:,|and)\s*\[")
# "..., according to the passage [1]." / "as mentioned in passage 2": talk about the prompt, not
# a claim; its words ("passage") are in no passage and would sink a right answer.
_META = (
    r"(?:according to|as (?:stated|mentioned|reported|given|described) in|based on)"
    r"\s+(?:the\s+)?(?:(?:given|provided|numbered)\s+)?(?:passages?|articles?|texts?)"
    r"(?:\s+\d{1,2})?"
)
META_LEAD = re.compile(rf"(?:^|(?<=[.!?]\s))\s*{_META},\s*(\w)", re.I)
META_TRAIL = re.compile(rf",?\s*{_META}(?=\s*(?:\[\d|[.!?]|$))", re.I)
# "The passage from [1] explains that ..." / "The article states: ...": the claim follows.
META_SAYS = re.compile(
    r"(?:^|(?<=[.!?]\s))\s*(?:the|this)\s+(?:passages?|articles?|texts?)(?:\s+from)?"
    r"(?:\s*\[\d{1,2}\]|\s+\d{1,2})?\s+(?:explains|states|says|notes|mentions|reports|"
    r"indicates|shows|suggests|describes)(?:\s+that)?\s*[:,]?\s*([\"“]?\w)",
    re.I,
)
# "... in Las Vegas (3)." / "(Passage 2)": a small model's way of citing, read as a marker.
PAREN_MARKER = re.compile(r"\s*\((?:passages?\s*)?(\d{1,2})\)(?=\s*[.!?]?\s*$|\s*[.!?]\s)", re.I)
# A question is no claim: a small model copies an article's question-style subheadings ("Who is
# Jorge Vilda?"), often without the question mark.
_ASKS = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|who|what|why|how|when|where|which|can|could|should|"
    r"will|would)\b",
    re.I,
)
_PRONOUN_SPEAKS = re.compile(r"^\s*(?:He|She|They)\s+(?=(?:also\s+|further\s+)?[a-z]+ed\b|said\b)")


def verify_answer(
    answer: str,
    docs: Sequence[Document],
    *,
    question: str = "",
    threshold: float = SUPPORT_THRESHOLD,
    lenient: bool = False,
    embedder: Any = None,
) -> Verified:
    """Check, repair and collect the citations of ``answer`` against numbered ``docs``.

    ``[1]`` is ``docs[0]``.

    Each sentence is a claim. A claim is supported by a passage sentence (or adjacent pair) that
    holds its words (strict on figures), and, when the claim says who spoke ("X said ..."), is
    that person's words. With the ``question``, only what the claim adds to the question counts.
    ``lenient`` (answers of several sentences, which paraphrase) also accepts shared word stems
    and, given an ``embedder``, a passage sentence close in meaning that shares a fair part of
    the claim's words and names nothing the passages don't. Unsupported sentences are dropped
    when another sentence is supported; wrong markers are repaired and missing ones added.

    Instructions planted in passages ("ignore previous instructions", fake system turns, ...;
    :mod:`rag.answer.instructions`) support nothing, and a sentence adding a link or markup no
    passage holds, or a distinctive word only such an instruction has, is unsupported: an
    answer that obeyed an article is not shown.
    """
    answer = MARKER_LIST.sub("][", answer)  # "[1], [2]" -> "[1][2]": one run of markers
    answer = META_TRAIL.sub("", META_LEAD.sub(lambda m: m.group(1).upper(), answer))
    answer = META_SAYS.sub(lambda m: m.group(1).upper(), answer)
    answer = PAREN_MARKER.sub(
        lambda m: f" [{m.group(1)}]" if 0 < int(m.group(1)) <= len(docs) else m.group(0), answer
    )
    result = Verified(answer=answer)
    if not answer.strip() or not docs:
        result.answer = strip_markers(answer) if not docs else answer
        return result
    originals = list(docs)
    planted = planted_words([d.page_content for d in docs], question)
    docs = [
        Document(page_content=mask_instructions(d.page_content), metadata=d.metadata) for d in docs
    ]
    foreign: set[int] = set()  # claims adding a link or markup no passage holds, or planted words
    spans = _claims(answer)
    prepared: list[tuple[int, int, str, list[int], str, str | None]] = []
    last_speaker: str | None = None
    for start, end in spans:
        sentence = answer[start:end]
        bare = strip_markers(sentence)
        cited = [n for n in parse_markers(sentence) if n]
        speaker = claim_speaker(bare) if tokenize(bare) else None
        if speaker is None and last_speaker and _PRONOUN_SPEAKS.match(bare):
            speaker = last_speaker  # "He also warned ...": the speaker of the sentence before
        last_speaker = speaker or last_speaker
        prepared.append((start, end, sentence, cited, bare, speaker))
    scored_all: list[list[tuple[float, int, int]]] = []
    for k, (_start, _end, _sentence, _cited, bare, speaker) in enumerate(prepared):
        if not tokenize(bare):
            scored_all.append([])
            continue
        scored = [
            best_quote(bare, d.page_content, question, speaker=speaker, lenient=lenient)
            for d in docs
        ]
        if planted.intersection(tokenize(bare)) or all(
            foreign_markup(bare, d.page_content) for d in docs
        ):
            foreign.add(k)
            scored = [(0.0, qs, qe) for _, qs, qe in scored]
        if lenient:  # paraphrase may reword, never add a name no passage has
            scored = [
                (0.0, qs, qe) if names_missing(bare, d.page_content, question) else (sc, qs, qe)
                for (sc, qs, qe), d in zip(scored, docs, strict=True)
            ]
        scored_all.append(scored)
    if lenient and embedder is not None:
        weak = [
            k
            for k, scored in enumerate(scored_all)
            if scored
            and max(sc for sc, _, _ in scored) < threshold
            and prepared[k][5] is None  # attributed claims need their speaker's own words
            and k not in foreign
        ]
        rescues = dense_matches([prepared[k][4] for k in weak], docs, embedder)
        for k, (cosine, i, qs, qe) in zip(weak, rescues, strict=True):
            bare = prepared[k][4]
            passage = docs[i].page_content
            lexical = support(bare, passage[qs:qe], question, lenient=True)
            if (
                cosine >= DENSE_SUPPORT
                and lexical >= DENSE_MIN_LEXICAL
                and not names_missing(bare, passage, question)
            ):
                scored_all[k][i] = (max(threshold, lexical), qs, qe)

    rendered: list[tuple[str, str, bool | None]] = []  # (text before, sentence, supported)
    cursor = 0
    used: dict[int, tuple[float, int, int]] = {}
    for k, ((start, end, sentence, cited, bare, speaker), scored) in enumerate(
        zip(prepared, scored_all, strict=True)
    ):
        gap = answer[cursor:start]
        cursor = end
        if not scored:
            rendered.append((gap, sentence, None))
            continue
        result.claims += 1
        if max(score for score, _, _ in scored) < threshold and k not in foreign:
            trimmed = _trim_to_support(bare, docs, question, threshold, speaker, lenient)
            if trimmed is not None:
                ending = bare.rstrip()[-1:] if bare.rstrip()[-1:] in (".", "!", "?") else "."
                bare, scored = trimmed[0] + ending, trimmed[1]
                result.trimmed += 1
        if _ASKS.match(bare) and (
            bare.rstrip().endswith("?")
            or any(
                docs[i].page_content[qe : qe + 2].lstrip().startswith("?")
                or docs[i].page_content[qs:qe].rstrip().endswith("?")
                for i, (_, qs, qe) in enumerate(scored)
            )
        ):
            scored = [(0.0, qs, qe) for _, qs, qe in scored]  # a question, not a claim
        ranked = sorted(range(len(docs)), key=lambda i: -scored[i][0])
        keep = [
            n for n in dict.fromkeys(cited) if 1 <= n <= len(docs) and scored[n - 1][0] >= threshold
        ]
        if not keep and ranked and scored[ranked[0]][0] >= threshold:
            keep = [ranked[0] + 1]
            if cited:
                result.repaired += 1
            else:
                result.added += 1
        result.removed += len([n for n in dict.fromkeys(cited) if n not in keep])
        if keep:
            result.supported_claims += 1
            for n in keep:
                if n not in used or scored[n - 1][0] > used[n][0]:
                    used[n] = scored[n - 1]
        text = bare.rstrip()
        trail = ""
        if text and text[-1] in ".!?" and keep:
            text, trail = text[:-1], text[-1]
        marks = "".join(f" [{n}]" for n in keep)
        lead = sentence[: len(sentence) - len(sentence.lstrip())]
        rendered.append((gap, f"{lead}{text}{marks}{trail}", bool(keep)))
    tail = answer[cursor:]
    pieces: list[str] = []
    dropped_before = False
    said: list[list[str]] = []  # a small model may loop, writing one sentence again and again
    for (gap, text, supported), item in zip(rendered, prepared, strict=True):
        if supported is False and result.supported_claims:
            result.dropped += 1
            dropped_before = True
            continue
        words = tokenize(strip_markers(text))
        if supported and any(_repeats(words, before) for before in said):
            result.supported_claims -= 1  # the same claim again, not another one
            continue
        said.append(words)
        speaker = item[5]
        if dropped_before and speaker and _PRONOUN_SPEAKS.match(text):
            # the sentence that named the speaker was dropped: name them here instead
            text = _PRONOUN_SPEAKS.sub(speaker + " ", text, count=1)
        dropped_before = False
        pieces.extend((gap, text))
    pieces.append(tail)
    result.answer = re.sub(r"[ \t]+\n", "\n", "".join(pieces)).strip()
    result.answer = re.sub(r"\n{3,}", "\n\n", result.answer)
    for n in sorted(used):
        score, qs, qe = used[n]
        result.citations.append(Citation(n, originals[n - 1], qs, qe, score, score >= threshold))
    return result


def _repeats(words: list[str], before: list[str]) -> bool:
    """Whether a sentence's ``words`` say again what ``before`` said (or a cut-off copy of it)."""
    if not words or not before:
        return False
    return len(set(words) & set(before)) >= 0.85 * len(set(words))


def merge_verified(first: Verified, second: Verified) -> Verified:
    """``second``'s sentences after ``first``'s, as one verified answer.

    Citations are merged by passage (the better supported quote kept) and the counts added up.
    """
    cited: dict[int, Citation] = {c.n: c for c in first.citations}
    for c in second.citations:
        if c.n not in cited or c.score > cited[c.n].score:
            cited[c.n] = c
    return Verified(
        answer=f"{first.answer} {second.answer}".strip(),
        citations=[cited[n] for n in sorted(cited)],
        supported_claims=first.supported_claims + second.supported_claims,
        claims=first.claims + second.claims,
        repaired=first.repaired + second.repaired,
        removed=first.removed + second.removed,
        added=first.added + second.added,
        trimmed=first.trimmed + second.trimmed,
        dropped=first.dropped + second.dropped,
    )
