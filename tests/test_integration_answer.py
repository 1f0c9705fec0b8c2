"""Integration: the real chain over the seed article with the bundled embedder.

The extractive cases run everywhere; the `llm` cases run the real bundled Qwen2.5 model.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from rag.answer.chain import build_chain
from rag.config import Settings
from rag.ingestion.pipeline import ingest

from .conftest import CORPUS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seed") / "data"
    ingest([CORPUS], Settings(data_dir=data, _env_file=None))  # type: ignore[call-arg]
    return data


def _settings(data: Path, llm: str) -> Settings:
    # the bundled model is assembled once in the repo's data dir; reuse it from there
    return Settings(data_dir=data, llm=llm)


def test_extractive_kfor_follow_up_and_refusal(seed_data: Path) -> None:
    chain = build_chain(_settings(seed_data, "extractive"))
    out = chain.invoke({"input": "How many KFOR troops are there?", "chat_history": []})
    assert "3,700" in out["answer"] and not out["refused"]
    assert "3,700 troops" in out["citations"][0]["passage"]
    assert "3,700 troops" in out["citations"][0]["quote"]

    history = [("user", "How many KFOR troops are there?"), ("assistant", out["answer"])]
    follow = chain.invoke({"input": "Which countries do they come from?", "chat_history": history})
    assert follow["standalone_question"] != "Which countries do they come from?"
    assert "KFOR" in follow["standalone_question"]
    assert any("countries" in c["quote"] for c in follow["citations"])

    refused = chain.invoke({"input": "What is the population of Kosovo?", "chat_history": []})
    assert refused["refused"] is True and refused["citations"] == []


def _bundled_available() -> bool:
    # On CI the bundled model must run: a missing llama-cpp-python is a failure, not a skip.
    return importlib.util.find_spec("llama_cpp") is not None or os.environ.get("CI") == "true"


llm_only = pytest.mark.skipif(not _bundled_available(), reason="llama-cpp-python is not installed")


@pytest.fixture(scope="module")
def llm_chain(seed_data: Path):  # type: ignore[no-untyped-def]
    from rag.models.bundled import bundled_model_path

    repo_data = Path(__file__).resolve().parent.parent / ".rag"
    settings = _settings(seed_data, "bundled")
    if (repo_data / "models").exists():  # assembled already by `make`: don't copy 1.1 GB again
        models = seed_data / "models"
        if not models.exists():
            models.symlink_to(repo_data / "models", target_is_directory=True)
    bundled_model_path(settings)
    return build_chain(settings)


@llm_only
@pytest.mark.llm
def test_bundled_llm_answers_kfor_with_a_verified_citation(llm_chain) -> None:  # type: ignore[no-untyped-def]
    events = list(
        llm_chain.stream({"input": "How many KFOR troops are there?", "chat_history": []})
    )
    kinds = [next(iter(e)) for e in events]
    assert kinds.index("context") < kinds.index("answer")  # sources before the first token
    final = events[-1]["final"]
    assert "3,700" in final["answer"] and not final["refused"]
    assert "3,700 troops" in final["citations"][0]["passage"]


@llm_only
@pytest.mark.llm
def test_bundled_llm_follow_up_in_context(llm_chain) -> None:  # type: ignore[no-untyped-def]
    history = [
        {"role": "user", "content": "How many KFOR troops are there?"},
        {
            "role": "assistant",
            "content": "KFOR is made up of 3,700 troops from 20 allied and 7 associated "
            "countries [1].",
        },
    ]
    out = llm_chain.invoke(
        {"input": "Who is the secretary general that mentioned them?", "chat_history": history}
    )
    assert not out["refused"]
    assert "Stoltenberg" in out["answer"]
    assert out["citations"] and all(c["supported"] for c in out["citations"])


@llm_only
@pytest.mark.llm
def test_bundled_llm_refuses_what_the_articles_do_not_say(llm_chain) -> None:  # type: ignore[no-untyped-def]
    out = llm_chain.invoke({"input": "What is the population of Kosovo?", "chat_history": []})
    assert out["refused"] is True
    assert out["answer"].startswith("The articles don't say")


@llm_only
@pytest.mark.llm
def test_two_app_processes_share_one_model_server(llm_chain, seed_data: Path) -> None:  # type: ignore[no-untyped-def]
    """`rag llm-server` serves the bundled model over the OpenAI API; two `rag ask`s use it."""
    import json
    import subprocess
    import sys

    from rag.models.bundled import bundled_model_path

    from .conftest import _free_port, stop_process, subprocess_env, wait_for_http

    model = bundled_model_path(
        _settings(seed_data, "bundled")
    )  # assembled by the llm_chain fixture
    port = _free_port()
    base = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "rag", "llm-server", "--port", str(port), "--model", str(model)],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        models = json.loads(wait_for_http(f"{base}/models", server, 120, "rag llm-server"))
        assert models["data"][0]["id"] == "bundled"
        env = subprocess_env(
            RAG_DATA_DIR=str(seed_data), RAG_LLM="openai:bundled", RAG_LLM_BASE_URL=base
        )
        questions = ["How many KFOR troops are there?", "How many troops does KFOR have?"]
        apps = [
            subprocess.Popen(
                [sys.executable, "-m", "rag", "ask", q, "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for q in questions
        ]
        outs = [app.communicate(timeout=300) for app in apps]
        for app, (_, err) in zip(apps, outs, strict=True):
            assert app.returncode == 0, err
        for out, _ in outs:
            answer = json.loads(out)
            assert "3,700" in answer["answer"] and not answer["refused"], answer
            assert "OpenAI-compatible" in answer["model"]
            assert "3,700 troops" in answer["citations"][0]["passage"]
    finally:
        stop_process(server)
