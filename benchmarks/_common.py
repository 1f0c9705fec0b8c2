"""Shared helpers for the benchmark scripts: machine description, tables, JSON results, data."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REALTIMEQA = ROOT.parent / "shared" / "datasets" / "realtimeqa-dev"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def machine() -> dict[str, Any]:
    """Cores, CPU model, the SIMD flags that matter here, and the load when the run started."""
    from rag.hardware import cpu_flags, physical_cores

    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = cpu_flags()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "flags": {
            f: f in flags
            for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
        },
        "load_average_1_5_15": load,
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def machine_line(info: dict[str, Any]) -> str:
    flags = " ".join(f"{k}={'y' if v else 'n'}" for k, v in info["flags"].items())
    return (
        f"Machine: {info['cpu']}, {info['physical_cores']} physical / "
        f"{info['logical_cores']} logical cores; "
        f"{flags}; load average {info['load_average_1_5_15']} "
        "(a shared machine: compare runs at similar load)"
    )


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb(pid: int | None = None) -> float:
    """Current resident set size of a process (MB), from /proc."""
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of the given columns."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.5f}" if abs(value) < 1 and value != 0 else f"{value:.1f}"
        return "" if value is None else str(value)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
        for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def save(name: str, payload: dict[str, Any], *, quick: bool = False) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``<name>_quick.json`` for --quick runs, so a
    quick check never overwrites the full figures) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'_quick' if quick else ''}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def realtimeqa_chunks(limit: int | None = None, stride: int = 1) -> list[str]:
    """The texts ingest would embed for realtimeqa-dev (title + chunk), read in place."""
    from rag.config import Settings
    from rag.index.schema import embedding_text
    from rag.ingestion.chunk import split_article
    from rag.ingestion.load import Article, iter_articles

    s = Settings()
    corpus = REALTIMEQA / "corpus.jsonl"
    if not corpus.exists():
        raise SystemExit(f"{corpus} is missing: these benchmarks read realtimeqa-dev in place.")
    texts = [
        embedding_text(a.title, c.text)
        for a in iter_articles([corpus], max_bytes=1 << 30)
        if isinstance(a, Article)
        for c in split_article(a, chunk_size=s.chunk_size, chunk_overlap=s.chunk_overlap)
    ]
    texts = texts[::stride]
    return texts[:limit] if limit else texts


class Timer:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
