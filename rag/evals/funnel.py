"""The answer-loss funnel and refusals by reason: where answerable questions are lost.

For each answerable question (answer mode) five stages, each with the lenient matcher of
:func:`rag.evals.metrics.answer_correct`:

(a) ``gold_passage``: an evidence article is among the passages given to the answer step;
(b) ``answer_in_passages``: an acceptable answer occurs in those passages' chunk text;
(c) ``answer_in_shown``: ... in what the model was shown of them (the chain's trimmed
    ``shown_passages``; the baseline shows its chunks whole; a refusal before generation has
    no shown passages, so its untrimmed passages stand in and the loss shows at (d));
(d) ``answer_in_raw``: ... in the raw (streamed, unverified) model answer;
(e) ``correct``: the final, verified answer is correct (not refused).

"Surviving" is the share passing a stage and every stage before it; "alone" the share passing
that stage by itself (answers can come from an article the silver evidence labels miss).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rag.evals.metrics import answer_correct, same_article

__all__ = [
    "REASONS",
    "STAGES",
    "funnel_markdown",
    "funnel_stages",
    "funnel_text",
    "passages_of",
    "plot_funnel",
    "plot_refusals",
    "shown_of",
    "summarize_funnel",
    "summarize_refusals",
]

STAGES: list[tuple[str, str]] = [
    ("gold_passage", "(a) gold article in the passages"),
    ("answer_in_passages", "(b) answer in the passages"),
    ("answer_in_shown", "(c) answer in what the model saw"),
    ("answer_in_raw", "(d) answer in the raw model answer"),
    ("correct", "(e) final answer correct"),
]
REASONS = (
    "no_passages",
    "stale",
    "off_topic",
    "weak_match",
    "model",
    "unsupported",
    "no_answer",
    "unspecified",
)


def passages_of(out: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The passages given to the answer step: ``[{n, article_id, chunk_id, text}]``.

    Reads the chain's ``context`` (LangChain Documents, or plain mappings from the baseline).
    """
    passages: list[dict[str, Any]] = []
    for i, doc in enumerate(out.get("context") or [], start=1):
        if isinstance(doc, Mapping):
            meta: Mapping[str, Any] = doc
            text = str(doc.get("text") or "")
        else:
            meta = getattr(doc, "metadata", None) or {}
            text = str(getattr(doc, "page_content", "") or "")
        passages.append(
            {
                "n": meta.get("n", i),
                "article_id": str(meta.get("article_id") or ""),
                "chunk_id": str(meta.get("chunk_id") or getattr(doc, "id", "") or ""),
                "text": text,
            }
        )
    return passages


def shown_of(
    out: Mapping[str, Any], passages: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """What the model saw of each passage, ``[{n, article_id, text}]``, and where it came from.

    ``"chain"``: the chain's ``shown_passages``; ``"context"``: none were reported (the
    baseline, the extractive reader, a refusal before generation), so the passages stand in.
    """
    by_n = {p["n"]: p.get("article_id", "") for p in passages}
    raw = out.get("shown_passages")
    if isinstance(raw, list) and raw:
        shown = [
            {
                "n": s.get("n"),
                "article_id": str(s.get("article_id") or by_n.get(s.get("n"), "")),
                "text": str(s.get("text") or ""),
            }
            for s in raw
            if isinstance(s, Mapping)
        ]
        return shown, "chain"
    return [{"n": p["n"], "article_id": p["article_id"], "text": p["text"]} for p in passages], (
        "context"
    )


def funnel_stages(
    evidence_ids: Sequence[str],
    answers: Sequence[str],
    passages: Sequence[Mapping[str, Any]],
    shown: Sequence[Mapping[str, Any]],
    raw_answer: str,
    correct: bool,
) -> dict[str, bool | None]:
    """The five stage outcomes of one answerable question.

    ``gold_passage`` is ``None`` when the question has no evidence labels.
    """
    gold: bool | None = None
    if evidence_ids:
        gold = any(same_article(p["article_id"], e) for p in passages for e in evidence_ids)
    return {
        "gold_passage": gold,
        "answer_in_passages": any(answer_correct(p["text"], answers) for p in passages),
        "answer_in_shown": any(answer_correct(s["text"], answers) for s in shown),
        "answer_in_raw": answer_correct(raw_answer or "", answers),
        "correct": bool(correct),
    }


def summarize_funnel(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The funnel over the answerable records that have one.

    Returns:
        ``{"n", "stages": {key: {"surviving", "alone"}}}``, or ``None`` in retrieval mode.
    """
    rows = [r["funnel"] for r in records if r.get("answerable") and r.get("funnel")]
    if not rows:
        return None
    stages: dict[str, dict[str, float | None]] = {}
    alive = [True] * len(rows)
    for key, _ in STAGES:
        values = [row.get(key) for row in rows]
        alive = [a and v is not False for a, v in zip(alive, values, strict=True)]
        measured = [bool(v) for v in values if v is not None]
        stages[key] = {
            "surviving": sum(alive) / len(rows),
            "alone": sum(measured) / len(measured) if measured else None,
        }
    return {"n": len(rows), "stages": stages}


def summarize_refusals(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Refusals by reason, answerable and unanswerable questions apart.

    Returns:
        ``{"answerable"|"unanswerable": {"n", "refused", "reasons": {reason: {"count",
        "share"}}}}`` (shares of that group), or ``None`` in retrieval mode.
    """
    if not any("answer" in r for r in records):
        return None
    out: dict[str, Any] = {}
    for group, answerable in (("answerable", True), ("unanswerable", False)):
        rows = [r for r in records if bool(r.get("answerable")) == answerable and "answer" in r]
        reasons = Counter(
            str(r.get("refusal_reason") or "unspecified") for r in rows if r.get("refused")
        )
        n = len(rows)
        out[group] = {
            "n": n,
            "refused": sum(reasons.values()),
            "reasons": {
                reason: {"count": count, "share": count / n if n else None}
                for reason, count in sorted(
                    reasons.items(),
                    key=lambda kv: REASONS.index(kv[0]) if kv[0] in REASONS else len(REASONS),
                )
            },
        }
    return out


def _systems_with(report: Mapping[str, Any], key: str) -> list[str]:
    return [n for n, s in report["systems"].items() if s["summary"].get(key)]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _funnel_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    systems = _systems_with(report, "funnel")
    header = ["stage"]
    for name in systems:
        header += [f"{name} surviving", "alone"]
    rows = []
    for key, label in STAGES:
        row = [label]
        for name in systems:
            stage = report["systems"][name]["summary"]["funnel"]["stages"][key]
            row += [_pct(stage["surviving"]), _pct(stage["alone"])]
        rows.append(row)
    return header, rows if systems else []


def _refusal_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    systems = _systems_with(report, "refusals")
    header = ["reason"]
    for name in systems:
        header += [f"{name} answerable", f"{name} unanswerable"]
    seen = {
        reason
        for name in systems
        for group in report["systems"][name]["summary"]["refusals"].values()
        for reason in group["reasons"]
    }
    reasons = [r for r in REASONS if r in seen] + sorted(seen - set(REASONS))
    rows = []
    for reason in [*reasons, "total"]:
        row = [reason]
        for name in systems:
            for group in ("answerable", "unanswerable"):
                g = report["systems"][name]["summary"]["refusals"][group]
                count = (
                    g["refused"]
                    if reason == "total"
                    else g["reasons"].get(reason, {}).get("count", 0)
                )
                share = f"{count / g['n']:.2f}" if g["n"] else "n/a"
                row.append(f"{count}/{g['n']} ({share})")
        rows.append(row)
    return header, rows if systems else []


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows),
    ]


def funnel_text(report: Mapping[str, Any]) -> list[str]:
    """The funnel and refusal tables as plain-text lines (empty in retrieval mode)."""
    lines: list[str] = []
    header, rows = _funnel_rows(report)
    if rows:
        n = {
            s["summary"]["funnel"]["n"]
            for s in report["systems"].values()
            if s["summary"].get("funnel")
        }
        lines += [
            "",
            f"Answer-loss funnel ({'/'.join(map(str, sorted(n)))} answerable questions; "
            "surviving = this stage and all before it)",
            *_text_table(header, rows),
        ]
    header, rows = _refusal_rows(report)
    if rows:
        lines += ["", "Refusals by reason (refused/questions (share))", *_text_table(header, rows)]
    return lines


def funnel_markdown(report: Mapping[str, Any]) -> list[str]:
    """The funnel and refusal tables as Markdown lines (empty in retrieval mode)."""
    out: list[str] = []
    for title, (header, rows) in (
        (
            "Answer-loss funnel (answerable; surviving = this stage and all before it)",
            _funnel_rows(report),
        ),
        ("Refusals by reason (refused/questions (share))", _refusal_rows(report)),
    ):
        if not rows:
            continue
        out += [
            "",
            f"## {title}",
            "",
            "| " + " | ".join(header) + " |",
            "|---|" + "---|" * (len(header) - 1),
        ]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def plot_funnel(ax: Any, report: Mapping[str, Any]) -> None:
    """Grouped bars of the surviving share per stage and system on a matplotlib axis."""
    systems = _systems_with(report, "funnel")
    width = 0.8 / max(len(systems), 1)
    for i, name in enumerate(systems):
        stages = report["systems"][name]["summary"]["funnel"]["stages"]
        values = [stages[key]["surviving"] or 0.0 for key, _ in STAGES]
        xs = [k + (i - (len(systems) - 1) / 2) * width for k in range(len(STAGES))]
        bars = ax.bar(xs, values, width=width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(
        range(len(STAGES)),
        ["gold\npassage", "answer in\npassages", "answer in\nshown", "answer in\nraw", "correct"],
        fontsize=8,
    )
    ax.set(title="Answer-loss funnel (answerable, surviving)", ylabel="share", ylim=(0, 1.08))
    ax.grid(alpha=0.3, axis="y")
    if systems:
        ax.legend(fontsize=8)


def plot_refusals(ax: Any, report: Mapping[str, Any]) -> None:
    """Stacked bars of refusal shares by reason, per system and answerable/unanswerable."""
    systems = _systems_with(report, "refusals")
    labels: list[str] = []
    groups: list[Mapping[str, Any]] = []
    for name in systems:
        for group in ("answerable", "unanswerable"):
            g = report["systems"][name]["summary"]["refusals"][group]
            if g["n"]:
                labels.append(f"{name}\n{group}")
                groups.append(g)
    bottoms = [0.0] * len(groups)
    for reason in REASONS:
        heights = [
            (g["reasons"].get(reason, {}).get("count", 0) / g["n"]) if g["n"] else 0.0
            for g in groups
        ]
        if any(heights):
            ax.bar(range(len(groups)), heights, bottom=bottoms, label=reason)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    ax.set(title="Refusals by reason", ylabel="share of questions", ylim=(0, 1.02))
    ax.grid(alpha=0.3, axis="y")
    if ax.patches:
        ax.legend(fontsize=7)
