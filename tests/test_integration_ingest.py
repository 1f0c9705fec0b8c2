"""Integration: the real bundled embedder, real Chroma (embedded and `chroma run`), the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.snapshot import Index
from rag.index.store import open_store
from rag.ingestion.pipeline import ingest

from .conftest import REPO, subprocess_env

pytestmark = pytest.mark.integration


def test_bundled_embedder_ingest_and_dense_search(settings: Settings, corpus_dir: Path) -> None:
    from rag.models.embedder import load_embedder

    report = ingest([corpus_dir], settings)
    assert len(report.added) == 1 and report.chunks_added >= 3
    embedder = load_embedder(settings)
    hits = open_store(settings).query(embedder.embed_query("How many KFOR troops are there?"), 3)
    snap = Index(settings).snapshot()
    top = next(text for cid, text, _ in open_store(settings).iter_chunks([hits[0][0]]))
    assert snap.is_live(hits[0][0]) and "3,700 troops" in top


def test_chroma_server_same_behaviour_and_shared_by_processes(
    tmp_path: Path, corpus_dir: Path, chroma_server: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server)
    first = ingest([corpus_dir], settings)
    assert len(first.added) == 1
    second = ingest([corpus_dir], settings)
    assert second.unchanged == first.added and not second.changed
    # a second process with its own data dir sees the same index through the server
    out = subprocess.run(
        [sys.executable, "-m", "rag", "info", "--json"],
        env=subprocess_env(
            RAG_CHROMA_URL=chroma_server, RAG_DATA_DIR=str(tmp_path / "other"), RAG_LLM="extractive"
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info["index"]["articles"] == 1 and info["index"]["chunks"] == first.chunks_total
    assert info["index"]["location"] == chroma_server


def test_cli_ingest_info_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = subprocess_env(RAG_LLM="extractive")
    missing = subprocess.run(
        [sys.executable, "-m", "rag", "info", "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "rag ingest" in missing.stdout + missing.stderr

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag",
            "ingest",
            str(REPO / "corpus"),
            "--data-dir",
            str(data),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(done.stdout)["added"] == 1
    again = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(REPO / "corpus"), "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "Nothing changed" in again.stdout

    info = subprocess.run(
        [sys.executable, "-m", "rag", "info", "--json", "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert info.returncode == 0, info.stdout + info.stderr
    assert json.loads(info.stdout)["index"]["articles"] == 1

    bad = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(tmp_path / "nope"), "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr

    bad_setting = subprocess.run(
        [sys.executable, "-m", "rag", "info", "--data-dir", str(data)],
        env={**env, "RAG_CHUNK_OVERLAP": "5000"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        bad_setting.returncode == 1
        and "chunk_overlap" in bad_setting.stderr
        and "Traceback" not in bad_setting.stderr
    )


def test_ask_kfor_with_extractive_backend(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = subprocess_env(RAG_LLM="extractive", RAG_DATA_DIR=str(data))
    subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(REPO / "corpus"), "-q"],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    out = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "How many KFOR troops are there?", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    answer = json.loads(out.stdout)
    assert "3,700" in answer["answer"] and not answer["refused"]
    assert "3,700 troops" in answer["citations"][0]["passage"]


def test_query_widths_are_bucketed_without_changing_embeddings(settings: Settings) -> None:
    """Queries pad to a multiple of 16 tokens (bounded OpenVINO shape caches); same vectors."""
    import numpy as np

    from rag.models.embedder import load_embedder

    embedder = load_embedder(settings)
    runner = embedder.runner
    if not hasattr(runner, "_batches"):
        pytest.skip("torch backend: no exported runner")
    query = "How many KFOR troops are there in the north of Kosovo this week?"
    ((_, feed),) = runner._batches([query], 16)
    assert feed["input_ids"].shape[1] % 16 == 0
    assert feed["attention_mask"].sum() < feed["input_ids"].shape[1]  # padded
    alone = np.asarray(embedder.embed_query(query))
    in_batch = embedder.encode(
        [query, "A much longer companion text that sets the batch width. " * 3]
    )[0]
    assert float(alone @ in_batch) > 0.9999
