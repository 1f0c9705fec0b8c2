"""Incremental, crash-safe ingestion into a real (embedded) Chroma, with the fake embedder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.snapshot import Index
from rag.index.store import open_store
from rag.ingestion.pipeline import IngestProgress, ingest
from rag.testing import KeywordEmbedder

from .conftest import SEED_ARTICLE


def _write_articles(folder: Path, n: int, *, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        body = " ".join(
            f"Article {i} reports on topic{i} in city{i % 7}. "
            f"Officials said sentence {j} about topic{i} matters."
            for j in range(12)
        )
        path = folder / f"article-{i:04d}.txt"
        path.write_text(f"Headline number {i}\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths


def _state(settings: Settings) -> tuple[dict[str, str], set[str]]:
    store = open_store(settings)
    manifest = store.manifest()
    return {a.id: a.hash for a in manifest.values()}, store.all_chunk_ids()


def test_ingest_twice_is_idempotent(
    settings: Settings, corpus_dir: Path, fake_embedder: KeywordEmbedder
) -> None:
    first = ingest([corpus_dir], settings, embedder=fake_embedder)
    assert len(first.added) == 1 and first.chunks_added > 0 and not first.failed
    state = _state(settings)
    calls = fake_embedder.texts_encoded

    second = ingest([corpus_dir], settings, embedder=fake_embedder)
    assert second.added == [] and second.updated == [] and second.removed == []
    assert second.unchanged == first.added
    assert "Nothing changed" in second.summary()
    assert fake_embedder.texts_encoded == calls  # unchanged articles cost no embedding
    assert _state(settings) == state


def test_changed_article_is_replaced_without_duplicates(
    settings: Settings, corpus_dir: Path, fake_embedder: KeywordEmbedder
) -> None:
    ingest([corpus_dir], settings, embedder=fake_embedder)
    article = corpus_dir / "nato-kosovo-kfor.txt"
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("3,700 troops", "4,100 troops"), encoding="utf-8")

    report = ingest([corpus_dir], settings, embedder=fake_embedder)
    assert len(report.updated) == 1 and report.chunks_removed >= 1
    store = open_store(settings)
    manifest = store.manifest()
    live = {cid for a in manifest.values() for cid in a.chunk_ids}
    assert store.all_chunk_ids() == live  # old chunks gone, nothing duplicated
    texts = [t for _, t, _ in store.iter_chunks()]
    assert any("4,100 troops" in t for t in texts)
    assert not any("3,700 troops" in t for t in texts)


def test_deleted_file_is_pruned_unless_no_prune(
    settings: Settings, tmp_path: Path, fake_embedder: KeywordEmbedder
) -> None:
    folder = tmp_path / "articles"
    paths = _write_articles(folder, 3)
    ingest([folder], settings, embedder=fake_embedder)
    paths[0].unlink()

    kept = ingest([folder], settings, embedder=fake_embedder, prune=False)
    assert kept.removed == [] and kept.articles_total == 3

    pruned = ingest([folder], settings, embedder=fake_embedder)
    assert len(pruned.removed) == 1 and pruned.articles_total == 2
    manifest, chunk_ids = _state(settings)
    assert len(manifest) == 2
    assert all("article-0000" not in cid for cid in chunk_ids)


def test_prune_only_touches_the_given_paths(
    settings: Settings, tmp_path: Path, fake_embedder: KeywordEmbedder
) -> None:
    _write_articles(tmp_path / "a", 2)
    _write_articles(tmp_path / "b", 2, start=10)
    ingest([tmp_path / "a"], settings, embedder=fake_embedder)
    report = ingest([tmp_path / "b"], settings, embedder=fake_embedder)
    assert report.removed == [] and report.articles_total == 4


def test_broken_file_is_reported_and_keeps_its_previous_version(
    settings: Settings, tmp_path: Path, fake_embedder: KeywordEmbedder
) -> None:
    folder = tmp_path / "articles"
    paths = _write_articles(folder, 2)
    ingest([folder], settings, embedder=fake_embedder)
    paths[0].write_bytes(b"\x00\x01\x02 binary junk \xff\xfe" * 50)
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "bad.jsonl").write_text(
        '{"title": "ok", "text": "Fine record."}\n{not json\n', encoding="utf-8"
    )

    report = ingest([folder], settings, embedder=fake_embedder)
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert "article-0000.txt" in reasons and "empty.txt" in reasons and "bad.jsonl" in reasons
    assert report.removed == []  # a file that failed to load is not treated as deleted
    assert len(report.added) == 1  # the good record of bad.jsonl
    assert report.articles_total == 3


def test_too_large_file_is_skipped(tmp_path: Path, fake_embedder: KeywordEmbedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_file_mb=0.004)
    folder = tmp_path / "articles"
    _write_articles(folder, 1)
    (folder / "huge.txt").write_text("Title\n\n" + "word " * 2000, encoding="utf-8")
    report = ingest([folder], settings, embedder=fake_embedder)
    assert [Path(f.path).name for f in report.failed] == ["huge.txt"]
    assert "too large" in report.failed[0].reason
    assert len(report.added) == 1


def test_interrupted_ingest_leaves_previous_index_usable(
    settings: Settings, tmp_path: Path, fake_embedder: KeywordEmbedder
) -> None:
    folder = tmp_path / "articles"
    _write_articles(folder, 5)
    ingest([folder], settings, embedder=fake_embedder)
    before = Index(settings).snapshot()
    # change every article and add many more, then interrupt after the first committed group
    _write_articles(folder, 300)
    for path in sorted(folder.glob("*.txt"))[:5]:
        path.write_text(
            path.read_text(encoding="utf-8") + "\nA late correction was added.\n", encoding="utf-8"
        )

    def interrupt(p: IngestProgress) -> None:
        if p.chunks_done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest([folder], settings, embedder=fake_embedder, progress=interrupt)

    snap = Index(Settings(data_dir=settings.data_dir)).snapshot()
    assert snap.generation > before.generation
    assert 5 <= len(snap.articles) < 300  # some work committed, the rest not yet
    for article in snap.articles.values():  # every committed article is complete and searchable
        assert all(snap.is_live(cid) for cid in article.chunk_ids)
    assert snap.bm25.search("topic3", 3)

    report = ingest([folder], settings, embedder=fake_embedder)
    assert report.articles_total == 300
    _manifest, chunk_ids = _state(settings)
    store = open_store(settings)
    assert chunk_ids == {cid for a in store.manifest().values() for cid in a.chunk_ids}


def test_killed_process_then_rerun_is_consistent(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    _write_articles(folder, 1500)
    data = tmp_path / "data"
    env = {**os.environ, "RAG_EMBEDDING_MODEL": "keyword", "RAG_DATA_DIR": str(data)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "ingest", str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.read(64)
        seen += line
        if "files" in seen or proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    settings = Settings(data_dir=data, embedding_model="keyword")
    partial = Index(settings).snapshot()  # the store opens and reads after a kill
    assert len(partial.articles) <= 1500

    done = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(folder), "--json", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["articles_total"] == 1500 and report["failed"] == []
    again = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(folder), "--json", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert json.loads(again.stdout)["unchanged"] == 1500
    store = open_store(settings)
    assert store.all_chunk_ids() == {cid for a in store.manifest().values() for cid in a.chunk_ids}


def test_json_records_use_their_ids_and_metadata(
    settings: Settings, tmp_path: Path, fake_embedder: KeywordEmbedder
) -> None:
    path = tmp_path / "news.jsonl"
    records = [
        {
            "id": "n-1",
            "title": "Storm hits coast",
            "text": "A storm hit the coast on Monday. Power failed.",
            "source": "Example Times",
            "url": "https://example.com/1",
            "published": "2024-01-05",
        },
        {
            "id": "n-2",
            "title": "Election results",
            "text": "The incumbent won the election with 54 percent.",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    ingest([path], settings, embedder=fake_embedder)
    store = open_store(settings)
    manifest = store.manifest()
    assert set(manifest) == {"n-1", "n-2"}
    meta = next(m for _, _, m in store.iter_chunks(manifest["n-1"].chunk_ids))
    assert meta["title"] == "Storm hits coast" and meta["published"] == "2024-01-05"
    assert meta["published_int"] == 20240105 and meta["url"] == "https://example.com/1"

    records.pop()  # a record that vanished from its file is pruned
    path.write_text(json.dumps(records[0]) + "\n", encoding="utf-8")
    assert ingest([path], settings, embedder=fake_embedder).removed == ["n-2"]


def test_chunks_carry_offsets_into_the_cleaned_article(
    settings: Settings, fake_embedder: KeywordEmbedder
) -> None:
    ingest([SEED_ARTICLE], settings, embedder=fake_embedder)
    store = open_store(settings)
    chunks = sorted(store.iter_chunks(), key=lambda c: c[2]["chunk_index"])
    assert [m["chunk_index"] for _, _, m in chunks] == list(range(len(chunks)))
    assert any("3,700 troops from 20 allied and 7 associated countries" in t for _, t, _ in chunks)
    for _, text, meta in chunks:
        assert meta["end"] - meta["start"] == len(text)
        assert meta["source"] == "infobae.com"


def test_sweep_leaves_another_writers_uncommitted_chunks_alone(
    settings: Settings, tmp_path: Path, fake_embedder: KeywordEmbedder
) -> None:
    """A second ingest process on another folder has written chunks but not yet its manifest."""
    _write_articles(tmp_path / "mine", 3)
    store = open_store(settings)
    vector = fake_embedder.embed_documents(["topic9 in city2"])
    foreign = "elsewhere/article-9.txt#0123456789abcdef"
    ingest([tmp_path / "mine"], settings, embedder=fake_embedder)
    article_ids = set(store.manifest())
    own = next(a for a in article_ids if a.endswith("article-0001.txt"))
    mine_orphan = f"{own}#00000000deadbeef"  # left by an interrupted run of this folder
    store.upsert_chunks(
        [foreign, mine_orphan], vector * 2, ["in flight", "stale"], [{"article_id": "x"}] * 2
    )
    ingest([tmp_path / "mine"], settings, embedder=fake_embedder)
    ids = store.all_chunk_ids()
    assert foreign in ids  # another writer's chunks, unnamed until its manifest lands
    assert mine_orphan not in ids  # this folder's leftovers are swept
