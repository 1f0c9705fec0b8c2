"""Load test of the real servers with Locust (headless): `rag api` and `rag serve`.

For each server (`rag api`, then `rag serve`): a fresh data dir indexed from corpus/, the
server on a free 127.0.0.1 port, then

1. Locust, headless: ``-u 24 -r 8 -t 60s`` chat sessions (a seed-suite question, then a
   follow-up with the history; benchmarks/locustfile.py) with the extractive backend, while
   new articles are ingested (through /v1/ingest, or the page's upload box) at 25% and 60% of
   the run; afterwards each new article's question is asked and must be answered with its
   figure. Reported per endpoint: requests, failures, 429s, throughput, p50/p95.
2. Memory: 500 questions from 4 clients (on the page: chats of two in one Gradio session);
   the server's RSS every 10 questions: before, after 50 (warm-up), last, max, and the slope
   from the warm-up on (MB per 100 questions).
3. The bundled model at a lower rate (``-u 4 -r 1 -t 60s``) against `rag api`, when the
   model and llama.cpp are installed (skipped otherwise, and with --skip-llm).

A 429 from the API's gate with its message ("The assistant is busy ...; try again shortly.")
and Retry-After is counted apart, not as an error: the Locust user waits and retries. The
machine has 2 cores shared with other jobs; latencies under that contention are pessimistic.
Nothing is asserted; the exit code is 1 when a request failed or an ingested article was not
answerable. Results: benchmarks/results/bench_load.json (bench_load_quick.json with --quick).

Usage:
    python benchmarks/bench_load.py                     # bundled embedder, the full runs
    python benchmarks/bench_load.py --embedder keyword  # model-free retrieval (server overhead)
    python benchmarks/bench_load.py --quick             # 20 users x 20 s, 200 questions, no LLM
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, machine, machine_line, save, table

from tests.load_helpers import (
    IngestDuring,
    RssSampler,
    answerable_after,
    index_corpus,
    memory_run,
    new_article,
    run_locust,
    running_server,
)

USER_CLASS = {"api": "ApiChatUser", "page": "PageChatUser"}


def _bundled_model_ready() -> str:
    """'' when the bundled model can run here, else why not."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    try:
        from rag.models.bundled import bundled_part_paths

        bundled_part_paths()
    except Exception as exc:
        return f"the bundled model is not installed ({exc})"
    return ""


def _link_models(data: Path) -> None:
    """Reuse an already assembled bundled model (.rag/models) instead of assembling 1.1 GB."""
    models = ROOT / ".rag" / "models"
    if models.is_dir() and not (data / "models").exists():
        data.mkdir(parents=True, exist_ok=True)
        (data / "models").symlink_to(models, target_is_directory=True)


def load_phase(
    kind: str,
    work: Path,
    args: argparse.Namespace,
    *,
    llm: str = "extractive",
    users: int,
    spawn_rate: float,
    seconds: int,
    questions: int,
    ingest: bool = True,
) -> dict[str, Any]:
    """One server: Locust (with ingests during it), then the memory run."""
    env = {"RAG_LLM": llm, "RAG_EMBEDDING_MODEL": args.embedder}
    data = work / f"{kind}-{llm}" / "data"
    index_corpus([ROOT / "corpus"], data, **env)
    if llm == "bundled":
        _link_models(data)
    logs = data.parent
    out: dict[str, Any] = {"server": f"rag {'api' if kind == 'api' else 'serve'}", "llm": llm}
    print(f"\n== {out['server']}, {llm}: {users} users for {seconds}s", flush=True)
    with running_server(kind, data, logs, timeout=300, **env) as server:
        articles = [new_article(i) for i in range(2)] if ingest else []
        offsets = [seconds * 0.25, seconds * 0.6][: len(articles)]
        during = IngestDuring(server, articles, offsets, logs).start()
        with RssSampler(server.proc.pid) as rss:
            run = run_locust(
                server.root,
                USER_CLASS[kind],
                logs / "locust",
                users=users,
                spawn_rate=spawn_rate,
                seconds=seconds,
                timeout=seconds + 900,
            )
        out["locust"] = run.summary()
        out["endpoints"] = run.rows
        out["failures"] = run.failures[:10]
        out["exceptions"] = run.exceptions[:10]
        out["locust_exit_code"] = run.exit_code
        out["rss_during_locust"] = rss.summary()
        out["ingest_during_run"] = during.join()
        out["answerable_after"] = answerable_after(server, articles)
        s = out["locust"]
        print(
            f"  {s['answers']} answers in {seconds}s ({s['answers_per_s']}/s), errors "
            f"{s['errors']}, 429 busy {s['busy_429_clear']}; ingests "
            f"{[i['ok'] for i in out['ingest_during_run']]}, answerable after "
            f"{[a['answered'] for a in out['answerable_after']]}",
            flush=True,
        )
        if questions:
            print(f"  memory: {questions} questions", flush=True)
            out["memory"] = memory_run(
                server, questions, warmup=50, threads=4, log=lambda m: print(m, flush=True)
            )
        out["tracebacks_in_server_log"] = server.log_text().count("Traceback")
    return out


def run_load(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """All phases; the result dict (also used by benchmarks/reliability.py --load)."""
    phases: list[dict[str, Any]] = []
    for kind in ("api", "page"):
        phases.append(
            load_phase(
                kind,
                work,
                args,
                users=args.users,
                spawn_rate=args.spawn_rate,
                seconds=args.seconds,
                questions=args.questions,
            )
        )
    why_not = "skipped (--skip-llm)" if args.skip_llm else _bundled_model_ready()
    if why_not:
        print(f"\n== bundled model: {why_not}", flush=True)
        llm_phase: dict[str, Any] = {"skipped": why_not}
    else:
        llm_phase = load_phase(
            "api",
            work,
            args,
            llm="bundled",
            users=args.llm_users,
            spawn_rate=1,
            seconds=args.llm_seconds,
            questions=0,
            ingest=False,
        )
    return {
        "settings": {
            "embedder": args.embedder,
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "seconds": args.seconds,
            "memory_questions": args.questions,
            "llm_users": args.llm_users,
            "llm_seconds": args.llm_seconds,
            "concurrency": "RAG_CONCURRENCY default (2 answers at once, 16 waiting)",
            "note": "2 shared cores: latencies under contention with other jobs are pessimistic",
        },
        "phases": phases,
        "bundled_model": llm_phase,
    }


def rows_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per endpoint and phase."""
    rows = []
    phases = [*result["phases"]]
    if "locust" in result["bundled_model"]:
        phases.append(result["bundled_model"])
    for phase in phases:
        for r in phase["endpoints"]:
            if r["name"] == "Aggregated":
                continue
            rows.append(
                {
                    "server": f"{phase['server'].split()[-1]} {phase['llm']}",
                    "endpoint": r["name"][:58],
                    "requests": r["requests"],
                    "failures": r["failures"],
                    "per_s": f"{r['per_s'] or 0:.2f}",
                    "p50_ms": r["p50_ms"],
                    "p95_ms": r["p95_ms"],
                }
            )
    return rows


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    phases = [*result["phases"]]
    if "locust" in result["bundled_model"]:
        phases.append(result["bundled_model"])
    for phase in phases:
        s = phase["locust"]
        m = phase.get("memory", {})
        rows.append(
            {
                "server": f"{phase['server']} ({phase['llm']})",
                "users": s["users"],
                "answers/s": s["answers_per_s"],
                "p50_ms": s["answer_p50_ms"],
                "p95_ms": s["answer_p95_ms"],
                "errors": s["errors"],
                "429": s["busy_429_clear"],
                "ingests_ok": sum(i["ok"] for i in phase["ingest_during_run"]),
                "new_answerable": sum(a["answered"] for a in phase["answerable_after"]),
                "rss_50q_mb": m.get("rss_after_warmup_mb"),
                "rss_last_mb": m.get("rss_last_mb"),
                "rss_max_mb": m.get("rss_max_mb"),
                "mb_per_100q": m.get("slope_mb_per_100_questions"),
            }
        )
    return rows


def problems_of(result: dict[str, Any]) -> list[str]:
    out = []
    phases = [*result["phases"]]
    if "locust" in result["bundled_model"]:
        phases.append(result["bundled_model"])
    for phase in phases:
        name = f"{phase['server']} ({phase['llm']})"
        if phase["locust"]["errors"] or phase["locust"]["busy_429_unclear"]:
            out.append(f"{name}: failed requests")
        if not all(i["ok"] for i in phase["ingest_during_run"]):
            out.append(f"{name}: an ingest during the run failed")
        if not all(a["answered"] for a in phase["answerable_after"]):
            out.append(f"{name}: an ingested article was not answerable")
        if phase.get("memory", {}).get("errors"):
            out.append(f"{name}: errors in the memory run")
        if phase["tracebacks_in_server_log"]:
            out.append(f"{name}: tracebacks in the server log")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=None, help="Locust users (default 24)")
    parser.add_argument("--spawn-rate", type=float, default=8)
    parser.add_argument("--seconds", type=int, default=None, help="run time (default 60)")
    parser.add_argument("--questions", type=int, default=None, help="memory run (default 500)")
    parser.add_argument("--llm-users", type=int, default=4)
    parser.add_argument("--llm-seconds", type=int, default=60)
    parser.add_argument("--skip-llm", action="store_true", help="no bundled-model phase")


def fill_defaults(args: argparse.Namespace) -> None:
    q = args.quick
    args.users = args.users or (20 if q else 24)
    args.seconds = args.seconds or (20 if q else 60)
    args.questions = args.questions or (200 if q else 500)
    args.skip_llm = args.skip_llm or q


def print_result(result: dict[str, Any]) -> None:
    print()
    print(
        table(
            rows_of(result),
            ["server", "endpoint", "requests", "failures", "per_s", "p50_ms", "p95_ms"],
        )
    )
    print()
    print(
        table(
            summary_rows(result),
            [
                "server",
                "users",
                "answers/s",
                "p50_ms",
                "p95_ms",
                "errors",
                "429",
                "ingests_ok",
                "new_answerable",
                "rss_50q_mb",
                "rss_last_mb",
                "rss_max_mb",
                "mb_per_100q",
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 users x 20 s, 200 questions")
    parser.add_argument("--embedder", default="bundled", help="bundled (default) or keyword")
    add_arguments(parser)
    args = parser.parse_args()
    fill_defaults(args)
    info = machine()
    print(machine_line(info), flush=True)
    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    started = time.perf_counter()
    try:
        result = {"machine": info, "quick": args.quick, **run_load(args, work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print_result(result)
    name = "bench_load" if args.embedder == "bundled" else f"bench_load_{args.embedder}"
    path = save(name, result, quick=args.quick)
    print(f"saved {path.relative_to(ROOT)}")
    problems = problems_of(result)
    if problems:
        print("PROBLEMS: " + "; ".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
