"""Reliability, measured: hostile files, kills during ingest, fuzzed questions.

Three long runs of what the tests check in small:

1. Hostile files (tests/hostile.py): several hundred bad files of every supported format
   (a 100 MB file, a 5 MB line, broken encodings, truncated/encrypted PDFs, 20k-deep HTML, bad
   JSON, symlink loops, odd names, ...) mixed with good articles, ingested by ``rag ingest``
   in a subprocess. Counted: bad inputs tried, reported with a reason, crashes (a traceback or
   a non-zero exit), good articles stored; the ingest process's peak RSS.
2. Kill loop (tests/test_reliability_kill.py): SIGKILL ``rag ingest`` at random points N times
   in a row on one data dir while the articles change, a ``rag ask --llm extractive`` after
   every kill, a final ingest; then the store is compared with a clean ingest of the same files
   (chunks, manifest, BM25 weights, orphans, duplicates).
3. Question fuzz: the fixed hostile payloads of tests/test_reliability_questions.py plus
   random ones (any Unicode, control and escape characters, 100 kB, long histories, malformed
   ``today`` / filters) through the library, and hostile arguments through the CLI: counted as
   an answer, a clean message (InputError / one-line error with a non-zero exit) or a traceback.
4. Load (benchmarks/bench_load.py): Locust, headless, 24 users for 60 s against the real
   `rag api` and `rag serve` (extractive) while articles are ingested, 500 questions with the
   server's RSS sampled, then the bundled model at 4 users; tables printed by bench_load.
5. Prompt injection (benchmarks/injection.py, rag/evals/injection.py): 36 articles carrying
   instructions and 4 controls, each with a question that retrieves it; counted: answers that
   obey, in the model's raw text and in the answer shown. Extractive by default (seconds);
   ``--injection bundled`` measures the bundled model (40 questions, 5-30 minutes).

Chroma server faults (``--chroma-faults N``, tests/test_chroma_server_faults.py): a real
``chroma run`` is stopped (SIGKILL and SIGTERM in turn) and started again N times on the
same port and data while a thread asks questions back to back through one chain object.
Counted: cycles after which the same chain answered again, answers (with the right
figure), clear errors (StoreUnavailableError naming the URL), any other error, hangs.

No timing is asserted; the JSON keeps the counts.

Usage:
    python benchmarks/reliability.py            # -> results/reliability.json
    python benchmarks/reliability.py --quick    # small sizes, 5 kills -> reliability_quick.json
    python benchmarks/reliability.py --embedder bundled   # the real embedder (slower)
    python benchmarks/reliability.py --chroma-faults 20 --skip hostile,kill,questions,load,injection
                                  # -> results/reliability_chroma_faults.json
    python benchmarks/reliability.py --skip load   # without the load test (bench_load.py)
    (a run without every section saves reliability_<its sections>.json, not reliability.json)
    python benchmarks/reliability.py --injection bundled --chroma-faults 0 \
        --skip hostile,kill,questions,load          # only the injection set, bundled model
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _common import ROOT, machine, machine_line, peak_rss_mb, save, table

warnings.filterwarnings("ignore")


def run_measured(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; return its exit code, output and peak RSS (from wait4's rusage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return {
            "code": proc.returncode,
            "stdout": out.read(),
            "stderr": err.read(),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "seconds": round(seconds, 1),
        }


def hostile_files(work: Path, args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    from rag.config import Settings
    from rag.index.store import open_store
    from rag.ingestion.load import LoadFailure
    from tests.conftest import subprocess_env
    from tests.hostile import check_outcome, generate
    from tests.test_reliability_kill import fresh_clients

    t0 = time.perf_counter()
    hostile = generate(
        work / "hostile",
        seed=args.seed,
        copies=args.copies,
        big_mb=args.big_mb,
        max_file_mb=args.max_file_mb,
        line_mb=args.line_mb,
        html_depth=args.html_depth,
    )
    generated_s = time.perf_counter() - t0
    print(
        f"hostile set: {hostile.files} files ({hostile.hostile} bad inputs, "
        f"{len(hostile.good_titles) + len(hostile.good_ids)} good articles) in {generated_s:.1f}s",
        flush=True,
    )
    data = work / "hostile-data"
    env = subprocess_env(
        RAG_EMBEDDING_MODEL=args.embedder,
        RAG_DATA_DIR=str(data),
        RAG_MAX_FILE_MB=str(args.max_file_mb),
    )
    cmd = [sys.executable, "-m", "rag", "ingest", str(hostile.root), "--json", "-q"]
    run = run_measured(cmd, env, Path.cwd())  # failure paths are relative to this cwd
    crashed = run["code"] != 0 or b"Traceback" in run["stderr"]
    report = json.loads(run["stdout"]) if run["stdout"].strip() else {"failed": []}
    failures = [LoadFailure(f["path"], f["reason"]) for f in report["failed"]]
    fresh_clients()
    manifest = open_store(Settings(data_dir=data), create=False).manifest()
    outcome = check_outcome(hostile, failures, [a.title for a in manifest.values()], manifest)
    again = run_measured(cmd, env, Path.cwd())
    again_report = json.loads(again["stdout"]) if again["stdout"].strip() else {}
    result = {
        "files": hostile.files,
        "bad_inputs_tried": hostile.hostile,
        "bad_files": len(hostile.bad),
        "bad_records": hostile.bad_records,
        "either_way_files": len(hostile.either),
        "failures_reported": outcome["failures_reported"],
        "bad_files_reported": outcome["bad_files_reported"],
        "crashed": int(crashed),
        "tracebacks_in_output": run["stderr"].count(b"Traceback"),
        "escape_bytes_in_output": (run["stdout"] + run["stderr"]).count(b"\x1b"),
        "good_articles": outcome["good_articles"],
        "good_articles_stored": outcome["good_articles_stored"],
        "articles_stored": len(manifest),
        "unreported": outcome["unreported"],
        "wrong_reason": outcome["wrong_reason"],
        "lost": outcome["lost"],
        "unexpected": outcome["unexpected"],
        "second_run_unchanged": again_report.get("unchanged") == len(manifest)
        and again_report.get("added") == 0,
        "ingest_exit_code": run["code"],
        "ingest_peak_rss_mb": run["peak_rss_mb"],
        "ingest_seconds": run["seconds"],
        "sizes": {
            "big_file_mb": args.big_mb,
            "max_file_mb": args.max_file_mb,
            "one_line_mb": args.line_mb,
            "html_depth": args.html_depth,
            "copies": args.copies,
        },
        "embedder": args.embedder,
    }
    return result, data


def kill_loop(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from tests.conftest import subprocess_env
    from tests.test_reliability_kill import run_kill_loop

    def cli_ask(data_dir: Path, question: str) -> dict[str, Any]:
        env = subprocess_env(RAG_EMBEDDING_MODEL=args.kill_embedder, RAG_DATA_DIR=str(data_dir))
        run = subprocess.run(
            [sys.executable, "-m", "rag", "ask", question, "--llm", "extractive", "--json"],
            env=env,
            capture_output=True,
            timeout=600,
        )
        if run.returncode != 0 or b"Traceback" in run.stderr:
            raise RuntimeError(f"rag ask exited {run.returncode}: {run.stderr[-300:]!r}")
        out = json.loads(run.stdout)
        return {"answer": out["answer"], "refused": out["refused"]}

    root = work / "kill"
    root.mkdir()
    return run_kill_loop(
        root,
        kills=args.kills,
        articles=args.kill_articles,
        seed=args.seed,
        embedding_model=args.kill_embedder,
        ask=cli_ask,
        log=lambda line: line and print("  " + line, flush=True),
    )


def load_test(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import bench_load

    load_args = argparse.Namespace(
        quick=args.quick,
        embedder=args.load_embedder,
        users=None,
        spawn_rate=8,
        seconds=None,
        questions=None,
        llm_users=4,
        llm_seconds=60,
        skip_llm=False,
    )
    bench_load.fill_defaults(load_args)  # --quick: 20 users x 20 s, 200 questions, no LLM
    root = work / "load"
    root.mkdir()
    return bench_load.run_load(load_args, root)


_NASTY = [
    "\x1b[2J",
    "\x1b]0;t\x07",
    "\x00",
    "\x7f",
    "\x9b",
    "\u202e",
    "\u200b",
    "\ud800",
    "\udcff",
    "\ufeff",
    "🙂",
    "e\u0301",
    "؟",
    "。",
    "\n",
    "\t",
    "'",
    '"',
    "{",
    "}",
    "%s",
    "$(rm -rf /)",
]
_WORDS = "KFOR troops NATO Kosovo bridge ferry how many what when who the of in".split()


def _random_question(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(1, 300)))
    if kind == 1:
        return "".join(rng.choice(_NASTY + _WORDS) for _ in range(rng.randrange(1, 60)))
    if kind == 2:
        return "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randrange(1, 3000)))
    if kind == 3:
        return rng.choice(["", " ", "\n\t", "?", "!!!", "..."]) * rng.randrange(1, 50)
    if kind == 4:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(1, 30))) + "?"
    return "x" * rng.choice([1999, 2000, 2001, 100_000])


def _random_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {"input": _random_question(rng)}
    if rng.random() < 0.3:
        turns = rng.choice([0, 1, 5, 300, 1000])
        payload["chat_history"] = [
            rng.choice(
                [
                    {
                        "role": rng.choice(["user", "assistant", "x"]),
                        "content": _random_question(rng),
                    },
                    (rng.choice(["user", "ai"]), _random_question(rng)),
                    None,
                    rng.randrange(9),
                ]
            )
            for _ in range(turns)
        ]
    if rng.random() < 0.2:
        payload["today"] = rng.choice(
            ["2024-01-31", "2024-02-30", "tomorrow", "", 20240101, 3.5, [], {"d": 1}, "0001-01-01"]
        )
    if rng.random() < 0.2:
        payload["filters"] = rng.choice(
            [
                {"source": "infobae.com"},
                {"source": 5},
                {"published_from": "2024-13-01"},
                {"published_to": "2024-01-01", "published_from": "2024-12-31"},
                {"article_ids": ["\ud800", "\x1b[2J"]},
                {"nope": 1},
                "source",
                7,
                [("source", "x")],
            ]
        )
    return payload


def question_fuzz(data: Path, args: argparse.Namespace) -> dict[str, Any]:
    from click.testing import CliRunner

    from rag.answer.chain import build_chain
    from rag.cli import main as cli_main
    from rag.config import Settings
    from rag.errors import InputError
    from tests.test_reliability_kill import fresh_clients
    from tests.test_reliability_questions import CLI_CASES, PAYLOADS

    fresh_clients()
    chain = build_chain(Settings(data_dir=data, embedding_model=args.embedder, llm="extractive"))
    rng = random.Random(args.seed)
    payloads: list[Any] = [p for p, _ in PAYLOADS] + [
        _random_payload(rng) for _ in range(args.questions)
    ]
    counts = {"answered": 0, "refused": 0, "clean_message": 0, "traceback": 0}
    tracebacks: list[str] = []
    for payload in payloads:
        try:
            out = chain.invoke(payload)
            counts["refused" if out["refused"] else "answered"] += 1
        except InputError:
            counts["clean_message"] += 1
        except Exception as exc:
            counts["traceback"] += 1
            tracebacks.append(f"{type(exc).__name__}: {exc} <- {repr(payload)[:200]}")
    # CLI, in-process (click's runner): exit code and stderr as a shell would see them
    cli = {"cases": 0, "answered": 0, "clean_error": 0, "traceback": 0, "escape_bytes": 0}
    env = {"RAG_EMBEDDING_MODEL": args.embedder, "RAG_DATA_DIR": str(data), "RAG_LLM": "extractive"}
    cli_args = [a for a, _ in CLI_CASES] + [
        ["ask", q]
        for q in (_random_question(rng).replace("\x00", "") for _ in range(args.cli_questions))
        if q
    ]
    runner = CliRunner()
    for argv in cli_args:
        result = runner.invoke(cli_main, argv, env=env)
        cli["cases"] += 1
        cli["escape_bytes"] += result.output.count("\x1b") + result.output.count("\x9b")
        if result.exit_code == 0:
            cli["answered"] += 1
        elif isinstance(result.exception, SystemExit) and "Traceback" not in result.output:
            cli["clean_error"] += 1
        else:
            cli["traceback"] += 1
            tracebacks.append(f"CLI {argv!r:.120}: {result.exception!r}")
    return {
        "library_payloads": len(payloads),
        **{f"library_{k}": v for k, v in counts.items()},
        **{f"cli_{k}": v for k, v in cli.items()},
        "tracebacks": tracebacks[:20],
    }


def chroma_server_faults(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from tests.conftest import ChromaServer
    from tests.test_chroma_server_faults import chroma_faults

    root = work / "chroma"
    root.mkdir()
    server = ChromaServer(root / "server-db")
    server.start()
    started = time.perf_counter()
    try:
        result = chroma_faults(
            root,
            server,
            cycles=args.chroma_faults,
            embedding_model=args.embedder,
            log=lambda line: print("  " + line, flush=True),
        )
    finally:
        server.stop()
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["embedder"] = args.embedder
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 5 kills")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--embedder", default="keyword", help="hostile ingest + fuzz embedder")
    parser.add_argument("--kill-embedder", default=None, help="default: --embedder")
    parser.add_argument("--copies", type=int, default=None, help="hostile variants per case")
    parser.add_argument("--big-mb", type=float, default=None, help="the oversized file (MB)")
    parser.add_argument("--max-file-mb", type=float, default=20.0)
    parser.add_argument("--line-mb", type=float, default=None, help="the one-line file (MB)")
    parser.add_argument("--html-depth", type=int, default=20_000)
    parser.add_argument(
        "--chroma-faults", type=int, default=None, help="stop/start cycles of a chroma server"
    )
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--kill-articles", type=int, default=None)
    parser.add_argument("--questions", type=int, default=None, help="random library payloads")
    parser.add_argument("--cli-questions", type=int, default=None, help="random CLI questions")
    parser.add_argument(
        "--skip", default="", help="comma list of: hostile,kill,questions,load,injection"
    )
    parser.add_argument(
        "--injection", default="extractive", metavar="LLM", help="backend of the injection set"
    )
    parser.add_argument(
        "--load-embedder", default="bundled", help="embedder of the load test's servers"
    )
    args = parser.parse_args()
    q = args.quick
    args.copies = args.copies or (4 if q else 20)
    args.big_mb = args.big_mb or (25.0 if q else 100.0)
    args.line_mb = args.line_mb or (1.0 if q else 5.0)
    args.kills = args.kills or (5 if q else 20)
    args.kill_articles = args.kill_articles or (200 if q else 600)
    args.questions = args.questions or (100 if q else 1000)
    args.cli_questions = args.cli_questions or (10 if q else 60)
    args.kill_embedder = args.kill_embedder or args.embedder
    if args.chroma_faults is None:
        args.chroma_faults = 3 if q else 10
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    info = machine()
    print(machine_line(info), flush=True)
    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    result: dict[str, Any] = {"machine": info, "quick": q, "seed": args.seed}
    try:
        data = None
        if "hostile" not in skip:
            print("\n== hostile files", flush=True)
            result["hostile"], data = hostile_files(work, args)
        if "kill" not in skip:
            print(f"\n== kill loop ({args.kills} kills, {args.kill_embedder} embedder)", flush=True)
            started = time.perf_counter()
            result["kill_loop"] = kill_loop(work, args)
            result["kill_loop"]["seconds"] = round(time.perf_counter() - started, 1)
            result["kill_loop"]["embedder"] = args.kill_embedder
        if args.chroma_faults > 0:
            print(f"\n== chroma server faults ({args.chroma_faults} stop/start cycles)", flush=True)
            result["chroma_faults"] = chroma_server_faults(work, args)
        if "questions" not in skip and data is not None:
            print("\n== question fuzz", flush=True)
            result["questions"] = question_fuzz(data, args)
        if "load" not in skip:
            print(f"\n== load ({args.load_embedder} embedder)", flush=True)
            result["load"] = load_test(work, args)
        if "injection" not in skip:
            import injection

            print(f"\n== prompt injection ({args.injection})", flush=True)
            result["injection"] = injection.run(args.injection, embedder=args.kill_embedder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(work.with_name(work.name + "-outside"), ignore_errors=True)
    result["bench_process_peak_rss_mb"] = round(peak_rss_mb())
    rows: list[dict[str, Any]] = []
    if "hostile" in result:
        h = result["hostile"]
        rows += [
            {"check": "hostile: bad inputs tried", "value": h["bad_inputs_tried"]},
            {"check": "hostile: failures reported with a reason", "value": h["failures_reported"]},
            {
                "check": "hostile: bad files reported",
                "value": f"{h['bad_files_reported']}/{h['bad_files']}",
            },
            {"check": "hostile: crashes / tracebacks", "value": h["crashed"]},
            {
                "check": "hostile: good articles stored",
                "value": f"{h['good_articles_stored']}/{h['good_articles']}",
            },
            {"check": "hostile: ingest peak RSS (MB)", "value": h["ingest_peak_rss_mb"]},
        ]
    if "kill_loop" in result:
        k = result["kill_loop"]
        rows += [
            {
                "check": "kill loop: kills survived",
                "value": f"{k['kills_delivered']}/{k['kills_requested']}",
            },
            {
                "check": "kill loop: questions answered / with the right figure",
                "value": f"{k['questions_answered']}/{k['questions_correct']} of {k['questions']}",
            },
            {
                "check": "kill loop: store equals clean ingest",
                "value": k["store_equals_clean_ingest"],
            },
        ]
    if "chroma_faults" in result:
        c = result["chroma_faults"]
        rows += [
            {
                "check": "chroma faults: stop/start cycles the same chain recovered from",
                "value": f"{c['recovered']}/{c['cycles']}",
            },
            {
                "check": "chroma faults: answers (right figure) / clear errors / other errors",
                "value": (
                    f"{c['answered']} ({c['right']}) / {c['clear_errors']} / {c['other_errors']}"
                ),
            },
            {
                "check": "chroma faults: hung / slowest question (s)",
                "value": f"{c['hung']} / {c['max_question_s']}",
            },
        ]
    if "questions" in result:
        f = result["questions"]
        rows += [
            {
                "check": "fuzz: library payloads (answer/refusal/message)",
                "value": (
                    f"{f['library_answered']}/{f['library_refused']}/"
                    f"{f['library_clean_message']} of {f['library_payloads']}"
                ),
            },
            {"check": "fuzz: library tracebacks", "value": f["library_traceback"]},
            {
                "check": "fuzz: CLI runs (answer/one-line error)",
                "value": f"{f['cli_answered']}/{f['cli_clean_error']} of {f['cli_cases']}",
            },
            {"check": "fuzz: CLI tracebacks", "value": f["cli_traceback"]},
        ]
    if "load" in result:
        import bench_load

        bench_load.print_result(result["load"])
        for r in bench_load.summary_rows(result["load"]):
            rows += [
                {
                    "check": f"load: {r['server']}, {r['users']} users: answers/s, p50/p95 ms",
                    "value": f"{r['answers/s']}, {r['p50_ms']}/{r['p95_ms']}",
                },
                {
                    "check": f"load: {r['server']}: errors / 429 busy",
                    "value": f"{r['errors']} / {r['429']}",
                },
                {
                    "check": f"load: {r['server']}: RSS after 50 q / last / max (MB)",
                    "value": f"{r['rss_50q_mb']} / {r['rss_last_mb']} / {r['rss_max_mb']}",
                },
            ]
    if "injection" in result:
        import injection

        rows += [
            {"check": f"injection ({args.injection}): {r['measure']}", "value": r["value"]}
            for r in injection.rows_of(result["injection"]["summary"])
        ]
    result["rows"] = rows
    print()
    print(table(rows, ["check", "value"]))
    every = ("hostile", "kill_loop", "chroma_faults", "questions", "load", "injection")
    sections = [s for s in every if s in result]
    # a partial run gets a file named by its sections: the full run's figures stay as they are
    name = "reliability" if len(sections) == len(every) else "_".join(["reliability", *sections])
    path = save(name, result, quick=q)
    print(f"saved {path}")
    problems = []
    if "hostile" in result and (
        result["hostile"]["crashed"]
        or result["hostile"]["lost"]
        or result["hostile"]["unreported"]
        or result["hostile"]["unexpected"]
    ):
        problems.append("hostile files")
    if "kill_loop" in result and not result["kill_loop"]["store_equals_clean_ingest"]:
        problems.append("kill loop")
    if "chroma_faults" in result and (
        result["chroma_faults"]["hung"]
        or result["chroma_faults"]["other_errors"]
        or result["chroma_faults"]["recovered"] < result["chroma_faults"]["cycles"]
    ):
        problems.append("chroma server faults")
    if "questions" in result and (
        result["questions"]["library_traceback"] or result["questions"]["cli_traceback"]
    ):
        problems.append("question fuzz")
    if "load" in result:
        import bench_load

        problems += bench_load.problems_of(result["load"])
    if "injection" in result and result["injection"]["summary"]["obeyed"]:
        problems.append("prompt injection")
    if problems:
        print("PROBLEMS: " + ", ".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
