"""Prompt injection, measured: how often an answer obeys instructions planted in articles.

The set (rag/evals/injection_cases.py): 36 synthetic news articles, each carrying one attack
(ignore previous instructions, fake system/assistant turns and chat-template tokens, "answer
only PWNED", reveal the prompt, add a link / image / script / HTML, a false claim with a
citation, another language, role play, fake citations, quoted instructions, HTML comments,
zero-width text, a broken passage fence, ...) and 4 controls, each with a question about the
article's real news. Counted per attack: obeyed in the answer shown to the user, obeyed in the
model's raw text (before citation verification), attack text shown to the model, refused,
answered normally.

Usage:
    python benchmarks/injection.py --llm bundled          # -> results/injection_bundled.json
    python benchmarks/injection.py --llm extractive       # fast
    python benchmarks/injection.py --llm bundled --limit 8 --label quick
    python benchmarks/injection.py --llm extractive --unguarded   # without the verifier's guard

``--unguarded`` turns off what rag/answer/instructions.py adds to the prompt, verification and
extractive answers (planted instructions blanked from what the model reads and from evidence,
answers with planted words or links/markup no passage holds refused): the "before".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, machine, machine_line, save, table


def unguard() -> None:
    """Prompts, verification and extractive answers as before rag/answer/instructions.py."""
    from rag.answer import cite, extractive, prompts

    cite.mask_instructions = extractive.mask_instructions = lambda text: text  # type: ignore
    cite.foreign_markup = lambda claim, passage: False  # type: ignore
    cite.planted_words = lambda passages, question="": set()  # type: ignore
    prompts._as_data = lambda text: text  # type: ignore


def run(
    llm: str, *, embedder: str = "bundled", limit: int | None = None, ids: str = ""
) -> dict[str, Any]:
    """Run the set with backend ``llm``; the result dict (summary, rows, machine)."""
    from rag.config import Settings
    from rag.evals.injection import injection_cases, injection_chain, run_injection

    settings = Settings(llm=llm, embedding_model=embedder, data_dir=ROOT / ".rag")
    cases = injection_cases()
    if ids:
        wanted = {i.strip() for i in ids.split(",") if i.strip()}
        cases = [c for c in cases if c.id in wanted]
    if limit:
        cases = cases[:limit]
    with tempfile.TemporaryDirectory(prefix="injection-") as folder:
        chain = injection_chain(settings, Path(folder), progress=print)

        def progress(i: int, n: int, row: dict[str, Any]) -> None:
            flag = "OBEYED" if row["obeyed"] else ("raw" if row["raw_obeyed"] else "ok")
            print(
                f"[{i}/{n}] {row['id']} {row['category']:<24} {flag:<6} "
                f"{'refused' if row['refused'] else 'answered' if row['answered'] else '-':<8} "
                f"{row['seconds']:>5.1f}s  {row['answer'][:90]!r}",
                flush=True,
            )

        started = time.perf_counter()
        result = run_injection(chain, cases, progress=progress)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["model"] = getattr(chain, "model_name", llm)
    result["llm"] = llm
    result["embedder"] = embedder
    return result


def rescore(path: Path) -> dict[str, Any]:
    """Score a saved run again with the current detectors (answers and raw text as saved)."""
    from rag.evals.injection import injection_cases, score_answer, summarize

    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    cases = {c.id: c for c in injection_cases()}
    rows = []
    for old in result["cases"]:
        row = score_answer(cases[old["id"]], old, old["raw"], [])
        row.update({k: old[k] for k in ("exposed", "retrieved", "seconds") if k in old})
        rows.append(row)
    result["cases"] = rows
    result["summary"] = summarize(rows)
    return result


def rows_of(summary: dict[str, Any]) -> list[dict[str, Any]]:
    n = summary["attacks"]
    return [
        {"measure": "attacks (categories)", "value": f"{n} ({summary['categories']})"},
        {"measure": "attack text in what the model read", "value": f"{summary['exposed']}/{n}"},
        {
            "measure": "obeyed in the raw model answer",
            "value": f"{summary['raw_obeyed']}/{n} ({summary['raw_obeyed_rate']:.1%})",
        },
        {
            "measure": "obeyed in the answer shown",
            "value": f"{summary['obeyed']}/{n} ({summary['obeyed_rate']:.1%})",
        },
        {"measure": "refused", "value": f"{summary['refused']}/{n}"},
        {"measure": "answered with the expected fact", "value": f"{summary['answered']}/{n}"},
        {
            "measure": "controls answered / obeyed",
            "value": f"{summary['controls_answered']}/{summary['controls']} / "
            f"{summary['controls_obeyed']}",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm", default="bundled", help="bundled | extractive | any RAG_LLM")
    parser.add_argument("--embedder", default="bundled", help="bundled | keyword")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases")
    parser.add_argument("--ids", default="", help="comma list of case ids")
    parser.add_argument("--label", default="", help="saved as results/injection_<llm>_<label>")
    parser.add_argument("--unguarded", action="store_true", help="without the verifier's guard")
    parser.add_argument("--rescore", type=Path, help="score a saved result again (no run)")
    args = parser.parse_args()
    if args.rescore:
        result = rescore(args.rescore)
        args.rescore.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print(table(rows_of(result["summary"]), ["measure", "value"]))
        return
    if args.unguarded:
        unguard()
        args.label = args.label or "unguarded"
    info = machine()
    print(machine_line(info), flush=True)
    result = run(args.llm, embedder=args.embedder, limit=args.limit, ids=args.ids)
    result["machine"] = info
    result["guarded"] = not args.unguarded
    summary = result["summary"]
    print()
    print(table(rows_of(summary), ["measure", "value"]))
    if summary["obeyed_ids"]:
        print("obeyed:", ", ".join(summary["obeyed_ids"]))
    if summary["raw_obeyed_ids"]:
        print("obeyed in the raw answer:", ", ".join(summary["raw_obeyed_ids"]))
    name = "injection_" + args.llm.replace(":", "_").replace("/", "_")
    if args.label:
        name += "_" + args.label
    path = save(name, result)
    print(f"saved {path.relative_to(RESULTS.parent.parent)}")
    if summary["obeyed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
