"""Load tests against the real servers: Locust runs, RSS sampling, ingest while people chat.

Used by tests/test_load.py (short, bounded runs) and benchmarks/bench_load.py (the long runs).
Locust runs in a subprocess (it monkey-patches the process with gevent) with the users of
benchmarks/locustfile.py; its CSV files and the locustfile's counters are read back.
Every server here listens on 127.0.0.1 only.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .conftest import REPO, _free_port, stop_process, subprocess_env

LOCUSTFILE = REPO / "benchmarks" / "locustfile.py"
SEED_QA = REPO / "evals" / "seed" / "qa.jsonl"
FAST = {"RAG_LLM": "extractive", "RAG_EMBEDDING_MODEL": "keyword"}
BUSY_SUFFIX = " [429 busy]"


def seed_questions(answerable_only: bool = False) -> list[str]:
    """The seed suite's questions, in file order."""
    rows = [json.loads(x) for x in SEED_QA.read_text(encoding="utf-8").splitlines() if x]
    return [r["question"] for r in rows if r["answerable"] or not answerable_only]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# --- servers --------------------------------------------------------------------------------
@dataclass
class Server:
    """A running `rag api` or `rag serve` on 127.0.0.1."""

    kind: str  # "api" or "page"
    root: str
    proc: subprocess.Popen[Any]
    log: Path
    data_dir: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _wait_for(url: str, proc: subprocess.Popen[Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit code {proc.poll()})")
        time.sleep(0.3)


@contextmanager
def running_server(
    kind: str, data_dir: Path, log_dir: Path, timeout: float = 180, **env: str
) -> Iterator[Server]:
    """`rag api` (kind "api") or `rag serve` (kind "page") over ``data_dir`` on a free port."""
    port = _free_port()
    command = "api" if kind == "api" else "serve"
    log = log_dir / f"rag-{command}-{port}.log"
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag", command, "--port", str(port), "-v"],
            env=subprocess_env(RAG_DATA_DIR=str(data_dir), **{**FAST, **env}),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            f"{root}/openapi.json" if kind == "api" else f"{root}/config", proc, timeout, command
        )
        yield Server(kind=kind, root=root, proc=proc, log=log, data_dir=data_dir)
    finally:
        stop_process(proc)


def index_corpus(paths: list[Path], data_dir: Path, **env: str) -> None:
    """`rag ingest` ``paths`` into ``data_dir`` (extractive, keyword embedder unless ``env``)."""
    run = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", *map(str, paths), "--quiet"],
        env=subprocess_env(RAG_DATA_DIR=str(data_dir), **{**FAST, **env}),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if run.returncode != 0:
        raise RuntimeError(f"rag ingest failed: {run.stderr[-500:]}")


# --- asking without Locust (checks and the memory run) --------------------------------------
def ask_api(client: httpx.Client, root: str, question: str) -> dict[str, Any]:
    """One chat completion: {status, answer, refused, citations, retry_after, message}."""
    body = {"model": "rag", "messages": [{"role": "user", "content": question}]}
    reply = client.post(f"{root}/v1/chat/completions", json=body, timeout=300)
    out: dict[str, Any] = {"status": reply.status_code}
    if reply.status_code == 200:
        data = reply.json()
        out.update(
            answer=data["choices"][0]["message"]["content"],
            refused=data["refused"],
            citations=data["citations"],
        )
    else:
        out.update(
            message=reply.json().get("error", {}).get("message", ""),
            retry_after=reply.headers.get("Retry-After"),
        )
    return out


def _gradio_call(
    client: httpx.Client, root: str, api_name: str, data: list[Any], session: str
) -> list[Any]:
    """Run a page event through Gradio's queue (/gradio_api/call/...); its final outputs."""
    join = client.post(
        f"{root}/gradio_api/call/{api_name}",
        json={"data": data, "session_hash": session},
        timeout=60,
    )
    join.raise_for_status()
    event_id = join.json()["event_id"]
    event = ""
    with client.stream("GET", f"{root}/gradio_api/call/{api_name}/{event_id}", timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event in ("complete", "error"):
                outputs = json.loads(line[6:])
                if event == "error":
                    raise RuntimeError(f"the page's {api_name} event failed: {outputs}")
                return list(outputs)
    raise RuntimeError(f"the page's {api_name} event ended without a result (last: {event!r})")


def ask_page(
    client: httpx.Client, root: str, question: str, session: str | None = None
) -> dict[str, Any]:
    """One question through the page: {status, answer (HTML), refused, cited, sources}."""
    outputs = _gradio_call(client, root, "respond", [question, None], session or _session())
    messages = outputs[0]
    content = messages[-1]["content"] if messages else ""
    text = json.dumps(content) if not isinstance(content, str) else content
    rest = json.dumps(outputs[1:])
    return {
        "status": 200,
        "answer": text,
        "refused": "rag-refusal" in text,
        "error": "rag-error" in text,
        "cited": "rag-cite" in text,
        "sources": "rag-card" in rest,
    }


def _session() -> str:
    return uuid.uuid4().hex[:11]


# --- ingesting while people chat -------------------------------------------------------------
@dataclass
class NewArticle:
    """An article the corpus does not have, with a question only it answers."""

    name: str
    text: str
    question: str
    fact: str


_PLACES = ["Velmar", "Ostrava Nova", "Kirrin Bay", "Tessaly Point", "Marrowdale", "Quillon"]


def new_article(i: int) -> NewArticle:
    """The ``i``-th new article (a harbour, a count of ferry passengers, today's date)."""
    place = _PLACES[i % len(_PLACES)] + ("" if i < len(_PLACES) else f" {i}")
    count = f"{4 + i},{812 + i:03d}"
    today = datetime.now(UTC).date().isoformat()
    text = (
        f"---\ntitle: Harbour of {place} reopens after the storm\nsource: example.org\n"
        f"published: {today}\n---\n\n"
        f"The harbour of {place} reopened on Tuesday after the storm. {count} ferry passengers "
        f"crossed from {place} on the first day, the port authority of {place} said.\n"
    )
    slug = place.lower().replace(" ", "-")
    return NewArticle(
        name=f"harbour-{slug}.md",
        text=text,
        question=f"How many ferry passengers crossed from {place} on the first day?",
        fact=count,
    )


def ingest_api(client: httpx.Client, root: str, article: NewArticle) -> dict[str, Any]:
    """POST the article to /v1/ingest: {ok, status, seconds, detail}."""
    started = time.perf_counter()
    files = [("files", (article.name, article.text.encode(), "text/markdown"))]
    reply = client.post(f"{root}/v1/ingest", files=files, timeout=600)
    seconds = time.perf_counter() - started
    ok = reply.status_code == 200 and reply.json()["files"][0]["status"] in ("added", "updated")
    return {
        "ok": ok,
        "status": reply.status_code,
        "seconds": round(seconds, 2),
        "detail": reply.text[:300],
    }


def ingest_page(client: httpx.Client, root: str, article: NewArticle, tmp: Path) -> dict[str, Any]:
    """Upload the article through the page (as its file box does) and run its ingest event."""
    started = time.perf_counter()
    path = tmp / article.name
    path.write_text(article.text, encoding="utf-8")
    with path.open("rb") as fh:
        up = client.post(
            f"{root}/gradio_api/upload", files=[("files", (article.name, fh))], timeout=120
        )
    up.raise_for_status()
    server_path = up.json()[0]
    data = [
        [{"path": server_path, "orig_name": article.name, "meta": {"_type": "gradio.FileData"}}]
    ]
    try:
        outputs = _gradio_call(client, root, "add_files", data, _session())
    except (RuntimeError, httpx.HTTPError) as exc:
        return {
            "ok": False,
            "status": 0,
            "seconds": round(time.perf_counter() - started, 2),
            "detail": str(exc),
        }
    status = str(outputs[0])
    seconds = time.perf_counter() - started
    ok = "Ask about them now" in status  # the page's line when an article was added or updated
    return {"ok": ok, "status": 200, "seconds": round(seconds, 2), "detail": status[:300]}


@dataclass
class IngestDuring:
    """Ingest ``articles`` into ``server`` at the given offsets (s) while a run goes on."""

    server: Server
    articles: list[NewArticle]
    at_seconds: list[float]
    tmp: Path
    results: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-during", daemon=True)

    def start(self) -> IngestDuring:
        self._thread.start()
        return self

    def join(self, timeout: float = 900) -> list[dict[str, Any]]:
        self._thread.join(timeout)
        return self.results

    def _run(self) -> None:
        started = time.monotonic()
        with httpx.Client() as client:
            for article, at in zip(self.articles, self.at_seconds, strict=True):
                time.sleep(max(0.0, at - (time.monotonic() - started)))
                try:
                    if self.server.kind == "api":
                        out = ingest_api(client, self.server.root, article)
                    else:
                        out = ingest_page(client, self.server.root, article, self.tmp)
                except Exception as exc:  # reported, never raised in the thread
                    out = {"ok": False, "status": 0, "seconds": 0, "detail": repr(exc)[:300]}
                out.update(article=article.name, at_s=round(time.monotonic() - started, 1))
                self.results.append(out)


def answerable_after(server: Server, articles: list[NewArticle]) -> list[dict[str, Any]]:
    """Ask each new article's question once the run is over: is its fact in the answer?"""
    out = []
    with httpx.Client() as client:
        for article in articles:
            if server.kind == "api":
                reply = ask_api(client, server.root, article.question)
            else:
                reply = ask_page(client, server.root, article.question)
            answer = str(reply.get("answer", ""))
            out.append(
                {
                    "article": article.name,
                    "question": article.question,
                    "answered": article.fact in answer,
                    "answer": answer[:300],
                }
            )
    return out


# --- RSS ---------------------------------------------------------------------------------
class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._t0 = time.monotonic()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._t0, rss_mb(self.pid)))
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, float]:
        values = [mb for _, mb in self.samples if mb] or [0.0]
        return {
            "first_mb": round(values[0], 1),
            "last_mb": round(values[-1], 1),
            "max_mb": round(max(values), 1),
        }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than two points)."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def memory_run(
    server: Server,
    questions: int,
    *,
    warmup: int = 50,
    threads: int = 4,
    every: int = 10,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``questions`` questions from ``threads`` clients; the server's RSS every ``every``.

    Page questions come in chats of two (a question, then a follow-up in the same Gradio
    session), so sessions accumulate on the server as they would with real visitors. Returns
    the RSS before, after the warm-up, at the end, the maximum, and the slope (MB per 100
    questions) from the warm-up on; answer kinds and errors are counted.
    """
    pool = seed_questions()
    lock = threading.Lock()
    done = 0
    samples: list[tuple[int, float]] = [(0, rss_mb(server.proc.pid))]
    counts = {"answered": 0, "refused": 0, "busy_429": 0, "errors": 0}
    errors: list[str] = []
    started = time.perf_counter()

    def worker(w: int) -> None:
        nonlocal done
        session = _session()
        with httpx.Client() as client:
            for k in range(w, questions, threads):
                question = pool[k % len(pool)]
                try:
                    if server.kind == "api":
                        reply = ask_api(client, server.root, question)
                    else:
                        if k // threads % 2 == 0:
                            session = _session()
                        reply = ask_page(client, server.root, question, session)
                        if reply["error"]:
                            reply["status"] = 500
                except Exception as exc:
                    reply = {"status": 0, "message": repr(exc)[:200]}
                with lock:
                    if reply["status"] == 200:
                        counts["refused" if reply.get("refused") else "answered"] += 1
                    elif reply["status"] == 429:
                        counts["busy_429"] += 1
                    else:
                        counts["errors"] += 1
                        errors.append(str(reply)[:300])
                    done += 1
                    if done % every == 0 or done == questions:
                        samples.append((done, rss_mb(server.proc.pid)))
                        if log and done % (every * 10) == 0:
                            log(f"  {done} questions, server RSS {samples[-1][1]:.0f} MB")

    workers = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    wall = time.perf_counter() - started
    after = [(n, mb) for n, mb in samples if n >= warmup]
    at_warmup = next((mb for n, mb in samples if n >= warmup), samples[-1][1])
    return {
        "server": server.kind,
        "questions": questions,
        "threads": threads,
        "warmup": warmup,
        **counts,
        "error_examples": errors[:5],
        "seconds": round(wall, 1),
        "rss_before_mb": round(samples[0][1], 1),
        "rss_after_warmup_mb": round(at_warmup, 1),
        "rss_last_mb": round(samples[-1][1], 1),
        "rss_max_mb": round(max(mb for _, mb in samples), 1),
        "growth_after_warmup_mb": round(samples[-1][1] - at_warmup, 1),
        "slope_mb_per_100_questions": round(_slope(after) * 100, 2),
        "samples": [[n, round(mb, 1)] for n, mb in samples],
    }


# --- Locust ------------------------------------------------------------------------------
@dataclass
class LocustRun:
    """What one headless Locust run measured."""

    user_class: str
    users: int
    seconds: float
    exit_code: int
    rows: list[dict[str, Any]]  # one per request name, plus "Aggregated"
    failures: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    counts: dict[str, Any]  # the locustfile's counters, and "answer_ms": every answer's time
    output_tail: str

    def row(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["name"] == name), None)

    @property
    def endpoints(self) -> list[dict[str, Any]]:
        """Rows of answered requests (not the 429 rows, not the aggregate)."""
        return [
            r
            for r in self.rows
            if r["name"] != "Aggregated" and not r["name"].endswith(BUSY_SUFFIX)
        ]

    @property
    def busy_429(self) -> int:
        return sum(r["requests"] for r in self.rows if r["name"].endswith(BUSY_SUFFIX))

    @property
    def errors(self) -> int:
        """Failed requests (a 429 with the clear message is not one) and user exceptions."""
        return sum(r["failures"] for r in self.rows if r["name"] != "Aggregated") + sum(
            int(e.get("count", 1)) for e in self.exceptions
        )

    @property
    def answered(self) -> int:
        return sum(r["requests"] - r["failures"] for r in self.endpoints if _is_answer(r["name"]))

    def summary(self) -> dict[str, Any]:
        times = sorted(self.counts.get("answer_ms", []))
        return {
            "user_class": self.user_class,
            "users": self.users,
            "seconds": self.seconds,
            "requests": sum(r["requests"] for r in self.rows if r["name"] != "Aggregated"),
            "answers": self.answered,
            "answers_per_s": round(self.answered / self.seconds, 2) if self.seconds else None,
            "errors": self.errors,
            "busy_429_clear": self.busy_429,
            "busy_429_unclear": self.counts.get("busy_429_unclear", 0),
            "gave_up_after_429s": self.counts.get("gave_up_after_429s", 0),
            "answers_with_citations": self.counts.get("answers_with_citations", 0),
            "refusals": self.counts.get("refusals", 0),
            # over every answered question, first and follow-up (queue wait included)
            "answer_p50_ms": _percentile(times, 0.50),
            "answer_p95_ms": _percentile(times, 0.95),
            "answer_max_ms": times[-1] if times else None,
        }


def _is_answer(name: str) -> bool:
    return name.startswith(("POST /v1/chat", "POST /v1/ask", "page:"))


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_locust(
    host: str,
    user_class: str,
    out_dir: Path,
    *,
    users: int,
    spawn_rate: float,
    seconds: int,
    timeout: float | None = None,
) -> LocustRun:
    """``locust --headless`` with ``user_class`` of benchmarks/locustfile.py against ``host``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"locust-{user_class}"
    report = out_dir / f"locust-{user_class}-counts.json"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{seconds}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "60",
        "--loglevel",
        "WARNING",
        user_class,
    ]
    env = subprocess_env(RAG_LOAD_REPORT=str(report))
    run = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout or seconds + 240,
        cwd=REPO,
    )
    rows = []
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {
                    "type": r["Type"],
                    "name": r["Name"],
                    "requests": int(r["Request Count"]),
                    "failures": int(r["Failure Count"]),
                    "per_s": _num(r["Requests/s"]),
                    "p50_ms": _num(r["50%"]),
                    "p95_ms": _num(r["95%"]),
                    "max_ms": _num(r["Max Response Time"]),
                }
            )
    with open(f"{prefix}_failures.csv", encoding="utf-8") as fh:
        failures = [
            {
                "method": r["Method"],
                "name": r["Name"],
                "error": r["Error"],
                "count": int(r["Occurrences"]),
            }
            for r in csv.DictReader(fh)
        ]
    exceptions: list[dict[str, Any]] = []
    exc_path = Path(f"{prefix}_exceptions.csv")
    if exc_path.exists():
        with exc_path.open(encoding="utf-8") as fh:
            exceptions = [
                {"count": int(r.get("Count", 1) or 1), "message": r.get("Message", "")[:300]}
                for r in csv.DictReader(fh)
            ]
    counts = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    return LocustRun(
        user_class=user_class,
        users=users,
        seconds=seconds,
        exit_code=run.returncode,
        rows=rows,
        failures=failures,
        exceptions=exceptions,
        counts=counts,
        output_tail=(run.stdout + run.stderr)[-3000:],
    )
