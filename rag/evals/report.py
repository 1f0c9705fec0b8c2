"""Reports: a text table, ``report.json``, ``report.md``, a PNG plot, and run comparison."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.evals.funnel import STAGES, funnel_markdown, funnel_text, plot_funnel, plot_refusals
from rag.evals.metrics import HIT_KS
from rag.evals.nuggets import nuggets_markdown, nuggets_text
from rag.text import markdown_literal

__all__ = ["compare", "format_compare", "format_table", "load_report", "write_report"]

logger = logging.getLogger(__name__)

# (key, label, kind) in display order; kind "pct" shows 0..1 as a percentage-like 0.000.
METRICS: list[tuple[str, str]] = [
    ("hit@1", "article hit@1"),
    ("hit@3", "article hit@3"),
    ("hit@5", "article hit@5"),
    ("hit@10", "article hit@10"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
    ("answer@1", "answer in top chunk"),
    ("answer@5", "answer in top 5 chunks"),
    ("correct", "answer correct (lenient)"),
    ("choice_correct", "answer names the right choice only"),
    ("f1", "answer token F1"),
    ("citation_precision", "citation precision"),
    ("citation_coverage", "citation coverage"),
    ("refused_unanswerable", "unanswerable refused"),
    ("refused_answerable", "answerable wrongly refused"),
    ("judge", "LLM judge"),
    ("retrieval_p50_ms", "retrieval p50 (ms)"),
    ("retrieval_p95_ms", "retrieval p95 (ms)"),
    ("ttft_p50_ms", "first token p50 (ms)"),
    ("ttft_p95_ms", "first token p95 (ms)"),
    ("total_p50_ms", "total p50 (ms)"),
    ("total_p95_ms", "total p95 (ms)"),
    ("errors", "errors"),
]
_LOWER_IS_BETTER = {"refused_answerable", "errors"} | {k for k, _ in METRICS if k.endswith("_ms")}
_FLIP_KEYS = ("hit@5", "correct", "refused")


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return "n/a"
    if key.endswith("_ms"):
        return f"{value:.0f}"
    if key == "errors":
        return str(int(value))
    return f"{value:.3f}"


def _rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    systems = list(report["systems"])
    rows = []
    for key, label in METRICS:
        values = [report["systems"][s]["summary"].get(key) for s in systems]
        if all(v is None for v in values) and key not in ("errors",):
            continue
        rows.append([label, *(_fmt(v, key) for v in values)])
    return systems, rows


def format_table(report: Mapping[str, Any]) -> str:
    """The summary metrics as a plain-text table, one column per system."""
    systems, rows = _rows(report)
    first = next(iter(report["systems"].values()))["summary"]
    header = ["metric", *systems]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"{report['suite']} ({report['mode']}{_split_note(report)}): {first['questions']} "
        f"questions, {first['answerable']} answerable, {first['unanswerable']} unanswerable",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines += funnel_text(report)
    lines += nuggets_text(report)  # overview suites
    return "\n".join(lines)


def _split_note(report: Mapping[str, Any]) -> str:
    """``", split tune of 189"`` for a dev-split run, else ``""``."""
    split = report.get("split") or "all"
    if split == "all":
        return ""
    return f", split {split} of {report.get('suite_questions', '?')}"


def _markdown(report: Mapping[str, Any]) -> str:
    systems, rows = _rows(report)
    out = [
        f"# Evaluation: {markdown_literal(report['suite'])}",
        "",
        f"Mode: {report['mode']}{_split_note(report)}; created {report.get('created')}; "
        f"{report.get('seconds')} s; model: {markdown_literal(report.get('model') or 'n/a')}.",
        "",
        "| metric | " + " | ".join(map(markdown_literal, systems)) + " |",
        "|---|" + "---|" * len(systems),
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += funnel_markdown(report)
    out += nuggets_markdown(report)  # overview suites
    out += [
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(report.get("settings", {}), indent=1),
        "```",
        "",
    ]
    for name in systems:
        questions = report["systems"][name]["questions"]
        misses = [q for q in questions if q["answerable"] and q["metrics"].get("hit@10") == 0.0]
        wrong = [q for q in questions if q["answerable"] and q["metrics"].get("correct") == 0.0]
        errors = [q for q in questions if q.get("error")]
        for title, items in (
            ("Retrieval misses (hit@10 = 0)", misses),
            ("Wrong answers", wrong),
            ("Errors", errors),
        ):
            if not items:
                continue
            out += [f"## {markdown_literal(name)}: {title} ({len(items)})", ""]
            # questions, answers and errors quote suites, articles and the model: inert text
            for q in items[:50]:
                extra = q.get("error") or (q.get("answer") or "")[:160]
                line = f"- {markdown_literal(q['id'])}: {markdown_literal(q['question'])}"
                out.append(line + (f" — {markdown_literal(extra)}" if extra else ""))
            out.append("")
    out.append("![plot](report.png)")
    return "\n".join(out) + "\n"


def _plot(report: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    answers = any(s["summary"].get("funnel") for s in report["systems"].values())
    if answers:
        fig, axes = plt.subplots(2, 2, figsize=(12, 8))
        (left, right), (low_left, low_right) = axes
        plot_funnel(low_left, report)
        plot_refusals(low_right, report)
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, system in report["systems"].items():
        summary = system["summary"]
        points = [(k, summary[f"hit@{k}"]) for k in HIT_KS if summary.get(f"hit@{k}") is not None]
        if points:
            left.plot(*zip(*points, strict=True), marker="o", label=name)
    left.set(
        title="Article hit@k (answerable)",
        xlabel="k (retrieved chunks)",
        ylabel="hit rate",
        ylim=(0, 1.02),
    )
    left.set_xticks(list(HIT_KS))
    left.grid(alpha=0.3)
    if left.lines:
        left.legend()
    data, labels = [], []
    for name, system in report["systems"].items():
        for key in ("retrieval_ms", "ttft_ms", "total_ms"):
            values = [q[key] for q in system["questions"] if q.get(key) is not None]
            if values:
                data.append(values)
                labels.append(f"{name}\n{key.removesuffix('_ms')}")
    if data:
        right.boxplot(data, showfliers=True)
        right.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
        right.set_yscale("log")
    right.set(title="Latency per question", ylabel="ms (log)")
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` (when matplotlib is installed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md"}
    paths["json"].write_text(
        json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    paths["md"].write_text(_markdown(report), encoding="utf-8")
    try:
        _plot(report, out / "report.png")
        paths["png"] = out / "report.png"
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install 'article-rag[eval]')")
    return paths


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a ``report.json`` (or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    return json.loads(path.read_text(encoding="utf-8"))


# the funnel's surviving shares, compared like the other metrics
_FUNNEL_METRICS = [(f"funnel:{key}", f"funnel {label[:3]} surviving") for key, label in STAGES]


def _with_funnel(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary plus flat ``funnel:<stage>`` surviving shares (when it has a funnel)."""
    flat = dict(summary)
    for key, stage in ((summary.get("funnel") or {}).get("stages") or {}).items():
        flat[f"funnel:{key}"] = stage.get("surviving")
    return flat


def compare(
    old: Mapping[str, Any] | str | Path, new: Mapping[str, Any] | str | Path
) -> dict[str, Any]:
    """Per-metric deltas and the questions whose hit@5 / correctness / refusal flipped.

    Returns:
        ``{"metrics": {system: {metric: {"old", "new", "delta", "better"}}}, "flipped":
        {system: [{"id", "question", "metric", "old", "new"}]}}`` for systems in both runs.
    """
    old_r = old if isinstance(old, Mapping) else load_report(old)
    new_r = new if isinstance(new, Mapping) else load_report(new)
    out: dict[str, Any] = {"metrics": {}, "flipped": {}}
    for name in [s for s in new_r["systems"] if s in old_r["systems"]]:
        a, b = old_r["systems"][name], new_r["systems"][name]
        deltas: dict[str, Any] = {}
        sa, sb = _with_funnel(a["summary"]), _with_funnel(b["summary"])
        for key, _ in METRICS + _FUNNEL_METRICS:
            x, y = sa.get(key), sb.get(key)
            if x is None and y is None:
                continue
            delta = None if x is None or y is None else y - x
            noise = 0.5 if key.endswith("_ms") else 1e-9  # sub-millisecond latency moves are noise
            better = (
                None
                if delta is None or abs(delta) < noise
                else (delta < 0) == (key in _LOWER_IS_BETTER)
            )
            deltas[key] = {"old": x, "new": y, "delta": delta, "better": better}
        out["metrics"][name] = deltas
        before = {q["id"]: q for q in a["questions"]}
        flips = []
        for q in b["questions"]:
            p = before.get(q["id"])
            if p is None:
                continue
            for key in _FLIP_KEYS:
                x, y = p["metrics"].get(key), q["metrics"].get(key)
                if x is not None and y is not None and x != y:
                    flips.append(
                        {
                            "id": q["id"],
                            "question": q["question"],
                            "metric": key,
                            "old": x,
                            "new": y,
                        }
                    )
        out["flipped"][name] = flips
    return out


def format_compare(result: Mapping[str, Any]) -> str:
    """A readable rendering of :func:`compare`."""
    labels = dict(METRICS + _FUNNEL_METRICS)
    lines: list[str] = []
    for name, deltas in result["metrics"].items():
        lines.append(f"[{name}]")
        for key, d in deltas.items():
            mark = "" if d["better"] is None else (" better" if d["better"] else " WORSE")
            whole = key.endswith("_ms") or key == "errors"
            delta = (
                "n/a"
                if d["delta"] is None
                else f"{d['delta']:+.0f}"
                if whole
                else f"{d['delta']:+.3f}"
            )
            old, new = _fmt(d["old"], key), _fmt(d["new"], key)
            lines.append(f"  {labels[key]:34s} {old:>8s} -> {new:>8s}  ({delta}){mark}")
        flips = result["flipped"].get(name, [])
        lines.append(f"  flipped: {len(flips)}")
        for f in flips[:40]:
            change = f"{f['old']:.0f} -> {f['new']:.0f}"
            lines.append(f"    {f['metric']:8s} {change}  {f['id']}: {f['question'][:80]}")
    return "\n".join(lines)
