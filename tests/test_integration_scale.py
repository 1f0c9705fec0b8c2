"""Integration: one `chroma run` server shared by several long-lived app processes.

Two app processes (the real `rag chat`, and a small library-level app that keeps one
``build_chain()`` alive and answers JSON lines) answer questions against the same server at
the same time, while other processes write to it. Each app has its own data dir, so its BM25
index is its own: what it knows of other processes' writes comes only through the store's
generation counter.
"""

from __future__ import annotations

import codecs
import json
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from rag.answer.prompts import NOT_FOUND
from rag.config import Settings
from rag.index.bm25 import BM25Index
from rag.index.snapshot import bm25_path
from rag.index.store import ChunkStore, open_store
from rag.ingestion.pipeline import ingest

from .conftest import subprocess_env

pytestmark = pytest.mark.integration

STARTUP_S = 240.0  # loading the bundled embedder in a cold process
REPLY_S = 120.0


class _Article(NamedTuple):
    file: str
    title: str
    published: str
    body: str


BRIDGE = _Article(
    "bridge.txt",
    "Lindqvist Harbor Bridge opens in Tallinn",
    "2024-05-02",
    (
        "The Lindqvist Harbor Bridge opened to traffic in Tallinn on Thursday after four years "
        "of construction. The Lindqvist Harbor Bridge is 1,240 metres long and carries two tram "
        "lines. City officials expect about 30,000 vehicles to cross it every day."
    ),
)
FESTIVAL = _Article(
    "festival.txt",
    "Marenko Jazz Festival breaks attendance record",
    "2024-06-10",
    (
        "The Marenko Jazz Festival drew 18,500 visitors over three days, a record for the "
        "event. The saxophonist Ilse Varga closed the festival on Sunday night. Tickets sold out "
        "two weeks in advance."
    ),
)
OBSERVATORY = _Article(
    "observatory.txt",
    "Quillfeather Observatory unveils a new telescope",
    "2024-07-15",
    (
        "The Quillfeather Observatory telescope has a mirror 6.5 metres wide, the observatory "
        "said on Monday. Astronomers plan to use it to survey distant galaxies. The project cost "
        "210 million dollars."
    ),
)
Q_BRIDGE = "How long is the Lindqvist Harbor Bridge?"
Q_FESTIVAL = "How many visitors did the Marenko Jazz Festival draw?"
Q_OBSERVATORY = "How wide is the mirror of the Quillfeather Observatory telescope?"

# A long-lived app built on the library, as a web backend would be: one chain for its lifetime.
APP = r"""
import json, sys
from rag import Settings, build_chain
from rag.errors import RagError

chain = build_chain(Settings())
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    if not line.strip():
        break
    try:
        out = chain.invoke({"input": line.strip(), "chat_history": []})
    except RagError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        continue
    snapshot = chain.retriever.index.snapshot()
    print(json.dumps({
        "answer": out["answer"],
        "refused": out["refused"],
        "cited": [c["title"] for c in out["citations"] if c["supported"]],
        "shown": [d.metadata["title"] for d in out["context"]],
        "generation": snapshot.generation,
        "bm25": [snapshot.bm25.generation, len(snapshot.bm25)],
    }), flush=True)
"""


# Saves and reloads one BM25 cache file over and over, as an app does after each generation move.
SAVER = r"""
import json, sys
from pathlib import Path
from rag.index.bm25 import BM25Index

path, generation = Path(sys.argv[1]), int(sys.argv[2])
ids = [f"chunk-{i}" for i in range(2000)]
texts = [f"term{i} shared{i % 40} text" for i in range(2000)]
index = BM25Index.build(ids, texts, generation=generation)
failures = []
for _ in range(60):
    index.save(path)
    try:
        assert BM25Index.load(path).ids == ids
    except Exception as exc:
        failures.append(repr(exc))
print(json.dumps(failures))
"""


def _write(corpus: Path, a: _Article) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    head = f"---\ntitle: {a.title}\nsource: Test Wire\npublished: {a.published}\n---\n"
    (corpus / a.file).write_text(head + a.body + "\n", encoding="utf-8")


class _App:
    """A long-lived process fed questions on stdin; a thread collects what it prints."""

    separator = "\n"

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._stderr = log.open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        self._chunks: queue.Queue[str | None] = queue.Queue()
        self._buffer = ""
        threading.Thread(target=self._pump, daemon=True, name=f"read-{name}").start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while data := self.proc.stdout.read1(65536):
            self._chunks.put(decoder.decode(data))
        self._chunks.put(None)

    def _fail(self, why: str) -> None:
        self._stderr.flush()
        tail = self.log.read_text(errors="replace")[-3000:]
        out = self._buffer[-2000:]
        pytest.fail(f"{self.name}: {why}\n--- stdout so far ---\n{out}\n--- stderr ---\n{tail}")

    def _next(self, timeout: float) -> str:
        """The text up to the next separator."""
        deadline = time.monotonic() + timeout
        while self.separator not in self._buffer:
            try:
                chunk = self._chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._fail(f"no reply within {timeout:.0f}s")
            if chunk is None:
                self._fail(f"exited with code {self.proc.wait()}")
            self._buffer += chunk  # type: ignore[operator]
        head, self._buffer = self._buffer.split(self.separator, 1)
        return head

    def wait_ready(self) -> None:
        self._next(STARTUP_S)

    def send(self, questions: list[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{q}\n" for q in questions).encode())
        self.proc.stdin.flush()

    def replies(self, n: int) -> list[dict[str, Any]]:
        return [self.parse(self._next(REPLY_S)) for _ in range(n)]

    def parse(self, text: str) -> dict[str, Any]:
        reply = json.loads(text)
        if "error" in reply:
            self._fail(f"error: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: a clean exit
                self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self._stderr.close()


class _ChatApp(_App):
    """`rag chat`: each reply runs up to the next `you> ` prompt."""

    separator = "you> "
    _SOURCE = re.compile(r"^\[\d+\] (.+?)(?: \([^()]*\))?$", re.MULTILINE)

    def wait_ready(self) -> None:
        banner = self._next(STARTUP_S)
        assert "Ask about the articles" in banner, banner

    def parse(self, text: str) -> dict[str, Any]:
        answer, _, sources = text.partition("\n\n")
        header = sources.split("\n", 1)[0].strip()
        titles = self._SOURCE.findall(sources)
        refused = answer.strip().startswith(NOT_FOUND)
        if not answer.strip():
            self._fail(f"empty reply {text!r}")
        return {
            "answer": answer.strip(),
            "refused": refused,
            "cited": titles if header == "Sources:" else [],
            "shown": titles,
        }


def _check_bm25(store: ChunkStore, data_dir: Path) -> None:
    """The BM25 index an app saved in its data dir: the store's generation, live chunks only."""
    bm25 = BM25Index.load(bm25_path(Settings(data_dir=data_dir), store))
    live = sorted(cid for art in store.manifest().values() for cid in art.chunk_ids)
    assert (bm25.generation, sorted(bm25.ids)) == (store.generation(), live), data_dir


def _check_answered(reply: dict[str, Any], fact: str, title: str, who: str) -> None:
    assert not reply["refused"] and fact in reply["answer"], f"{who}: {reply}"
    assert reply["cited"] and reply["cited"][0] == title, f"{who}: {reply}"


def _check_refused(reply: dict[str, Any], who: str) -> None:
    assert reply["refused"] and reply["cited"] == [], f"{who}: {reply}"


def test_two_app_processes_share_one_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, BRIDGE)
    _write(corpus, FESTIVAL)
    writer = Settings(data_dir=tmp_path / "writer", chroma_url=chroma_server)
    first = ingest([corpus], writer)
    assert len(first.added) == 2 and not first.failed

    def env(data_dir: str) -> dict[str, str]:
        return subprocess_env(
            RAG_CHROMA_URL=chroma_server,
            RAG_DATA_DIR=str(tmp_path / data_dir),
            RAG_LLM="extractive",
            RAG_EMBEDDING_THREADS="1",  # modest CPU: three processes embed on this machine
        )

    store = open_store(writer, create=False)

    def check_refreshed(app_reply: dict[str, Any]) -> None:
        """Both apps' BM25 indexes and the library app's snapshot are at the store's generation."""
        generation = store.generation()
        chunks = sum(len(art.chunk_ids) for art in store.manifest().values())
        assert app_reply["generation"] == generation, app_reply
        assert app_reply["bm25"] == [generation, chunks], app_reply
        for data_dir in ("chat", "app"):
            _check_bm25(store, tmp_path / data_dir)

    apps: list[_App] = []

    def ask(questions: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Every app gets all the questions before any reply is read: they work at once."""
        for app in apps:
            app.send(questions)
        return {app.name: app.replies(len(questions)) for app in apps}

    try:
        chat = [sys.executable, "-m", "rag", "chat"]
        apps.append(_ChatApp("rag chat", chat, env("chat"), tmp_path / "chat.log"))
        apps.append(
            _App("library app", [sys.executable, "-c", APP], env("app"), tmp_path / "app.log")
        )
        for app in apps:
            app.wait_ready()

        # 1. Both answer from the shared index; neither knows about the observatory yet.
        replies = ask([Q_BRIDGE, Q_FESTIVAL, Q_OBSERVATORY])
        for who, (bridge, festival, observatory) in replies.items():
            _check_answered(bridge, "1,240", BRIDGE.title, who)
            _check_answered(festival, "18,500", FESTIVAL.title, who)
            _check_refused(observatory, who)

        # 2. A third process adds an article through the server; the running apps see it.
        _write(corpus, OBSERVATORY)
        added = subprocess.run(
            [sys.executable, "-m", "rag", "ingest", str(corpus), "--json"],
            env=env("ingester"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert added.returncode == 0, added.stdout + added.stderr
        report = json.loads(added.stdout)
        # the same article ids as the first writer's: nothing duplicated, nothing pruned
        assert (report["added"], report["unchanged"], report["removed"]) == (1, 2, 0)
        replies = ask([Q_OBSERVATORY, Q_BRIDGE])
        for who, (observatory, bridge) in replies.items():
            _check_answered(observatory, "6.5", OBSERVATORY.title, who)
            _check_answered(bridge, "1,240", BRIDGE.title, who)
        check_refreshed(replies["library app"][-1])

        # 3. An article is deleted and the corpus re-ingested: no app retrieves it any more.
        (corpus / FESTIVAL.file).unlink()
        pruned = ingest([corpus], writer)
        assert len(pruned.removed) == 1 and pruned.articles_total == 2
        replies = ask([Q_FESTIVAL, Q_BRIDGE, Q_OBSERVATORY])
        for who, (festival, bridge, observatory) in replies.items():
            _check_refused(festival, who)
            _check_answered(bridge, "1,240", BRIDGE.title, who)
            _check_answered(observatory, "6.5", OBSERVATORY.title, who)
            for reply in (festival, bridge, observatory):
                assert FESTIVAL.title not in reply["shown"], f"{who} still retrieves it: {reply}"
        check_refreshed(replies["library app"][-1])
    finally:
        for app in apps:
            app.close()


def test_app_processes_sharing_a_data_dir_never_see_a_half_written_bm25_cache(
    tmp_path: Path,
) -> None:
    # Apps on one host may share a data dir (and so one BM25 cache file per store); all of them
    # rebuild and save when the generation moves. Each save must stay atomic for the others.
    path = tmp_path / "bm25" / "articles.npz"
    env = subprocess_env()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), str(generation)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for generation in (1, 2)
    ]
    try:
        outs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert json.loads(out) == [], out
    assert not list(path.parent.glob("*.tmp"))


def test_concurrent_commits_from_two_processes_never_share_a_generation(
    chroma_server: str, tmp_path: Path
) -> None:
    """Two writers bumping at once may read the same count; every commit moves the generation."""
    code = textwrap.dedent(
        """
        import json, sys
        from rag.config import Settings
        from rag.index.store import open_store
        store = open_store(Settings())
        print(json.dumps([store.bump_generation() for _ in range(25)]))
        """
    )
    env = subprocess_env(RAG_CHROMA_URL=chroma_server, RAG_DATA_DIR=str(tmp_path))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    generations = outs[0] + outs[1]
    assert len(set(generations)) == len(generations) == 50
    # (not monotonic: a writer may read a count another writer's lost update left behind;
    # readers only compare generations for equality)


def test_parallel_ingest_workers_on_disjoint_folders_share_one_server(
    chroma_server: str, tmp_path: Path
) -> None:
    """Two `rag ingest` processes, one folder each, at once: both commit, neither prunes."""
    folders = []
    for name, count in (("east", 6), ("west", 5)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(count):
            (folder / f"{name}-{i}.txt").write_text(
                f"{name.title()} report {i}\n\nThe {name} desk filed report number {i} "
                f"about harbour traffic, which reached {1000 + i} ships this month "
                "according to port officials.\n",
                encoding="utf-8",
            )
        folders.append(folder)
    env = subprocess_env(
        RAG_CHROMA_URL=chroma_server, RAG_DATA_DIR=str(tmp_path / "data"), RAG_EMBEDDING_THREADS="1"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rag", "ingest", str(f), "--json", "-q"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in folders
    ]
    outs = [p.communicate(timeout=STARTUP_S) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outs]
    assert sorted(r["added"] for r in reports) == [5, 6]
    assert all(not r["removed"] for r in reports)
    store = open_store(Settings(chroma_url=chroma_server, data_dir=tmp_path / "data"))
    manifest = store.manifest()
    assert len(manifest) == 11
    live = sorted(cid for a in manifest.values() for cid in a.chunk_ids)
    assert sorted(store.all_chunk_ids()) == live
    from rag.index.snapshot import Index

    snapshot = Index(
        Settings(chroma_url=chroma_server, data_dir=tmp_path / "reader"), store
    ).snapshot()
    assert snapshot.generation == store.generation() and sorted(snapshot.bm25.ids) == live
    assert len(snapshot.articles) == 11
