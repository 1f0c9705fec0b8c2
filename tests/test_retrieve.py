from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.errors import InputError
from rag.index.snapshot import Index
from rag.index.store import chroma_where
from rag.ingestion.pipeline import ingest
from rag.retrieve.filters import chunk_filter, parse_filters
from rag.retrieve.hybrid import HybridRetriever, build_retriever
from rag.testing import KeywordEmbedder

FILLER = (
    "The city council met on Tuesday to discuss the budget. Residents asked about road repairs "
    "and the new library. The mayor promised an answer next month."
)

ARTICLES = [
    {
        "id": "a-volcano",
        "title": "Volcano erupts in Iceland",
        "source": "Wire",
        "published": "2024-01-10",
        "text": "A volcano erupted near Grindavik in Iceland, "
        "sending lava toward the fishing town. " + FILLER,
    },
    {
        "id": "b-volcano-old",
        "title": "Iceland volcano eruption last year",
        "source": "Daily",
        "published": "2023-03-02",
        "text": "A volcano erupted in Iceland near Grindavik, the second eruption in the area. "
        + FILLER,
    },
    {
        "id": "c-election",
        "title": "Election results in Taiwan",
        "source": "Wire",
        "published": "2024-01-14",
        "text": "Lai Ching-te won the presidential election in Taiwan with 40 percent of the vote. "
        + FILLER,
    },
    {
        "id": "d-syndicated",
        "title": "Taiwan votes",
        "source": "Daily",
        "published": "2024-01-14",
        "text": "Lai Ching-te won the presidential election in Taiwan with 40 percent of the vote. "
        + FILLER,
    },
    {
        "id": "e-future",
        "title": "Volcano eruption ends",
        "source": "Wire",
        "published": "2024-02-20",
        "text": "The volcano eruption in Iceland near Grindavik has ended, scientists said. "
        + FILLER,
    },
    {
        "id": "f-undated",
        "title": "A guide to Icelandic volcanoes",
        "source": "Blog",
        "published": None,
        "text": "Iceland has many volcanoes; Grindavik lies on the Reykjanes peninsula. " + FILLER,
    },
]


def write_corpus(path: Path, articles: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")
    return path


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    """Settings with the time priors off, so only fusion decides."""
    return settings.model_copy(
        update={
            "time_boost": 0.0,
            "recency_weight": 0.0,
            "k": 5,
            "max_chunks_per_article": 0,
            "article_penalty": 1.0,
        }
    )


@pytest.fixture
def indexed(tmp_path: Path, quiet: Settings, fake_embedder: KeywordEmbedder) -> Settings:
    corpus = write_corpus(tmp_path / "corpus.jsonl", ARTICLES)
    report = ingest([corpus], quiet, embedder=fake_embedder)
    assert not report.failed
    return quiet


def retriever(settings: Settings, embedder: KeywordEmbedder, **over: Any) -> HybridRetriever:
    return build_retriever(settings.model_copy(update=over), embedder=embedder)


TODAY = date(2024, 1, 19)


def test_invoke_passes_filters_and_today(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    r = retriever(indexed, fake_embedder)
    docs = r.invoke("volcano Grindavik Iceland", filters={"source": "Wire"}, today=TODAY)
    assert docs and {d.metadata["source"] for d in docs} == {"Wire"}
    assert "e-future" not in {d.metadata["article_id"] for d in docs}
    meta = docs[0].metadata
    for key in (
        "chunk_id",
        "article_id",
        "title",
        "source",
        "url",
        "published",
        "chunk_index",
        "start",
        "end",
        "dense_rank",
        "dense_score",
        "bm25_rank",
        "bm25_score",
        "fused_rank",
        "score",
    ):
        assert key in meta
    assert set(meta["retrieval_ms"]) == {"dense_ms", "bm25_ms", "fuse_ms", "rerank_ms"}
    assert docs[0].page_content and docs[0].id == meta["chunk_id"]


def test_weighted_rrf_math(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    r = retriever(
        indexed, fake_embedder, dense_weight=2.0, bm25_weight=0.5, rrf_k=10, dedup_threshold=1.0
    )
    for d in r.invoke("Taiwan election Lai", today=TODAY, k=6):
        m = d.metadata
        want = (2.0 / (10 + m["dense_rank"]) if m["dense_rank"] else 0.0) + (
            0.5 / (10 + m["bm25_rank"]) if m["bm25_rank"] else 0.0
        )
        assert m["score"] == pytest.approx(want, abs=1e-5)


def test_bm25_only_and_dense_only(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    sparse = retriever(indexed, fake_embedder, dense_weight=0.0).invoke(
        "Grindavik lava", today=TODAY
    )
    assert sparse[0].metadata["article_id"] == "a-volcano"
    assert sparse[0].metadata["bm25_rank"] == 1


def test_filters_dates_and_ids(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    r = retriever(indexed, fake_embedder)
    docs = r.invoke(
        "volcano Iceland",
        filters={"published_from": "2023-01-01", "published_to": "2023-12-31"},
        today=TODAY,
    )
    assert {d.metadata["article_id"] for d in docs} == {"b-volcano-old"}
    docs = r.invoke(
        "volcano Iceland", filters={"article_ids": ["f-undated", "c-election"]}, today=TODAY
    )
    assert {d.metadata["article_id"] for d in docs} <= {"f-undated", "c-election"}
    assert any(d.metadata["article_id"] == "f-undated" for d in docs)
    docs = r.invoke("volcano Iceland", filters={"source": ["Blog", "Daily"]}, today=TODAY)
    assert {d.metadata["source"] for d in docs} <= {"Blog", "Daily"}


def test_bad_filters() -> None:
    with pytest.raises(InputError):
        parse_filters({"colour": "red"})
    with pytest.raises(InputError):
        parse_filters({"published_from": "last tuesday"})
    assert chroma_where(chunk_filter(parse_filters(None), None)) is None
    assert chroma_where(chunk_filter(parse_filters({"source": "X"}), None)) == {
        "source": {"$in": ["X"]}
    }
    assert chroma_where(chunk_filter(parse_filters(None), 20240105)) == {
        "published_int": {"$lte": 20240105}
    }


def test_future_articles_dropped_unless_disabled(
    indexed: Settings, fake_embedder: KeywordEmbedder
) -> None:
    q = "volcano eruption ended Iceland"
    ids = {
        d.metadata["article_id"]
        for d in retriever(indexed, fake_embedder).invoke(q, today=TODAY, k=10)
    }
    assert "e-future" not in ids and "f-undated" in ids
    ids = {
        d.metadata["article_id"]
        for d in retriever(indexed, fake_embedder, drop_future=False).invoke(q, today=TODAY, k=10)
    }
    assert "e-future" in ids


def test_time_window_boost_prefers_articles_inside(
    indexed: Settings, fake_embedder: KeywordEmbedder
) -> None:
    r = retriever(indexed, fake_embedder, time_boost=2.0)
    this_week = r.invoke("Which volcano erupted near Grindavik this week?", today=date(2024, 1, 12))
    assert this_week[0].metadata["article_id"] == "a-volcano"
    assert this_week[0].metadata["in_time_window"] is True
    assert this_week[0].metadata["time_window"] == ["2024-01-06", "2024-01-12"]
    march = r.invoke("Which volcano erupted near Grindavik in March 2023?", today=TODAY)
    assert march[0].metadata["article_id"] == "b-volcano-old"


def test_recency_prior(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    r = retriever(indexed, fake_embedder, recency_weight=5.0, recency_half_life_days=7)
    docs = r.invoke("volcano erupted Iceland Grindavik", today=TODAY)
    assert docs[0].metadata["article_id"] == "a-volcano"
    old = r.invoke("volcano erupted Iceland Grindavik", today=date(2023, 3, 5))
    assert old[0].metadata["article_id"] == "b-volcano-old"


def test_syndicated_copies_collapse(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    docs = retriever(indexed, fake_embedder).invoke(
        "Lai Ching-te Taiwan election", today=TODAY, k=10
    )
    ids = [d.metadata["article_id"] for d in docs]
    assert ("c-election" in ids) != ("d-syndicated" in ids)
    texts = [d.page_content for d in docs]
    assert len(texts) == len(set(texts))


def test_same_article_overlapping_chunks_collapse(
    tmp_path: Path, quiet: Settings, fake_embedder: KeywordEmbedder
) -> None:
    sentences = " ".join(f"Sentence {i} mentions the harbour crane number {i}." for i in range(40))
    corpus = write_corpus(
        tmp_path / "one.jsonl",
        [{"id": "long", "title": "Harbour", "text": sentences, "published": "2024-01-01"}],
    )
    cfg = quiet.model_copy(update={"chunk_size": 200, "chunk_overlap": 150})
    ingest([corpus], cfg, embedder=fake_embedder)
    docs = retriever(cfg, fake_embedder).invoke("harbour crane", today=TODAY, k=20)
    spans = sorted((d.metadata["start"], d.metadata["end"]) for d in docs)
    for (s1, e1), (s2, e2) in itertools.pairwise(spans):
        assert min(e1, e2) - max(s1, s2) < 0.5 * min(e1 - s1, e2 - s2)


def test_max_chunks_per_article(
    tmp_path: Path, quiet: Settings, fake_embedder: KeywordEmbedder
) -> None:
    text = "\n\n".join(
        f"Paragraph {i}: the harbour crane moved {i} containers today." for i in range(30)
    )
    corpus = write_corpus(
        tmp_path / "one.jsonl", [{"id": "long", "title": "Harbour", "text": text}]
    )
    cfg = quiet.model_copy(
        update={"chunk_size": 150, "chunk_overlap": 0, "max_chunks_per_article": 2}
    )
    other = write_corpus(
        tmp_path / "two.jsonl",
        [
            {
                "id": f"o{i}",
                "title": f"Harbour crane note {i}",
                "text": f"{word} harbour crane moved containers for the {word} shipping line.",
            }
            for i, word in enumerate(["Maersk", "Cosco", "Evergreen", "Hapag"])
        ],
    )
    ingest([corpus, other], cfg, embedder=fake_embedder)
    docs = retriever(cfg, fake_embedder).invoke("harbour crane containers", today=TODAY)
    ids = [d.metadata["article_id"] for d in docs]
    # every article's best chunk comes before a third chunk of any one article
    assert len(docs) == 5 and ids.count("long") <= 2 and len(set(ids)) == 5 - ids.count("long") + 1


def test_cap_backfills_a_small_corpus(
    tmp_path: Path, quiet: Settings, fake_embedder: KeywordEmbedder
) -> None:
    text = "\n\n".join(
        f"Paragraph {i}: the harbour crane moved {i} containers today." for i in range(30)
    )
    corpus = write_corpus(
        tmp_path / "one.jsonl", [{"id": "long", "title": "Harbour", "text": text}]
    )
    cfg = quiet.model_copy(
        update={"chunk_size": 150, "chunk_overlap": 0, "max_chunks_per_article": 1}
    )
    ingest([corpus], cfg, embedder=fake_embedder)
    # one article only: the cap must not starve the answer step of passages
    assert (
        len(retriever(cfg, fake_embedder).invoke("harbour crane containers", today=TODAY)) == cfg.k
    )


class ReverseReranker:
    def predict(self, pairs: list[tuple[str, str]], **_: Any) -> list[float]:
        return [float(i) for i in range(len(pairs))]  # the last candidate scores best


def test_reranker_reorders(indexed: Settings, fake_embedder: KeywordEmbedder) -> None:
    plain = retriever(indexed, fake_embedder).invoke("volcano Iceland", today=TODAY, k=3)
    r = retriever(indexed, fake_embedder, rerank_top=3)
    r.reranker = ReverseReranker()
    reranked = r.invoke("volcano Iceland", today=TODAY, k=3)
    assert [d.id for d in reranked] == [d.id for d in plain][::-1]
    assert reranked[0].metadata["retrieval_ms"]["rerank_ms"] >= 0


def test_snapshot_reused_and_refreshed(
    tmp_path: Path, indexed: Settings, fake_embedder: KeywordEmbedder
) -> None:
    index = Index(indexed)
    r = build_retriever(indexed, index=index, embedder=fake_embedder)
    r.invoke("volcano", today=TODAY)
    first = index.snapshot()
    r.invoke("election", today=TODAY)
    assert index.snapshot() is first
    extra = write_corpus(
        tmp_path / "more.jsonl",
        [
            {
                "id": "g-quake",
                "title": "Earthquake in Japan",
                "published": "2024-01-02",
                "text": "An earthquake struck the Noto peninsula in Japan.",
            }
        ],
    )
    ingest([extra], indexed, store=index.store, embedder=fake_embedder)
    docs = r.invoke("earthquake Noto Japan", today=TODAY)
    assert docs[0].metadata["article_id"] == "g-quake"
    assert index.snapshot() is not first


def test_empty_query_and_empty_index(
    settings: Settings, fake_embedder: KeywordEmbedder, tmp_path: Path
) -> None:
    ingest([write_corpus(tmp_path / "empty.jsonl", [])], settings, embedder=fake_embedder)
    r = retriever(settings, fake_embedder)
    assert r.invoke("anything", today=TODAY) == []
    assert r.invoke("   ") == []


@pytest.mark.integration
def test_kfor_question_finds_the_troops_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import REPO, SEED_ARTICLE

    monkeypatch.chdir(REPO)
    cfg = Settings(data_dir=tmp_path / "data")
    ingest([SEED_ARTICLE], cfg)
    docs = build_retriever(cfg).invoke("How many KFOR troops are there?")
    assert docs[0].metadata["article_id"] == "corpus/nato-kosovo-kfor.txt"
    assert "3,700 troops" in docs[0].page_content


def test_article_penalty_interleaves_articles(
    tmp_path: Path, quiet: Settings, fake_embedder: KeywordEmbedder
) -> None:
    text = "\n\n".join(
        f"Paragraph {i}: the harbour crane moved {i} containers today." for i in range(30)
    )
    others = [
        {
            "id": f"o{i}",
            "title": f"Note {i}",
            "text": f"{w} harbour crane moved containers for the {w} line.",
        }
        for i, w in enumerate(["Maersk", "Cosco", "Evergreen", "Hapag"])
    ]
    corpus = write_corpus(
        tmp_path / "c.jsonl", [{"id": "long", "title": "Harbour", "text": text}, *others]
    )
    cfg = quiet.model_copy(update={"chunk_size": 150, "chunk_overlap": 0})
    ingest([corpus], cfg, embedder=fake_embedder)
    raw = retriever(cfg, fake_embedder).invoke("harbour crane containers", today=TODAY, k=10)
    diverse = retriever(cfg, fake_embedder, article_penalty=0.01).invoke(
        "harbour crane containers", today=TODAY, k=10
    )
    first_five = [d.metadata["article_id"] for d in diverse[:5]]
    assert len(set(first_five)) == 5  # every article's best chunk before any second chunk
    assert [d.metadata["article_id"] for d in raw].count("long") > 1
    scores = [d.metadata["score"] for d in diverse]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("filters", "chroma_filters"),
    [
        ({"source": ["Wire", "Daily"]}, False),  # keeps most chunks: filtered in Python
        (
            {"published_from": "2023-01-01", "published_to": "2023-12-31"},
            True,
        ),  # narrow: Chroma's where
        ({"article_ids": ["f-undated", "c-election"]}, False),
    ],
)
def test_python_side_filtering_matches_chroma_where(
    indexed: Settings,
    fake_embedder: KeywordEmbedder,
    filters: dict[str, Any],
    chroma_filters: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Broad filters skip Chroma's slow ``where`` and give the same dense candidates as with it."""
    import rag.retrieve.hybrid as retrieve_module

    r = retriever(indexed, fake_embedder, dense_weight=1.0, bm25_weight=0.0)
    wheres: list[Any] = []
    query = r.index.store.query

    def spy(vector: Any, n: int, where: Any = None) -> Any:
        wheres.append(where)
        return query(vector, n, where)

    monkeypatch.setattr(r.index.store, "query", spy)
    fast = [
        d.metadata["chunk_id"]
        for d in r.invoke("volcano Iceland Taiwan", filters=filters, today=TODAY, k=6)
    ]
    assert (wheres[-1] is not None) == chroma_filters
    monkeypatch.setattr(retrieve_module, "PYTHON_FILTER_MIN", 1.01)  # force Chroma's where
    slow = [
        d.metadata["chunk_id"]
        for d in r.invoke("volcano Iceland Taiwan", filters=filters, today=TODAY, k=6)
    ]
    assert wheres[-1] is not None
    assert fast == slow and fast
