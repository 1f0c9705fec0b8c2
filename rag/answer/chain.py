"""The answering chain: condense → retrieve → (gate) → answer (streamed) → verify citations.

``build_chain()`` returns a LangChain ``Runnable``. Input: ``{"input": str, "chat_history":
[...], "today": date | "YYYY-MM-DD" (optional), "filters": {...} (optional)}``.

``stream()`` yields events in order: ``{"standalone_question"}``, ``{"context"}`` (the numbered
passages, before the first token), ``{"answer": token}`` deltas, and one ``{"final": {...}}``
holding the verified answer, citations, ``refused``, ``timings`` and ``model``.
``invoke()`` returns one dict with ``answer`` (verified), ``citations``, ``context``,
``standalone_question``, ``refused``, ``timings``, ``model``, ``evidence``.

Why a custom ``Runnable`` rather than ``RunnablePassthrough.assign`` plumbing: the answer is
streamed token by token and *then* rewritten by citation verification, which a pure
assign-chain can only express by giving up streaming. Each step still runs as a child run
named ``condense_question``, ``retrieve`` and ``answer``, so traces read the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.runnables.utils import AddableDict

from rag.answer.cite import verify_answer
from rag.answer.complete import complete_broad
from rag.answer.evidence import assess_evidence, is_refusal_text
from rag.answer.extractive import extractive_answer
from rag.answer.fit import GAP_MESSAGES, answer_gap
from rag.answer.generate import answer_messages, generate, shown_passages
from rag.answer.kinds import classify
from rag.answer.prompts import CONDENSE_PROMPT, NOT_FOUND, answer_prompt
from rag.answer.question import is_small_talk, keyword_rewrite, needs_rewrite, normalize_history
from rag.answer.runnable import EventStreamRunnable
from rag.dates import require_date
from rag.errors import InputError
from rag.retrieve.filters import parse_filters
from rag.text import valid_text

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

    from rag.config import Settings

__all__ = ["SMALL_TALK_REPLY", "RagChain", "build_chain"]

logger = logging.getLogger(__name__)

_FALLBACK_MIN_SCORE = 0.5

SMALL_TALK_REPLY = (
    "Hello! Ask me anything about the articles in the corpus and I'll answer with citations."
)


class RagChain(EventStreamRunnable):
    """Retrieval-augmented answering with verified citations. Build with :func:`build_chain`."""

    def __init__(
        self,
        settings: Settings,
        retriever: BaseRetriever,
        llm: BaseChatModel | None,
        *,
        model_name: str,
        embedder: Any = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        self.model_name = model_name
        self.embedder = embedder
        self.name = "rag_chain"

    # --- the steps -----------------------------------------------------------------------
    def _check_input(
        self, payload: Any
    ) -> tuple[str, list[Any], date | None, dict[str, Any] | None]:
        if isinstance(payload, str):
            payload = {"input": payload}
        if not isinstance(payload, dict):
            msg = "The chain takes a dict like {'input': 'question', 'chat_history': []}."
            raise InputError(msg)
        question = valid_text(str(payload.get("input") or payload.get("question") or "")).strip()
        if not question:
            raise InputError("The question is empty.", hint="Type a question about the articles.")
        if len(question) > self.settings.max_question_chars:
            msg = (
                f"The question is {len(question)} characters long; "
                f"the limit is {self.settings.max_question_chars}."
            )
            raise InputError(msg, hint="Shorten it, or raise RAG_MAX_QUESTION_CHARS.")
        history = normalize_history(payload.get("chat_history"))
        today = require_date(payload.get("today"), "'today'") or self.settings.today
        parse_filters(payload.get("filters"))  # malformed filters fail before the first event
        return question, history, today, payload.get("filters")

    def _condense(self, question: str, history: list[Any], child: RunnableConfig) -> str:
        if not needs_rewrite(question, history):
            return question
        if self.llm is None:
            return keyword_rewrite(question, history)
        recent = history[-4:]
        transcript = "\n".join(
            f"{'User' if m.type == 'human' else 'Assistant'}: {str(m.content)[:500]}"
            for m in recent
        )
        chain = (CONDENSE_PROMPT | self.llm | StrOutputParser()).with_config(
            run_name="condense_question"
        )
        try:
            rewritten = chain.invoke({"history": transcript, "question": question}, child)
        except Exception as exc:  # a failed rewrite should not cost the answer
            logger.warning("condensing the follow-up failed (%s); using keywords instead", exc)
            return keyword_rewrite(question, history)
        line = (
            rewritten.strip().splitlines()[0].strip().strip('"').strip()
            if rewritten.strip()
            else ""
        )
        if not line or len(line) > 3 * len(question) + 200:
            return keyword_rewrite(question, history)
        return line

    def _refusal(self, reason: str) -> str:
        return f"{NOT_FOUND} {reason}".strip()

    def _run(
        self,
        inputs: Iterator[dict[str, Any]],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> Iterator[dict[str, Any]]:
        payload = next(iter(inputs))
        started = time.perf_counter()
        timings: dict[str, float] = {}
        question, history, today, filters = self._check_input(payload)
        child = patch_config(config, callbacks=run_manager.get_child())

        kind = "small_talk"  # set from the question once it is condensed; read by final()

        def final(
            answer: str,
            *,
            refused: bool,
            citations: list[dict[str, Any]] | None = None,
            **extra: Any,
        ) -> AddableDict:
            timings["total_s"] = round(time.perf_counter() - started, 3)
            return AddableDict(
                final={
                    "answer": answer,
                    "citations": citations or [],
                    "refused": refused,
                    "timings": dict(timings),
                    "model": self.model_name,
                    "kind": kind,
                    **extra,
                }
            )

        if is_small_talk(question):
            yield AddableDict(standalone_question=question)
            yield AddableDict(context=[])
            yield AddableDict(answer=SMALL_TALK_REPLY)
            yield final(SMALL_TALK_REPLY, refused=False, small_talk=True)
            return

        t0 = time.perf_counter()
        standalone = self._condense(question, history, child)
        timings["condense_s"] = round(time.perf_counter() - t0, 3)
        yield AddableDict(standalone_question=standalone)
        qkind = classify(standalone)
        kind = qkind.kind
        s = self.settings

        t0 = time.perf_counter()
        retrieve_kwargs: dict[str, Any] = {"today": today or self.settings.today_or_now()}
        if filters:
            retrieve_kwargs["filters"] = filters
        docs = self.retriever.invoke(
            standalone, patch_config(child, run_name="retrieve"), **retrieve_kwargs
        )
        if self.llm is not None:
            docs = docs[: s.broad_passages if qkind.broad else s.llm_passages]
        context = [
            Document(page_content=d.page_content, metadata={**d.metadata, "n": i})
            for i, d in enumerate(docs, start=1)
        ]
        timings["retrieve_s"] = round(time.perf_counter() - t0, 3)
        yield AddableDict(context=context)

        evidence = assess_evidence(qkind.topic, context, today)
        ev = evidence.to_dict()
        if not context:
            yield final(
                self._refusal("Nothing in the index matches this question."),
                refused=True,
                evidence=ev,
                refusal_reason="no_passages",
            )
            return
        if (
            today is not None
            and evidence.age_days is not None
            and evidence.age_days > self.settings.max_evidence_age_days
        ):
            reason = (
                f"The closest articles are from {evidence.newest}, "
                f"{evidence.age_days} days before {today}; "
                "nothing covers that time."
            )
            yield final(self._refusal(reason), refused=True, evidence=ev, refusal_reason="stale")
            return
        if (
            evidence.coverage < self.settings.min_coverage
            and evidence.dense < self.settings.min_dense
        ):
            reason = "The closest passages found are about something else."
            yield final(
                self._refusal(reason), refused=True, evidence=ev, refusal_reason="off_topic"
            )
            return

        # Broad answers gather the most related sentences; the evidence gates found the topic
        # already, so extractive sentences for them (or a fallback) need a lower bar.
        extractive_bar = s.extractive_min_score
        if qkind.broad:
            extractive_bar = min(extractive_bar, _FALLBACK_MIN_SCORE)
        t0 = time.perf_counter()
        shown = [{"n": d.metadata["n"], "text": d.page_content} for d in context]
        if self.llm is None:
            raw, score = extractive_answer(
                qkind.topic if qkind.broad else standalone,
                context,
                embedder=self.embedder,
                sentences=3 if qkind.broad else 1,
                speaker=qkind.speaker,
            )
            timings["first_token_s"] = round(time.perf_counter() - started, 3)
            if score < extractive_bar:
                yield final(
                    self._refusal("No passage answers it closely enough."),
                    refused=True,
                    evidence={**ev, "extractive_score": round(score, 3)},
                    refusal_reason="weak_match",
                )
                return
            yield AddableDict(answer=raw)
        else:
            raw = ""
            shown = shown_passages(
                standalone,
                context,
                s.broad_passage_chars if qkind.broad else s.passage_chars,
                qkind.speaker,
            )
            messages = answer_messages(
                answer_prompt(kind),
                question,
                standalone,
                history,
                context,
                shown,
                (today or s.today_or_now()),
            )
            for token in generate(self.llm, messages, s.llm_timeout, self.model_name, child):
                if not raw:
                    timings["first_token_s"] = round(time.perf_counter() - started, 3)
                raw += token
                yield AddableDict(answer=token)
        timings["generate_s"] = round(time.perf_counter() - t0, 3)

        t0 = time.perf_counter()
        verified = verify_answer(
            raw,
            context,
            question=standalone,
            lenient=qkind.broad,
            embedder=self.embedder if qkind.broad else None,
        )
        fallback = False
        if (
            qkind.broad
            and self.llm is not None
            and raw.strip()
            and not verified.any_supported
            and not is_refusal_text(raw)
        ):
            # The passages cover the question (the evidence gates passed) but the model's
            # sentences are not theirs: answer with the passages' own best sentences instead.
            extract, score = extractive_answer(
                qkind.topic,
                context,
                embedder=self.embedder,
                sentences=3,
                speaker=qkind.speaker,
            )
            if extract and score >= extractive_bar:
                verified = verify_answer(
                    extract, context, question=standalone, lenient=True, embedder=self.embedder
                )
                fallback = verified.any_supported
        completed = 0
        if (
            qkind.broad
            and self.llm is not None
            and verified.any_supported
            and not fallback
            and not is_refusal_text(raw)
        ):
            verified, completed = complete_broad(
                verified, context, standalone, qkind, embedder=self.embedder
            )
        timings["verify_s"] = round(time.perf_counter() - t0, 3)
        stats = {
            "claims": verified.claims,
            "supported_claims": verified.supported_claims,
            "repaired": verified.repaired,
            "removed": verified.removed,
            "added": verified.added,
            "trimmed": verified.trimmed,
            "dropped": verified.dropped,
            "extractive_fallback": fallback,
            "completed": completed,
        }
        if is_refusal_text(raw) or not raw.strip():
            yield final(
                self._refusal(""),
                refused=True,
                evidence=ev,
                verification=stats,
                refusal_reason="model",
                shown_passages=shown,
            )
            return
        withheld = None
        if not verified.any_supported:
            withheld = (
                "unsupported",
                "The model's answer was not supported by any passage, so it is withheld.",
            )
        elif self.llm is not None:
            gap = answer_gap(
                standalone,
                verified.answer,
                kind,
                cited=[c.doc for c in verified.citations if c.supported],
                topic=qkind.topic,
                min_cited_coverage=s.min_cited_coverage,
            )
            if gap is not None:
                withheld = (
                    "no_answer",
                    f"{GAP_MESSAGES[gap]}, so the passages do not seem to hold the answer; "
                    "it is withheld.",
                )
        if withheld is not None:
            yield final(
                self._refusal(withheld[1]),
                refused=True,
                evidence=ev,
                verification=stats,
                refusal_reason=withheld[0],
                unsupported_answer=raw,
                shown_passages=shown,
            )
            return
        yield final(
            verified.answer,
            refused=False,
            citations=[c.to_dict() for c in verified.citations],
            evidence=ev,
            verification=stats,
            shown_passages=shown,
            **({"unsupported_answer": raw} if fallback else {}),
        )


def build_chain(
    settings: Settings | None = None,
    *,
    llm: BaseChatModel | None = None,
    retriever: BaseRetriever | None = None,
) -> RagChain:
    """The answering chain for ``settings`` (default: from the environment and rag.toml).

    Args:
        settings: configuration; ``settings.llm`` picks the model unless ``llm`` is given.
        llm: any LangChain chat model, overriding ``settings.llm``.
        retriever: any LangChain retriever, overriding the hybrid retriever.
    """
    from rag.config import Settings

    settings = settings or Settings()
    if retriever is None:
        from rag.retrieve.hybrid import build_retriever

        retriever = build_retriever(settings)
    if llm is None:
        from rag.models.llms import describe_llm, load_llm

        llm = load_llm(settings)
        model_name = describe_llm(settings)
    else:
        model_name = (
            getattr(llm, "model_name", None) or getattr(llm, "model", None) or type(llm).__name__
        )
    embedder = getattr(retriever, "embedder", None)
    return RagChain(settings, retriever, llm, model_name=str(model_name), embedder=embedder)
