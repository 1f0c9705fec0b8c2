"""Load tests of the real servers with Locust (headless), bounded for `make test`.

`rag api` and `rag serve` run in subprocesses over the seed article (extractive answers,
keyword embedder); 20 Locust users chat with each for a few seconds while a new article is
ingested (through /v1/ingest, and through the page's upload box). Checked: no request failed
(a 429 with the busy message and Retry-After is an answer, counted apart), answers carry
citations or are refusals, the ingest succeeded and its article is answerable afterwards, and
the server's memory does not grow with the questions. No timing is asserted.
benchmarks/bench_load.py runs the long versions (24 users for 60 s, 500 questions, the
bundled model) and prints the figures.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from .api_helpers import index_seed
from .load_helpers import (
    IngestDuring,
    LocustRun,
    Server,
    answerable_after,
    memory_run,
    new_article,
    run_locust,
    running_server,
)

# Not imported here: importing locust monkey-patches this process with gevent.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust not installed"),
]

USERS = 20
SECONDS = 12
LEAK_MB = 60
"""RSS allowed to grow between 50 and 250 questions (generous: a leak of ~1 MB a question
would show as 200 MB; measured growth is about 1 MB for the API, 10 MB for the page)."""


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_seed(tmp_path_factory.mktemp("load-seed") / "data")


def _copy(index: Path, tmp: Path) -> Path:
    target = tmp / "data"
    shutil.copytree(index, target)
    return target


def _check_run(run: LocustRun, server: Server) -> None:
    detail = f"{run.failures} {run.exceptions}\n{run.output_tail[-1500:]}"
    assert run.rows, f"Locust reported nothing:\n{run.output_tail}"
    assert run.errors == 0, detail
    assert run.exit_code == 0, detail
    assert run.counts.get("busy_429_unclear", 0) == 0  # every 429 said why and when to retry
    assert run.answered >= USERS, detail  # every user got answers
    assert run.counts.get("answers_with_citations", 0) > 0
    assert run.counts.get("answers_without_sources_panel", 0) == 0
    assert run.counts.get("ask_without_passages", 0) == 0
    assert "Traceback" not in server.log_text()


def _load_with_ingest(server: Server, user_class: str, tmp: Path) -> None:
    articles = [new_article(0), new_article(1)]
    during = IngestDuring(server, articles, [3.0, 7.0], tmp).start()
    run = run_locust(
        server.root, user_class, tmp / "locust", users=USERS, spawn_rate=USERS, seconds=SECONDS
    )
    ingests = during.join()
    _check_run(run, server)
    assert len(ingests) == 2 and all(i["ok"] for i in ingests), ingests
    after = answerable_after(server, articles)
    assert all(a["answered"] for a in after), after


def test_api_under_locust_while_ingesting_then_memory_flat(
    seed_index: Path, tmp_path: Path
) -> None:
    with running_server("api", _copy(seed_index, tmp_path), tmp_path) as server:
        _load_with_ingest(server, "ApiChatUser", tmp_path)
        memory = memory_run(server, 250, warmup=50, threads=4)
    assert memory["errors"] == 0, memory["error_examples"]
    assert memory["answered"] > 0 and memory["refused"] > 0
    assert memory["growth_after_warmup_mb"] < LEAK_MB, memory["samples"]


def test_page_under_locust_while_uploading_then_memory_flat(
    seed_index: Path, tmp_path: Path
) -> None:
    with running_server("page", _copy(seed_index, tmp_path), tmp_path) as server:
        _load_with_ingest(server, "PageChatUser", tmp_path)
        memory = memory_run(server, 250, warmup=50, threads=4)
    assert memory["errors"] == 0, memory["error_examples"]
    assert memory["answered"] > 0 and memory["refused"] > 0
    assert memory["growth_after_warmup_mb"] < LEAK_MB, memory["samples"]
