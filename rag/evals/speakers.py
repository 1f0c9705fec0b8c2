"""Who said what, in answers and in passages: the attribution rule of the overview scoring.

A reporting verb (:data:`REPORTING_VERBS`) takes the nearest known person named up to 16 words
before it, else up to 4 words after it; a name right after a closing quote mark is the quote's
speaker; "he/she <verb>" takes the last person attributed before; a quotation running over
several sentences keeps one speaker. See :mod:`rag.evals.nuggets` for how it is scored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from rag.answer.cite import SUPPORT_THRESHOLD, strip_markers
from rag.text import PARA_BREAK, split_sentences, tokenize

__all__ = ["REPORTING_VERBS", "attributions", "fold_text", "wrong_attributions"]

_WORD = re.compile(r"\w+")


def fold_text(text: str) -> str:
    """Accents removed ("Vučić" -> "Vucic"), so names match however they are spelled."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


REPORTING_VERBS = (
    "said|says|say|told|tells|warned|warns|stressed|stresses|added|adds|noted|notes|argued|"
    "argues|claimed|claims|insisted|insists|accused|accuses|urged|urges|called for|calls for|"
    "assured|assures|stated|states|declared|declares|announced|announces|explained|explains|"
    "pointed out|points out|predicted|predicts|acknowledged|acknowledges|regretted|regrets|"
    "recalled|recalls|wrote|writes|tweeted|posted|emphasized|emphasised|emphasizes|emphasises|"
    "vowed|vows|promised|promises|criticized|criticised|criticizes|criticises|blamed|blames|"
    "replied|responded|suggested|suggests|conveyed|admitted|admits|described|describes|"
    "complained|complains|denied|denies|asserted|asserts|urging|saying|warning|according to"
)
_VERB = re.compile(r"\b(?:" + REPORTING_VERBS.replace(" ", r"\s+") + r")\b", re.IGNORECASE)
_PRONOUN_BEFORE = re.compile(r"\b(?:he|she)\s+(?:also\s+|then\s+|later\s+)?$", re.IGNORECASE)
_BEFORE_WORDS = 16  # "Rep. X, a Wisconsin Republican who chairs ..., said"
_OPENING = "\"\u201c\u2018'"
_DOUBLE_QUOTE = re.compile('["\u201c\u201d\u201e]')
_MAX_QUOTE = 6  # sentences a quotation may run over
_AFTER_WORDS = 4
_AFTER_QUOTE_WORDS = 1  # a name right after a closing quote mark
_LINKING = re.compile(r"\b(?:with|and|or|to|by|of|for|from|in|on|at|about|against)\b", re.I)


def _alias_patterns(person: Sequence[str]) -> list[re.Pattern[str]]:
    """Regexes for a person's aliases, plus the surname of the first alias."""
    aliases = [fold_text(a) for a in person if a.strip()]
    if aliases and len(aliases[0].split()) > 1 and aliases[0].split()[-1][:1].isupper():
        aliases.append(aliases[0].split()[-1])
    aliases = sorted(dict.fromkeys(aliases), key=len, reverse=True)
    return [
        re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, a.split())) + r"(?!\w)", re.IGNORECASE)
        for a in aliases
    ]


def _mentions(text: str, people: Sequence[Sequence[re.Pattern[str]]]) -> list[tuple[int, int, int]]:
    """``(start, end, person index)`` of every name of ``people`` in ``text``, by position."""
    spans: list[tuple[int, int, int]] = []
    for k, patterns in enumerate(people):
        taken: list[tuple[int, int]] = []
        for pattern in patterns:
            for m in pattern.finditer(text):
                if not any(s < m.end() and m.start() < e for s, e in taken):
                    taken.append((m.start(), m.end()))
                    spans.append((m.start(), m.end(), k))
    return sorted(spans)


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _quoted(sentence: str, inside: bool) -> list[tuple[int, int]]:
    """Spans of ``sentence`` inside double quotes (``inside``: a quotation is already open)."""
    spans: list[tuple[int, int]] = []
    start = 0 if inside else None
    for m in _DOUBLE_QUOTE.finditer(sentence):
        if start is None:
            start = m.end()
        else:
            spans.append((start, m.start()))
            start = None
    if start is not None:
        spans.append((start, len(sentence)))
    return spans


def _sentence_speakers(
    sentence: str,
    people: Sequence[Sequence[re.Pattern[str]]],
    carried: int | None,
    inside: bool = False,
) -> list[int]:
    """Indexes of the people ``sentence`` attributes words to (see the module's rules).

    Names and verbs inside quotation marks are words quoted, not attributions.
    """
    quoted = _quoted(sentence, inside)

    def outside(start: int, end: int) -> bool:
        return not any(s <= start and end <= e for s, e in quoted)

    names = [n for n in _mentions(sentence, people) if outside(n[0], n[1])]
    out: list[int] = []
    for verb in _VERB.finditer(sentence):
        if not outside(verb.start(), verb.end()):
            continue
        before = [
            (s, e, k)
            for s, e, k in names
            if e <= verb.start() and _words(sentence[e : verb.start()]) <= _BEFORE_WORDS
        ]
        after = [
            (s, e, k)
            for s, e, k in names
            if s >= verb.end() and _words(sentence[verb.end() : s]) <= _AFTER_WORDS
        ]
        who: int | None = None
        if carried is not None and _PRONOUN_BEFORE.search(sentence[: verb.start()]):
            who = carried
        elif verb.group().lower().startswith("according") and after:
            who = after[0][2]
        elif before:
            who = before[-1][2]
        elif after:
            who = after[0][2]
        if who is not None and who not in out:
            out.append(who)
    for _, end in quoted:  # '"...," Vucic insisted' and the like, whatever the verb
        close = sentence[end : end + 1]
        follow = [
            k
            for s, _, k in names
            if s > end
            and _words(sentence[end:s]) <= _AFTER_QUOTE_WORDS
            and not _LINKING.search(sentence[end:s])
        ]
        if close and follow and follow[0] not in out:
            out.append(follow[0])
    return out


def _quote_open(sentence: str, was_open: bool) -> bool:
    """Whether a quotation is still open after ``sentence`` (each double quote mark toggles)."""
    return was_open != (len(_DOUBLE_QUOTE.findall(sentence)) % 2 == 1)


def attributions(text: str, people: Sequence[Sequence[str]]) -> list[tuple[str, list[int]]]:
    """Each sentence of ``text`` with the indexes (into ``people``) of those it quotes.

    ``people`` are alias lists; "he said" carries the last person attributed before, and the
    sentences of a quotation spanning several sentences share its attribution.
    """
    patterns = [_alias_patterns(p) for p in people]
    folded = fold_text(text)
    out: list[tuple[str, list[int]]] = []
    carried: int | None = None
    quote: list[int] = []  # the sentences of a quotation still open
    last = 0
    for start, end in split_sentences(folded):
        sentence = folded[start:end]
        if PARA_BREAK.search(folded, last, start):
            quote = []  # a quotation never runs on over a paragraph break here
        last = end
        who = _sentence_speakers(sentence, patterns, carried, bool(quote))
        if not who and out and out[-1][1] and sentence[:1] in _OPENING:
            who = list(out[-1][1])  # '"...," X said. "And ..."': the quotation goes on
        out.append((sentence, who))
        is_open = _quote_open(sentence, bool(quote))
        if quote or is_open:
            quote.append(len(out) - 1)
            if len(quote) > _MAX_QUOTE:  # unbalanced marks, not a quotation: share nothing
                quote = []
            elif not is_open:
                group = [k for i in quote for k in out[i][1]]
                shared = list(dict.fromkeys(group))
                for i in quote:
                    out[i] = (out[i][0], out[i][1] or shared)
                who = shared or who
                quote = []
        if who:
            carried = who[-1]
        elif carried is None:
            mentioned = _mentions(sentence, patterns)
            carried = mentioned[-1][2] if mentioned else None
    return out


def _content(sentence: str, people: Sequence[Sequence[str]]) -> str:
    """The sentence without markers, people's names and reporting verbs: what is claimed."""
    text = fold_text(strip_markers(sentence))
    for person in people:
        for pattern in _alias_patterns(person):
            text = pattern.sub(" ", text)
    return _VERB.sub(" ", text)


def _loose_support(claim: str, evidence: str) -> float:
    """Weighted share of the claim's words in the evidence, word forms forgiven.

    Like :func:`rag.answer.cite.support` (figures weigh double and must be there exactly), but
    a word also counts when a passage word shares its first 4-6 letters ("Russia" / "Russian",
    "influenced" / "influence"): attribution is about who said it, and answers paraphrase.
    """
    tokens = tokenize(claim)
    if not tokens:
        return 0.0
    have = set(tokenize(evidence))
    weights = {t: (2.0 if any(ch.isdigit() for ch in t) else 1.0) for t in tokens}
    found = 0.0
    for token, weight in weights.items():
        if token in have:
            found += weight
        elif weight == 2.0:
            return 0.0
        elif len(token) >= 4:
            stem = token[: max(4, min(len(token) - 2, 6))]
            if any(h.startswith(stem) for h in have):
                found += weight
    return found / sum(weights.values())


def wrong_attributions(
    answer: str,
    evidence: Sequence[str],
    speaker: Sequence[str],
    not_speakers: Sequence[Sequence[str]],
    *,
    threshold: float = SUPPORT_THRESHOLD,
) -> list[dict[str, Any]]:
    """Answer sentences that attribute words to the wrong person (see the module's rules).

    Args:
        answer: the answer text (markers allowed).
        evidence: the texts the answer draws on (the cited passages' articles or passages).
        speaker: aliases of the person whose words were asked for.
        not_speakers: alias lists of the other people quoted in the same passages.
        threshold: support needed (the chain's citation threshold).

    Returns:
        ``[{"sentence", "attributed_to", "reason"}]``, empty when every attribution holds.
    """
    if not speaker:
        return []
    people = [list(speaker), *[list(p) for p in not_speakers]]
    said: dict[int, list[str]] = {k: [] for k in range(len(people))}
    for text in evidence:
        for sentence, who in attributions(text, people):
            for k in who:
                said[k].append(sentence)
    quoted = {k: " ".join(v) for k, v in said.items()}
    out: list[dict[str, Any]] = []
    for sentence, who in attributions(answer, people):
        claim = _content(sentence, people)
        if not tokenize(claim):
            continue
        for k in who:
            own = _loose_support(claim, quoted[k]) if quoted[k] else 0.0
            if own >= threshold:
                continue
            if k == 0:
                reason = "the passages do not give these words to the speaker"
            elif quoted[0] and _loose_support(claim, quoted[0]) >= threshold:
                reason = "the speaker's words given to someone else"
            else:
                continue
            out.append(
                {
                    "sentence": strip_markers(sentence),
                    "attributed_to": people[k][0],
                    "reason": reason,
                }
            )
    return out


# --- the corpus ------------------------------------------------------------------------------
