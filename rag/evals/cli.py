"""``rag eval``: run a suite and write reports, or compare two runs.

Registered in :mod:`rag.cli` as ``main.add_command(eval_cmd, "eval")``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

__all__ = ["eval_cmd"]

logger = logging.getLogger(__name__)


def _judge(spec: str | None, base_url: str | None) -> Any | None:
    """An OpenAI-compatible judge model, or None (no judge metric)."""
    if not spec:
        return None
    kind, _, model = spec.partition(":")
    if kind != "openai" or not model:
        raise click.BadParameter("use openai:MODEL", param_hint="--judge")
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise click.ClickException(
            "--judge needs langchain-openai: pip install 'article-rag[openai]'"
        ) from exc
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=os.environ.get("EVAL_JUDGE_API_KEY") or "not-needed",
        temperature=0,
        max_completion_tokens=8,
        max_retries=1,
    )


@click.command("eval")
@click.argument("suite_dir", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--llm",
    "llm_spec",
    help="LLM for answers: bundled | extractive | llamacpp:PATH | openai:MODEL | ollama:MODEL.",
)
@click.option("--retrieval-only", is_flag=True, help="Score retrieval only (no LLM).")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N questions.")
@click.option(
    "--split",
    type=click.Choice(["all", "tune", "check"]),
    default="all",
    show_default=True,
    help="Dev split: 'tune' (tune settings on it) or 'check' (confirm on it), a fixed half "
    "each by sha256(question id) even/odd; 'all' for every question.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Report directory (default: DATA_DIR/eval-reports/SUITE-TIME).",
)
@click.option(
    "--baseline", type=click.Choice(["tutorial"]), help="Also run the LangChain tutorial pipeline."
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data directory (indexes, models)."
)
@click.option(
    "--judge", "judge_spec", help="Optional LLM judge: openai:MODEL (an OpenAI-compatible server)."
)
@click.option("--judge-base-url", help="Base URL of the judge's server (key: $EVAL_JUDGE_API_KEY).")
@click.option(
    "--compare",
    "compare_paths",
    nargs=2,
    type=click.Path(exists=True, path_type=Path),
    metavar="OLD.json NEW.json",
    help="Compare two reports instead of running.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or comparison) as JSON.")
def eval_cmd(
    suite_dir: Path | None,
    llm_spec: str | None,
    retrieval_only: bool,
    limit: int | None,
    split: str,
    out_dir: Path | None,
    baseline: str | None,
    data_dir: Path | None,
    judge_spec: str | None,
    judge_base_url: str | None,
    compare_paths: tuple[Path, Path] | None,
    as_json: bool,
) -> None:
    """Evaluate retrieval and answers on SUITE_DIR (qa.jsonl [+ corpus.jsonl, qa_meta.jsonl]).

    Answer mode reports, per system, an answer-loss funnel (gold article in the passages,
    answer in the passages, in what the model saw, in the raw answer, correct) and refusals by
    reason. --split tune|check picks a fixed half of the questions (sha256 of the id, even =
    tune, odd = check): tune on one half, confirm on the other; --limit applies after it.

    \b
    Examples:
      rag eval evals/seed
      rag eval ../shared/datasets/realtimeqa-dev --llm extractive --split tune
      rag eval ../shared/datasets/realtimeqa-dev --retrieval-only --baseline tutorial
      rag eval --compare old/report.json new/report.json
    """
    from rag.errors import RagError
    from rag.evals.report import compare, format_compare, format_table, write_report

    if compare_paths:
        result = compare(*compare_paths)
        click.echo(json.dumps(result, indent=1) if as_json else format_compare(result))
        return
    if suite_dir is None:
        raise click.UsageError("give a SUITE_DIR, or --compare OLD.json NEW.json")
    from rag.config import get_settings
    from rag.evals.runner import run_suite

    try:
        settings = get_settings(data_dir=data_dir, llm=llm_spec)
        judge = _judge(judge_spec, judge_base_url)
        bar = None
        try:
            from tqdm import tqdm

            bar = tqdm(
                total=0,
                unit="q",
                file=sys.stderr,
                disable=not sys.stderr.isatty() and not os.environ.get("EVAL_PROGRESS"),
            )
        except ImportError:  # pragma: no cover - tqdm is a dependency
            bar = None

        def progress(done: int, total: int, label: str) -> None:
            if bar is None:
                return
            if done == 0:
                bar.write(label)
                return
            if done == 1:
                bar.reset(total=total)
                bar.set_description(label.split(":")[0], refresh=False)
            bar.update(done - bar.n)

        report = run_suite(
            suite_dir,
            settings,
            retrieval_only=retrieval_only,
            limit=limit,
            split=split,
            baseline=baseline,
            progress=progress,
            judge=judge,
        )
        if bar is not None:
            bar.close()
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = out_dir or settings.data_dir / "eval-reports" / f"{report['suite']}-{stamp}"
    paths = write_report(report, out)
    if as_json:
        click.echo(
            json.dumps({name: s["summary"] for name, s in report["systems"].items()}, indent=1)
        )
    else:
        click.echo(format_table(report))
        click.echo(f"\nReports: {', '.join(str(p) for p in paths.values())}")
