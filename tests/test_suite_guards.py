"""The suite's own guards (tests/conftest.py): no stray bundled-LLM loads, no ~/.cache writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.answer.chain import build_chain
from rag.config import Settings
from rag.errors import ModelError
from rag.models import bundled, chat_llamacpp, llamacpp, llms
from rag.models.chat_llamacpp import LlamaCppChatModel
from rag.models.export import embedding_cache_dir
from rag.testing import StaticRetriever

from .conftest import EMBEDDING_CACHE_ENV, LLM_GUARD_MESSAGE, subprocess_env

GUARD = "not marked llm but tried to load the bundled LLM"


def _pretend_llama_cpp_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_llm checks the optional package first; the guard must fire wherever it is installed
    monkeypatch.setattr(llms.LlmBackend, "missing", lambda _self: None)


def test_guard_message_names_the_marker() -> None:
    assert GUARD in LLM_GUARD_MESSAGE and "@pytest.mark.llm" in LLM_GUARD_MESSAGE


def test_default_settings_cannot_assemble_the_bundled_llm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pretend_llama_cpp_is_installed(monkeypatch)
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.llm == "bundled"  # the default a careless unit test would get

    with pytest.raises(pytest.fail.Exception, match=GUARD):
        build_chain(settings, retriever=StaticRetriever(docs=[], calls=[]))
    assert not (tmp_path / "data" / "models").exists()  # nothing assembled (1.1 GB)


def test_call_time_import_of_bundled_model_path_is_guarded(tmp_path: Path) -> None:
    from rag.models.bundled import bundled_model_path  # as rag.models.server imports it

    with pytest.raises(pytest.fail.Exception, match=GUARD):
        bundled_model_path(Settings(data_dir=tmp_path / "data"))


def test_loading_the_bundled_gguf_is_guarded(tmp_path: Path) -> None:
    gguf = tmp_path / bundled.BUNDLED_MODEL.file_name
    gguf.write_bytes(b"GGUF")
    model = LlamaCppChatModel(model_path=str(gguf), n_threads=1)

    with pytest.raises(pytest.fail.Exception, match=GUARD):
        model.invoke("How many KFOR troops are there?")
    with pytest.raises(pytest.fail.Exception, match=GUARD):
        llamacpp.load_llama(("k",), {"model_path": str(gguf)})


def test_guard_lets_fakes_through(tmp_path: Path) -> None:
    fake = bundled.BundledModel(
        label="fake",
        file_name="fake.gguf",
        dist_prefix="no-such-dist-part",
        version="0",
        parts=2,
        size=8,
        sha256="0" * 64,
    )
    # another BundledModel reaches the real function, which reports the missing parts
    with pytest.raises(ModelError, match="parts are not installed"):
        bundled.bundled_model_path(Settings(data_dir=tmp_path / "data"), fake)


@pytest.mark.llm
def test_llm_marked_tests_get_the_real_loaders() -> None:
    assert llms.bundled_model_path.__module__ == "rag.models.bundled"
    assert bundled.bundled_model_path.__qualname__ == "bundled_model_path"
    assert chat_llamacpp.load_llama is llamacpp.load_llama
    assert llamacpp.load_llama.__qualname__ == "load_llama"


def test_embedding_cache_is_the_sessions_tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = Path(os.environ[EMBEDDING_CACHE_ENV])
    assert cache.is_relative_to(tmp_path_factory.getbasetemp())
    assert embedding_cache_dir(Settings()) == cache
    assert not embedding_cache_dir(Settings()).is_relative_to(Path.home() / ".cache")
    assert subprocess_env()[EMBEDDING_CACHE_ENV] == str(cache)
    assert "RAG_LLM" not in subprocess_env()  # other RAG_* variables are still dropped
