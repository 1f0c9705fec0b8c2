"""The LangChain RAG tutorial pipeline, rebuilt as a baseline on the same corpus and models.

RecursiveCharacterTextSplitter (1000 characters, 200 overlap) over each article, the same
embedder, a plain Chroma similarity search (the LLM sees the top 4; retrieval metrics use
the top 10 of the same search) and the tutorial's prompt, with no history, filters, dates,
BM25 or citations. With no LLM (``--llm extractive``) the extractive reader answers from the
same 4 chunks, so the two systems can be compared cheaply.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.evals.metrics import is_refusal

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.evals.suites import Case, Suite
    from rag.ingestion.load import Article

__all__ = ["TUTORIAL_PROMPT", "TutorialBaseline"]

logger = logging.getLogger(__name__)

TUTORIAL_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved "
    "context to answer the question. If you don't know the answer, just say that you don't know. "
    "Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context} \nAnswer:"
)
_LLM_K = 4
_VERSION = 1


def _articles(suite: Suite, settings: Settings) -> list[Article]:
    """The suite's corpus articles, or (no corpus) those of the configured index."""
    from rag.ingestion.load import Article, iter_articles

    if suite.corpus:
        paths = list(suite.corpus)
        wanted = None
    else:
        from rag.index.store import open_store

        manifest = open_store(settings, create=False).manifest()
        paths = sorted({Path(r.origin) for r in manifest.values() if r.origin})
        wanted = set(manifest)
    out = [
        a
        for a in iter_articles(paths, max_bytes=settings.max_file_bytes)
        if isinstance(a, Article) and (wanted is None or a.id in wanted)
    ]
    return sorted(out, key=lambda a: a.id)


@dataclass
class TutorialBaseline:
    """A built tutorial index plus the LLM (``None``: retrieval only)."""

    collection: Any
    embedder: Any
    llm: Any | None

    @classmethod
    def build(
        cls, suite: Suite, settings: Settings, *, embedder: Any, llm: Any | None
    ) -> TutorialBaseline:
        """Index the corpus the tutorial's way (once: the index is keyed by corpus + embedder)."""
        import chromadb
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        articles = _articles(suite, settings)
        digest = hashlib.sha256(
            f"{_VERSION}|{getattr(embedder, 'name', type(embedder).__name__)}".encode()
        )
        for a in articles:
            digest.update(f"{a.id}\0{a.content_hash()}\0".encode())
        where = settings.data_dir / "tutorial" / digest.hexdigest()[:16]
        where.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(
            path=str(where), settings=chromadb.Settings(anonymized_telemetry=False)
        )
        collection = client.get_or_create_collection("tutorial", embedding_function=None)
        if collection.count() == 0:
            splitter = RecursiveCharacterTextSplitter(
                chunk_size=1000, chunk_overlap=200, add_start_index=True
            )
            ids: list[str] = []
            texts: list[str] = []
            metas: list[Mapping[str, Any]] = []  # the shape Chroma's add() takes
            for a in articles:
                page = f"{a.title}\n\n{a.text}" if a.title else a.text
                for n, piece in enumerate(splitter.split_text(page)):
                    ids.append(f"{a.id}#t{n}")
                    texts.append(piece)
                    metas.append({"article_id": a.id, "title": a.title or ""})
            batch = 512
            for start in range(0, len(ids), batch):
                end = start + batch
                vectors = embedder.embed_documents(texts[start:end])
                collection.add(
                    ids=ids[start:end],
                    documents=texts[start:end],
                    metadatas=metas[start:end],
                    embeddings=vectors,
                )
            logger.info("tutorial baseline: %d chunks from %d articles", len(ids), len(articles))
        return cls(collection=collection, embedder=embedder, llm=llm)

    def _search(self, query: str, n: int) -> tuple[list[str], list[str], list[str]]:
        count = self.collection.count()
        if not count:
            return [], [], []
        got = self.collection.query(
            query_embeddings=[self.embedder.embed_query(query)],
            n_results=min(n, count),
            include=["documents", "metadatas"],
        )
        metas = got["metadatas"][0]
        return [m["article_id"] for m in metas], list(got["ids"][0]), list(got["documents"][0])

    def retrieve(
        self, query: str, today: date | None = None
    ) -> tuple[list[str], list[str], list[str], float]:
        """(article ids, chunk ids, texts, milliseconds) of the top 10 similarity hits."""
        started = time.perf_counter()
        ids, chunks, texts = self._search(query, 10)
        return ids, chunks, texts, (time.perf_counter() - started) * 1000

    def answer(self, case: Case) -> dict[str, Any]:
        """The tutorial's answer to the question (streamed, timed), from its top 4 chunks.

        Without an LLM (``--llm extractive``) the project's extractive reader picks the answer
        sentence from the same 4 chunks, with none of the chain's refusal gates.
        """
        started = time.perf_counter()
        ids, chunk_ids, docs = self._search(case.question, _LLM_K)
        context = [
            {"n": n, "article_id": a, "chunk_id": c, "text": t}
            for n, (a, c, t) in enumerate(zip(ids, chunk_ids, docs, strict=True), start=1)
        ]
        first: float | None = None
        parts: list[str] = []
        if self.llm is None:
            from langchain_core.documents import Document

            from rag.answer.extractive import extractive_answer

            text, _ = extractive_answer(
                case.question, [Document(page_content=d) for d in docs], embedder=self.embedder
            )
            first = time.perf_counter()
            parts.append(text)
        else:
            prompt = TUTORIAL_PROMPT.format(question=case.question, context="\n\n".join(docs))
            for chunk in self.llm.stream(prompt):
                text = str(getattr(chunk, "content", chunk))
                if text and first is None:
                    first = time.perf_counter()
                parts.append(text)
        end = time.perf_counter()
        answer = "".join(parts).strip()
        refused = is_refusal(answer)
        return {
            "answer": answer,
            "raw_answer": answer,
            "refused": refused,
            "refusal_reason": "model" if refused else None,
            "citations": [],
            "context": context,
            "ttft_ms": ((first or end) - started) * 1000,
            "total_ms": (end - started) * 1000,
        }
