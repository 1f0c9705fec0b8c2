"""The kill loop: SIGKILL `rag ingest` at random points, again and again on one data dir, with
the articles changing between runs and a question answered after every kill; then one complete
ingest. The store must then equal a clean ingest of the same files into a fresh data dir: the
same chunks in Chroma, the same manifest, the same BM25 index; no duplicates, no orphans.

``run_kill_loop`` is shared with ``benchmarks/reliability.py`` (more kills, the real embedder).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings

from .conftest import subprocess_env

pytestmark = pytest.mark.integration

_CITIES = "Tallinn Lisbon Accra Hanoi Quito Perth Oslo Lima Kyiv Dakar".split()


def _name(i: int) -> str:
    return f"Zelvar{i}"


def _length(i: int) -> int:
    return 100 + (i * 37) % 900


def write_corpus(folder: Path, ids: list[int], version: dict[int, int]) -> None:
    """One article per id; ``version[i]`` adds update paragraphs (a changed article)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"bridge-{i:05d}.txt" for i in ids}
    for old in folder.glob("bridge-*.txt"):
        if old.name not in wanted:
            old.unlink()
    for i in ids:
        city = _CITIES[i % len(_CITIES)]
        body = [
            f"The {_name(i)} bridge in {city} is {_length(i)} metres long. "
            f"It carries two tram lines and opened in {1950 + i % 70}.",
            f"Engineers inspected the {_name(i)} bridge last month and found minor cracks. "
            f"The city council of {city} approved repairs worth {i % 90 + 5} million euros.",
        ]
        body += [
            f"Update {v}: traffic on the {_name(i)} bridge was diverted for {v + 2} hours "
            f"while crews replaced {v * 3 + 4} lamps."
            for v in range(version.get(i, 0))
        ]
        text = f"{_name(i)} bridge report\n\n" + "\n\n".join(body) + "\n"
        path = folder / f"bridge-{i:05d}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def fresh_clients() -> None:
    """Forget cached Chroma clients, so the next open reads what other processes wrote."""
    from chromadb.api.client import SharedSystemClient

    import rag.index.bm25 as bm25
    import rag.index.store as store

    store._clients.clear()
    bm25._cache.clear()
    SharedSystemClient.clear_system_cache()


def store_state(
    data_dir: Path, embedding_model: str = "keyword", **settings_: Any
) -> dict[str, Any]:
    """Everything that must match between two data dirs (generations aside); ``settings_``
    (e.g. ``chroma_url``) name a store elsewhere than the data dir."""
    from rag.index.bm25 import BM25Index
    from rag.index.snapshot import Index, bm25_path
    from rag.index.store import open_store

    fresh_clients()
    settings = Settings(data_dir=data_dir, embedding_model=embedding_model, **settings_)
    store = open_store(settings, create=False)
    manifest = {aid: asdict(rec) for aid, rec in store.manifest().items()}
    chunks = {cid: (text, meta) for cid, text, meta in store.iter_chunks()}
    live = [cid for rec in manifest.values() for cid in rec["chunk_ids"]]
    try:  # the cache on disk, as the last ingest left it
        bm25 = BM25Index.load(bm25_path(settings, store))
    except Exception:  # unreadable: reported as not current, compared as rebuilt
        bm25 = Index(settings, store).snapshot().bm25
        bm25.generation = -1
    state = {
        "manifest": manifest,
        "chunks": chunks,
        "chunk_count": store.chunk_count(),
        "duplicates": len(live) - len(set(live)),
        "orphans": sorted(set(chunks) - set(live)),
        "missing": sorted(set(live) - set(chunks)),
        "bm25_current": bm25.generation == store.generation(),
        "bm25": _bm25_rows(bm25),
    }
    fresh_clients()
    return state


def _bm25_rows(index: Any) -> dict[str, dict[str, float]]:
    """BM25 weights by chunk id and term: independent of row order (Chroma returns chunks in
    its own storage order, which differs between two stores with different histories)."""
    terms = {col: term for term, col in index.vocab.items()}
    matrix = index.matrix.tocsr()
    rows = {}
    for row, cid in enumerate(index.ids):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        rows[cid] = {
            terms[int(col)]: round(float(w), 4)
            for col, w in zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True)
        }
    return rows


def compare_states(got: dict[str, Any], clean: dict[str, Any]) -> list[str]:
    """What differs between a store and a clean one, or is wrong in it (empty: equal)."""
    problems = []
    for key in ("orphans", "missing"):
        if got[key]:
            problems.append(f"{len(got[key])} {key}")
    if got["duplicates"]:
        problems.append(f"{got['duplicates']} duplicate chunk ids")
    if got["chunk_count"] != len(got["chunks"]):
        problems.append("chunk count differs from the stored ids")
    if not got["bm25_current"]:
        problems.append("BM25 cache is not at the store generation")
    if set(got["chunks"]) != set(clean["chunks"]):
        problems.append(
            f"chunk ids differ: {len(set(got['chunks']) - set(clean['chunks']))} extra, "
            f"{len(set(clean['chunks']) - set(got['chunks']))} missing"
        )
    elif got["chunks"] != clean["chunks"]:
        problems.append("chunk texts or metadata differ")
    if got["manifest"] != clean["manifest"]:
        problems.append("manifests differ")
    live = {cid for rec in got["manifest"].values() for cid in rec["chunk_ids"]}
    if set(got["bm25"]) != live:
        problems.append("BM25 rows are not exactly the live chunks")
    if got["bm25"] != clean["bm25"]:
        problems.append("BM25 weights differ")
    return problems


def ingest_cmd(folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rag", "ingest", str(folder), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def library_ask(data_dir: Path, embedding_model: str) -> Callable[[str], dict[str, Any]]:
    """Ask with a freshly opened chain (what a new app process would see)."""
    from rag.answer.chain import build_chain

    def ask(question: str) -> dict[str, Any]:
        fresh_clients()
        settings = Settings(data_dir=data_dir, embedding_model=embedding_model, llm="extractive")
        out = build_chain(settings).invoke({"input": question})
        return {"answer": out["answer"], "refused": out["refused"]}

    return ask


def run_kill_loop(
    root: Path,
    *,
    kills: int,
    articles: int,
    seed: int = 0,
    embedding_model: str = "keyword",
    ask: Callable[[Path, str], dict[str, Any]] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the loop under ``root`` and return what happened (see the module docstring).

    Args:
        root: an empty folder for the articles and both data dirs.
        kills: SIGKILLs to deliver.
        articles: articles in the corpus (about a third change between runs).
        seed: drives which articles change and when each kill lands.
        embedding_model: ``keyword`` (fast) or ``bundled`` (the real embedder).
        ask: ``ask(data_dir, question) -> {"answer", "refused"}``; default: the library.
        log: progress lines.
    """
    rng = random.Random(seed)
    folder, data, clean_data = root / "articles", root / "data", root / "clean"
    env = subprocess_env(RAG_EMBEDDING_MODEL=embedding_model, RAG_DATA_DIR=str(data))
    ids = list(range(articles))
    version: dict[int, int] = {}
    stable = ids[: max(5, articles // 20)]  # never changed: always answerable
    write_corpus(folder, ids, version)
    started = time.monotonic()
    first = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(folder), "-q"],
        env=env,
        capture_output=True,
        timeout=3600,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    full_s = time.monotonic() - started
    log(f"initial ingest of {articles} articles: {full_s:.1f}s")
    asker = ask or (lambda d, q: library_ask(d, embedding_model)(q))
    next_id = articles
    delivered = completed = answered = correct = stable_asked = 0
    failures: list[str] = []
    for round_ in range(1, kills + 1):
        # change about a third of the articles, delete a few, add a few
        changing = [i for i in ids if i not in stable]
        for i in rng.sample(changing, len(changing) // 3):
            version[i] = version.get(i, 0) + 1
        for i in rng.sample(changing, max(1, len(changing) // 50)):
            ids.remove(i)
        ids += list(range(next_id, next_id + max(1, articles // 50)))
        next_id = ids[-1] + 1
        write_corpus(folder, ids, version)
        delay = rng.uniform(0.1, 0.8) * full_s  # a changed third takes less than a full run
        proc = ingest_cmd(folder, env)
        try:
            proc.wait(timeout=delay)
            completed += 1  # finished before the kill landed
            if proc.returncode != 0:
                failures.append(f"round {round_}: ingest exited {proc.returncode}")
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            delivered += 1
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        proc.stderr.close()
        if b"Traceback" in stderr:
            failures.append(f"round {round_}: traceback: {stderr[-500:]!r}")
        for i in (rng.choice(stable), rng.choice(ids)):
            question = f"How long is the {_name(i)} bridge?"
            try:
                reply = asker(data, question)
            except Exception as exc:
                failures.append(f"round {round_}: {question!r} raised {type(exc).__name__}: {exc}")
                continue
            answered += 1  # a reply, no error
            right = not reply["refused"] and str(_length(i)) in reply["answer"]
            correct += right
            stable_asked += i in stable
            if not right and i in stable:  # an added article may not be committed yet
                failures.append(f"round {round_}: {question!r} -> {reply['answer']!r}")
        log(f"round {round_}: killed after {delay:.1f}s" if proc.returncode == -9 else "")
    final = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(folder), "-q"],
        env=env,
        capture_output=True,
        timeout=3600,
    )
    assert final.returncode == 0, final.stderr[-2000:]
    clean_env = {**env, "RAG_DATA_DIR": str(clean_data)}
    clean = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(folder), "-q"],
        env=clean_env,
        capture_output=True,
        timeout=3600,
    )
    assert clean.returncode == 0, clean.stderr[-2000:]
    got, want = store_state(data, embedding_model), store_state(clean_data, embedding_model)
    problems = compare_states(got, want)
    return {
        "kills_requested": kills,
        "kills_delivered": delivered,
        "runs_completed_before_kill": completed,
        "questions": 2 * kills,
        "questions_answered": answered,
        "questions_correct": correct,
        "questions_about_unchanged_articles": stable_asked,
        "failures": failures,
        "articles_final": len(want["manifest"]),
        "chunks_final": len(want["chunks"]),
        "store_equals_clean_ingest": not problems,
        "differences": problems,
        "initial_ingest_s": round(full_s, 1),
    }


def test_kill_loop_store_equals_a_clean_ingest(tmp_path: Path) -> None:
    result = run_kill_loop(tmp_path, kills=5, articles=300, seed=14)
    assert result["failures"] == []
    assert result["kills_delivered"] >= 3, result  # most runs are killed mid-way
    assert result["store_equals_clean_ingest"], result["differences"]
    assert result["questions_answered"] == result["questions"]
    assert result["questions_correct"] >= result["questions_about_unchanged_articles"]


def test_compare_states_sees_orphans_and_differences() -> None:
    base: dict[str, Any] = {
        "manifest": {"a": {"chunk_ids": ["a#1"]}},
        "chunks": {"a#1": ("t", {})},
        "chunk_count": 1,
        "duplicates": 0,
        "orphans": [],
        "missing": [],
        "bm25_current": True,
        "bm25": {"a#1": {"t": 1.0}},
    }
    assert compare_states(base, base) == []
    orphaned = {**base, "chunks": {**base["chunks"], "a#2": ("u", {})}, "orphans": ["a#2"]}
    assert compare_states(orphaned, base) == [
        "1 orphans",
        "chunk count differs from the stored ids",
        "chunk ids differ: 1 extra, 0 missing",
    ]
    stale = {**base, "bm25_current": False, "bm25": {"a#1": {"t": 2.0}}}
    assert compare_states(stale, base) == [
        "BM25 cache is not at the store generation",
        "BM25 weights differ",
    ]
