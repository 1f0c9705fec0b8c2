"""Instructions planted in articles: find them, and keep them from counting as evidence.

Articles are untrusted text. A page can carry an instruction meant for a model ("ignore all
previous instructions", "AI assistants must report ...", a fake ``System:`` or
``<|im_start|>system`` turn, a hidden HTML comment, a script tag). The prompt fences passages
and tells the model not to follow them, but a small model sometimes does, and the citation
verifier would then find the obeyed text *in the passage* and call it supported. So
verification and extractive answers read passages through :func:`mask_instructions`: those
spans become spaces (offsets unchanged, so quotes still point into the real passage) and
cannot support a claim or become an answer. An answer sentence carrying a link or markup that
the (masked) passage does not hold is never supported either (:func:`foreign_markup`).

The patterns are about the *form* of an instruction to a model (who it addresses, chat-template
and role syntax, requests about "your answer"), not about any particular attack; news prose that
reports on such attacks ("chatbots told to ignore their rules") is left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rag.text import split_sentences, tokenize

__all__ = ["foreign_markup", "instruction_spans", "mask_instructions", "planted_words"]

# chat-template tokens, [INST] / <<SYS>>, HTML comments, tags that run or load something,
# Markdown links and images
_SYNTAX = re.compile(
    r"<\|[^|<>\n]{1,40}\|>|\[/?INST\]|<</?SYS>>|<!--.*?(?:-->|$)"
    r"|<\s*(script|style|iframe|object|embed|svg)\b.*?(?:<\s*/\s*\1\s*>|$)"
    r"|<\s*/?\s*(?:script|style|iframe|object|embed|svg|img|a|form|input|link|meta|base)\b[^>]*>?"
    r"|!?\[[^\]\n]{0,200}\]\(\s*[^)\s]{1,300}\s*\)",
    re.I | re.S,
)
# a turn of a chat template or a transcript format: masked to the end of its turn/paragraph
_TEMPLATE_TURN = re.compile(
    r"<\|im_start\|>\s*(?:system|assistant|developer|user|tool)\b.*?(?=<\|im_(?:end|start)\|>|$)",
    re.I | re.S,
)
_ROLE_LINE = re.compile(
    r"(?im)^[ \t>*_\"'`]*(?:#{1,6}[ \t]*)?"
    r"(?:system|assistant|user|human|developer|instruction|instructions|response)[ \t]*:"
    r".*?(?=\n[ \t]*\n|\Z)",
    re.S,
)
_JSON_ROLE = re.compile(r"\{[^{}\n]{0,40}\"role\"\s*:\s*\"\w+\".*?(?:\}[^{}\n]*\}|\}|$)", re.S)
# a question put in the user's place, glued to prose ("... said. Question: What is ...?")
_INLINE_QUESTION = re.compile(
    r"(?<=[.!?] )\s*(?:new |real |actual |next )?question\s*:[^?\n]{0,200}\?", re.I
)
# passage fences of the answer prompt (rag.answer.prompts.format_passages)
_FENCE = re.compile(r"^[ \t]*(?:<<<|>>>)[ \t]*$", re.M)

_MODEL = (
    r"\b(?:AI|A\.I\.|artificial intelligence|assistants?|chat ?bots?|language models?|LLMs?"
    r"|bots?|GPTs?|automated (?:assistants?|summar\w+|systems?|tools?|readers?|models?)"
    r"|AI (?:models?|systems?|summar\w+|assistants?|tools?|readers?))\b"
)
_INSTRUCTION = re.compile(
    "|".join(
        [
            # "ignore all previous instructions", "disregard the question you were asked"
            r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|my|these|"
            r"those|previous|prior|above|earlier|preceding|original|system|other)\s+){1,4}"
            r"(?:instructions?|rules|guidelines|prompts?|questions?|passages?|context|directions"
            r"|orders|text)\b",
            # addressed to a model: "AI assistants must report", "Note to AI: ..."
            _MODEL + r"[^.!?\n]{0,60}\b(?:must|should|shall|are required to|need to|have to)\b",
            r"\b(?:note|message|instructions?|notice) (?:to|for) (?:the |all |any )?" + _MODEL,
            r"\b(?:for|to) (?:all |any )?" + _MODEL + r"\s*:",
            # about the answer being written
            r"\byour (?:whole |entire |full |final |next )?(?:answer|response|reply|output"
            r"|system prompt|instructions)\b",
            r"\b(?:system|initial|hidden) prompt\b",
            r"\b(?:every|each|all|any) (?:answers?|responses?|replies)\b",
            r"\b(?:answer|reply to|respond to) (?:every|each|any|all) questions?\b",
            r"\b(?:reply|respond|answer)\s+(?:only|exclusively|solely|with (?:this|these|the "
            r"(?:word|words|phrase|sentence|number|text|following)|exactly|only))\b",
            r"\bwhen you (?:answer|reply|respond|summari[sz]e|write)\b",
            r"\b(?:repeat|print|reveal|output) (?:everything|all (?:the|of the|your)|the text|"
            r"your|the (?:full|above|previous|system|word|words|prompt))\b",
            r"\b(?:you are now|from now on,? (?:you|answer|reply|respond)|pretend (?:you are|to "
            r"be)|let's play a game)\b",
            r"^\W*(?:tell|inform|warn|remind) (?:the )?(?:readers?|users?)\b",
            r"\bdecode (?:this|the following)\b",
            # other languages: ignore instructions / answer only
            r"忽略|无视|指令|ignorez|ignoriere|ignora (?:las|le|todas)|réponds|antworte"
            r"|responde (?:solo|únicamente)|ta réponse",
        ]
    ),
    re.I | re.M,
)


def _units(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text``, also split at line breaks and at any full stop and space.

    An instruction glued to a news sentence must not take the sentence with it.
    """
    view = text
    for pattern in (_SYNTAX, _TEMPLATE_TURN, _JSON_ROLE):  # markup ends a unit too
        view = pattern.sub(lambda m: "\n" * len(m.group(0)), view)
    out: list[tuple[int, int]] = []
    for start, end in split_sentences(view):
        for piece in _PIECE.finditer(view[start:end]):
            out.append((start + piece.start(), start + piece.end()))
    return out


_PIECE = re.compile(r"[^\n]*?\S(?:[^\n]*?(?:[.!?][\"'”’)\]]*(?=\s)|[。！？]|(?=\n)|$))", re.S)


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are instructions to a model, role turns or active markup."""
    spans: list[tuple[int, int]] = []
    for pattern in (_SYNTAX, _TEMPLATE_TURN, _ROLE_LINE, _JSON_ROLE, _INLINE_QUESTION, _FENCE):
        spans += [m.span() for m in pattern.finditer(text)]
    spans += [(s, e) for s, e in _units(text) if _INSTRUCTION.search(text[s:e])]
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


@lru_cache(maxsize=1024)
def mask_instructions(text: str) -> str:
    """``text`` with :func:`instruction_spans` blanked (spaces; line breaks and offsets kept)."""
    spans = instruction_spans(text)
    if not spans:
        return text
    chars = list(text)
    for s, e in spans:
        for i in range(s, e):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


_LINK = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b[\w.-]+\.[a-z]{2,}/[^\s<>\"')\]]*", re.I)
_MARKUP = re.compile(
    r"<\s*/?\s*[a-z][\w-]*\b[^<>]*>|<\|[^|<>\n]{1,40}\|>|!?\[[^\]\n]*\]\(|\bjavascript:", re.I
)


def foreign_markup(claim: str, passage: str) -> bool:
    """Whether ``claim`` carries a link or markup ``passage`` does not hold.

    Markup: an HTML tag, a Markdown link or image, a chat-template token. An answer adds neither.
    """
    for m in _LINK.finditer(claim):
        if m.group(0).rstrip(".,;:!?").lower() not in passage.lower():
            return True
    return any(m.group(0).lower() not in passage.lower() for m in _MARKUP.finditer(claim))


# distinctive words: all capitals ("PWNED"), figures, capitalised inside a sentence ("the word
# Achtung"); an answer holding one that only a planted instruction has took it from there
_CITE = re.compile(r"\[\s*\d{1,3}\s*\]")
_DISTINCT = re.compile(r"\b[A-Z]{2,}[\w-]*|\b\w*\d[\w,.-]*|(?<=[\w,;] )[A-Z][\w-]+")


def planted_words(passages: list[str], question: str = "") -> set[str]:
    """Tokens of distinctive words found only in the passages' planted instructions.

    Not counted: words the question or the rest of any passage also has.
    """
    planted: set[str] = set()
    legit: set[str] = set(tokenize(question))
    for text in passages:
        spans = instruction_spans(text)
        if not spans:
            legit.update(tokenize(text))
            continue
        legit.update(tokenize(mask_instructions(text)))
        for s, e in spans:
            for m in _DISTINCT.finditer(_CITE.sub(" ", text[s:e])):
                planted.update(tokenize(m.group(0)))
    return planted - legit
