"""Question fuzz for the library, the CLI and the page: a clear message or a normal answer, never a
traceback; terminal escape sequences from articles never reach the terminal.

Model-free: the keyword embedder and extractive answers.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document

from rag.answer.chain import RagChain, build_chain
from rag.cli import main
from rag.config import Settings
from rag.errors import InputError, RagError
from rag.ingestion.pipeline import ingest
from rag.testing import KeywordEmbedder, StaticRetriever
from rag.text import valid_text

from .conftest import SEED_ARTICLE, subprocess_env

ESC_TITLE = "\x1b[1;31mRed alert\x1b[0m \x9b2J ferry \u202egnirts"
ESC_ARTICLE = {
    "id": "escape-1",
    "title": ESC_TITLE,
    "url": "https://example.com/\x1b]8;;evil\x07link",
    "source": "Wire\x1b[5m",
    "text": (
        "The Vellmar ferry carried 4,200 passengers on Sunday \x1b[2J\x1b[H during the storm. "
        "Harbor officials in Vellmar said the ferry would run again on Monday."
    ),
}
ESC_QUESTION = "How many passengers did the Vellmar ferry carry?"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import json

    root = tmp_path_factory.mktemp("questions")
    folder = root / "articles"
    folder.mkdir()
    (folder / SEED_ARTICLE.name).write_bytes(SEED_ARTICLE.read_bytes())
    (folder / "escape.json").write_text(json.dumps(ESC_ARTICLE), encoding="utf-8")
    data = root / "data"
    report = ingest([folder], Settings(data_dir=data), embedder=KeywordEmbedder())
    assert len(report.added) == 2, report.failed
    return data


@pytest.fixture(scope="module")
def chain(data_dir: Path) -> RagChain:
    return build_chain(Settings(data_dir=data_dir, embedding_model="keyword", llm="extractive"))


HISTORY = [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"Turn {i} about KFOR troops."}
    for i in range(600)
]
# (payload, "answer" | "error")
PAYLOADS: list[tuple[Any, str]] = [
    ({"input": ""}, "error"),
    ({"input": "   \n\t  "}, "error"),
    ({"input": None}, "error"),
    ("", "error"),
    (["not", "a", "dict"], "error"),
    (42, "error"),
    ({"input": "x" * 100_000}, "error"),
    ({"input": "How many KFOR troops? " * 200}, "error"),
    ({"input": "?!.,;:-" * 20}, "answer"),
    ({"input": "¿Cuántas tropas tiene la KFOR en Kosovo?"}, "answer"),
    ({"input": "科索沃维和部队有多少士兵？"}, "answer"),
    ({"input": "كم عدد جنود كفور؟"}, "answer"),
    ({"input": "Сколько солдат в KFOR?"}, "answer"),
    ({"input": "🙂" * 40}, "answer"),
    ({"input": "e\u0301\u0301\u0301\u200b\u200d\ufeff"}, "answer"),
    ({"input": "KFOR\x00 troops\x07\x08\x7f?"}, "answer"),
    ({"input": "\x1b[2J\x1b[H\x1b]0;pwned\x07How many KFOR troops?"}, "answer"),
    ({"input": "How many KFOR \ud800 troops \udcff?"}, "answer"),  # lone surrogates
    ({"input": "hello"}, "answer"),
    ({"input": "What about them?", "chat_history": HISTORY}, "answer"),
    (
        {"input": "And their number?", "chat_history": [None, 1, "x", ("a",), {"role": []}]},
        "answer",
    ),
    ({"input": "KFOR troops", "chat_history": 5}, "error"),
    ({"input": "KFOR troops", "chat_history": {"role": "user"}}, "error"),
    ({"input": "KFOR troops", "chat_history": [{"role": "user", "content": "\ud800"}]}, "answer"),
    ({"input": "KFOR troops", "today": "yesterday-ish"}, "error"),
    ({"input": "KFOR troops", "today": "2024-02-30"}, "error"),
    ({"input": "KFOR troops", "today": "9999-99-99"}, "error"),
    ({"input": "KFOR troops", "today": 20240101}, "answer"),  # a YYYYMMDD number is a date
    ({"input": "KFOR troops", "today": 2024.5}, "error"),
    ({"input": "KFOR troops", "today": ["2024-01-01"]}, "error"),
    ({"input": "KFOR troops", "today": {"y": 2024}}, "error"),
    ({"input": "KFOR troops", "today": "0001-01-01"}, "answer"),
    ({"input": "KFOR troops", "today": "9999-12-31"}, "answer"),
    ({"input": "KFOR troops", "filters": "infobae.com"}, "error"),
    ({"input": "KFOR troops", "filters": 5}, "error"),
    ({"input": "KFOR troops", "filters": [{"source": "x"}]}, "error"),
    ({"input": "KFOR troops", "filters": {"color": "red"}}, "error"),
    ({"input": "KFOR troops", "filters": {1: "x", "y": 2}}, "error"),
    ({"input": "KFOR troops", "filters": {"source": 5}}, "error"),
    ({"input": "KFOR troops", "filters": {"article_ids": {"a": 1}}}, "error"),
    ({"input": "KFOR troops", "filters": {"published_from": "last spring"}}, "error"),
    ({"input": "KFOR troops", "filters": {"published_to": [2024]}}, "error"),
    ({"input": "KFOR troops", "filters": {"source": ["\x1b[2J", "\ud800", ""]}}, "answer"),
    ({"input": "KFOR troops", "filters": {"source": "infobae.com"}}, "answer"),
]


def ask(chain: RagChain, payload: Any) -> dict[str, Any] | InputError:
    """The chain's answer, or the InputError it raised; any other exception fails the test."""
    try:
        out = chain.invoke(payload)
    except InputError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return exc
    assert isinstance(out["answer"], str) and out["answer"].strip()
    assert isinstance(out["refused"], bool)
    return out


@pytest.mark.parametrize(("payload", "expected"), PAYLOADS, ids=range(len(PAYLOADS)))
def test_library_gives_an_answer_or_a_clear_input_error(
    chain: RagChain, payload: Any, expected: str
) -> None:
    got = ask(chain, payload)
    assert isinstance(got, InputError) == (expected == "error"), got


def test_streaming_fails_before_the_first_event_on_bad_input(chain: RagChain) -> None:
    events = chain.stream({"input": "KFOR troops", "filters": 5})
    with pytest.raises(InputError):
        next(iter(events))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    question=st.one_of(st.text(max_size=300), st.text(alphabet=st.characters(), max_size=2500)),
    history=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant", "system", "bot"]),
                    "content": st.text(),
                }
            ),
            st.tuples(st.text(max_size=10), st.text()),
            st.none(),
            st.integers(),
        ),
        max_size=30,
    ),
)
def test_any_question_and_history_get_an_answer_or_an_input_error(
    chain: RagChain, question: str, history: list[Any]
) -> None:
    ask(chain, {"input": question, "chat_history": history})


# every question text of PAYLOADS, as someone could type or paste it into the page
PAGE_QUESTIONS = [
    p["input"] for p, _ in PAYLOADS if isinstance(p, dict) and isinstance(p.get("input"), str)
]


def test_page_gives_an_answer_or_a_clear_message(chain: RagChain, data_dir: Path) -> None:
    """The chat page's handler, with the real chain: every question ends in an answer, a
    refusal or the error's own one-line message; never an unexpected exception."""
    ui = pytest.importorskip("rag.ui.app")
    handlers = ui.ChatHandlers(Settings(data_dir=data_dir, llm="extractive"), chain)
    from rag.ui.turns import new_turn

    earlier = new_turn("Earlier \x1b[2J question about KFOR?")
    earlier.update(answer="Earlier \ud800 answer [1].", pending=False)
    turns: list[dict[str, Any]] = [earlier]
    for question in PAGE_QUESTIONS:
        steps = list(handlers.respond(question, turns))
        if not question.strip():
            assert len(steps) == 1  # nothing to ask: the page stays as it is
            continue
        chat, new_turns, sources, _box = steps[-1]
        turn = new_turns[-1]
        assert turn["pending"] is False
        error = turn.get("error")
        assert not (error or "").startswith("Something went wrong"), (question[:40], error)
        assert turn.get("answer") or error, question[:40]
        assert isinstance(chat, list) and isinstance(sources, str)
        assert "Traceback" not in sources and "Traceback" not in str(chat[-1]["content"])
        assert "\x1b" not in sources and "\x1b" not in str(chat[-1]["content"])


def test_valid_text_replaces_only_lone_surrogates() -> None:
    assert valid_text("a\ud800b\udcffc🙂") == "a\ufffdb\ufffdc🙂"


# --- CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(data_dir: Path) -> Iterator[dict[str, str]]:
    yield {"RAG_EMBEDDING_MODEL": "keyword", "RAG_DATA_DIR": str(data_dir), "RAG_LLM": "extractive"}


CLI_CASES: list[tuple[list[str], int]] = [
    (["ask", ""], 1),
    (["ask", "   "], 1),
    (["ask", "x" * 100_000], 1),
    (["ask", "?!?!...,,,"], 0),
    (["ask", "科索沃维和部队有多少士兵？"], 0),
    (["ask", "\x1b[2J\x1b]0;pwned\x07How many KFOR troops?"], 0),
    (["ask", "KFOR \udcff troops"], 0),
    (["ask", "KFOR troops", "--today", "not-a-date"], 1),
    (["ask", "KFOR troops", "--today", "2024-02-30"], 1),
    (["ask", "KFOR troops", "--k", "0"], 1),
    (["ask", "KFOR troops", "--k", "many"], 2),
    (["ask", "KFOR troops", "--llm", "no-such-backend"], 1),
    (["ask", "--", "-rf /"], 0),
    (["ask", "KFOR troops", "--json", "--today", "2023-05-01"], 0),
]


@pytest.mark.parametrize(("args", "code"), CLI_CASES, ids=range(len(CLI_CASES)))
def test_cli_gives_an_answer_or_a_one_line_error(
    cli_env: dict[str, str], args: list[str], code: int
) -> None:
    result = CliRunner().invoke(main, args, env=cli_env)
    assert result.exit_code == code, (result.output, result.exception)
    assert "Traceback" not in result.output
    if code:
        assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
        errors = [line for line in result.stderr.splitlines() if "Error" in line]
        assert len(errors) == 1, result.stderr
    else:
        assert result.stdout.strip()
    assert "\x1b" not in result.output and "\x9b" not in result.output


def test_cli_strips_escape_sequences_from_article_text(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["ask", ESC_QUESTION], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "4,200 passengers" in result.output  # the article was found and shown
    assert "Red alert" in result.output and "Vellmar" in result.output
    for bad in ("\x1b", "\x9b", "\x07", "\u202e"):
        assert bad not in result.output


def _read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float = 240.0) -> bytes:
    out = b""
    poller = select.poll()  # not select.select: a long test session may hold fds above 1024
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        ready = poller.poll(timeout * 1000)
        if not ready:
            proc.kill()
            pytest.fail(f"no output for {timeout}s: {out[-500:]!r}")
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out


def test_rag_ask_on_a_real_terminal_prints_no_escape_sequences(data_dir: Path) -> None:
    """On a tty `rag ask` streams tokens and colours its output: only click's own colour codes
    may appear, none that came from the article."""
    env = subprocess_env(
        RAG_EMBEDDING_MODEL="keyword", RAG_DATA_DIR=str(data_dir), RAG_LLM="extractive"
    )
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "ask", ESC_QUESTION],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    try:
        out = _read_pty(controller, proc)
    finally:
        os.close(controller)
    assert proc.wait(timeout=60) == 0, out[-2000:]
    assert b"Traceback" not in out and b"4,200 passengers" in out
    colour = rb"\x1b\[(?:\d+(?:;\d+)*)?m"  # SGR colour codes click adds
    import re

    leftover = re.sub(colour, b"", out)
    assert b"\x1b" not in leftover and "\x9b".encode() not in leftover, leftover[-800:]
    assert "\u202e".encode() not in out and b"\x07" not in out


def test_no_index_is_a_one_line_error(tmp_path: Path) -> None:
    env = {"RAG_EMBEDDING_MODEL": "keyword", "RAG_DATA_DIR": str(tmp_path / "none")}
    result = CliRunner().invoke(main, ["ask", "KFOR troops", "--llm", "extractive"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.output


def test_errors_are_rag_errors() -> None:
    assert issubclass(InputError, RagError)


def test_lone_surrogates_never_reach_the_retriever(tmp_path: Path) -> None:
    """Regression: `rag ask` with a non-UTF-8 argument (or a JSON "\\ud800" escape) passed lone
    surrogates to the bundled embedder, whose tokenizer raised TypeError (a traceback)."""
    retriever = StaticRetriever(
        docs=[Document(page_content="KFOR has 3,700 troops.", metadata={"title": "KFOR"})]
    )
    retriever.calls = []
    chain = build_chain(
        Settings(data_dir=tmp_path / "data", llm="extractive"), llm=None, retriever=retriever
    )
    history = [{"role": "user", "content": "KFOR \ud800 troops"}]
    chain.invoke({"input": "How many of them \udcff?", "chat_history": history})
    (call,) = retriever.calls
    call["query"].encode("utf-8")  # raised UnicodeEncodeError before the fix
    assert "\ufffd" in call["query"]
