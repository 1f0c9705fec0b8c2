"""Deterministic metrics: retrieval ranks, answer correctness, citations, refusals, latency.

Every function is pure. Aggregates are ``None`` (never NaN) when nothing was measured.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "HIT_KS",
    "answer_correct",
    "answer_hits",
    "article_ranks",
    "choice_correct",
    "citation_scores",
    "is_refusal",
    "mean",
    "normalize_answer",
    "percentile",
    "retrieval_scores",
    "same_article",
    "token_f1",
]

logger = logging.getLogger(__name__)

_POSSESSIVE = re.compile(r"(?<=\w)'s(?=\s|$)")
# Separators of a listed answer ("Finland and Sweden", "A, B & C"), split before normalising
# (normalising drops the commas). "3,700" has no space after its comma and is not split.
_LIST_SEP = re.compile(r"\s*[,;]\s+(?:(?:and|&)\s+)?|\s+(?:and|&)\s+", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:the|a|an) (?=\S)")
# A reference answer's leading preposition is optional ("In the winter" ~ "during the winter").
_PREPOSITION = re.compile(r"^(?:in|on|at|during) (?=\S)", re.IGNORECASE)
# A person's office before their name ("Former President Donald Trump", "Homeland Security
# Secretary Alejandro Mayorkas"): the name alone is accepted when it has at least two words.
_OFFICE = re.compile(
    r"^.*\b(?:President|Secretary|Minister|Chancellor|Governor|Gov\.|Senator|Sen\.|"
    r"Representative|Rep\.|Mayor|Speaker|Leader|Director|Chief|CEO|Chair(?:man|woman)?|"
    r"Judge|Justice|General|Gen\.|Ambassador|Commissioner|Attorney|Dr\.|Coach|Pope|"
    r"King|Queen|Prince|Princess)\s+(?:of\s+(?:the\s+)?[A-Z][\w.-]*\s+)?(?=[A-Z])"
)
_NAME_WORDS = re.compile(r"^(?:[A-Z][\w.'’-]*\s+)+[A-Z][\w.'’-]*$")
_LIST_SLACK = 4  # extra words allowed between the items of a listed answer, per gap

HIT_KS = (1, 3, 5, 10)

_normalize: Callable[[str], str] | None
try:  # the project's matching normalisation ("3,700" == "3700", quotes folded, ...)
    from rag.text import normalize as _normalize
except ImportError:  # pragma: no cover - rag.text is part of the project
    _normalize = None

_REFUSAL = re.compile(
    r"\b(?:(?:do|does|did)\s*n[o']?t\s+(?:know|say|mention|contain|include|specify|provide|state)"
    r"|don'?t\s+know|not\s+(?:mentioned|stated|specified|provided|included|contained)"
    r"|no\s+(?:information|mention|details?)\b|cannot\s+(?:answer|find|determine)"
    r"|can'?t\s+(?:answer|find|determine)|unable\s+to\s+(?:answer|find|determine)"
    r"|(?:articles?|passages?|context)\s+(?:do(?:es)?\s*n[o']?t|don'?t))",
    re.IGNORECASE,
)


def normalize_answer(text: str) -> str:
    """Case-folded, punctuation-trimmed, whitespace-collapsed text for answer matching.

    On top of :func:`rag.text.normalize`: possessives are dropped ("Italy's" -> "italy") and a
    lone "&" reads "and".
    """
    if _normalize is not None:
        base = _normalize(text)
    else:  # pragma: no cover
        base = " ".join(re.sub(r"[^\w\s$%&.'-]", " ", text.casefold()).split())
    base = _POSSESSIVE.sub("", base)
    return " ".join("and" if token == "&" else token for token in base.split())


def same_article(retrieved: str, evidence: str) -> bool:
    """Equal ids, or path-style ids where one is a suffix of the other at a ``/``."""
    if retrieved == evidence:
        return True
    return retrieved.endswith("/" + evidence) or evidence.endswith("/" + retrieved)


def article_ranks(retrieved: Sequence[str], evidence: Iterable[str]) -> dict[str, int]:
    """1-based rank of each evidence article: that of its first retrieved chunk (or absent)."""
    ranks: dict[str, int] = {}
    for ev in evidence:
        for position, aid in enumerate(retrieved, start=1):
            if same_article(aid, ev):
                ranks[ev] = position
                break
    return ranks


def retrieval_scores(
    retrieved: Sequence[str], evidence: Sequence[str], k: int = 10
) -> dict[str, float]:
    """hit@1/3/5/10, MRR@k and nDCG@k of a ranked list of chunk article ids.

    Args:
        retrieved: the article id of each retrieved chunk, best first (repeats allowed).
        evidence: the ids of the articles that hold the answer.
        k: cut-off of MRR and nDCG.
    """
    ranks = article_ranks(retrieved, evidence)
    first = min(ranks.values()) if ranks else None
    out: dict[str, float] = {f"hit@{n}": float(first is not None and first <= n) for n in HIT_KS}
    out[f"mrr@{k}"] = 1.0 / first if first is not None and first <= k else 0.0
    gains = [1.0 / math.log2(r + 1) for r in ranks.values() if r <= k]
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(set(evidence)), k)))
    out[f"ndcg@{k}"] = sum(gains) / ideal if ideal else 0.0
    return out


def answer_hits(texts: Sequence[str], acceptable: Sequence[str]) -> dict[str, float]:
    """``answer@k``: some acceptable answer occurs in one of the top ``k`` retrieved chunks.

    A second view of retrieval that does not depend on evidence labels (which may miss
    articles that also answer); short answers ("13", "South") can match by accident.
    """
    first = next(
        (i for i, text in enumerate(texts, start=1) if answer_correct(text, acceptable)), None
    )
    return {f"answer@{n}": float(first is not None and first <= n) for n in (1, 5)}


def _needle(text: str) -> str:
    """A normalised acceptable answer without a leading article ("The Hague" -> "hague")."""
    return _ARTICLE.sub("", normalize_answer(text))


def _variants(acceptable: str) -> list[str]:
    """``acceptable`` and the shorter forms that mean the same answer.

    Without a leading preposition when the rest is no name or title ("In the winter" -> "the
    winter", "In the Heights" stays), and a person's name
    without the office before it ("Former President Donald Trump" -> "Donald Trump") when the
    name has two words or more ("Prince William" keeps its title).
    """
    out = [acceptable]
    bare = _PREPOSITION.sub("", acceptable.strip(), count=1)
    if bare != acceptable.strip() and bare.strip() and bare.islower():
        out.append(bare)
    name = _OFFICE.sub("", acceptable.strip(), count=1)
    if name != acceptable.strip() and _NAME_WORDS.match(name):
        out.append(name)
    return out


def _contains(haystack: str, needle: str) -> bool:
    needle = _needle(needle)
    if not needle:
        return False
    return f" {needle} " in f" {normalize_answer(haystack)} "


def _positions(tokens: Sequence[str], item: Sequence[str]) -> list[int]:
    width = len(item)
    return [i for i in range(len(tokens) - width + 1) if list(tokens[i : i + width]) == item]


def _list_items(acceptable: str) -> list[list[str]]:
    """The items of a listed answer as token lists ([] unless a list of distinct items)."""
    items = [_needle(part).split() for part in _LIST_SEP.split(acceptable)]
    items = [item for item in items if item]
    if len(items) < 2 or len({tuple(i) for i in items}) < len(items):
        return []
    return items


def _contains_list(haystack: str, items: Sequence[Sequence[str]]) -> bool:
    """Every item occurs, in any order, within a window a little longer than the items."""
    tokens = normalize_answer(haystack).split()
    limit = sum(len(i) for i in items) + _LIST_SLACK * (len(items) - 1)
    spans = sorted(
        (start, start + len(item), k)
        for k, item in enumerate(items)
        for start in _positions(tokens, list(item))
    )[:2000]
    for a, (start, _, _) in enumerate(spans):
        seen: set[int] = set()
        for s, e, k in spans[a:]:
            if s - start >= limit:
                break
            if e - start <= limit:
                seen.add(k)
        if len(seen) == len(items):
            return True
    return False


def answer_correct(answer: str, acceptable: Sequence[str]) -> bool:
    """Lenient correctness: some acceptable answer occurs (normalised, on word boundaries).

    Possessives and "&"/"and" are normalised away, a leading article or preposition of the
    acceptable answer is optional, so is a person's office before a name of two words or more
    ("Donald Trump" for "Former President Donald Trump"), and a listed answer ("Finland and
    Sweden") matches its items in any order when they occur close together ("Sweden and
    Finland").
    """
    for ref in acceptable:
        if any(_contains(answer, form) for form in _variants(ref)):
            return True
        items = _list_items(ref)
        if items and _contains_list(answer, items):
            return True
    return False


def choice_correct(answer: str, choices: Sequence[str], index: int | None) -> bool | None:
    """Multiple-choice view: the answer names option ``index`` and no other option.

    An other option that is part of the right one ("New Jersey" inside "New Jersey and
    Oregon") is not held against the answer. ``None`` when there are no valid choices.
    """
    if index is None or not 0 <= index < len(choices):
        return None
    right = choices[index]
    if not answer_correct(answer, [right]):
        return False
    for k, other in enumerate(choices):
        if k == index or _needle(other) == _needle(right) or answer_correct(right, [other]):
            continue
        if answer_correct(answer, [other]):
            return False
    return True


def token_f1(answer: str, acceptable: Sequence[str]) -> float:
    """The best SQuAD-style token F1 of ``answer`` against any acceptable answer."""
    got = normalize_answer(answer).split()
    best = 0.0
    for ref in acceptable:
        want = normalize_answer(ref).split()
        if not got or not want:
            continue
        common = sum((Counter(got) & Counter(want)).values())
        if common:
            precision, recall = common / len(got), common / len(want)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def is_refusal(answer: str) -> bool:
    """Heuristic: the answer says the articles don't contain it (for chains with no flag)."""
    return bool(_REFUSAL.search(answer or "")) or not (answer or "").strip()


def citation_scores(
    citations: Sequence[Mapping[str, Any]], acceptable: Sequence[str]
) -> dict[str, float | None]:
    """Citation precision (cited passages that contain the answer) and coverage (>= 1 such).

    A citation counts as valid when its passage (or quote) contains an acceptable answer; a
    citation that carries ``supported: False`` never counts. ``None`` when nothing is cited
    (precision) or there is no acceptable answer to check against.
    """
    if not acceptable:
        return {"citation_precision": None, "citation_coverage": None}
    valid = 0
    for cit in citations:
        text = " ".join(str(cit.get(key) or "") for key in ("passage", "quote"))
        if cit.get("supported") is not False and answer_correct(text, acceptable):
            valid += 1
    return {
        "citation_precision": valid / len(citations) if citations else None,
        "citation_coverage": float(valid > 0),
    }


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the non-None values, or None."""
    kept = [
        float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))
    ]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """Linear-interpolated percentile ``q`` (0-100) of the non-None values, or None."""
    data = sorted(float(v) for v in values if v is not None)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)
