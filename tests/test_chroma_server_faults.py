"""Integration: a real `chroma run` stopped, killed or paused under a running app and a running
ingest, then started again on the same port and data.

The promises: while the server is gone every way in (library, `rag ask`, `rag ingest`, the HTTP
API) fails with one line naming the server URL and what to do, never a traceback or a hang; the
same chain object and the same API app answer again once the server is back, without a restart;
an ingest killed mid-way never leaves the manifest naming chunks the store lacks, and re-running
it gives exactly the store a clean ingest gives.

``chroma_faults`` is shared with ``benchmarks/reliability.py`` (more stop/start cycles).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.errors import StoreUnavailableError

from .conftest import ChromaServer, subprocess_env
from .test_reliability_kill import _length, _name, compare_states, store_state, write_corpus

pytestmark = pytest.mark.integration

ARTICLES = 12


def _question(i: int = 3) -> str:
    return f"How long is the {_name(i)} bridge?"


def _settings(root: Path, server: ChromaServer, **extra: Any) -> Settings:
    return Settings(
        data_dir=root / "data",
        chroma_url=server.url,
        embedding_model=extra.pop("embedding_model", "keyword"),
        llm="extractive",
        **extra,
    )


def _answers(out: dict[str, Any], i: int = 3) -> bool:
    return not out["refused"] and str(_length(i)) in out["answer"]


def _one_line_error(stderr: str, url: str, *needles: str) -> str:
    """The single `Error:` line of a CLI's stderr, checked to name ``url`` and ``needles``."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for needle in (url, *needles):
        assert needle in lines[0], lines[0]
    return lines[0]


def _rag(
    args: list[str], settings: Settings, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(
        RAG_CHROMA_URL=str(settings.chroma_url),
        RAG_DATA_DIR=str(settings.data_dir),
        RAG_EMBEDDING_MODEL=settings.embedding_model,
        RAG_LLM="extractive",
    )
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ingest_cmd(folder: Path, settings: Settings) -> subprocess.Popen[str]:
    env = subprocess_env(
        RAG_CHROMA_URL=str(settings.chroma_url),
        RAG_DATA_DIR=str(settings.data_dir),
        RAG_EMBEDDING_MODEL=settings.embedding_model,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "rag", "ingest", str(folder), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_unavailable(exc: BaseException, url: str) -> None:
    assert isinstance(exc, StoreUnavailableError), repr(exc)
    text = str(exc)
    assert url in text and "chroma run" in text and "\n" not in text, text


# --- 1. stopped between questions: library, CLI and API fail clearly, then recover -----------


def test_stopped_server_fails_clearly_and_the_same_process_recovers(
    tmp_path: Path, chroma_process: ChromaServer, request: pytest.FixtureRequest
) -> None:
    from fastapi.testclient import TestClient

    from rag.answer.chain import build_chain
    from rag.api.app import build_api_app
    from rag.ingestion.pipeline import ingest

    url = chroma_process.url
    folder = tmp_path / "articles"
    write_corpus(folder, list(range(ARTICLES)), {})
    settings = _settings(tmp_path, chroma_process)
    ingest([folder], settings)
    chain = build_chain(settings)
    # one event loop for the whole test, as in a real server (a TestClient outside `with`
    # closes each request's loop while the answer thread may still be finishing)
    api = TestClient(build_api_app(settings))
    api.__enter__()
    request.addfinalizer(lambda: api.__exit__(None, None, None))
    payload = {"input": _question(), "chat_history": []}
    assert _answers(chain.invoke(payload))
    assert api.post("/v1/ask", json={"question": _question()}).status_code == 200

    for sig in (signal.SIGKILL, signal.SIGTERM):
        chroma_process.stop(sig)
        # the library: invoke and stream
        with pytest.raises(StoreUnavailableError) as info:
            chain.invoke(payload)
        _check_unavailable(info.value, url)
        with pytest.raises(StoreUnavailableError):
            list(chain.stream(payload))
        # the HTTP API: 503 with a JSON error, the same app object throughout
        reply = api.post("/v1/ask", json={"question": _question()})
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == "store_unavailable" and url in error["message"], error
        assert "chroma run" in error["message"] and "Traceback" not in reply.text
        chat = {"model": "rag", "messages": [{"role": "user", "content": _question()}]}
        reply = api.post("/v1/chat/completions", json={**chat, "stream": True})
        assert reply.status_code == 503, reply.text  # before the first event of the stream
        assert reply.json()["error"]["code"] == "store_unavailable"
        upload = {"files": ("new.txt", b"Quay report\n\nThe Quay is 5 m long.", "text/plain")}
        reply = api.post("/v1/ingest", files=upload)
        assert reply.status_code == 503 and url in reply.json()["error"]["message"], reply.text
        if sig == signal.SIGKILL:  # the CLI: one `Error:` line, exit 1 (a new process each time)
            asked = _rag(["ask", _question()], settings)
            assert asked.returncode == 1
            _one_line_error(asked.stderr, url, "not answering", "chroma run")
            ingested = _rag(["ingest", str(folder), "-q"], settings)
            assert ingested.returncode == 1
            _one_line_error(ingested.stderr, url, "rag ingest")
        chroma_process.start()
        assert _answers(chain.invoke(payload)), "the same chain answers again"
        reply = api.post("/v1/ask", json={"question": _question()})
        assert reply.status_code == 200 and str(_length(3)) in reply.json()["answer"]
        assert api.post("/v1/ingest", files=upload).status_code == 200

    asked = _rag(["ask", _question()], settings)
    assert asked.returncode == 0 and str(_length(3)) in asked.stdout, asked.stderr


def test_bundled_embedder_against_a_restarted_server(
    tmp_path: Path, chroma_process: ChromaServer, corpus_dir: Path
) -> None:
    from rag.answer.chain import build_chain
    from rag.ingestion.pipeline import ingest

    settings = _settings(tmp_path, chroma_process, embedding_model="bundled")
    ingest([corpus_dir], settings)
    chain = build_chain(settings)
    payload = {"input": "How many KFOR troops are there?", "chat_history": []}
    assert "3,700" in chain.invoke(payload)["answer"]
    chroma_process.stop(signal.SIGKILL)
    with pytest.raises(StoreUnavailableError) as info:
        chain.invoke(payload)
    _check_unavailable(info.value, chroma_process.url)
    chroma_process.start()
    assert "3,700" in chain.invoke(payload)["answer"]


# --- 2. killed mid-ingest: clear exit, consistent manifest, re-run equals a clean ingest ----


def test_server_killed_mid_ingest_then_rerun_equals_a_clean_ingest(
    tmp_path: Path, chroma_process: ChromaServer
) -> None:
    import chromadb

    from rag.ingestion.pipeline import ingest

    articles = 1800
    folder = tmp_path / "articles"
    write_corpus(folder, list(range(articles)), {})
    settings = _settings(tmp_path, chroma_process)
    proc = _ingest_cmd(folder, settings)
    probe = chromadb.HttpClient(
        host="127.0.0.1",
        port=chroma_process.port,
        settings=chromadb.Settings(anonymized_telemetry=False),
    )
    committed = 0
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        try:  # the manifest collection: articles committed so far
            committed = probe.get_collection(f"{settings.collection}-articles").count()
        except Exception:  # not created yet
            committed = 0
        if committed:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before the server was killed"
    assert committed, "no group was committed in time"
    chroma_process.stop(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    _one_line_error(stderr, chroma_process.url, "Ingest stopped", "rag ingest")

    chroma_process.start()
    partial = store_state(settings.data_dir, "keyword", chroma_url=chroma_process.url)
    assert 0 < len(partial["manifest"]) < articles
    assert partial["missing"] == [] and partial["duplicates"] == 0, "manifest ran ahead"

    rerun = _ingest_cmd(folder, settings)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    clean_settings = Settings(data_dir=tmp_path / "clean", embedding_model="keyword")
    ingest([folder], clean_settings)
    got = store_state(settings.data_dir, "keyword", chroma_url=chroma_process.url)
    want = store_state(clean_settings.data_dir, "keyword")
    assert len(want["manifest"]) == articles
    assert compare_states(got, want) == []


# --- 3. killed or paused while a question is in flight: an answer or the error, no hang ----


def _ask_in_thread(chain: Any, payload: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["out"] = chain.invoke(payload)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_server_killed_between_retrieval_steps(
    tmp_path: Path, chroma_process: ChromaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: the question has its snapshot and dense hits when the server dies."""
    from rag.answer.chain import build_chain
    from rag.index.snapshot import Index
    from rag.ingestion.pipeline import ingest
    from rag.retrieve.hybrid import build_retriever

    folder = tmp_path / "articles"
    write_corpus(folder, list(range(ARTICLES)), {})
    settings = _settings(tmp_path, chroma_process)
    ingest([folder], settings)
    index = Index(settings)
    chain = build_chain(settings, retriever=build_retriever(settings, index=index))
    payload = {"input": _question(), "chat_history": []}
    reached, go = threading.Event(), threading.Event()
    real = index.store.get_chunks

    def paused(ids: Any) -> Any:
        reached.set()
        go.wait(60)
        return real(ids)

    monkeypatch.setattr(index.store, "get_chunks", paused)
    thread, outcome = _ask_in_thread(chain, payload)
    assert reached.wait(60), "retrieval never reached the passage fetch"
    chroma_process.stop(signal.SIGKILL)
    go.set()
    thread.join(60)
    assert not thread.is_alive(), "the question hung"
    _check_unavailable(outcome.get("error"), chroma_process.url)

    monkeypatch.setattr(index.store, "get_chunks", real)
    chroma_process.start()
    assert _answers(chain.invoke(payload))


def chroma_faults(
    root: Path,
    server: ChromaServer,
    *,
    cycles: int,
    asks_per_phase: int = 3,
    embedding_model: str = "keyword",
    signals: tuple[int, ...] = (signal.SIGKILL, signal.SIGTERM),
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Questions asked back to back by a thread while ``server`` is stopped and started again
    ``cycles`` times under it (one chain object throughout). Returns the counts: answers,
    clear errors (:class:`StoreUnavailableError`), anything else, and whether every cycle ended
    with the same chain answering again. Never hangs: every wait has a deadline.
    """
    from rag.answer.chain import build_chain
    from rag.ingestion.pipeline import ingest

    folder = root / "articles"
    write_corpus(folder, list(range(ARTICLES)), {})
    settings = _settings(root, server, embedding_model=embedding_model)
    ingest([folder], settings)
    chain = build_chain(settings)
    counts = {"answered": 0, "right": 0, "clear_errors": 0, "other_errors": 0}
    other: list[str] = []
    lock = threading.Lock()
    changed = threading.Condition(lock)
    stop = threading.Event()
    latencies: list[float] = []

    def asker() -> None:
        i = 0
        while not stop.is_set():
            i = (i + 1) % ARTICLES
            started = time.perf_counter()
            try:
                out = chain.invoke({"input": _question(i), "chat_history": []})
                key, right = "answered", _answers(out, i)
            except StoreUnavailableError as exc:
                key, right = "clear_errors", False
                if server.url not in str(exc):
                    other.append(f"error without the URL: {exc}")
                time.sleep(0.05)  # ask again soon, not in a tight loop
            except Exception as exc:
                key, right = "other_errors", False
                other.append(f"{type(exc).__name__}: {exc}")
            with changed:
                counts[key] += 1
                counts["right"] += right
                latencies.append(time.perf_counter() - started)
                changed.notify_all()

    def wait_for(key: str, more: int, timeout: float = 120) -> bool:
        with changed:
            target = counts[key] + more
            return changed.wait_for(lambda: counts[key] >= target, timeout)

    thread = threading.Thread(target=asker, daemon=True, name="chroma-faults-asker")
    thread.start()
    recovered = 0
    hung = False
    try:
        for cycle in range(cycles):
            if not wait_for("answered", asks_per_phase):
                hung = True
                break
            sig = signals[cycle % len(signals)]
            server.stop(sig)
            if not wait_for("clear_errors", asks_per_phase):
                hung = True
                break
            server.start()
            if not wait_for("answered", asks_per_phase):
                hung = True
                break
            recovered += 1
            log(f"cycle {cycle + 1}: stopped with {signal.Signals(sig).name}, recovered")
    finally:
        stop.set()
        thread.join(120)
    return {
        "cycles": cycles,
        "recovered": recovered,
        "hung": hung or thread.is_alive(),
        **counts,
        "other": other[:10],
        "max_question_s": round(max(latencies, default=0.0), 2),
    }


def test_questions_in_flight_while_the_server_stops_and_starts(
    tmp_path: Path, chroma_process: ChromaServer
) -> None:
    result = chroma_faults(tmp_path, chroma_process, cycles=2)
    assert not result["hung"], result
    assert result["other_errors"] == 0 and result["other"] == [], result
    assert result["recovered"] == 2 and result["clear_errors"] >= 6, result
    assert result["right"] == result["answered"], result


def test_paused_server_times_out_instead_of_hanging(
    tmp_path: Path, chroma_process: ChromaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.chroma_client as client_module
    from rag.answer.chain import build_chain
    from rag.ingestion.pipeline import ingest

    from .test_reliability_kill import fresh_clients

    folder = tmp_path / "articles"
    write_corpus(folder, list(range(ARTICLES)), {})
    settings = _settings(tmp_path, chroma_process)
    ingest([folder], settings)
    monkeypatch.setattr(client_module, "SERVER_TIMEOUT", 2.0)
    monkeypatch.setattr(client_module, "_CONNECT_TIMEOUT", 2.0)
    fresh_clients()  # the next client gets the short timeout
    chain = build_chain(settings)
    payload = {"input": _question(), "chat_history": []}
    assert _answers(chain.invoke(payload))
    chroma_process.signal(signal.SIGSTOP)
    try:
        thread, outcome = _ask_in_thread(chain, payload)
        thread.join(60)
        assert not thread.is_alive(), "the question hung on a paused server"
        _check_unavailable(outcome.get("error"), chroma_process.url)
    finally:
        chroma_process.signal(signal.SIGCONT)
    assert _answers(chain.invoke(payload))
