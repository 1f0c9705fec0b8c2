from __future__ import annotations

import os
import shutil
from pathlib import Path

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


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's RAG_* variables or rag.toml."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "no-such-rag.toml"))


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
