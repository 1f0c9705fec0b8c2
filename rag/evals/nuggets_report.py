"""The overview scorecard: nugget scores as a text table and as Markdown.

Holds :data:`TARGETS` (the targets of issue 12 the scorecard compares with),
:func:`nuggets_text` (the scorecard for the text report) and :func:`nuggets_markdown` (the
scorecard and a per-question table for ``report.md``). They read the ``overview`` blocks that
:mod:`rag.evals.nuggets` adds to a report; that module re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag.text import markdown_literal

__all__ = ["TARGETS", "nuggets_markdown", "nuggets_text"]

# The targets of issue 12: summary key -> (comparison, value).
TARGETS: dict[str, tuple[str, float]] = {
    "nugget_recall": (">=", 0.70),
    "citation_precision": (">=", 0.95),
    "wrong_attributions": ("==", 0.0),
    "refused_with_nuggets": ("==", 0.0),
}

_ROWS: list[tuple[str, str]] = [
    ("nugget_recall", "nugget recall"),
    ("nugget_recall_answered", "nugget recall (answered)"),
    ("citation_precision", "citation precision per sentence"),
    ("dropped", "sentences dropped by verification"),
    ("wrong_attributions", "wrong attributions"),
    ("refused", "refused"),
    ("refused_with_nuggets", "refused, nuggets in corpus"),
    ("nuggets_in_evidence", "nuggets in evidence text"),
    ("nuggets_in_shown", "nuggets in what the model saw"),
    ("nuggets_in_raw", "nuggets in the raw answer"),
    ("kind_agreement", "chain's question kind = suite's"),
    ("sentences_mean", "answer sentences (mean)"),
    ("words_mean", "answer words (mean)"),
]
_COUNTS = {"dropped", "wrong_attributions", "refused", "refused_with_nuggets"}


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "n/a"
    if key in _COUNTS:
        return str(int(value))
    if key.endswith("_mean"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def _table(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]], str] | None:
    systems = [s for s, v in report["systems"].items() if v["summary"].get("overview")]
    if not systems:
        return None
    first = report["systems"][systems[0]]["summary"]["overview"]
    header = ["overview metric", *systems, "target"]
    rows = []
    for key, label in _ROWS:
        if key == "wrong_attributions":
            label = f"{label} ({first['attribution_questions']} questions)"
        target = TARGETS.get(key)
        rows.append(
            [
                label,
                *(
                    _cell(report["systems"][s]["summary"]["overview"].get(key), key)
                    for s in systems
                ),
                f"{target[0]} {target[1]:g}" if target else "",
            ]
        )
    for kind, part in first["by_kind"].items():
        rows.append(
            [
                f"  {kind} ({part['questions']}): recall / precision",
                *(
                    "{} / {}".format(
                        _cell(o.get("nugget_recall"), "r"), _cell(o.get("citation_precision"), "p")
                    )
                    for o in (
                        report["systems"][s]["summary"]["overview"]["by_kind"].get(kind, {})
                        for s in systems
                    )
                ),
                "",
            ]
        )
    title = f"Overview questions: {first['questions']} with nuggets, {first['answered']} answered"
    return header, rows, title


def nuggets_text(report: Mapping[str, Any]) -> list[str]:
    """The overview scorecard as text lines (empty when no question has nuggets)."""
    table = _table(report)
    if table is None:
        return []
    header, rows, title = table
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["", title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return lines


def _kinds(o: Mapping[str, Any]) -> str:
    """The suite's kind, and the chain's when it differs (``said / chain: overview``)."""
    kind, chain = o.get("kind") or "", o.get("chain_kind")
    return f"{kind} / chain: {chain}" if chain and chain != kind else kind


def nuggets_markdown(report: Mapping[str, Any]) -> list[str]:
    """The overview scorecard and a per-question table as Markdown lines."""
    table = _table(report)
    if table is None:
        return []
    header, rows, title = table
    out = ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    out += ["| " + " | ".join(c.strip() for c in r) + " |" for r in rows]
    for name, system in report["systems"].items():
        scored = [q for q in system["questions"] if isinstance(q.get("overview"), Mapping)]
        if not scored:
            continue
        out += [
            "",
            f"### {markdown_literal(name)}: per question",
            "",
            "| id | kind | recall | precision | sentences | wrong attr. | refused | missing |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for q in scored:
            o = q["overview"]
            wrong = o.get("wrong_attributions")
            out.append(
                f"| {markdown_literal(q['id'])} | {markdown_literal(_kinds(o))} | "
                f"{_cell(o['nugget_recall'], 'r')} | "
                f"{_cell(o.get('citation_precision'), 'p')} | {o.get('sentences', '')} | "
                f"{'' if wrong is None else len(wrong)} | {'yes' if o['refused'] else ''} | "
                + "; ".join(markdown_literal(m) for m in o["missing"])
                + " |"
            )
    return out
