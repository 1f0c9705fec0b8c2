from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.testing import KeywordEmbedder

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
SEED_ARTICLE = CORPUS / "nato-kosovo-kfor.txt"
SHARED = REPO.parent / "shared"
REALTIMEQA = SHARED / "datasets" / "realtimeqa-dev"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


# The session's embedding cache (see `_embedding_cache`): the one RAG_* variable tests keep.
EMBEDDING_CACHE_ENV = "RAG_EMBEDDING_CACHE_DIR"


@pytest.fixture(scope="session", autouse=True)
def _embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported embedding models go to a session tmp dir, never to ~/.cache.

    Session-scoped because the one-off ONNX export of the bundled embedder (torch.onnx.export
    plus an agreement check against torch) takes seconds; every test and every `rag`
    subprocess of the session (see `subprocess_env`) shares the one export.
    """
    cache = tmp_path_factory.mktemp("embedding-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(EMBEDDING_CACHE_ENV, str(cache))
        yield cache


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's RAG_* variables or rag.toml."""
    for key in list(os.environ):
        if key.startswith("RAG_") and key != EMBEDDING_CACHE_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "no-such-rag.toml"))


LLM_GUARD_MESSAGE = (
    "this test is not marked llm but tried to load the bundled LLM; mark it "
    "@pytest.mark.llm or use llm='extractive' / build_chain(..., llm=<fake>)"
)


def _refuse_bundled_llm(*_args: Any, **_kwargs: Any) -> Any:
    # pytest.fail raises a BaseException, so no `except Exception` in the library swallows it
    pytest.fail(LLM_GUARD_MESSAGE, pytrace=False)


@pytest.fixture(autouse=True)
def _guard_bundled_llm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only tests marked `llm` may assemble or load the real bundled model (1.1 GB, slow).

    Patched where the names are looked up: `rag.models.llms` (the bundled backend's loader),
    `rag.models.bundled` (call-time imports, e.g. `rag llm-server`), and `load_llama` in
    `rag.models.chat_llamacpp` / `rag.models.llamacpp` for the bundled GGUF file. Fakes
    (another `BundledModel`, another GGUF path) still go through.
    """
    if request.node.get_closest_marker("llm") is not None:
        return
    from rag.models import bundled, chat_llamacpp, llamacpp, llms

    real_model_path = bundled.bundled_model_path
    real_load = llamacpp.load_llama

    def model_path(settings: Settings, model: Any = bundled.BUNDLED_MODEL) -> Path:
        if model is bundled.BUNDLED_MODEL:
            _refuse_bundled_llm()
        return real_model_path(settings, model)

    def load_llama(key: tuple[Any, ...], params: dict[str, Any]) -> Any:
        if Path(str(params.get("model_path", ""))).name == bundled.BUNDLED_MODEL.file_name:
            _refuse_bundled_llm()
        return real_load(key, params)

    monkeypatch.setattr(llms, "bundled_model_path", _refuse_bundled_llm)
    monkeypatch.setattr(bundled, "bundled_model_path", model_path)
    monkeypatch.setattr(chat_llamacpp, "load_llama", load_llama)
    monkeypatch.setattr(llamacpp, "load_llama", load_llama)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def fake_embedder() -> KeywordEmbedder:
    return KeywordEmbedder()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled corpus that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def realtimeqa() -> Path:
    if not (REALTIMEQA / "corpus.jsonl").exists():
        pytest.skip("../shared/datasets/realtimeqa-dev is not present")
    return REALTIMEQA


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a `rag` subprocess: none of the caller's RAG_* variables (but the
    session's embedding cache), no rag.toml."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    if EMBEDDING_CACHE_ENV in os.environ:  # the session's embedding cache (`_embedding_cache`)
        env[EMBEDDING_CACHE_ENV] = os.environ[EMBEDDING_CACHE_ENV]
    env.update(HF_HUB_OFFLINE="1", RAG_CONFIG="/nonexistent/rag.toml", **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """A real `chroma run` on one 127.0.0.1 port and data path that a test may stop (SIGTERM,
    SIGKILL), pause (SIGSTOP) and start again: the same URL, the same data."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.chroma = Path(sys.executable).with_name("chroma")
        self.path = path
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:  # the port may still be held for a moment after a kill
            self.proc = subprocess.Popen(
                [
                    str(self.chroma),
                    "run",
                    "--path",
                    str(self.path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2):
                        return
                except OSError:
                    time.sleep(0.2)
            if time.monotonic() >= deadline:
                self.stop(signal.SIGKILL)
                pytest.fail("chroma run did not start")
            time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server with ``sig`` and wait until it is gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if sig != signal.SIGKILL:
                self.proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None

    def signal(self, sig: int) -> None:
        """Send ``sig`` (e.g. SIGSTOP / SIGCONT) without waiting."""
        assert self.proc is not None
        self.proc.send_signal(sig)


@pytest.fixture
def chroma_process(tmp_path: Path) -> Iterator[ChromaServer]:
    """A started :class:`ChromaServer` (stop and start it at will), stopped after the test."""
    server = ChromaServer(tmp_path / "server-db")
    if not server.chroma.exists():
        pytest.skip("the chroma CLI is not installed")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chroma_server(chroma_process: ChromaServer) -> str:
    """A real `chroma run` on a free 127.0.0.1 port (its URL), stopped after the test."""
    return chroma_process.url


def wait_for_http(url: str, proc: subprocess.Popen[Any], timeout: float, what: str) -> bytes:
    """The body of ``url`` once the server ``proc`` answers it (fails if ``proc`` exits first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bytes(reply.read())
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"{what} did not start")
            time.sleep(0.3)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
