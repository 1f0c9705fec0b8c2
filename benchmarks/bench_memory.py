"""Memory of the chat app: RSS of ``rag serve`` after load and after 20 questions.

Starts ``python -m rag serve --port <free>`` on a temporary index of corpus/ (the app builds
its chain at start-up; llama.cpp maps the bundled model on the first question), waits until its
RSS settles, then asks 20 questions through the
Gradio HTTP API (gradio_client, the ``respond`` endpoint) and reads VmRSS / VmHWM (peak) from
/proc. If the server or its API can't be used, it falls back to an in-process measurement
(build the chain with the bundled LLM, answer the same questions) and says so.

Usage:
    python benchmarks/bench_memory.py            # 20 questions -> results/bench_memory.json
    python benchmarks/bench_memory.py --quick    # 5 questions
    python benchmarks/bench_memory.py --in-process
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from datetime import date
from pathlib import Path
from typing import Any

from _common import ROOT, current_rss_mb, machine, machine_line, save, table

warnings.filterwarnings("ignore")

QUESTIONS = [
    "How many KFOR troops are there?",
    "What did Stoltenberg say KFOR is ready to do?",
    "Which documents did Kosovo plan to ban?",
    "Who did Stoltenberg meet in Brussels?",
    "How many allied countries contribute troops to KFOR?",
    "What is KFOR?",
    "Where is KFOR deployed?",
    "What did NATO say about the tensions in northern Kosovo?",
    "Who is the NATO Secretary General?",
    "What is the weather in Paris today?",
]


def _status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def _tree_rss(pid: int) -> float:
    """RSS of a process and its children (MB)."""
    total = _status(pid).get("VmRSS", 0.0)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(_tree_rss(int(c)) for c in children)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settle(pid: int, timeout: float = 300.0, quiet_s: float = 8.0) -> float:
    """Wait until the process's RSS stops growing (models loaded); seconds waited."""
    start = last_change = time.time()
    last = 0.0
    while time.time() - start < timeout:
        rss = _status(pid).get("VmRSS", 0.0)
        if abs(rss - last) > 2.0:
            last, last_change = rss, time.time()
        elif time.time() - last_change > quiet_s:
            break
        time.sleep(1.0)
    return time.time() - start


def measure_serve(data_dir: Path, questions: list[str]) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    log = open(data_dir.parent / "serve.log", "w", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.time()
        while time.time() - t0 < 180:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"rag serve exited with {proc.returncode}: "
                    f"{(data_dir.parent / 'serve.log').read_text()[-500:]}"
                )
            try:
                urllib.request.urlopen(url, timeout=2).read(100)
                break
            except OSError:
                time.sleep(1.0)
        up_s = time.time() - t0
        settled_s = _settle(proc.pid)
        after_load = _status(proc.pid)
        print(
            f"serve up in {up_s:.1f} s, settled after {settled_s:.1f} s more: "
            f"RSS {after_load.get('VmRSS', 0):.0f} MB",
            flush=True,
        )

        from gradio_client import Client

        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)
        names = list(api.get("named_endpoints", {}))
        endpoint = next((n for n in names if "respond" in n), None)
        if endpoint is None:
            raise RuntimeError(f"no respond endpoint in the Gradio API: {names}")
        params = api["named_endpoints"][endpoint].get("parameters", [])
        samples: list[dict[str, Any]] = []
        for i, q in enumerate(questions):
            args: list[Any] = [q] + [[] for _ in params[1:]]
            t = time.time()
            client.predict(*args, api_name=endpoint)
            st = _status(proc.pid)
            samples.append(
                {
                    "question": i + 1,
                    "seconds": round(time.time() - t, 2),
                    "rss_mb": round(st.get("VmRSS", 0)),
                }
            )
            print(
                f"  q{i + 1:02d} {time.time() - t:6.1f} s  RSS {st.get('VmRSS', 0):.0f} MB",
                flush=True,
            )
        after = _status(proc.pid)
        return {
            "mode": "rag serve (Gradio HTTP API)",
            "endpoint": endpoint,
            "startup_s": round(up_s + settled_s, 1),
            "rss_after_load_mb": round(after_load.get("VmRSS", 0)),
            # The app builds the chain at start-up but llama.cpp maps the model on first use.
            "rss_after_first_question_mb": samples[0]["rss_mb"] if samples else None,
            "rss_after_questions_mb": round(after.get("VmRSS", 0)),
            "peak_rss_mb": round(after.get("VmHWM", 0)),
            "tree_rss_after_questions_mb": round(_tree_rss(proc.pid)),
            "samples": samples,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def measure_in_process(data_dir: Path, questions: list[str]) -> dict[str, Any]:
    from rag.answer.chain import build_chain
    from rag.config import Settings

    t0 = time.time()
    chain = build_chain(Settings(data_dir=data_dir, llm="bundled"))
    chain.invoke({"input": "What is KFOR?", "today": date.today().isoformat()})  # loads the LLM
    after_load = _status(os.getpid())
    samples = []
    for i, q in enumerate(questions):
        t = time.time()
        chain.invoke({"input": q, "today": date.today().isoformat()})
        samples.append(
            {
                "question": i + 1,
                "seconds": round(time.time() - t, 2),
                "rss_mb": round(current_rss_mb()),
            }
        )
        print(f"  q{i + 1:02d} {time.time() - t:6.1f} s  RSS {current_rss_mb():.0f} MB", flush=True)
    after = _status(os.getpid())
    return {
        "mode": "in-process chain (bundled LLM), one warm-up question before 'after load'",
        "startup_s": round(time.time() - t0 - sum(s["seconds"] for s in samples), 1),
        "rss_after_load_mb": round(after_load.get("VmRSS", 0)),
        "rss_after_first_question_mb": samples[0]["rss_mb"] if samples else None,
        "rss_after_questions_mb": round(after.get("VmRSS", 0)),
        "peak_rss_mb": round(after.get("VmHWM", 0)),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 questions")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="skip rag serve; measure the chain in this process",
    )
    args = parser.parse_args()
    n = 5 if args.quick else args.questions
    info = machine()
    print(machine_line(info), flush=True)
    qs = [
        QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else " Please be brief.")
        for i in range(n)
    ]

    data_dir = Path(tempfile.mkdtemp(prefix="bench-memory-")) / "data"
    # Build the index in a child process so this process stays small and unrelated to serve.
    build = (
        "import sys; from pathlib import Path; from rag.ingestion import ingest; "
        "from rag.config import Settings; "
        "print(ingest([Path('corpus')], Settings(data_dir=Path(sys.argv[1]))).summary())"
    )
    subprocess.run([sys.executable, "-c", build, str(data_dir)], check=True, cwd=ROOT)
    result: dict[str, Any] = {"machine": info, "questions": len(qs)}
    if not args.in_process:
        try:
            result.update(measure_serve(data_dir, qs))
        except Exception as exc:
            print(
                f"rag serve measurement failed ({type(exc).__name__}: {exc}); "
                "measuring in-process instead",
                flush=True,
            )
            result["serve_error"] = f"{type(exc).__name__}: {exc}"
            args.in_process = True
    if args.in_process:
        result.update(measure_in_process(data_dir, qs))
    print()
    print(
        table(
            [result],
            [
                "mode",
                "startup_s",
                "rss_after_load_mb",
                "rss_after_first_question_mb",
                "rss_after_questions_mb",
                "peak_rss_mb",
            ],
        )
    )
    path = save("bench_memory", result, quick=args.quick)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
