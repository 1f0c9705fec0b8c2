"""Each script in examples/ runs (subprocess, bounded time) over an index of the seed article."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .api_helpers import FAST, index_seed
from .conftest import REPO, subprocess_env

EXAMPLES = REPO / "examples"
KFOR_Q = "How many KFOR troops are there?"


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_seed(tmp_path_factory.mktemp("examples") / "data")


def run_example(
    name: str, *args: str, data_dir: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args, "--data-dir", str(data_dir)],
        env=subprocess_env(**FAST),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_openai_client_example(seed_index: Path, tmp_path: Path) -> None:
    pytest.importorskip("openai")
    out = run_example("openai_client.py", KFOR_Q, data_dir=seed_index, cwd=tmp_path).stdout
    plain, streamed = out.split("--- streamed")
    assert "models: ['rag']" in plain
    assert "3,700" in plain and "Sources:\n[1] " in plain and "refused: False" in plain
    assert "> " in plain and "3,700 troops" in plain.split("> ", 1)[1]
    assert "(retrieved 5 passages)" in streamed and "3,700" in streamed
    assert "\nSources:\n" not in streamed  # append_sources: false
    assert "3,700 troops from 20 allied" in streamed.rsplit("> ", 1)[1]


def test_embed_chain_example(seed_index: Path, tmp_path: Path) -> None:
    questions = [KFOR_Q, "What is the capital of Peru?"]
    out = run_example("embed_chain.py", "--json", *questions, data_dir=seed_index, cwd=tmp_path)
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["question"] for a in answers] == questions
    assert "3,700" in answers[0]["answer"] and not answers[0]["refused"]
    assert "3,700 troops" in answers[0]["citations"][0]["quote"]
    assert answers[1]["refused"] and answers[1]["answer"].startswith("The articles don't say")


def test_agent_tool_example(seed_index: Path, tmp_path: Path) -> None:
    out = run_example("agent_tool.py", KFOR_Q, data_dir=seed_index, cwd=tmp_path).stdout
    assert f"tool call: search_articles({{'query': '{KFOR_Q}'}})" in out
    result = out.split("tool result:", 1)[1].split("final answer:", 1)[0]
    assert "KFOR is made up of 3,700 troops" in result
    assert "final answer: (scripted model)" in out


def test_batch_csv_example(seed_index: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.csv"
    questions.write_text(
        f'question,today\n{KFOR_Q},\nWhat is the capital of Peru?,2023-06-20\n" ",\n',
        encoding="utf-8",
    )
    answers = tmp_path / "answers.csv"
    run = run_example(
        "batch_csv.py", str(questions), "--out", str(answers), data_dir=seed_index, cwd=tmp_path
    )
    assert "3 questions: 1 answered, 1 refused, 1 failed" in run.stderr
    with answers.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["refused"] for r in rows] == ["False", "True", ""]
    assert "3,700" in rows[0]["answer"] and rows[0]["sources"].startswith("[1] ")
    cites = json.loads(rows[0]["citations"])
    assert "3,700 troops" in cites[0]["quote"] and cites[0]["article_id"]
    assert rows[1]["refusal_reason"] == "off_topic" and rows[1]["citations"] == "[]"
    assert rows[2]["answer"].startswith("Error: The question is empty.")
