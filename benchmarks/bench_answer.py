"""Per-question answer latency over the index of corpus/: bundled LLM and extractive backend.

For each question: retrieval time, time to first token (from the chain's start), decode
tokens/s (streamed chunks after the first, over the time since the first; llama.cpp streams
one token per chunk), total time, and prompt tokens (counted with the model's tokenizer when
the bundled model is loaded, else approximated as characters / 4). Questions come from
evals/seed/qa.jsonl (answerable ones first) or a built-in list about the KFOR article.

The index of corpus/ is built (incrementally) in a temporary data dir, so an existing .rag/ is
never touched. The first bundled-LLM question includes model warm-up; it is reported but
kept out of the medians.

Usage:
    python benchmarks/bench_answer.py              # 10 questions x (bundled, extractive)
    python benchmarks/bench_answer.py --quick      # 3 questions
    python benchmarks/bench_answer.py --backends extractive
    python benchmarks/bench_answer.py --broad      # broad questions (overview, why/how, said)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

from _common import ROOT, current_rss_mb, machine, machine_line, peak_rss_mb, save, table

warnings.filterwarnings("ignore")

BUILTIN = [
    "How many KFOR troops are there?",
    "What did Stoltenberg say KFOR is ready to do?",
    "Which documents did Kosovo plan to ban?",
    "Who did Stoltenberg meet in Brussels?",
    "How many countries contribute troops to KFOR?",
]


def questions(limit: int) -> list[str]:
    seed = ROOT / "evals" / "seed" / "qa.jsonl"
    if not seed.exists():
        return BUILTIN[:limit]
    rows = [
        json.loads(line) for line in seed.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    rows.sort(key=lambda r: not r.get("answerable", True))
    picked = [r["question"] for r in rows if r.get("answerable", True)][: max(1, limit - 1)]
    picked += [r["question"] for r in rows if not r.get("answerable", True)][:1]
    return picked[:limit]


def broad_questions(limit: int) -> list[str]:
    """The overview suite's questions about the seed article (answered in several sentences)."""
    suite = ROOT / "evals" / "overview" / "qa.jsonl"
    rows = [json.loads(line) for line in suite.read_text(encoding="utf-8").splitlines() if line]
    seed = [r["question"] for r in rows if r.get("evidence_ids") == ["corpus/nato-kosovo-kfor.txt"]]
    return seed[:limit]


class _PromptCatcher:
    """A LangChain callback that keeps the messages sent to the chat model."""

    def __init__(self) -> None:
        from langchain_core.callbacks import BaseCallbackHandler

        catcher = self

        class Handler(BaseCallbackHandler):
            def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
                catcher.messages = [m for batch in messages for m in batch]

        self.messages: list[Any] = []
        self.handler = Handler()


def _prompt_tokens(chain: Any, messages: list[Any]) -> tuple[int | None, bool]:
    """(tokens, exact?) of the chat messages: the model's tokenizer if at hand, else chars/4."""
    if not messages:
        return None, False
    text = "\n".join(str(m.content) for m in messages)
    llm = getattr(chain, "llm", None)
    loaded = getattr(llm, "_loaded", None)
    if callable(loaded):
        try:
            llama = loaded().llama
            return len(llama.tokenize(text.encode("utf-8"), add_bos=True, special=True)) + 5 * len(
                messages
            ), True
        except Exception:  # tokenizer not reachable: approximate
            pass
    return round(len(text) / 4), False


def run_backend(backend: str, qs: list[str], data_dir: Path) -> list[dict[str, Any]]:
    from rag.answer.chain import build_chain
    from rag.answer.result import AnswerFolder
    from rag.config import Settings

    settings = Settings(data_dir=data_dir, llm=backend)
    t0 = time.perf_counter()
    chain = build_chain(settings)
    build_s = time.perf_counter() - t0
    print(
        f"[{backend}] chain built in {build_s:.1f} s (model: {getattr(chain, 'model_name', '?')})",
        flush=True,
    )
    rows = []
    for i, q in enumerate(qs):
        catcher = _PromptCatcher()
        started = time.perf_counter()
        stamps: list[float] = []
        folder = AnswerFolder()
        for event in chain.stream(
            {"input": q, "today": date.today().isoformat()}, {"callbacks": [catcher.handler]}
        ):
            if folder.add(event) is not None:
                stamps.append(time.perf_counter())
        final = folder.result()
        total = time.perf_counter() - started
        timings = final.get("timings", {})
        tokens, exact = _prompt_tokens(chain, catcher.messages)
        decode = None
        if backend != "extractive" and len(stamps) > 1 and stamps[-1] > stamps[0]:
            decode = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        row = {
            "backend": backend,
            "question": q[:60],
            "retrieve_ms": round(1000 * timings.get("retrieve_s", 0.0), 1),
            "first_token_s": round(
                timings.get("first_token_s", stamps[0] - started if stamps else total), 3
            ),
            "decode_tok_s": round(decode, 1) if decode else None,
            "answer_tokens": len(stamps),
            "total_s": round(total, 3),
            "prompt_tokens": tokens,
            "prompt_tokens_exact": exact,
            "refused": final.get("refused"),
            "warm_up": i == 0 and backend != "extractive",
        }
        rows.append(row)
        print(
            f"  {row['question']:60s} retrieve {row['retrieve_ms']:6.1f} ms  "
            f"first token {row['first_token_s']:6.2f} s  "
            f"decode {row['decode_tok_s'] or '-'} tok/s  total {row['total_s']:6.2f} s  "
            f"prompt {tokens}"
            f"{'' if exact else ' (approx)'}{'  [refused]' if row['refused'] else ''}",
            flush=True,
        )
    if build_s:
        rows[0]["chain_build_s"] = round(build_s, 2)
    return rows


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None and not r.get("warm_up")]
    return round(statistics.median(vals), 3) if vals else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 questions")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--backends", default="bundled,extractive")
    parser.add_argument(
        "--broad", action="store_true", help="broad questions (evals/overview, seed article)"
    )
    args = parser.parse_args()
    info = machine()
    print(machine_line(info), flush=True)

    from rag.config import Settings
    from rag.ingestion.pipeline import ingest

    data_dir = Path(tempfile.mkdtemp(prefix="bench-answer-")) / "data"
    t0 = time.perf_counter()
    report = ingest([ROOT / "corpus"], Settings(data_dir=data_dir))
    print(
        f"index of corpus/: {report.summary()} "
        f"({time.perf_counter() - t0:.1f} s incl. embedder load)",
        flush=True,
    )
    count = 3 if args.quick else args.questions
    qs = broad_questions(count) if args.broad else questions(count)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            got = run_backend(backend, qs, data_dir)
        except Exception as exc:  # e.g. llama-cpp-python not installed
            print(f"[{backend}] unavailable: {type(exc).__name__}: {exc}", flush=True)
            summary[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        rows += got
        summary[backend] = {
            k: _median(got, k)
            for k in ("retrieve_ms", "first_token_s", "decode_tok_s", "total_s", "prompt_tokens")
        }
        summary[backend]["rss_mb_after"] = round(current_rss_mb())
    print()
    print(
        table(
            rows,
            [
                "backend",
                "question",
                "retrieve_ms",
                "first_token_s",
                "decode_tok_s",
                "answer_tokens",
                "total_s",
                "prompt_tokens",
                "refused",
                "warm_up",
            ],
        )
    )
    print("\nmedians (warm-up question excluded):")
    for backend, med in summary.items():
        print(f"  {backend}: {med}")
    path = save(
        "bench_answer_broad" if args.broad else "bench_answer",
        {
            "machine": info,
            "questions": qs,
            "rows": rows,
            "medians": summary,
            "peak_rss_mb": round(peak_rss_mb()),
        },
        quick=args.quick,
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
