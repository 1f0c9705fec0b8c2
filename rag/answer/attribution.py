"""Who said it: the speaker a claim names, and the speakers a passage span quotes.

"Kurti said Serbia is not simple" must not be supported by a sentence in which *Vucic* says
it, although every word of the claim is in that sentence. A claim of the form "X said / warned
/ claimed ..." (or "According to X, ...") is supported only by a span whose speaker is X: X
attached to a reporting verb in the span ("X said", "said X", "X, for his part, assured"),
or, when the span quotes a pronoun ("he pointed out"), the last named speaker before it.
"""

from __future__ import annotations

import re

__all__ = ["claim_speaker", "same_person", "span_speakers", "speaker_supported"]

_VERBS = (
    "said|says|say|saying|warned|warns|claimed|claims|stated|states|added|adds|told|tells|"
    "urged|urges|noted|notes|stressed|stresses|argued|argues|insisted|insists|announced|"
    "announces|declared|declares|emphasi[sz]ed|emphasi[sz]es|explained|explains|recalled|"
    "recalls|assured|assures|affirmed|affirms|predicted|predicts|acknowledged|acknowledges|"
    "called|calls|accused|accuses|pointed out|points out|asserted|asserts|maintained|"
    "maintains|suggested|suggests|wrote|writes|tweeted|tweets|conveyed|conveys|regretted|"
    "regrets|described|describes|promised|promises|admitted|admits|denied|denies|"
    "reiterated|reiterates|threatened|threatens|welcomed|welcomes|criticized|criticised|"
    "condemned|condemns|believes|believed|thinks|thought|replied|responded|told reporters"
)
_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|da|van|von|bin|al))*"
# "X said", "X, for his part, assured", "X himself predicted", "X also warned"
_SUBJECT_VERB = re.compile(
    rf"({_NAME})(?:\s*,[^,;“”\"]{{0,40}},)?(?:\s+(?:himself|herself|also|further|then|later|"
    rf"again|had|has|have|was|is|once|previously|repeatedly))*\s+(?:{_VERBS})\b"
)
# The inverted order of quotes: "..." said Stoltenberg / said the minister, Albin Kurti.
_VERB_SUBJECT = re.compile(
    r"\b(?:said|says|added|adds|warned|noted|stressed|explained|insisted|wrote|tweeted|"
    r"continued|concluded|asked|replied)\s+(?:the\s+[a-z][\w-]*(?:\s+[a-z][\w-]*){0,3}\s*,?\s*)?"
    rf"({_NAME})"
)
_ACCORDING = re.compile(rf"\b(?i:according to)\s+(?:the\s+)?(?:[a-z][\w-]*\s+){{0,3}}?({_NAME})")
_PRONOUN_VERB = re.compile(rf"\b(?:he|she|they)\s+(?:also\s+|further\s+)?(?:{_VERBS})\b", re.I)
_CLAIM_HEAD = re.compile(
    rf"^\s*(?:(?i:according to)\s+(?:the\s+)?(?:[a-z][\w-]*\s+){{0,3}}?({_NAME})\s*,"
    rf"|(?:[A-Z][\w'’.-]*\s+){{0,4}}?({_NAME})(?:\s*,[^,]{{0,40}},)?"
    rf"(?:\s+(?:also|further|then|later|again|has|had|have|himself|herself))*\s+(?:{_VERBS})\b)"
)
# Capitalised words that are not people (sentence starts, titles, places used as subjects).
_NOT_NAMES = frozenset(
    "The A An In On At It He She They We I This That These Those But And Or If When While As "
    "After Before During Despite Although Meanwhile However Officials Police Authorities "
    "President Prime Minister Secretary General Chancellor Senator Governor Mayor Mr Mrs Ms Dr "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May "
    "June July August September October November December".split()
)


def _surname(name: str) -> str:
    words = [w for w in re.split(r"\s+", name.strip()) if w and w not in _NOT_NAMES]
    return words[-1].strip(".,'’") if words else ""


def same_person(a: str, b: str) -> bool:
    """Whether two name mentions plausibly refer to one person (surnames, glued text allowed).

    "Stoltenberg" matches "Jens Stoltenberg" and the glued "Stoltenbergheld" of scraped text;
    "Kurti" matches "Albin Kurti" but not "Vucic".
    """
    x, y = _surname(a).casefold(), _surname(b).casefold()
    if len(x) < 3 or len(y) < 3:
        return False
    return x == y or (min(len(x), len(y)) >= 4 and (x.startswith(y) or y.startswith(x)))


def claim_speaker(claim: str) -> str | None:
    """The person a claim says spoke ("Kurti said ...", "According to Kurti, ..."), if any."""
    match = _CLAIM_HEAD.match(claim)
    if not match:
        return None
    name = match.group(1) or match.group(2) or ""
    surname = _surname(name)
    return surname or None


def span_speakers(text: str) -> list[str]:
    """Names attached to a reporting verb in ``text``, in order of appearance."""
    found: list[tuple[int, str]] = []
    for pattern in (_SUBJECT_VERB, _VERB_SUBJECT, _ACCORDING):
        for match in pattern.finditer(text):
            surname = _surname(match.group(1))
            if surname:
                found.append((match.start(1), surname))
    return [name for _, name in sorted(found)]


def speaker_supported(speaker: str, passage: str, start: int, end: int) -> bool:
    """Whether the span ``passage[start:end]`` is words of ``speaker``.

    Named speakers in the span decide. A span with none counts when it quotes a pronoun ("he
    pointed out") and the last named speaker before it in the passage is ``speaker``, or when
    it names ``speaker`` without quoting anyone else.
    """
    span = passage[start:end]
    named = span_speakers(span)
    if named:
        return any(same_person(speaker, n) for n in named)
    if _PRONOUN_VERB.search(span) or not any(q in span for q in '“”"'):
        before = span_speakers(passage[max(0, start - 1500) : start])
        if before:
            return same_person(speaker, before[-1])
    words = re.findall(r"[A-Z][\w'’-]+", span)
    return any(same_person(speaker, w) for w in words)
