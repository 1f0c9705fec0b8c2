"""The `rag` command line, in-process with click's CliRunner: exit codes, one-line errors, JSON.

Every test uses the model-free keyword embedder (RAG_EMBEDDING_MODEL=keyword) and extractive
answers, so nothing loads a model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rag.answer.chain import RagChain
from rag.cli import main

from .conftest import SEED_ARTICLE

KFOR = "How many KFOR troops are there?"
FOLLOW_UP = "Which countries do they come from?"


@pytest.fixture(autouse=True)
def _model_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "keyword")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None, **env: str) -> Result:
    return runner.invoke(main, list(args), input=input, env=env or None)


def one_line_error(result: Result, *fragments: str) -> str:
    """The error line of a command that failed cleanly (exit 1, no traceback, one line)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught crash
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED_ARTICLE, folder)
    return folder


@pytest.fixture
def indexed(runner: CliRunner, articles: Path, tmp_path: Path) -> Path:
    """A data dir with the seed article indexed through `rag ingest`."""
    data = tmp_path / "data"
    ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
    return data


def ask_json(runner: CliRunner, data: Path, question: str, *extra: str) -> dict[str, Any]:
    result = ok(
        run(
            runner,
            "ask",
            "--json",
            "--llm",
            "extractive",
            "--data-dir",
            str(data),
            *extra,
            question,
        )
    )
    out: dict[str, Any] = json.loads(result.stdout)
    return out


# --- ask -------------------------------------------------------------------------------------


def test_ask_prints_the_answer_and_marks_the_cited_sentence(
    runner: CliRunner, indexed: Path
) -> None:
    result = ok(run(runner, "ask", "--llm", "extractive", "--data-dir", str(indexed), KFOR))
    lines = result.stdout.splitlines()
    assert "3,700 troops" in lines[0] and lines[0].rstrip().endswith("[1].")
    assert "Sources:" in lines
    assert any(line.startswith("[1] After a new escalation") for line in lines)
    assert ">>" in result.stdout and "7 associated countries.<<" in result.stdout
    assert result.stderr == ""


def test_ask_json_shape(runner: CliRunner, indexed: Path) -> None:
    out = ask_json(runner, indexed, KFOR)

    assert {
        "answer",
        "citations",
        "refused",
        "context",
        "timings",
        "model",
        "standalone_question",
    } <= set(out)
    assert "chat_history" not in out
    assert out["refused"] is False
    assert "3,700" in out["answer"]
    assert out["standalone_question"] == KFOR
    assert out["model"] == "none (extractive answers, no LLM)"
    assert isinstance(out["timings"]["total_s"], float)

    assert len(out["context"]) == 5  # k = 5 by default
    for doc in out["context"]:
        assert set(doc) == {"page_content", "metadata"}
        assert doc["metadata"]["title"].startswith("After a new escalation")
    numbers = [doc["metadata"]["n"] for doc in out["context"]]
    assert numbers == list(range(1, 6))

    cite = out["citations"][0]
    for key in ("n", "quote", "title", "passage", "quote_start", "quote_end", "chunk_id", "source"):
        assert key in cite
    assert cite["n"] in numbers and cite["supported"] is True
    assert "3,700 troops" in cite["quote"]
    assert cite["passage"][cite["quote_start"] : cite["quote_end"]] == cite["quote"]
    cited_doc = out["context"][cite["n"] - 1]
    assert cited_doc["page_content"] == cite["passage"]


def test_ask_json_refusal(runner: CliRunner, indexed: Path) -> None:
    out = ask_json(runner, indexed, "What is the population of Kosovo?")
    assert out["refused"] is True and out["citations"] == []
    assert out["context"]  # the closest passages still come along


def test_ask_options_bind_to_rag_environment_variables(runner: CliRunner, indexed: Path) -> None:
    result = ok(
        run(
            runner,
            "ask",
            "--json",
            KFOR,
            RAG_DATA_DIR=str(indexed),
            RAG_LLM="extractive",
            RAG_K="2",
            RAG_TODAY="2022-08-20",
        )
    )
    out = json.loads(result.stdout)
    assert "3,700" in out["answer"]
    assert len(out["context"]) == 2  # RAG_K


def test_ask_option_beats_environment(runner: CliRunner, indexed: Path) -> None:
    out = ask_json(runner, indexed, KFOR, "--k", "3")
    assert len(out["context"]) == 3
    result = ok(
        run(
            runner,
            "ask",
            "--json",
            "--k",
            "1",
            "--llm",
            "extractive",
            KFOR,
            RAG_DATA_DIR=str(indexed),
            RAG_K="4",
        )
    )
    assert len(json.loads(result.stdout)["context"]) == 1


def test_ask_accepts_a_well_formed_today(runner: CliRunner, indexed: Path) -> None:
    out = ask_json(runner, indexed, KFOR, "--today", "2022-08-20")
    assert "3,700" in out["answer"]


@pytest.mark.parametrize("make_dir", [False, True], ids=["no-data-dir", "empty-data-dir"])
def test_ask_without_an_index_fails_with_the_ingest_hint(
    runner: CliRunner, tmp_path: Path, make_dir: bool
) -> None:
    data = tmp_path / "empty"
    if make_dir:
        data.mkdir()
    result = run(runner, "ask", "--llm", "extractive", "--data-dir", str(data), KFOR)
    one_line_error(result, "No index at", str(data / "chroma"), "rag ingest corpus/")
    assert result.stdout == ""
    assert not (data / "chroma").exists()  # asking creates no empty index


def test_ask_unknown_llm_names_the_valid_forms(runner: CliRunner, indexed: Path) -> None:
    result = run(runner, "ask", "--llm", "gpt-9", "--data-dir", str(indexed), KFOR)
    one_line_error(
        result,
        "Unknown LLM setting 'gpt-9'.",
        "Set RAG_LLM to one of: bundled | extractive | llamacpp:/path/model.gguf",
    )
    assert result.stdout == ""


@pytest.mark.parametrize("today", ["yesterday", "2024-13-45", "20/08/2022"])
def test_ask_malformed_today(runner: CliRunner, indexed: Path, today: str) -> None:
    result = run(
        runner, "ask", "--llm", "extractive", "--data-dir", str(indexed), "--today", today, KFOR
    )
    one_line_error(result, "'today' must be a date like 2024-01-31", repr(today))


def test_ask_invalid_setting_from_the_environment(runner: CliRunner, indexed: Path) -> None:
    result = run(runner, "ask", "--llm", "extractive", "--data-dir", str(indexed), KFOR, RAG_K="0")
    one_line_error(
        result,
        "Invalid settings: k: Input should be greater than or equal to 1.",
        "Check your RAG_* environment variables and rag.toml.",
    )


def test_ask_malformed_rag_toml(runner: CliRunner, indexed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("k = [\n", encoding="utf-8")
    result = run(
        runner,
        "ask",
        "--llm",
        "extractive",
        "--data-dir",
        str(indexed),
        KFOR,
        RAG_CONFIG=str(broken),
    )
    one_line_error(result, f"{broken} is not valid TOML", "RAG_CONFIG")


def test_ask_empty_question_is_an_input_error(runner: CliRunner, indexed: Path) -> None:
    result = run(runner, "ask", "--llm", "extractive", "--data-dir", str(indexed), "   ")
    one_line_error(result, "The question is empty.", "Type a question about the articles.")


# --- chat ------------------------------------------------------------------------------------


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every payload RagChain.invoke gets (history copied at call time)."""
    calls: list[dict[str, Any]] = []
    real = RagChain.invoke

    def spy(self: RagChain, payload: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.append({**payload, "chat_history": list(payload.get("chat_history", []))})
        return real(self, payload, *args, **kwargs)

    monkeypatch.setattr(RagChain, "invoke", spy)
    return calls


def test_chat_answers_a_question_and_a_follow_up_then_ends_on_eof(
    runner: CliRunner, indexed: Path, invocations: list[dict[str, Any]]
) -> None:
    result = ok(
        run(
            runner,
            "chat",
            "--llm",
            "extractive",
            "--data-dir",
            str(indexed),
            input=f"{KFOR}\n{FOLLOW_UP}\n",
        )
    )
    assert result.stdout.startswith("Ask about the articles (empty line or Ctrl-D to quit).")
    assert result.stdout.count("you> ") == 3  # two questions, then the prompt that meets EOF
    assert "3,700 troops" in result.stdout
    assert result.stdout.count("Sources:") == 2
    assert result.stderr == ""

    assert [c["input"] for c in invocations] == [KFOR, FOLLOW_UP]
    assert invocations[0]["chat_history"] == []
    first_answer = invocations[1]["chat_history"][1]["content"]
    assert invocations[1]["chat_history"] == [
        {"role": "user", "content": KFOR},
        {"role": "assistant", "content": first_answer},
    ]
    assert "3,700" in first_answer


def test_chat_stops_at_an_empty_line(
    runner: CliRunner, indexed: Path, invocations: list[dict[str, Any]]
) -> None:
    result = ok(
        run(
            runner,
            "chat",
            "--llm",
            "extractive",
            "--data-dir",
            str(indexed),
            input=f"{KFOR}\n\n{FOLLOW_UP}\n",
        )
    )
    assert [c["input"] for c in invocations] == [KFOR]
    assert result.stdout.count("you> ") == 2


def test_chat_reports_a_bad_question_and_goes_on(
    runner: CliRunner, indexed: Path, invocations: list[dict[str, Any]]
) -> None:
    too_long = "Tell me everything about " + " and ".join(["NATO", "Kosovo"] * 5)
    result = ok(
        run(
            runner,
            "chat",
            "--llm",
            "extractive",
            "--data-dir",
            str(indexed),
            "--today",
            "2022-08-20",
            input=f"{too_long}\n{KFOR}\n",
            RAG_MAX_QUESTION_CHARS="40",
        )
    )
    errors = result.stderr.splitlines()
    assert errors == [
        f"Error: The question is {len(too_long)} characters long; the limit is 40. "
        "Shorten it, or raise RAG_MAX_QUESTION_CHARS."
    ]
    assert "3,700 troops" in result.stdout
    assert [c["input"] for c in invocations] == [too_long, KFOR]
    assert all(c["today"] == "2022-08-20" for c in invocations)
    assert invocations[1]["chat_history"] == []  # the failed question left no history


def test_chat_without_an_index_fails_before_prompting(runner: CliRunner, tmp_path: Path) -> None:
    result = run(
        runner, "chat", "--llm", "extractive", "--data-dir", str(tmp_path / "none"), input=KFOR
    )
    one_line_error(result, "No index at", "rag ingest corpus/")
    assert "you> " not in result.stdout


def test_chat_unknown_llm(runner: CliRunner, indexed: Path) -> None:
    result = run(runner, "chat", "--data-dir", str(indexed), input=KFOR, RAG_LLM="nope")
    one_line_error(result, "Unknown LLM setting 'nope'.", "Set RAG_LLM to one of:")


# --- ingest ----------------------------------------------------------------------------------


def _with_broken_files(articles: Path) -> tuple[Path, Path]:
    pdf = articles / "broken.pdf"
    pdf.write_bytes(b"\xff\xfe\x00 not a pdf")
    bad_json = articles / "bad.json"
    bad_json.write_text("{not json\n", encoding="utf-8")
    return pdf, bad_json


def test_ingest_reports_broken_files_by_name_and_ingests_the_rest(
    runner: CliRunner, articles: Path, tmp_path: Path
) -> None:
    pdf, bad_json = _with_broken_files(articles)
    data = tmp_path / "data"
    result = ok(run(runner, "ingest", "--data-dir", str(data), str(articles)))

    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2
    assert any(line.startswith(f"skipped {pdf}: ") and "PDF" in line for line in skipped)
    assert any(line.startswith(f"skipped {bad_json}: ") and "JSON" in line for line in skipped)
    assert "1 added, 0 updated, 0 unchanged, 0 removed, 2 failed" in result.stdout
    assert "Index: 1 articles," in result.stdout

    info = json.loads(
        ok(run(runner, "info", "--json", "--data-dir", str(data), RAG_LLM="extractive")).stdout
    )
    assert info["index"]["articles"] == 1


def test_ingest_json_shape_and_incremental_rerun(
    runner: CliRunner, articles: Path, tmp_path: Path
) -> None:
    pdf, bad_json = _with_broken_files(articles)
    data = tmp_path / "data"
    first = json.loads(
        ok(run(runner, "ingest", "--json", "--data-dir", str(data), str(articles))).stdout
    )

    assert set(first) == {
        "added",
        "updated",
        "unchanged",
        "removed",
        "failed",
        "chunks_added",
        "chunks_removed",
        "articles_total",
        "chunks_total",
        "seconds",
        "embed_seconds",
        "write_seconds",
        "chunks_per_second",
    }
    assert (first["added"], first["updated"], first["unchanged"], first["removed"]) == (1, 0, 0, 0)
    assert sorted(f["path"] for f in first["failed"]) == sorted([str(bad_json), str(pdf)])
    assert all(f["reason"] for f in first["failed"])
    assert first["articles_total"] == 1
    assert first["chunks_added"] == first["chunks_total"] > 1

    rerun = json.loads(
        ok(run(runner, "ingest", "--json", "--data-dir", str(data), str(articles))).stdout
    )
    assert (rerun["added"], rerun["unchanged"], rerun["chunks_added"]) == (0, 1, 0)
    assert len(rerun["failed"]) == 2  # broken files are reported again, not remembered
    assert rerun["chunks_total"] == first["chunks_total"]


def test_ingest_rerun_says_nothing_changed_and_prune_removes_vanished_files(
    runner: CliRunner, articles: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
    again = ok(run(runner, "ingest", "-q", "--data-dir", str(data), str(articles)))
    assert again.stdout.startswith("Nothing changed: 1 articles already up to date.")

    (articles / SEED_ARTICLE.name).unlink()
    (articles / "other.txt").write_text(
        "Quillfeather Observatory opens\n\nThe Quillfeather Observatory opened a telescope "
        "with a 4.2 metre mirror on the ridge above the town on Monday.\n",
        encoding="utf-8",
    )
    pruned = json.loads(
        ok(run(runner, "ingest", "--json", "--data-dir", str(data), str(articles))).stdout
    )
    assert (pruned["added"], pruned["removed"], pruned["articles_total"]) == (1, 1, 1)


def test_ingest_only_broken_files_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    _with_broken_files(folder)
    result = run(runner, "ingest", "--data-dir", str(tmp_path / "data"), str(folder))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "0 added, 0 updated, 0 unchanged, 0 removed, 2 failed" in result.stdout
    assert sum(line.startswith("skipped ") for line in result.stderr.splitlines()) == 2


def test_ingest_missing_path_is_reported_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run(runner, "ingest", "--data-dir", str(tmp_path / "data"), str(missing))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"skipped {missing}: no such file or directory" in result.stderr


def test_ingest_chunk_options_and_their_environment_variables(
    runner: CliRunner, articles: Path, tmp_path: Path
) -> None:
    default = json.loads(
        ok(run(runner, "ingest", "--json", "--data-dir", str(tmp_path / "a"), str(articles))).stdout
    )
    small = json.loads(
        ok(
            run(
                runner,
                "ingest",
                "--json",
                "--chunk-size",
                "300",
                "--data-dir",
                str(tmp_path / "b"),
                str(articles),
                RAG_CHUNK_OVERLAP="30",
            )
        ).stdout
    )
    assert small["chunks_total"] > default["chunks_total"]
    info = json.loads(
        ok(
            run(
                runner,
                "info",
                "--json",
                "--data-dir",
                str(tmp_path / "b"),
                RAG_LLM="extractive",
                RAG_CHUNK_SIZE="300",
                RAG_CHUNK_OVERLAP="30",
            )
        ).stdout
    )
    assert info["settings"]["chunk_size"] == 300


def test_ingest_contradictory_chunk_options_are_a_config_error(
    runner: CliRunner, articles: Path, tmp_path: Path
) -> None:
    result = run(
        runner,
        "ingest",
        "--chunk-size",
        "200",
        "--chunk-overlap",
        "300",
        "--data-dir",
        str(tmp_path / "data"),
        str(articles),
    )
    one_line_error(result, "chunk_overlap (300) must be smaller than chunk_size (200)")
    assert not (tmp_path / "data").exists()


def test_ingest_needs_a_path(runner: CliRunner) -> None:
    result = run(runner, "ingest")
    assert result.exit_code == 2 and "Missing argument 'PATHS...'" in result.stderr


# --- info ------------------------------------------------------------------------------------


def test_info_json_shape(runner: CliRunner, indexed: Path) -> None:
    result = ok(
        run(
            runner,
            "info",
            "--json",
            "--data-dir",
            str(indexed),
            RAG_LLM="extractive",
            RAG_LLM_API_KEY="sk-very-secret",
        )
    )
    info = json.loads(result.stdout)
    assert set(info) == {"settings", "index", "embedder", "llm", "checks"}
    assert info["settings"]["data_dir"] == str(indexed)
    assert info["settings"]["embedding_model"] == "keyword"
    assert info["settings"]["llm_api_key"] == "***"
    assert "sk-very-secret" not in result.stdout
    assert info["embedder"] == "keyword"
    assert info["llm"] == "none (extractive answers, no LLM)"
    index = info["index"]
    assert index["location"] == str((indexed / "chroma").resolve())
    assert index["articles"] == 1 and index["chunks"] > 1
    assert index["sources"] == ["infobae.com"]
    names = {c["name"] for c in info["checks"]}
    assert names == {"index", "index settings", "manifest", "bm25", "llm"}
    assert all(c["ok"] for c in info["checks"])


def test_info_text(runner: CliRunner, indexed: Path) -> None:
    result = ok(run(runner, "info", "--data-dir", str(indexed), RAG_LLM="extractive"))
    lines = result.stdout.splitlines()
    assert lines[0] == f"Store:      {(indexed / 'chroma').resolve()}"
    assert "Articles:   1" in lines
    assert "  [ok] index: 1 articles, " in result.stdout
    assert f"  data_dir = {indexed}" in lines


def test_info_without_an_index_exits_1_and_says_what_is_missing(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    text = run(runner, "info", "--data-dir", str(data), RAG_LLM="extractive")
    assert text.exit_code == 1 and isinstance(text.exception, SystemExit)
    assert "Articles:   -" in text.stdout
    assert "[missing] index: No index at" in text.stdout and "rag ingest corpus/" in text.stdout

    as_json = run(runner, "info", "--json", "--data-dir", str(data), RAG_LLM="extractive")
    assert as_json.exit_code == 1
    checks = {c["name"]: c for c in json.loads(as_json.stdout)["checks"]}
    assert checks["index"]["ok"] is False and checks["llm"]["ok"] is True
    assert "articles" not in json.loads(as_json.stdout)["index"]


def test_info_unknown_llm_is_a_failed_check(runner: CliRunner, indexed: Path) -> None:
    result = run(runner, "info", "--json", "--data-dir", str(indexed), RAG_LLM="nope")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["llm"]["ok"] is False and "Unknown LLM setting 'nope'" in checks["llm"]["detail"]
