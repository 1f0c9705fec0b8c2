"""Run every benchmark in turn (each in its own process), then print where the results are.

Usage:
    python benchmarks/run_all.py            # full runs (~1 hour on 2 busy cores)
    python benchmarks/run_all.py --quick    # a fast subset (~10 minutes)
    python benchmarks/run_all.py --only bench_retrieval,bench_ingest

Each script prints its own table and writes benchmarks/results/<name>.json. Nothing here
asserts a time: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Ordered cheap -> expensive; llm_speed.py is maintained separately and run only on request.
SCRIPTS = [
    "bench_retrieval",
    "bench_ingest",
    "bench_embed",
    "bench_answer",
    "bench_memory",
    "reliability",
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of: " + ", ".join([*SCRIPTS, "llm_speed"]),
    )
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or SCRIPTS
    failed: list[str] = []
    for name in chosen:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: no such script", flush=True)
            failed.append(name)
            continue
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"\n== {name} ({' '.join(cmd[1:])})", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd, cwd=HERE.parent)
        print(f"== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code:
            failed.append(name)
    print(f"\nresults in {HERE / 'results'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
