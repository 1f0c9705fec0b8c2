"""Reading the question: chat history, small talk, follow-ups and their LLM-free rewrite."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag.errors import InputError
from rag.text import tokenize, valid_text

__all__ = ["is_small_talk", "keyword_rewrite", "needs_rewrite", "normalize_history"]

_SMALL_TALK = re.compile(
    r"^\s*(hi|hello|hey|hiya|yo|good (morning|afternoon|evening)|thanks?( you)?"
    r"|thank you( very much)?|"
    r"ok(ay)?|cool|great|bye|goodbye|cheers)\W*$",
    re.IGNORECASE,
)
# Words that make a question lean on the conversation before it.
_ANAPHORA = re.compile(
    r"\b(they|them|their|theirs|it|its|he|him|his|she|her|hers|this|that|these|those|there|"
    r"the same|the other|what about|how about|and what|which ones?|the former|the latter)\b",
    re.IGNORECASE,
)
# Question words and time words: present in questions, rarely telling about the topic.
GENERIC_WORDS = frozenset(
    tokenize(
        "what which who whom whose when where why how many much week weeks month year today "
        "yesterday tomorrow recently recent latest new news announced reported according called "
        "named"
    )
)


def normalize_history(history: Any) -> list[BaseMessage]:
    """Chat history as LangChain messages.

    Accepts messages, (role, text) pairs or ``{"role", "content"}`` dicts (Gradio's format,
    whose content may be a list of parts).
    """
    out: list[BaseMessage] = []
    if history and not isinstance(history, list | tuple):
        msg = f"chat_history must be a list of messages, got {type(history).__name__}."
        raise InputError(msg, hint='Pass [{"role": "user", "content": "..."}, ...] or [].')
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
            content = " ".join(
                p.get("text", "") if isinstance(p, dict) else str(p) for p in content
            )
        content = valid_text(str(content or ""))
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
    """Whether ``question`` is a greeting, thanks or goodbye rather than a question."""
    return bool(_SMALL_TALK.match(question))


def needs_rewrite(question: str, history: Sequence[BaseMessage]) -> bool:
    """Whether a follow-up depends on the conversation (pronouns, or too short to stand alone)."""
    if not any(isinstance(m, HumanMessage) for m in history) or is_small_talk(question):
        return False
    if _ANAPHORA.search(question):
        return True
    content = [t for t in tokenize(question) if t not in GENERIC_WORDS]
    return len(content) <= 1


def keyword_rewrite(question: str, history: Sequence[BaseMessage]) -> str:
    """An LLM-free standalone question: the follow-up plus the previous question's topic words."""
    previous = next((m for m in reversed(history) if isinstance(m, HumanMessage)), None)
    if previous is None:
        return question
    topic = [
        w
        for w in re.findall(r"[\w'’,.-]+", str(previous.content))
        if tokenize(w) and not set(tokenize(w)) <= GENERIC_WORDS
    ]
    return f"{question.strip()} ({' '.join(topic)})" if topic else question
