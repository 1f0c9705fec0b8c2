"""Evaluation of article-rag: suites, metrics, runner, reports and the ``rag eval`` command.

``run_suite(suite_dir, settings)`` scores retrieval (article hit@k, MRR, nDCG), answers
(lenient correctness, token F1), citations and refusals, and latency; ``write_report`` and
``compare`` turn runs into tables, JSON, Markdown and a plot.
"""

from __future__ import annotations

__all__ = ["compare", "load_suite", "run_suite", "write_report"]


def __getattr__(name: str) -> object:
    """Lazy exports, so ``import rag.evals`` stays cheap."""
    if name == "run_suite":
        from rag.evals.runner import run_suite

        return run_suite
    if name == "load_suite":
        from rag.evals.suites import load_suite

        return load_suite
    if name in ("compare", "write_report"):
        from rag.evals import report

        return getattr(report, name)
    raise AttributeError(name)
