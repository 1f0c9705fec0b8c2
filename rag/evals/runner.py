"""Run a suite: retrieval metrics always, answers/citations/refusals with an LLM chain.

:func:`run_suite` returns a JSON-ready report ``{"suite", "mode", "settings", "systems":
{"rag": {"summary", "questions"}, "tutorial": ...}}``. A question that fails is recorded with
its error and scored as a miss; the run goes on.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rag.answer.result import AnswerFolder
from rag.config import Settings
from rag.evals import funnel as F  # noqa: N812
from rag.evals import metrics as M  # noqa: N812
from rag.evals.suites import Case, Suite, load_suite, select_split, suite_settings

__all__ = ["Progress", "run_suite", "summarize"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
# (article ids, chunk ids, chunk texts, milliseconds) of one retrieval, best first.
Retrieved = tuple[list[str], list[str], list[str], float]
RETRIEVAL_K = 10


def _retrieval_query(case: Case) -> str:
    """Without a condensing LLM, a follow-up is searched together with the previous user turn."""
    users = [t["content"] for t in case.history if t["role"] in ("user", "human")]
    return f"{users[-1]} {case.question}" if users else case.question


def _stream_answer(chain: Any, case: Case) -> dict[str, Any]:
    """Run the chain's stream, timing the first token and the end."""
    payload = {"input": case.question, "chat_history": case.history, "today": case.today}
    folder = AnswerFolder()
    for event in chain.stream(payload):
        folder.add(event)
    end = time.perf_counter()
    out: dict[str, Any] = dict(folder.result())
    out["ttft_ms"] = ((folder.first_token_at or end) - folder.started) * 1000
    out["total_ms"] = (end - folder.started) * 1000
    return out


def _citations(raw: Any) -> list[dict[str, Any]]:
    keep = ("n", "chunk_id", "article_id", "title", "passage", "quote", "supported")
    return [{k: c.get(k) for k in keep if k in c} for c in (raw or []) if isinstance(c, Mapping)]


def _score(case: Case, rec: dict[str, Any], answered: bool) -> None:
    """Fill ``rec["metrics"]`` from the record's retrieved ids and answer."""
    m: dict[str, Any] = {}
    if case.answerable and case.evidence_ids:
        m.update(M.retrieval_scores(rec["retrieved"], case.evidence_ids, RETRIEVAL_K))
    if answered:
        answer = rec.get("answer") or ""
        refused = bool(rec.get("refused"))
        m["refused"] = float(refused)
        if case.answerable:
            m["correct"] = float(not refused and M.answer_correct(answer, case.answers))
            m["f1"] = 0.0 if refused else M.token_f1(answer, case.answers)
            choice = M.choice_correct(answer, case.choices, case.answer_index)
            if choice is not None:
                m["choice_correct"] = float(not refused and choice)
            if not refused:
                m.update(M.citation_scores(rec.get("citations") or [], case.answers))
    rec["metrics"] = m


def _answer_details(rec: dict[str, Any], out: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Record what the answer step saw and did; returns its passages (with their text)."""
    passages = F.passages_of(out)
    shown, source = F.shown_of(out, passages)
    evidence = out.get("evidence")
    rec.update(
        raw_answer=str(out.get("raw_answer") or ""),
        refusal_reason=(out.get("refusal_reason") or "unspecified") if rec["refused"] else None,
        evidence=dict(evidence) if isinstance(evidence, Mapping) else None,
        passages=[{k: p[k] for k in ("n", "article_id", "chunk_id")} for p in passages],
        shown_passages=shown,
        shown_source=source,
        unsupported_answer=out.get("unsupported_answer"),
        verification=out.get("verification"),
    )
    return passages


def _miss(case: Case, rec: dict[str, Any], answered: bool, exc: BaseException) -> None:
    rec["error"] = f"{type(exc).__name__}: {exc}"
    logger.warning("question %s failed: %s", case.id, rec["error"])
    logger.debug("%s", traceback.format_exc())
    rec.setdefault("retrieved", [])
    if answered:
        rec.setdefault("answer", "")
        rec["refused"] = False
    _score(case, rec, answered)
    if answered and case.answerable and case.answers:
        rec["funnel"] = {key: False for key, _ in F.STAGES}


def _run_system(
    name: str,
    cases: list[Case],
    *,
    retrieve: Callable[[str, date | None], Retrieved],
    answer: Callable[[Case], dict[str, Any]] | None,
    judge: Any | None,
    progress: Progress | None,
) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    for i, case in enumerate(cases, start=1):
        rec: dict[str, Any] = {
            "id": case.id,
            "question": case.question,
            "answerable": case.answerable,
            "today": case.today.isoformat() if case.today else None,
            "turns": len(case.history),
            "evidence_ids": case.evidence_ids,
            "error": None,
        }
        passages: list[dict[str, Any]] = []
        try:
            query = _retrieval_query(case)
            if answer is not None:
                out = answer(case)
                query = str(out.get("standalone_question") or query)
                rec.update(
                    answer=str(out.get("answer") or ""),
                    refused=bool(out.get("refused", M.is_refusal(str(out.get("answer") or "")))),
                    citations=_citations(out.get("citations")),
                    standalone_question=out.get("standalone_question"),
                    kind=out.get("kind"),  # the chain's question kind (overview scoring)
                    ttft_ms=round(out["ttft_ms"], 2),
                    total_ms=round(out["total_ms"], 2),
                )
                passages = _answer_details(rec, out)
            ids, chunks, texts, ms = retrieve(query, case.today)
            rec.update(retrieved=ids, retrieved_chunks=chunks, retrieval_ms=round(ms, 2))
            _score(case, rec, answer is not None)
            if case.answerable and case.answers:
                rec["metrics"].update(M.answer_hits(texts, case.answers))
                if answer is not None:
                    rec["funnel"] = F.funnel_stages(
                        case.evidence_ids,
                        case.answers,
                        passages,
                        rec["shown_passages"],
                        rec["raw_answer"],
                        rec["metrics"].get("correct") == 1.0,
                    )
            if judge is not None and answer is not None and case.answerable and not rec["refused"]:
                rec["metrics"]["judge"] = _judge(judge, case, rec["answer"])
        except Exception as exc:  # one bad question must not stop the run
            _miss(case, rec, answer is not None, exc)
        records.append(rec)
        if progress:
            progress(i, len(cases), f"{name}: {case.id}")
    return {"summary": summarize(records), "questions": records}


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-question records into the report's metric summary (no NaN, None = n/a)."""
    ans = [r for r in records if r["answerable"]]
    una = [r for r in records if not r["answerable"]]

    def avg(rows: list[dict[str, Any]], key: str) -> float | None:
        return M.mean(r["metrics"].get(key) for r in rows)

    out: dict[str, Any] = {
        "questions": len(records),
        "answerable": len(ans),
        "unanswerable": len(una),
    }
    for key in [f"hit@{n}" for n in M.HIT_KS] + [
        f"mrr@{RETRIEVAL_K}",
        f"ndcg@{RETRIEVAL_K}",
        "answer@1",
        "answer@5",
    ]:
        out[key] = avg(ans, key)
    if any("answer" in r for r in records):
        out["correct"] = avg(ans, "correct")
        out["f1"] = avg(ans, "f1")
        out["citation_precision"] = avg(ans, "citation_precision")
        out["citation_coverage"] = avg(ans, "citation_coverage")
        out["refused_unanswerable"] = avg(una, "refused")
        out["refused_answerable"] = avg(ans, "refused")
        out["judge"] = avg(ans, "judge")
        out["choice_correct"] = avg(ans, "choice_correct")
        out["funnel"] = F.summarize_funnel(records)
        out["refusals"] = F.summarize_refusals(records)
    for key, label in (("retrieval_ms", "retrieval"), ("ttft_ms", "ttft"), ("total_ms", "total")):
        values = [r.get(key) for r in records if r.get(key) is not None]
        if values:
            out[f"{label}_p50_ms"] = M.percentile(values, 50)
            out[f"{label}_p95_ms"] = M.percentile(values, 95)
    out["errors"] = sum(1 for r in records if r.get("error"))
    return out


_JUDGE_PROMPT = (
    "You grade answers to quiz questions. Question: {question}\nAcceptable answers: {answers}\n"
    "Candidate answer: {answer}\nDoes the candidate give an acceptable answer? Reply YES or NO."
)


def _judge(judge: Any, case: Case, answer: str) -> float | None:
    try:
        reply = judge.invoke(
            _JUDGE_PROMPT.format(
                question=case.question, answers="; ".join(case.answers), answer=answer
            )
        )
    except Exception as exc:  # a judge outage leaves the metric empty, never NaN
        logger.warning("judge failed on %s: %s", case.id, exc)
        return None
    text = str(getattr(reply, "content", reply)).strip().upper()
    return 1.0 if text.startswith("YES") else 0.0 if text.startswith("NO") else None


def _rag_retrieve(retriever: Any) -> Callable[[str, date | None], Retrieved]:
    def run(query: str, today: date | None) -> Retrieved:
        started = time.perf_counter()
        docs = retriever.invoke(query, today=today, k=RETRIEVAL_K)
        ms = (time.perf_counter() - started) * 1000
        meta = [d.metadata for d in docs]
        return (
            [m.get("article_id", "") for m in meta],
            [m.get("chunk_id", "") for m in meta],
            [d.page_content for d in docs],
            ms,
        )

    return run


def _iter_limited(cases: list[Case], limit: int | None) -> Iterator[Case]:
    yield from (cases if not limit else cases[:limit])


def run_suite(
    suite_dir: str | Path | Suite,
    settings: Settings | None = None,
    *,
    retrieval_only: bool = False,
    limit: int | None = None,
    split: str = "all",
    llm: Any | None = None,
    baseline: str | None = None,
    progress: Progress | None = None,
    chain: Any | None = None,
    retriever: Any | None = None,
    embedder: Any | None = None,
    judge: Any | None = None,
) -> dict[str, Any]:
    """Evaluate the RAG system (and optionally the tutorial baseline) on a suite.

    Args:
        suite_dir: a suite directory (see :mod:`evals.suites`) or a loaded :class:`Suite`.
        settings: base settings; a suite with a corpus gets its own index under
            ``data_dir/evals/<hash>``.
        retrieval_only: score retrieval only (no LLM).
        limit: evaluate only the first ``limit`` questions (of the split).
        split: ``all``, or the dev half ``tune`` / ``check`` (a fixed hash of the question
            id, see :func:`rag.evals.suites.split_of`).
        llm: a LangChain chat model or an ``RAG_LLM``-style spec (default: ``settings.llm``).
        baseline: ``"tutorial"`` to also run the LangChain-tutorial pipeline.
        progress: called as ``progress(done, total, label)``.
        chain: an injected answer chain (tests, reuse); built when omitted.
        retriever: an injected retriever; built when omitted.
        embedder: an injected embedder; loaded when omitted.
        judge: an optional chat model grading answers (``None``: no judge metric).
    """
    settings = settings or Settings()
    suite = suite_dir if isinstance(suite_dir, Suite) else load_suite(suite_dir)
    cases = list(_iter_limited(select_split(suite.cases, split), limit))
    started = time.perf_counter()
    if embedder is None and retriever is None:
        from rag.models.embedder import load_embedder

        embedder = load_embedder(settings)
    if isinstance(llm, str):
        settings = settings.model_copy(update={"llm": llm})
        llm = None
    cfg = suite_settings(
        suite,
        settings,
        embedder=embedder,
        progress=(lambda msg: progress(0, len(cases), msg)) if progress else None,
    )
    if retriever is None:
        from rag.retrieve.hybrid import build_retriever

        retriever = build_retriever(cfg, embedder=embedder)
    answer = None
    model_name = None
    if not retrieval_only:
        if llm is None and chain is None:
            from rag.models.llms import load_llm

            llm = load_llm(cfg)
        if chain is None:
            from rag.answer.chain import build_chain

            chain = build_chain(cfg, llm=llm, retriever=retriever)
        model_name = getattr(chain, "model_name", None)

        def answer(case: Case) -> dict[str, Any]:
            return _stream_answer(chain, case)

    systems = {
        "rag": _run_system(
            "rag",
            cases,
            retrieve=_rag_retrieve(retriever),
            answer=answer,
            judge=judge,
            progress=progress,
        )
    }
    if baseline:
        if baseline != "tutorial":
            msg = f"Unknown baseline {baseline!r} (only 'tutorial')."
            raise ValueError(msg)
        from rag.evals.baseline import TutorialBaseline

        base = TutorialBaseline.build(
            suite,
            cfg,
            embedder=embedder or retriever.embedder,
            llm=None if retrieval_only else (llm or getattr(chain, "llm", None)),
        )
        systems["tutorial"] = _run_system(
            "tutorial",
            cases,
            retrieve=base.retrieve,
            answer=None if retrieval_only else base.answer,
            judge=judge,
            progress=progress,
        )
    # overview suites (issue 12): nugget recall, per-sentence citations, attributions
    from rag.evals.nuggets import score_overview

    score_overview(suite, systems)
    return {
        "suite": suite.name,
        "suite_path": str(suite.path),
        "mode": "retrieval" if retrieval_only else "answer",
        "split": split,
        "suite_questions": len(suite.cases),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 2),
        "model": model_name,
        "settings": {
            k: v
            for k, v in cfg.public_dict().items()
            if k
            in {
                "chunk_size",
                "chunk_overlap",
                "embedding_model",
                "k",
                "fetch_k",
                "rrf_k",
                "dense_weight",
                "bm25_weight",
                "reranker",
                "time_boost",
                "time_slack_days",
                "recency_weight",
                "recency_half_life_days",
                "drop_future",
                "article_weight",
                "dedup_threshold",
                "max_chunks_per_article",
                "article_penalty",
                "llm",
                "data_dir",
            }
        },
        "systems": systems,
    }
