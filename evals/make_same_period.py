"""Generate the same-period unanswerable suite from ../shared/datasets/realtimeqa-dev.

Writes ``qa.jsonl``, ``qa_meta.jsonl``, ``corpus.jsonl`` and ``SOURCE.md`` under the data
directory (default ``.rag/suites/realtimeqa-same-period/``), never into the repository; see
:mod:`rag.evals.same_period` for the rule. Then: ``rag eval DIR --llm extractive``.

Usage:
    python evals/make_same_period.py [--source DIR] [--out DIR] [--data-dir DIR]
        [--max-df N] [--share F]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "datasets" / "realtimeqa-dev"
NAME = "realtimeqa-same-period"


def main(argv: list[str] | None = None) -> int:
    """Build the suite; prints the counts. Returns the exit status (0 also when skipped)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="source suite")
    parser.add_argument("--out", type=Path, help=f"target (default DATA_DIR/suites/{NAME})")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: settings)")
    parser.add_argument("--max-df", type=int, default=10, help="most articles an answer is in")
    parser.add_argument("--share", type=float, default=0.5, help="share of eligible questions")
    args = parser.parse_args(argv)

    from rag.evals.same_period import make_same_period

    if not (args.source / "qa.jsonl").is_file() or not (args.source / "corpus.jsonl").is_file():
        print(f"skipped: no suite at {args.source} (qa.jsonl + corpus.jsonl)", file=sys.stderr)
        return 0
    out = args.out
    if out is None:
        from rag.config import get_settings

        out = get_settings(data_dir=args.data_dir).data_dir / "suites" / NAME
    out = out.resolve()
    if out.is_relative_to(REPO) and not out.is_relative_to(REPO / ".rag"):
        print(f"refusing to write dataset text into the repository: {out}", file=sys.stderr)
        return 2
    stats = make_same_period(args.source, out, max_df=args.max_df, share=args.share)
    print(f"wrote {out}")
    print(
        f"questions: {stats['unanswerable']} same-period unanswerable, "
        f"{stats['controls']} answerable controls "
        f"({stats['eligible']} eligible; {stats['lost']} answerable left out, evidence dropped; "
        f"{stats['skipped_unanswerable']} source unanswerable not used)"
    )
    print(
        f"articles: {stats['articles_dropped']} dropped, "
        f"{stats['articles_kept']} kept of {stats['articles']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
