"""`rag api` under load: N concurrent clients, a fixed number of chat completions each level.

Starts its own `rag api` (extractive answers, so the numbers measure the server, retrieval and
citation verification rather than a language model) over an index of corpus/ in a temporary
data dir, then for each client count sends the requests as fast as the clients can, plain and
streamed. Reports throughput (answers/s), p50/p95 latency of the answered requests (for
streams, also the time to the first byte), and how many were told to retry (429) — with
RAG_CONCURRENCY=2 (the default) and a short queue, the server sheds load instead of
collapsing. Nothing is asserted: the numbers depend on the machine and its load.
Results: benchmarks/results/bench_api.json (bench_api_keyword.json with --embedder keyword).

Usage:
    python benchmarks/bench_api.py                 # clients 1, 4, 16, 32; 60 requests each
    python benchmarks/bench_api.py --quick         # clients 1, 8; 40 requests each
    python benchmarks/bench_api.py --embedder keyword --concurrency 4
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, current_rss_mb, machine, machine_line, save, table

QUESTIONS = [
    "How many KFOR troops are there?",
    "What did Stoltenberg say KFOR is ready to do?",
    "Which documents did Kosovo plan to ban?",
    "Who did Stoltenberg meet in Brussels?",
    "What is the capital of Peru?",  # a refusal: retrieval and the evidence gate, no answer
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path, embedder: str, concurrency: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_DATA_DIR=str(data_dir),
        RAG_LLM="extractive",
        RAG_EMBEDDING_MODEL=embedder,
        RAG_CONCURRENCY=str(concurrency),
        RAG_CONFIG="/nonexistent/rag.toml",
        HF_HUB_OFFLINE="1",
    )
    return env


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _one(client: httpx.Client, url: str, question: str, stream: bool) -> dict[str, Any]:
    body = {"model": "rag", "messages": [{"role": "user", "content": question}], "stream": stream}
    started = time.perf_counter()
    first: float | None = None
    if stream:
        with client.stream("POST", url, json=body) as reply:
            for _ in reply.iter_bytes():
                if first is None:
                    first = time.perf_counter() - started
            status = reply.status_code
    else:
        reply = client.post(url, json=body)
        status = reply.status_code
    return {"status": status, "seconds": time.perf_counter() - started, "first_byte": first}


def run_level(base: str, clients: int, requests: int, stream: bool) -> dict[str, Any]:
    """``requests`` completions spread over ``clients`` threads (one connection each)."""
    url = f"{base}/v1/chat/completions"
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]

    def worker(i: int) -> list[dict[str, Any]]:
        out = []
        with httpx.Client(timeout=120) as client:
            for j in range(per_client[i]):
                out.append(_one(client, url, QUESTIONS[(i + j) % len(QUESTIONS)], stream))
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = [r for batch in pool.map(worker, range(clients)) for r in batch]
    wall = time.perf_counter() - started
    ok = [r["seconds"] for r in results if r["status"] == 200]
    firsts = [r["first_byte"] for r in results if r["status"] == 200 and r["first_byte"]]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    p50, p95 = _percentile(ok, 0.5), _percentile(ok, 0.95)
    return {
        "mode": "stream" if stream else "plain",
        "clients": clients,
        "requests": len(results),
        "answered": len(ok),
        "retry_429": statuses.get("429", 0),
        "other_errors": len(results) - len(ok) - statuses.get("429", 0),
        "statuses": statuses,
        "wall_s": round(wall, 3),
        "answers_per_s": round(len(ok) / wall, 2) if wall else None,
        "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
        "mean_ms": round(statistics.fmean(ok) * 1000, 1) if ok else None,
        "first_byte_p50_ms": round(_percentile(firsts, 0.5) * 1000, 1) if firsts else None,  # type: ignore[operator]
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="clients 1, 8; 40 requests each")
    parser.add_argument("--clients", default="1,4,16,32", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=60, help="requests per level")
    parser.add_argument("--embedder", default="bundled", help="bundled (default) or keyword")
    parser.add_argument("--concurrency", type=int, default=2, help="RAG_CONCURRENCY of the server")
    args = parser.parse_args()
    levels = [1, 8] if args.quick else [int(c) for c in args.clients.split(",") if c.strip()]
    requests = 40 if args.quick else args.requests

    info = machine()
    print(machine_line(info), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data = Path(tmp) / "data"
        env = _env(data, args.embedder, args.concurrency)
        subprocess.run(
            [sys.executable, "-m", "rag", "ingest", str(ROOT / "corpus"), "--quiet"],
            env=env,
            check=True,
            capture_output=True,
        )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "rag", "api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    urllib.request.urlopen(f"{base}/openapi.json", timeout=2).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"rag api did not start: {server.stderr}") from None
                    time.sleep(0.3)
            run_level(base, 1, 5, stream=False)  # warm-up: the chain and models load
            rows = []
            for clients in levels:
                for stream in (False, True):
                    row = run_level(base, clients, requests, stream)
                    rows.append(row)
                    print(
                        f"  {row['mode']:6} clients={clients:3}: {row['answers_per_s']} answers/s, "
                        f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, "
                        f"429: {row['retry_429']}, other errors: {row['other_errors']}",
                        flush=True,
                    )
            server_rss = current_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print()
    print(
        table(
            rows,
            [
                "mode",
                "clients",
                "requests",
                "answered",
                "retry_429",
                "other_errors",
                "answers_per_s",
                "p50_ms",
                "p95_ms",
                "first_byte_p50_ms",
            ],
        )
    )
    print(f"\nServer RSS at the end: {server_rss:.0f} MB")
    path = save(
        "bench_api" if args.embedder == "bundled" else f"bench_api_{args.embedder}",
        {
            "machine": info,
            "settings": {
                "llm": "extractive",
                "embedder": args.embedder,
                "concurrency": args.concurrency,
                "requests_per_level": requests,
                "questions": QUESTIONS,
            },
            "server_rss_mb": round(server_rss, 1),
            "levels": rows,
        },
        quick=args.quick,
    )
    print(f"Saved {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
