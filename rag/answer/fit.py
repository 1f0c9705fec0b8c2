"""Does a fact answer say what the question asks for? Checks of its form, not of its truth.

Citation verification confirms that an answer's words are in a passage. It cannot see that an
answer says nothing the question did not already say ("Agreements were made at Thursday's
meeting in Brussels [1]." for "What was agreed at Thursday's meeting in Brussels?"), or that a
"when" answer names no time and a "how many" answer no number ("KFOR was first deployed in
Kosovo [1]."). The small model writes such sentences when its passages do not hold the answer,
so they are withheld like an unsupported answer (``rag.answer.chain``, which also withholds a
fact answer whose cited passage holds little of the question's topic: ``MIN_CITED_COVERAGE``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.documents import Document

from rag.answer.cite import strip_markers
from rag.answer.evidence import topic_coverage
from rag.answer.question import GENERIC_WORDS
from rag.text import tokenize

__all__ = ["GAP_MESSAGES", "answer_gap"]

# Why an answer is withheld, by the gap answer_gap found.
GAP_MESSAGES = {
    "no date": "The model's answer gives no date",
    "no number": "The model's answer gives no figure",
    "echo": "The model's answer only repeats the question",
    "off subject": "The passage the model's answer cites is about something else",
}

# Questions whose answer may repeat the question's own words: a choice ("A or B?") and
# yes/no questions ("Did X win?").
_CHOICE = re.compile(r"\bor\b|\bwhether\b", re.IGNORECASE)
_YES_NO = re.compile(
    r"^\s*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may)\b",
    re.IGNORECASE,
)
_WANTS_NUMBER = re.compile(
    r"\bhow (?:many|much|old|long|far|big|large|tall|high|deep)\b|"
    r"\bwhat (?:percentage|percent|share|number|amount|price|age|sum)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d|\b(?:zero|none|no|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|"
    r"half|double|twice|single|a few|several)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\d|\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|today|yesterday|tomorrow|tonight|morning|afternoon|"
    r"evening|night|week|weekend|month|year|decade|century|ago|spring|summer|autumn|fall|"
    r"winter|season|since|until|before|after|during|recently|earlier|later|now|currently|"
    r"christmas|easter|new year)\b",
    re.IGNORECASE,
)
_NON_ANSWER_WORDS = frozenset(
    tokenize(
        "the a an of in on at to for by with from and or is are was were be been has have had "
        "it its this that these those there their they he she his her them as about into "
        "made make makes held hold take took taken said says say will would can could did does "
        "do also which who what when where why how passage passages article articles "
        "meet met go went gone give gave given get got come came become became"
    )
)


# Names, figures and codes as written ("AT&T", "F-35", "2.8"): the tokenizer splits them into
# pieces as short as the words an answer is made of.
_NAME = re.compile(r"[A-Z0-9][\w&'’.-]*[\w&]|[A-Z0-9]")


def _content(text: str) -> set[str]:
    """Content words, by a 5-letter stem ("agreed" and "agreements" are one word here)."""
    return {t[:5] for t in tokenize(text) if t not in _NON_ANSWER_WORDS and t not in GENERIC_WORDS}


def _adds_something(answer: str, question: str) -> bool:
    """Whether ``answer`` has a content word or a name that ``question`` does not have."""
    if _content(answer) - _content(question):
        return True
    asked, stems = question.casefold(), _content(question)
    for name in _NAME.findall(answer):
        folded = name.casefold()
        if folded not in asked and folded not in _NON_ANSWER_WORDS and folded[:5] not in stems:
            return True
    return False


def answer_gap(
    question: str,
    answer: str,
    kind: str,
    cited: Sequence[Document] = (),
    topic: str | None = None,
    min_cited_coverage: float = 0.0,
) -> str | None:
    """Why ``answer`` does not answer ``question``, or None when it may.

    Returns ``"no date"`` (a "when" question answered without a time), ``"no number"`` ("how
    many" without a figure), ``"echo"`` (no word that the question does not already have) or
    ``"off subject"`` (the ``cited`` passages hold less than ``min_cited_coverage`` of the
    ``topic`` words: the citation check found the answer's words in a passage that is about
    something else). Only for fact-like kinds (``fact``, ``when``, ``list``; the cited-passage
    check for ``fact`` and ``when``); broad answers are judged per sentence by verification.
    """
    if kind not in ("fact", "when", "list"):
        return None
    text = strip_markers(answer)
    if kind == "when" and not _TIME.search(text):
        return "no date"
    if _WANTS_NUMBER.search(question) and not _NUMBER.search(text):
        return "no number"
    if not (_CHOICE.search(question) or _YES_NO.search(question)) and not _adds_something(
        text, question
    ):
        return "echo"
    if kind != "list" and cited and topic_coverage(topic or question, cited) < min_cited_coverage:
        return "off subject"
    return None
