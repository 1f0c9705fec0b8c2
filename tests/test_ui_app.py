"""The chat page's handlers and helpers, driven directly (no browser)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

gr = pytest.importorskip("gradio")

from rag.config import Settings
from rag.errors import ConfigError
from rag.ui import app as ui
from rag.ui.feedback import FeedbackLog, rating_of
from rag.ui.turns import chat_history, chat_messages, new_turn
from tests.browser_helpers import FakeChain


def shown(markup: str) -> str:
    """Text a browser shows for ``markup``."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def run(gen: Any) -> list[tuple[Any, ...]]:
    return list(gen)


def is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


@pytest.fixture
def handlers(settings: Settings) -> ui.ChatHandlers:
    return ui.ChatHandlers(settings, FakeChain())


# --- answering -----------------------------------------------------------------------------
def test_sources_show_before_the_first_token(handlers: ui.ChatHandlers) -> None:
    steps = run(handlers.respond("How many KFOR troops are there?", []))
    chat0, _turns0, sources0, box0 = steps[0]
    assert box0 == "" and "Searching the articles" in sources0
    assert (
        chat0[0]["role"] == "user"
        and shown(chat0[0]["content"]) == "How many KFOR troops are there?"
    )
    # the step that shows the passages comes before any answer text
    with_sources = next(
        i for i, s in enumerate(steps) if isinstance(s[2], str) and "Passages found" in s[2]
    )
    first_text = next(i for i, s in enumerate(steps) if "3,700" in str(s[0][-1]["content"]))
    assert with_sources < first_text
    assert "Reading the passages" in steps[with_sources][0][-1]["content"]
    chat, turns, sources, _ = steps[-1]
    assert "3,700" in chat[-1]["content"] and 'href="#src-0-1"' in chat[-1]["content"]
    assert 'id="src-0-1"' in sources and '<mark class="rag-quote">' in sources
    assert "How this was answered" in chat[-1]["content"]
    assert turns[0]["pending"] is False and turns[0]["model"] == "fake-model"


def test_follow_up_gets_the_history(settings: Settings) -> None:
    chain = FakeChain()
    h = ui.ChatHandlers(settings, chain)
    turns = run(h.respond("How many KFOR troops are there?", []))[-1][1]
    turns = run(h.respond("And now?", turns))[-1][1]
    assert chain.calls[1]["chat_history"] == [
        {"role": "user", "content": "How many KFOR troops are there?"},
        {"role": "assistant", "content": turns[0]["answer"]},
    ]
    assert len(turns) == 2 and "Follow-up rewritten" in chat_messages(turns)[-1]["content"]


def test_refusal_is_shown_as_such(handlers: ui.ChatHandlers) -> None:
    chat, turns, sources, _ = run(handlers.respond("What is the capital of Peru?", []))[-1]
    assert turns[0]["refused"] is True
    assert "rag-refusal" in chat[-1]["content"] and "Closest passages found" in sources


def test_backend_failure_is_a_message_and_the_chat_goes_on(handlers: ui.ChatHandlers) -> None:
    chat, turns, _sources, _ = run(handlers.respond("boom KFOR", []))[-1]
    assert "rag-error" in chat[-1]["content"] and "took longer than 120s." in shown(
        chat[-1]["content"]
    )
    assert turns[0]["error"] and not turns[0]["pending"]
    chat, turns, _, _ = run(handlers.respond("How many KFOR troops are there?", turns))[-1]
    assert len(turns) == 2 and "3,700" in chat[-1]["content"]
    assert chat_history(turns) == [
        {"role": "user", "content": "How many KFOR troops are there?"},
        {"role": "assistant", "content": turns[1]["answer"]},
    ]


def test_unexpected_exception_is_contained(settings: Settings) -> None:
    class Broken:
        def stream(self, _: Any) -> Any:
            raise ZeroDivisionError("x")

    chat, _turns, _, _ = run(ui.ChatHandlers(settings, Broken()).respond("q?", []))[-1]
    assert "Something went wrong while answering (ZeroDivisionError)." in shown(chat[-1]["content"])


def test_stream_without_final_is_an_error(settings: Settings) -> None:
    class Truncated:
        def stream(self, _: Any) -> Any:
            yield {"standalone_question": "q"}
            yield {"context": []}
            yield {"answer": "half"}

    chat, turns, _, _ = run(ui.ChatHandlers(settings, Truncated()).respond("q?", []))[-1]
    assert turns[0]["error"] and "ended before it was complete" in shown(chat[-1]["content"])


def test_empty_question_changes_nothing(handlers: ui.ChatHandlers) -> None:
    (step,) = run(handlers.respond("   ", []))
    assert all(is_skip(v) for v in step)


def test_sessions_do_not_share_turns(handlers: ui.ChatHandlers) -> None:
    a = run(handlers.respond("How many KFOR troops are there?", []))[-1][1]
    b = run(handlers.respond("What is the capital of Peru?", []))[-1][1]
    assert [t["question"] for t in a] == ["How many KFOR troops are there?"]
    assert [t["question"] for t in b] == ["What is the capital of Peru?"]


def test_hostile_model_and_article_text_is_escaped(handlers: ui.ChatHandlers) -> None:
    chat, _turns, sources, _ = run(handlers.respond("payload please", []))[-1]
    for markup in (chat[-1]["content"], sources):
        assert "<img" not in markup and "<script" not in markup and "javascript:" not in markup
    assert "<b>bold</b>" not in sources


def test_stopped_answer_is_marked_when_redrawn() -> None:
    turn = new_turn("q")
    turn["answer"] = "partial"
    assert "stopped before it finished" in shown(chat_messages([turn], live=None)[-1]["content"])
    assert "partial" in chat_messages([turn], live=0)[-1]["content"]


def test_show_sources_of_an_earlier_answer(handlers: ui.ChatHandlers) -> None:
    turns = run(handlers.respond("How many KFOR troops are there?", []))[-1][1]
    turns = run(handlers.respond("What is the capital of Peru?", turns))[-1][1]
    out = handlers.show_sources(turns, gr.SelectData(None, {"index": 1, "value": ""}))
    assert 'data-turn="0"' in out and "3,700 troops" in out
    assert is_skip(handlers.show_sources(turns, gr.SelectData(None, {"index": 9, "value": ""})))


def test_new_chat_forgets(handlers: ui.ChatHandlers) -> None:
    chat, turns, sources, box = handlers.new_chat()
    assert chat == [] and turns == [] and box == "" and "Ask a question" in sources


# --- feedback ------------------------------------------------------------------------------
def test_vote_appends_a_feedback_line(handlers: ui.ChatHandlers, settings: Settings) -> None:
    turns = run(handlers.respond("How many KFOR troops are there?", []))[-1][1]
    handlers.vote(turns, gr.LikeData(None, {"index": 1, "value": "x", "liked": True}))
    handlers.vote(turns, gr.LikeData(None, {"index": 1, "value": "x", "liked": False}))
    lines = (settings.data_dir / "feedback.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["rating"] == "up" and second["rating"] == "down"
    assert first["question"] == "How many KFOR troops are there?"
    assert "3,700" in first["answer"] and first["citations"][0]["n"] == 1
    assert first["citations"][0]["quote"].startswith("He recalled")
    assert first["timestamp"].endswith("+00:00")


def test_rating_of() -> None:
    assert rating_of(True) == "up" and rating_of(False) == "down"
    assert (
        rating_of("Like") == "up"
        and rating_of("Dislike") == "down"
        and rating_of(None) == "cleared"
    )


def test_feedback_log_round_trip(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "deep" / "feedback.jsonl")
    log.append({"a": "ü"})
    assert log.read() == [{"a": "ü"}]


# --- uploads -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.txt", "report.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\win.md", "win.md"),
        ("/abs/path/x.JSONL", "x.jsonl"),
        ("we<ird>|na:me?.html", "we_ird_na_me.html"),
        ("...hidden.txt", "hidden.txt"),
        (".txt", "upload.txt"),
        ("evil.exe", None),
        ("archive.tar.gz", None),
        ("noext", None),
        ("x.txt.sh", None),
    ],
)
def test_safe_filename(name: str, expected: str | None) -> None:
    assert ui.safe_filename(name) == expected


def test_save_uploads_copies_only_allowed_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_upload_mb=0.001)
    src = tmp_path / "in"
    src.mkdir()
    (src / "ok.txt").write_text("Title\n\nBody text.")
    (src / "big.md").write_text("x" * 5000)
    (src / "bad.exe").write_text("MZ")
    (src / "empty.json").write_text("")
    saved, names, rejected = ui.save_uploads(
        [str(src / n) for n in ("ok.txt", "big.md", "bad.exe", "empty.json", "missing.txt")],
        settings,
    )
    uploads = (tmp_path / "data" / "uploads").resolve()
    assert saved == [uploads / "ok.txt"] and names == ["ok.txt"]
    assert (uploads / "ok.txt").read_text() == "Title\n\nBody text."
    reasons = dict(rejected)
    assert "too large" in reasons["big.md"]
    assert "not an article file type" in reasons["bad.exe"]
    assert "empty" in reasons["empty.json"]
    assert "could not be read" in reasons["missing.txt"]
    assert sorted(p.name for p in uploads.iterdir()) == ["ok.txt"]


def test_save_uploads_never_leaves_the_uploads_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    weird = tmp_path / "a" / ".." / "evil.txt"
    (tmp_path / "a").mkdir()
    (tmp_path / "evil.txt").write_text("text")

    class Upload:
        path = str(weird)
        orig_name = "../../../../outside.txt"

    saved, names, _ = ui.save_uploads([Upload()], settings)
    assert names == ["outside.txt"]
    assert saved[0].parent == (tmp_path / "data" / "uploads").resolve()
    assert not (tmp_path / "outside.txt").exists()


def test_add_files_reports_rejections_without_ingesting(
    handlers: ui.ChatHandlers, tmp_path: Path
) -> None:
    (tmp_path / "x.exe").write_text("MZ")
    ((status, corpus, box),) = run(handlers.add_files([str(tmp_path / "x.exe")]))
    assert (
        "x.exe" in status and "not an article file type" in status and "Nothing was added" in status
    )
    assert is_skip(corpus) and box is None


def test_add_files_ingests_and_updates_the_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data", embedding_model="keyword")
    h = ui.ChatHandlers(settings, FakeChain())
    (tmp_path / "moon.txt").write_text(
        "Moon greenhouse\n\nThe lunar greenhouse grew 42 tomatoes in 2031.\n"
    )
    (tmp_path / "broken.json").write_text("{not json")
    steps = run(h.add_files([str(tmp_path / "moon.txt"), str(tmp_path / "broken.json")]))
    status, corpus, box = steps[-1]
    assert "1 added" in status and "broken.json" in status and box is None
    assert '<b class="rag-articles">1</b> article' in corpus
    assert any("Indexing" in s[0] for s in steps[:-1])


# --- login ---------------------------------------------------------------------------------
def test_parse_auth(tmp_path: Path) -> None:
    assert ui.parse_auth(None) is None
    assert ui.parse_auth("ann:s3cr:et") == [("ann", "s3cr:et")]
    f = tmp_path / "logins"
    f.write_text("# team\nann:one\n\nbob:two\n")
    assert ui.parse_auth(str(f)) == [("ann", "one"), ("bob", "two")]
    with pytest.raises(ConfigError):
        ui.parse_auth("no-colon")
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError):
        ui.parse_auth(str(f))


def test_build_app_makes_blocks(settings: Settings) -> None:
    demo = ui.build_app(settings, chain=FakeChain())
    assert isinstance(demo, gr.Blocks)


def test_the_page_keeps_a_bounded_number_of_sessions(settings: Settings) -> None:
    """Chat state of at most SESSION_CAPACITY sessions is kept (clients that never close a tab)."""
    from fastapi import FastAPI

    demo = ui.build_app(settings, chain=FakeChain())
    ui.mount_app(FastAPI(), demo, settings)
    holder = demo.state_holder
    assert holder.capacity == ui.SESSION_CAPACITY < 10000
    for i in range(ui.SESSION_CAPACITY + 5):
        holder[f"session-{i}"]
    assert len(holder.session_data) == ui.SESSION_CAPACITY
    assert "session-0" not in holder and f"session-{ui.SESSION_CAPACITY + 4}" in holder


def test_stop_marks_the_answer_in_progress(handlers: ui.ChatHandlers) -> None:
    steps = handlers.respond("How many KFOR troops are there?", [])
    next(steps)
    _, turns, _, _ = next(steps)  # passages shown, answer not finished
    steps.close()
    chat, turns, sources = handlers.stop(turns)
    assert turns[0]["pending"] is False and "stopped" in turns[0]["error"]
    assert "rag-error" in chat[-1]["content"] and "Closest passages found" in sources
    assert all(is_skip(v) for v in handlers.stop([]))


# --- rag serve -----------------------------------------------------------------------------
def test_serve_binds_to_loopback_by_default_and_reads_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from rag.ui import serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        ui, "build_app", lambda settings, **kw: seen.update(settings=settings, kw=kw) or "demo"
    )
    monkeypatch.setattr(ui, "launch_app", lambda demo, settings, **kw: seen.update(demo=demo))
    runner = CliRunner()
    result = runner.invoke(serve.serve_cmd, ["--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen["settings"].host == "127.0.0.1" and seen["settings"].port == 7860
    assert seen["demo"] == "demo" and seen["kw"] == {"warm": True}
    assert "http://127.0.0.1:7860" in result.output
    result = runner.invoke(serve.serve_cmd, [], env={"RAG_PORT": "8123", "RAG_HOST": "0.0.0.0"})
    assert result.exit_code == 0, result.output
    assert seen["settings"].port == 8123 and seen["settings"].host == "0.0.0.0"
    assert "without a login" in result.output


def test_serve_reports_bad_auth_without_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from rag.ui import serve

    monkeypatch.setattr(ui, "launch_app", lambda *a, **k: pytest.fail("must not start"))
    result = CliRunner().invoke(serve.serve_cmd, [], env={"RAG_AUTH": "nocolon"})
    assert result.exit_code == 1 and "user:password" in result.output
