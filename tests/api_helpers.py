"""Starting a real `rag api` (and indexing the seed article for it) in tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conftest import SEED_ARTICLE, _free_port, stop_process, subprocess_env, wait_for_http

FAST = {"RAG_LLM": "extractive", "RAG_EMBEDDING_MODEL": "keyword"}


def index_seed(data_dir: Path, **env: str) -> Path:
    """`rag ingest` the seed article into ``data_dir`` (keyword embedder unless ``env`` says)."""
    run = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(SEED_ARTICLE), "--quiet"],
        env=subprocess_env(RAG_DATA_DIR=str(data_dir), **{**FAST, **env}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return data_dir


@dataclass
class ApiServer:
    """A running `rag api`: its base URL (``.../v1``), process and log file."""

    url: str
    root: str
    proc: subprocess.Popen[Any]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_api(
    data_dir: Path, log_dir: Path, timeout: float = 90, **env: str
) -> Iterator[ApiServer]:
    """`rag api` on a free 127.0.0.1 port over ``data_dir``, stopped afterwards."""
    port = _free_port()
    log = log_dir / f"rag-api-{port}.log"
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag", "api", "--port", str(port), "-v"],
            env=subprocess_env(RAG_DATA_DIR=str(data_dir), **{**FAST, **env}),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{root}/openapi.json", proc, timeout, "rag api")
        yield ApiServer(url=f"{root}/v1", root=root, proc=proc, log=log)
    finally:
        stop_process(proc)
