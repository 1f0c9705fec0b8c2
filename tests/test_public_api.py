"""The public API: what `from rag import ...` promises, and ready-made LangChain objects."""

from __future__ import annotations

from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import FakeListChatModel

import rag
from rag import RagAnswer, Settings, build_chain, build_retriever, fold_events, ingest

from .conftest import REPO


def test_every_public_name_resolves() -> None:
    for name in rag.__all__:
        assert getattr(rag, name) is not None, name


def test_chain_from_ready_made_langchain_embeddings_and_chat_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", llm="extractive")
    embeddings = DeterministicFakeEmbedding(size=64)  # any LangChain Embeddings
    report = ingest([REPO / "corpus"], settings, embedder=embeddings)
    assert report.added == ["corpus/nato-kosovo-kfor.txt"]
    retriever = build_retriever(settings, embedder=embeddings)
    docs = retriever.invoke("How many KFOR troops are there?")
    assert docs and all(d.metadata["article_id"] for d in docs)
    llm = FakeListChatModel(
        responses=["KFOR is made up of 3,700 troops from 20 allied and 7 associated countries [1]."]
    )
    chain = build_chain(settings, llm=llm, retriever=retriever)
    out: RagAnswer = chain.invoke({"input": "How many KFOR troops are there?"})
    assert "3,700" in out["answer"] and not out["refused"]
    assert out["citations"] and "3,700" in out["citations"][0]["quote"]
    streamed = fold_events(chain.stream({"input": "How many KFOR troops are there?"}))
    assert streamed["answer"] == out["answer"]
