"""A damaged index: `rag info` says what is wrong and how to fix it; `rag ingest --rebuild`
recovers from every kind; a full disk mid-ingest is a one-line error and the index stays usable.

Model-free: the keyword embedder (RAG_EMBEDDING_MODEL=keyword), extractive answers, data dirs
under tmp_path, the CLI in-process through click's CliRunner.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from click.testing import CliRunner, Result

import rag
from rag.cli import main
from rag.config import Settings
from rag.errors import IndexMismatchError
from rag.index.health import reset_index
from rag.index.snapshot import bm25_path
from rag.index.store import ChunkStore, forget_client, open_store
from rag.models.keyword import KeywordEmbedder
from rag.retrieve.hybrid import build_retriever

from .conftest import SEED_ARTICLE

KFOR = "How many KFOR troops are there?"

SECOND_ARTICLE = """Lighthouse keepers return to the northern islands

The coastal authority said on Tuesday that twelve lighthouse keepers will return to the
northern islands next spring, after automated lamps failed during three winter storms.
Keepers will live on the islands from March to October and repair the lamps by hand.
The authority expects the programme to cost about four million crowns a year.
"""


@pytest.fixture(autouse=True)
def _model_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "keyword")
    monkeypatch.setenv("RAG_LLM", "extractive")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str, **env: str) -> Result:
    return runner.invoke(main, list(args), env=env or None)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result: Result, *fragments: str) -> str:
    """The error line of a command that failed cleanly (exit 1, no traceback, one line)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED_ARTICLE, folder)
    return folder


@pytest.fixture
def data(runner: CliRunner, articles: Path, tmp_path: Path) -> Path:
    """A data dir with the seed article indexed through `rag ingest`."""
    data = tmp_path / "data"
    ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
    return data


def settings_for(data: Path, **extra: Any) -> Settings:
    return Settings(data_dir=data, embedding_model="keyword", **extra)


def info(runner: CliRunner, data: Path, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """`rag info --json`: the exit code and the checks by name."""
    result = runner.invoke(main, ["info", "--json", "--data-dir", str(data)], env=env or None)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return result.exit_code, checks


def assert_healthy(runner: CliRunner, data: Path, **env: str) -> None:
    code, checks = info(runner, data, **env)
    assert code == 0, checks
    assert set(checks) == {"index", "index settings", "manifest", "bm25", "llm"}
    assert all(c["ok"] and not c.get("warning") for c in checks.values()), checks


def answers(runner: CliRunner, data: Path, **env: str) -> str:
    """`rag ask` answers the KFOR question from the seed article (3,700 troops)."""
    result = ok(
        run(runner, "ask", "--json", "--llm", "extractive", "--data-dir", str(data), KFOR, **env)
    )
    answer = str(json.loads(result.stdout)["answer"])
    assert "3,700" in answer, answer
    return answer


def rebuild(runner: CliRunner, data: Path, articles: Path, *extra: str, **env: str) -> Result:
    return ok(
        run(
            runner,
            "ingest",
            "-q",
            "--rebuild",
            *extra,
            "--data-dir",
            str(data),
            str(articles),
            **env,
        )
    )


def ingest_function() -> Any:
    """:func:`rag.ingest`, the public function."""
    return rag.ingest


def chunk_count(data: Path) -> int:
    return open_store(settings_for(data), create=False).chunk_count()


# --- a healthy index ------------------------------------------------------------------------


def test_a_healthy_index_passes_every_check_and_records_what_built_it(
    runner: CliRunner, data: Path
) -> None:
    assert_healthy(runner, data)
    recorded = open_store(settings_for(data), create=False).build_info()
    assert recorded == {
        "embedding_model": KeywordEmbedder.name,
        "embedding_dim": KeywordEmbedder().dimension,
        "chunk_size": 1000,
        "chunk_overlap": 150,
    }
    _, checks = info(runner, data)
    assert "keyword-fake (256-d), chunk_size 1000" in checks["index settings"]["detail"]
    text = ok(run(runner, "info", "--data-dir", str(data))).stdout
    assert "  [ok] manifest: every one of the" in text


# --- index missing --------------------------------------------------------------------------


def test_missing_index_is_explained_and_rebuild_builds_it(
    runner: CliRunner, articles: Path, tmp_path: Path
) -> None:
    data = tmp_path / "nothing-here"
    code, checks = info(runner, data)
    assert code == 1
    assert not checks["index"]["ok"]
    assert "No index at" in checks["index"]["detail"]
    assert "rag ingest" in checks["index"]["detail"]
    rebuild(runner, data, articles)
    assert_healthy(runner, data)
    answers(runner, data)


# --- built with another embedding model or other chunk settings --------------------------------


def test_another_embedding_model_is_refused_by_ingest_ask_and_info(
    runner: CliRunner, data: Path, articles: Path
) -> None:
    store = open_store(settings_for(data), create=False)
    store.record_build({"embedding_model": "all-mpnet-base-v2", "embedding_dim": 768})
    generation = store.generation()
    before = chunk_count(data)

    code, checks = info(runner, data)
    assert code == 1
    detail = checks["index settings"]["detail"]
    assert not checks["index settings"]["ok"]
    assert "'all-mpnet-base-v2' (768-d)" in detail and "'keyword-fake'" in detail
    assert "rag ingest --rebuild" in detail

    (articles / "second.txt").write_text(SECOND_ARTICLE, encoding="utf-8")
    line = one_line_error(
        run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)),
        "'all-mpnet-base-v2'",
        "'keyword-fake'",
        "rag ingest --rebuild",
    )
    assert line == f"Error: {detail}"  # the same message everywhere
    assert chunk_count(data) == before and store.generation() == generation  # nothing mixed in
    one_line_error(
        run(runner, "ask", "--llm", "extractive", "--data-dir", str(data), KFOR),
        "'all-mpnet-base-v2'",
        "rag ingest --rebuild",
    )

    rebuild(runner, data, articles)
    assert_healthy(runner, data)
    answers(runner, data)
    assert chunk_count(data) > before  # the second article is in now


def test_vectors_of_another_dimension_are_refused_not_a_chroma_error(
    data: Path, articles: Path
) -> None:
    settings = settings_for(data)
    small = KeywordEmbedder(dimension=64)  # same name, another dimension: another model
    (articles / "second.txt").write_text(SECOND_ARTICLE, encoding="utf-8")
    before = chunk_count(data)

    with pytest.raises(IndexMismatchError, match=r"\(256-d\).*\(64-d\)"):
        ingest_function()([articles], settings, embedder=small)
    assert small.texts_encoded > 0  # it got as far as embedding, and wrote nothing
    assert chunk_count(data) == before
    retriever = build_retriever(settings, embedder=small)
    with pytest.raises(IndexMismatchError, match="rag ingest --rebuild"):
        retriever.invoke(KFOR)


def test_other_chunk_settings_are_refused_and_rebuild_switches_to_them(
    runner: CliRunner, data: Path, articles: Path
) -> None:
    before = chunk_count(data)
    one_line_error(
        run(runner, "ingest", "-q", "--chunk-size", "400", "--data-dir", str(data), str(articles)),
        "chunk_size 1000, chunk_overlap 150",
        "chunk_size 400, chunk_overlap 150",
        "rag ingest --rebuild",
        "RAG_CHUNK_SIZE=1000",
    )
    assert chunk_count(data) == before
    code, checks = info(runner, data, RAG_CHUNK_SIZE="400")
    assert code == 1 and "chunk_size 400" in checks["index settings"]["detail"]
    assert_healthy(runner, data)  # with the settings it was built with, all is well

    rebuild(runner, data, articles, "--chunk-size", "400")
    assert chunk_count(data) > before  # smaller chunks: more of them
    assert_healthy(runner, data, RAG_CHUNK_SIZE="400")
    answers(runner, data, RAG_CHUNK_SIZE="400")


# --- a half-written manifest, leftovers of an interrupted ingest ----------------------------------


def _drop_two_chunks(data: Path) -> None:
    store = open_store(settings_for(data), create=False)
    store.delete_chunks(sorted(store.all_chunk_ids())[:2])


@pytest.mark.parametrize("fix", ["ingest", "rebuild"])
def test_manifest_naming_missing_chunks_fails_and_ingest_repairs_it(
    runner: CliRunner, data: Path, articles: Path, fix: str
) -> None:
    _drop_two_chunks(data)
    code, checks = info(runner, data)
    assert code == 1
    manifest = checks["manifest"]
    assert not manifest["ok"]
    assert "names 2 chunks of 1 articles that are not in the store" in manifest["detail"]
    assert "run `rag ingest <paths>` to finish it" in manifest["detail"]

    if fix == "ingest":
        result = ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
        assert "1 updated" in result.stdout  # unchanged on disk, but written again
    else:
        rebuild(runner, data, articles)
    assert_healthy(runner, data)
    answers(runner, data)


def test_chunks_an_interrupted_ingest_left_are_a_warning_and_ingest_finishes_it(
    runner: CliRunner, data: Path, articles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (articles / "second.txt").write_text(SECOND_ARTICLE, encoding="utf-8")

    def killed(self: ChunkStore, records: Any) -> None:
        raise KeyboardInterrupt  # between the chunks and their manifest records

    with monkeypatch.context() as patch:
        patch.setattr(ChunkStore, "commit_articles", killed)
        result = run(runner, "ingest", "-q", "--data-dir", str(data), str(articles))
    assert result.exit_code == 130
    store = open_store(settings_for(data), create=False)
    [committed] = store.manifest().values()  # the seed article only
    left = chunk_count(data) - len(committed.chunk_ids)
    assert left >= 1

    code, checks = info(runner, data)
    assert code == 0  # leftovers alone are not an error
    manifest = checks["manifest"]
    assert manifest["ok"] and manifest["warning"]
    assert f"{left} chunks that no article names" in manifest["detail"]
    assert "run `rag ingest <paths>` to finish it" in manifest["detail"]
    assert "[warn] manifest:" in ok(run(runner, "info", "--data-dir", str(data))).stdout
    answers(runner, data)  # the committed article still answers

    ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
    assert_healthy(runner, data)
    _, checks = info(runner, data)
    assert "2 articles" in checks["index"]["detail"]


def test_rebuild_recovers_from_leftover_chunks_too(
    runner: CliRunner, data: Path, articles: Path
) -> None:
    store = open_store(settings_for(data), create=False)
    vector = np.zeros((1, 256), dtype=np.float32)
    vector[0, 0] = 1.0
    store.upsert_chunks(["gone.txt#0"], vector, ["orphan text"], [{"article_id": "gone.txt"}])
    _, checks = info(runner, data)
    assert checks["manifest"]["warning"]
    assert "1 chunks that no article names" in checks["manifest"]["detail"]
    rebuild(runner, data, articles)
    assert_healthy(runner, data)
    assert "gone.txt#0" not in open_store(settings_for(data), create=False).all_chunk_ids()


# --- the BM25 cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bm25_cache_missing_or_corrupt_is_a_warning_rebuilt_on_the_next_question(
    runner: CliRunner, data: Path, articles: Path, damage: str
) -> None:
    settings = settings_for(data)
    cache = bm25_path(settings, open_store(settings, create=False))
    assert cache.exists()
    if damage == "missing":
        cache.unlink()
    else:
        cache.write_bytes(b"not an npz file")
    from rag.index import bm25

    bm25._cache.clear()  # a fresh process

    code, checks = info(runner, data)
    assert code == 0
    check = checks["bm25"]
    assert check["ok"] and check["warning"]
    assert ("missing" if damage == "missing" else "unreadable") in check["detail"]
    assert "rebuilt on the next question" in check["detail"]
    # `rag info` only looks: the cache is still as damaged as it was
    assert cache.exists() == (damage == "corrupt")

    answers(runner, data)
    assert_healthy(runner, data)  # the question rebuilt it

    cache.write_bytes(b"garbage again")
    rebuild(runner, data, articles)
    assert_healthy(runner, data)


# --- a Chroma database that cannot be opened ------------------------------------------------


def test_unopenable_database_is_explained_and_rebuild_replaces_it(
    runner: CliRunner, data: Path, articles: Path, tmp_path: Path
) -> None:
    settings = settings_for(data)
    forget_client(settings)  # as a new process would find it
    (data / "chroma" / "chroma.sqlite3").write_bytes(b"this is not a database" * 200)
    keep = data / "uploads" / "keep.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")

    code, checks = info(runner, data)
    assert code == 1
    detail = checks["index"]["detail"]
    assert "cannot be opened" in detail and "run `rag ingest --rebuild <paths>`" in detail
    assert set(checks) == {"index", "llm"}
    one_line_error(run(runner, "ask", "--llm", "extractive", "--data-dir", str(data), KFOR))

    result = rebuild(runner, data, articles)
    assert "cannot be opened" in result.stderr and "removing it" in result.stderr
    assert_healthy(runner, data)
    answers(runner, data)
    assert keep.read_text() == "mine" and outside.read_text() == "not yours"


def test_rebuild_with_paths_that_do_not_exist_drops_nothing(
    runner: CliRunner, data: Path, tmp_path: Path
) -> None:
    before = chunk_count(data)
    one_line_error(
        run(runner, "ingest", "--rebuild", "--data-dir", str(data), str(tmp_path / "typo")),
        "does not exist; nothing was dropped",
    )
    assert chunk_count(data) == before
    answers(runner, data)


def test_rebuild_against_a_chroma_server_drops_only_the_two_collections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = chromadb.EphemeralClient()
    name = f"health-{tmp_path.name}"[:60]
    neighbour = client.get_or_create_collection(f"{name}-other")
    neighbour.add(ids=["x"], embeddings=[[1.0]], documents=["x"])
    settings = Settings(
        data_dir=tmp_path / "data", chroma_url="http://127.0.0.1:9", collection=name
    )
    (tmp_path / "data" / "chroma").mkdir(parents=True)
    store = ChunkStore(client, name, location=str(settings.chroma_url))
    monkeypatch.setattr("rag.index.health.open_store", lambda *_a, **_k: store)

    done = reset_index(settings)
    names = {c.name for c in client.list_collections()}
    assert name not in names and f"{name}-articles" not in names
    assert f"{name}-other" in names  # another collection on the server is left alone
    assert (tmp_path / "data" / "chroma").is_dir()  # nothing local is removed
    assert len(done) == 1 and "dropping the collections" in done[0]


# --- a full disk while ingesting ------------------------------------------------------------


def test_a_full_disk_mid_ingest_is_one_line_and_the_index_stays_usable(
    runner: CliRunner, data: Path, articles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (articles / "second.txt").write_text(SECOND_ARTICLE, encoding="utf-8")
    (articles / "nato-kosovo-kfor.txt").write_text(
        SEED_ARTICLE.read_text(encoding="utf-8") + "\nKFOR said more troops may follow.\n",
        encoding="utf-8",
    )
    real = ChunkStore.upsert_chunks

    def fills_up(
        self: ChunkStore, ids: Any, embeddings: Any, documents: Any, metadatas: Any
    ) -> None:
        half = max(1, len(ids) // 2)  # part of the group lands, then the disk is full
        real(self, ids[:half], embeddings[:half], documents[:half], metadatas[:half])
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(ChunkStore, "upsert_chunks", fills_up)
        result = run(runner, "ingest", "-q", "--data-dir", str(data), str(articles))
    one_line_error(result, "disk full while writing", "free space and run `rag ingest` again")

    answers(runner, data)  # the previous index still answers
    code, checks = info(runner, data)
    assert code == 0 and "1 articles" in checks["index"]["detail"]
    ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
    assert_healthy(runner, data)
    _, checks = info(runner, data)
    assert "2 articles" in checks["index"]["detail"]
