"""Generation: what the model is shown of each passage, the prompt, and the streamed answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig

from rag.answer.extractive import select_sentences
from rag.answer.prompts import format_passages
from rag.errors import ModelError, RagError

__all__ = ["answer_messages", "generate", "shown_passages"]


def shown_passages(
    standalone: str, context: list[Document], max_chars: int, speaker: str | None = None
) -> list[dict[str, Any]]:
    """What the model is shown of each passage: its sentences most related to the question.

    With a ``speaker`` ("What did Kurti say?"), that person's sentences come first.
    """
    return [
        {
            "n": d.metadata["n"],
            "text": select_sentences(
                standalone, d.page_content, max_chars=max_chars, speaker=speaker
            ),
        }
        for d in context
    ]


def answer_messages(
    prompt: ChatPromptTemplate,
    question: str,
    standalone: str,
    history: list[BaseMessage],
    context: list[Document],
    shown: list[dict[str, Any]],
    today: date,
) -> list[BaseMessage]:
    """The answer prompt's messages: numbered passages, the question (and its rewrite), today."""
    passages = format_passages(
        [
            (
                d.metadata["n"],
                d.metadata.get("title", ""),
                d.metadata.get("published", ""),
                part["text"],
            )
            for d, part in zip(context, shown, strict=True)
        ]
    )
    asked = question if standalone == question else f"{question}\n(Meaning: {standalone})"
    value = prompt.invoke(
        {
            "history": history[-4:],
            "passages": passages,
            "question": asked,
            "today": today.isoformat(),
        }
    )
    return value.to_messages()


def generate(
    llm: BaseChatModel,
    messages: list[BaseMessage],
    timeout: float,
    model_name: str,
    config: RunnableConfig,
) -> Iterator[str]:
    """Stream the model's answer as text deltas, within ``timeout`` seconds.

    Raises:
        ModelError: the model failed or took too long (with a hint at what to change).
    """
    deadline = time.monotonic() + timeout
    named = llm.with_config(run_name="answer")
    try:
        for chunk in named.stream(messages, config):
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                yield text
            if time.monotonic() > deadline:
                msg = f"The language model took longer than {timeout:.0f}s."
                raise ModelError(msg, hint="Raise RAG_LLM_TIMEOUT or use a faster backend.")
    except RagError:
        raise
    except Exception as exc:
        msg = f"The language model ({model_name}) failed: {exc}"
        raise ModelError(
            msg, hint="Check the LLM settings (`rag info`), or use RAG_LLM=extractive."
        ) from exc
