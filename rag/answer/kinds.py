"""What kind of answer a question asks for, decided cheaply from its wording.

A fact ("How many troops?") gets today's short path: few passages, one or two sentences. Broad
kinds (an overview, a why/how explanation, a comparison, what someone said, a list) get more
passages, room for several sentences and a prompt written for that kind; their sentences are
verified one by one and may paraphrase their passage. The kind is shown in the trace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["BROAD_KINDS", "Kind", "QuestionKind", "classify", "topic_text"]

Kind = Literal["fact", "when", "list", "overview", "why", "how", "comparison", "said"]

BROAD_KINDS: frozenset[str] = frozenset({"list", "overview", "why", "how", "comparison", "said"})

_REPORTING = (
    r"(?:say|said|says|saying|tell|told|warn|warned|claim|claimed|state|stated|"
    r"argue|argued|urge|urged|think|thinks|thought|promise|promised|predict|predicted)"
)
# Order matters: the first rule that matches decides.
_RULES: list[tuple[Kind, re.Pattern[str]]] = [
    (
        "said",
        re.compile(
            rf"^\s*(?:(?:please\s+)?summari[sz]e\s+)?(?:what|how)\s+(?:did|does|has|have|do|was|is)\s+"
            rf"(?:\S+\s+){{1,5}}?{_REPORTING}\b"
            rf"|^\s*summari[sz]e\s+(?:what\s+)?(?:\S+\s+){{1,5}}?{_REPORTING}\b"
            rf"|\b(?:statements?|remarks?|comments?|position|stance)\s+(?:of|by|from)\s+[A-Z]"
            rf"|\baccording to\s+[A-Z]\w+,?\s+(?:what|why|how)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "comparison",
        re.compile(
            r"\b(?:compare|comparison|contrast|differ(?:ence|ent|s)?\s+(?:between|from)|"
            r"versus|vs\.?|similarit(?:y|ies)\s+between)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "overview",
        re.compile(
            r"\b(?:summar(?:y|ise|ize)|overview|recap|going on|happening|situation (?:in|between)|"
            r"what(?:'s| is) the situation|"
            r"what happened|latest (?:on|news)|tell me (?:about|more)|background|explain (?:the )?"
            r"(?:situation|conflict|dispute|story|news)"
            r"|what(?:'s| is| are) the (?:story|news|deal))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "why",
        re.compile(
            r"^\s*why\b|\b(?:what (?:caused|led to|is behind|are the reasons?|is the reason)|"
            r"reasons? (?:for|behind)|the cause of)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "how",
        re.compile(
            r"^\s*how (?:did|does|do|is|are|was|were|can|could|will|would|has|have)\b"
            r"(?!\s+(?:many|much))"
            r"|^\s*explain\b|^\s*describe\b|\bin what way\b",
            re.IGNORECASE,
        ),
    ),
    (
        "list",
        re.compile(
            r"^\s*(?:list|name)\b|^\s*(?:what|which|who) (?:are|were) (?:all )?the\b.*\b"
            r"(?:countries|people|companies|members|states|cities|teams|players|candidates|steps|"
            r"measures|options)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "when",
        re.compile(
            r"^\s*(?:when\b|what (?:year|date|day|month|time)\b|which (?:year|date|day|month)\b)",
            re.IGNORECASE,
        ),
    ),
]

# "What did Albin Kurti say", "Summarize what Stoltenberg said": the person asked about.
_ASKED_SPEAKER = re.compile(
    r"\b(?:did|does|has|have|do|was|is|what|of|by|from)\s+(?:the\s+)?"
    r"((?:[A-Z][\w'’.-]+\s+){0,2}[A-Z][\w'’.-]+)\s+(?:\S+\s+){0,2}?"
    + _REPORTING.replace("(?:", "(?:", 1)
    + r"\b|\b(?:statements?|remarks?|comments?|position|stance)\s+(?:of|by|from)\s+"
    r"((?:[A-Z][\w'’.-]+\s+){0,2}[A-Z][\w'’.-]+)"
)

# Words that only say what kind of answer is wanted: they are not the topic, so the evidence
# checks (does a passage cover the question?) leave them out.
_CUES = re.compile(
    r"\b(?:please|summari[sz]e|summary|overview|recap|explain|describe|tell me (?:about|more)|"
    r"what(?:'s| is) going on|going on|happening|the situation|compare|comparison|contrast|"
    r"difference between|latest|background)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QuestionKind:
    """The kind of a question and what it is about."""

    kind: Kind
    topic: str  # the question without the words that only name the kind
    speaker: str | None = None  # for "said" questions: the person whose words are asked for

    @property
    def broad(self) -> bool:
        """Whether the answer should be several sentences drawn from several passages."""
        return self.kind in BROAD_KINDS


def topic_text(question: str) -> str:
    """The question without kind cues ("Summarize", "what is going on"), for topic checks."""
    stripped = _CUES.sub(" ", question)
    return " ".join(stripped.split()) or question


def classify(question: str) -> QuestionKind:
    """The :class:`QuestionKind` of ``question`` (``fact`` when no rule matches)."""
    for kind, pattern in _RULES:
        if pattern.search(question):
            speaker = None
            if kind == "said":
                match = _ASKED_SPEAKER.search(question)
                name = (match.group(1) or match.group(2)) if match else None
                speaker = name.split()[-1] if name else None
            return QuestionKind(kind, topic_text(question), speaker)
    return QuestionKind("fact", question)
