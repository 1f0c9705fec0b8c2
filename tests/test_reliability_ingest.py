"""Reliability of ingest on hostile files: no crash, every bad file reported with its reason,
every good article stored (tests/hostile.py writes the files), plus regressions for the bugs
the hostile set found."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.snapshot import Index
from rag.index.store import open_store
from rag.ingestion.load import Article, LoadFailure, iter_articles, load_file
from rag.ingestion.pipeline import ingest
from rag.testing import KeywordEmbedder

from .conftest import subprocess_env
from .hostile import HostileSet, article_titles_and_ids, check_outcome, generate

MB = 1024 * 1024
MAX_FILE_MB = 1.0


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> HostileSet:
    return generate(tmp_path_factory.mktemp("hostile") / "in", seed=14, copies=6, html_depth=4000)


def _assert_clean(outcome: dict[str, object]) -> None:
    problems = {k: outcome[k] for k in ("unreported", "wrong_reason", "lost", "unexpected")}
    assert not any(problems.values()), problems


def test_generator_is_deterministic_and_large(tmp_path: Path) -> None:
    one = generate(tmp_path / "a", seed=3, copies=2)
    two = generate(tmp_path / "b", seed=3, copies=2)
    assert (one.good_titles, one.good_ids, one.bad) == (two.good_titles, two.good_ids, two.bad)
    for name in one.bad:
        a, b = one.root / name, two.root / name
        random_id = name in ("size/huge.txt", "pdf/encrypted.pdf")  # pypdf picks a random /ID
        if a.is_file() and not a.is_symlink() and not random_id:
            assert a.read_bytes() == b.read_bytes(), name
    assert generate(tmp_path / "c", seed=4, copies=2).good_titles != one.good_titles


def test_every_hostile_file_loads_or_is_reported_with_its_reason(hostile: HostileSet) -> None:
    assert hostile.files >= 200 and hostile.hostile >= 150
    items = list(iter_articles([hostile.root], max_bytes=int(MAX_FILE_MB * MB)))
    failures = [i for i in items if isinstance(i, LoadFailure)]
    assert all(f.path and f.reason for f in failures)
    titles, ids = article_titles_and_ids(items)
    outcome = check_outcome(hostile, failures, titles, ids)
    _assert_clean(outcome)
    for article in (i for i in items if isinstance(i, Article)):  # storable text only
        for value in (article.id, article.title, article.text, article.source or ""):
            value.encode("utf-8")
        assert "\x1b" not in article.text and "\u200b" not in article.text


def test_hostile_folder_ingests_every_good_article(hostile: HostileSet, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_file_mb=MAX_FILE_MB)
    report = ingest([hostile.root], settings, embedder=KeywordEmbedder())
    store = open_store(settings)
    manifest = store.manifest()
    outcome = check_outcome(hostile, report.failed, [a.title for a in manifest.values()], manifest)
    _assert_clean(outcome)
    assert report.articles_total == len(manifest) >= outcome["good_articles"]  # type: ignore[operator]
    # the store is consistent: no orphan chunks, BM25 over exactly the live chunks
    live = {cid for art in manifest.values() for cid in art.chunk_ids}
    assert store.all_chunk_ids() == live
    assert set(Index(settings, store).snapshot().bm25.ids) == live
    # a second run changes nothing and reports the same failures
    again = ingest([hostile.root], settings, embedder=KeywordEmbedder())
    assert not again.changed and len(again.unchanged) == len(manifest)
    assert sorted((f.path, f.reason) for f in again.failed) == sorted(
        (f.path, f.reason) for f in report.failed
    )


def test_rag_ingest_cli_reports_hostile_files_without_a_traceback(
    hostile: HostileSet, tmp_path: Path
) -> None:
    env = subprocess_env(
        RAG_EMBEDDING_MODEL="keyword",
        RAG_DATA_DIR=str(tmp_path / "data"),
        RAG_MAX_FILE_MB=str(MAX_FILE_MB),
    )
    run = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(hostile.root), "-q"],
        env=env,
        capture_output=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert b"Traceback" not in run.stderr and b"Traceback" not in run.stdout
    assert b"\x1b" not in run.stderr and b"\x1b" not in run.stdout  # no escapes from file names
    skipped = [line for line in run.stderr.decode().splitlines() if line.startswith("skipped ")]
    assert len(skipped) >= len(hostile.bad)
    assert any("too large" in line and "huge.txt" in line for line in skipped)
    as_json = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(hostile.root), "--json", "-q"],
        env=env,
        capture_output=True,
        timeout=600,
        cwd=tmp_path,
        check=True,
    )
    report = json.loads(as_json.stdout)
    assert report["added"] == 0 and report["unchanged"] == report["articles_total"]
    assert len(report["failed"]) == len(skipped)


# --- regressions for bugs the hostile set found ----------------------------------------------


def test_symlink_loop_is_reported_by_ingest_not_raised(tmp_path: Path) -> None:
    """Path.resolve() raised RuntimeError on a loop inside ingest (the loader had reported it)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("Good\n\nA good body sentence.", encoding="utf-8")
    os.symlink("b.txt", folder / "a.txt")
    os.symlink("a.txt", folder / "b.txt")
    report = ingest([folder], Settings(data_dir=tmp_path / "data"), embedder=KeywordEmbedder())
    assert len(report.added) == 1
    assert sorted(Path(f.path).name for f in report.failed) == ["a.txt", "b.txt"]
    assert all("symbolic links" in f.reason for f in report.failed)


def test_lone_surrogates_and_undecodable_names_do_not_crash_ingest(tmp_path: Path) -> None:
    """JSON escapes like \\ud800 and non-UTF-8 file names made the UTF-8 encode in split/store
    raise UnicodeEncodeError, stopping the whole ingest."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "s.jsonl").write_text(
        '{"id": "s-\\ud800", "title": "Lone \\udc00", "text": "Body \\ud83d text here."}\n',
        encoding="utf-8",
    )
    with open(os.fsencode(folder) + b"/caf\xe9.txt", "wb") as fh:
        fh.write(b"Title\n\nBody of a file whose name is Latin-1.")
    (folder / "good.txt").write_text("Good\n\nA good body sentence.", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    report = ingest([folder], settings, embedder=KeywordEmbedder())
    assert sorted(report.added)[1:] == ["s-\ufffd"]
    (failure,) = report.failed
    assert failure.path.endswith("caf\udce9.txt") and "not valid UTF-8" in failure.reason
    record = open_store(settings).manifest()["s-\ufffd"]
    assert record.title == "Lone \ufffd"
    (failure,) = load_file(Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.txt")), max_bytes=MB)
    assert isinstance(failure, LoadFailure)


def test_deeply_nested_html_costs_linear_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marking block tags with insert_after walked each tag's subtree: quadratic, 2.6 s at 4,000
    nested <div>s, about half an hour at 100,000 (a 1 MB page). Counted in walks, not seconds."""
    import bs4.element

    calls = 0
    real = bs4.element.Tag._last_descendant

    def counting(self: bs4.element.Tag, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    depth = 3000
    page = tmp_path / "deep.html"
    page.write_text(
        "<title>Deep page</title>" + "<div>" * depth + "<p>Deep text here.</p>" + "</div>" * depth,
        encoding="utf-8",
    )
    monkeypatch.setattr(bs4.element.Tag, "_last_descendant", counting)
    (article,) = load_file(page, max_bytes=MB)
    assert isinstance(article, Article) and article.text == "Deep text here."
    assert calls < depth


def test_a_five_megabyte_line_loads_and_splits_into_bounded_chunks(tmp_path: Path) -> None:
    from rag.ingestion.chunk import split_article

    words = "harbor council budget railway festival reservoir museum bridge".split()
    rng = random.Random(5)  # not periodic: identical chunks would be stored once
    line = " ".join(rng.choice(words) for _ in range(5 * MB // 7))[: 5 * MB]
    path = tmp_path / "one-line.txt"
    path.write_text(line, encoding="utf-8")
    (article,) = load_file(path, max_bytes=20 * MB)
    assert isinstance(article, Article) and article.title == "one line"
    chunks = split_article(article, chunk_size=1000, chunk_overlap=150)
    assert all(0 < len(c.text) <= 1000 for c in chunks)
    assert all(c.text == article.text[c.start : c.end] for c in chunks)
    assert sum(len(c.text) for c in chunks) >= len(article.text) * 0.99  # nothing lost


def test_deleting_a_symlink_to_a_file_outside_the_folder_prunes_its_article(
    tmp_path: Path,
) -> None:
    """The origin was the link's target; outside the ingested folder, prune never saw it go."""
    folder, outside = tmp_path / "in", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    (outside / "t.txt").write_text("Outside\n\nA body sentence outside.", encoding="utf-8")
    (folder / "a.txt").write_text("Inside\n\nA body sentence inside.", encoding="utf-8")
    os.symlink(outside / "t.txt", folder / "link.txt")
    settings = Settings(data_dir=tmp_path / "data")
    assert len(ingest([folder], settings, embedder=KeywordEmbedder()).added) == 2
    (folder / "link.txt").unlink()
    report = ingest([folder], settings, embedder=KeywordEmbedder())
    assert [Path(a).name for a in report.removed] == ["link.txt"]
    assert report.articles_total == 1
