"""Answer a CSV of questions; write the answers and their citations to another CSV.

Input: a CSV with a ``question`` column (and optionally ``today``, YYYY-MM-DD). Output columns:
question, answer, refused, refusal_reason, sources ("[1] Title (source, date) url; ..."),
quotes (the cited sentences) and citations (the full citation list as JSON).

Usage:
    python examples/batch_csv.py questions.csv --out answers.csv --data-dir .rag
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from rag import build_chain
from rag.config import get_settings
from rag.errors import InputError, RagError

FIELDS = ["question", "answer", "refused", "refusal_reason", "sources", "quotes", "citations"]


def row_for(question: str, out: dict[str, Any]) -> dict[str, Any]:
    """One output row from the chain's answer."""
    cites = out.get("citations", [])
    seen: dict[int, dict[str, Any]] = {}
    for c in cites:
        seen.setdefault(c["n"], c)
    sources = "; ".join(
        f"[{n}] {c['title']}"
        + (
            f" ({', '.join(x for x in (c['source'], c['published']) if x)})"
            if c["source"] or c["published"]
            else ""
        )
        + (f" {c['url']}" if c["url"] else "")
        for n, c in sorted(seen.items())
    )
    keep = ("n", "title", "source", "url", "published", "quote", "article_id", "chunk_id")
    return {
        "question": question,
        "answer": out.get("answer", ""),
        "refused": bool(out.get("refused")),
        "refusal_reason": out.get("refusal_reason", "") if out.get("refused") else "",
        "sources": sources,
        "quotes": " | ".join(f"[{c['n']}] {c['quote']}" for c in cites),
        "citations": json.dumps([{k: c.get(k) for k in keep} for c in cites], ensure_ascii=False),
    }


def main() -> None:
    """Read the questions, answer each, write the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path, help="CSV with a 'question' column.")
    parser.add_argument("--out", type=Path, default=Path("answers.csv"))
    parser.add_argument("--data-dir", type=Path, help="Data dir of the index [env: RAG_DATA_DIR].")
    args = parser.parse_args()

    with args.questions.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "question" not in rows[0]:
        raise SystemExit(f"{args.questions} needs a 'question' column.")
    try:
        chain = build_chain(get_settings(data_dir=args.data_dir))
    except RagError as exc:
        raise SystemExit(f"Error: {exc}") from exc
    answered = refused = failed = 0
    with args.out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            question = (row.get("question") or "").strip()
            payload: dict[str, Any] = {"input": question, "chat_history": []}
            if row.get("today"):
                payload["today"] = row["today"].strip()
            try:
                out = chain.invoke(payload)
            except InputError as exc:  # a bad row is reported in the file, the rest go on
                failed += 1
                writer.writerow({"question": question, "answer": f"Error: {exc}", "refused": ""})
                continue
            refused += bool(out.get("refused"))
            answered += not out.get("refused")
            writer.writerow(row_for(question, out))
    print(
        f"{len(rows)} questions: {answered} answered, {refused} refused, {failed} failed "
        f"-> {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
