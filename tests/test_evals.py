from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rag.config import Settings
from rag.errors import ConfigError
from rag.evals import metrics
from rag.evals.cli import eval_cmd
from rag.evals.report import compare, format_compare, format_table, write_report
from rag.evals.runner import run_suite
from rag.evals.suites import corpus_fingerprint, load_suite
from rag.testing import KeywordEmbedder
from tests.conftest import REPO, SEED_ARTICLE

SEED = REPO / "evals" / "seed"
# Measured on the realtimeqa-dev subset below with the default settings; the floors sit a bit under.
HIT5_FLOOR = 0.92  # measured 0.975
MRR_FLOOR = 0.85  # measured 0.933


# --- metrics ---------------------------------------------------------------------------------
def test_retrieval_scores_rank_of_first_chunk() -> None:
    s = metrics.retrieval_scores(["x", "a", "a", "y", "b"], ["a", "b"])
    assert (s["hit@1"], s["hit@3"], s["hit@5"], s["hit@10"]) == (0.0, 1.0, 1.0, 1.0)
    assert s["mrr@10"] == pytest.approx(0.5)
    ideal = 1 + 1 / math.log2(3)
    assert s["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / ideal)
    miss = metrics.retrieval_scores(["x"] * 12 + ["a"], ["a"])
    assert miss["hit@10"] == 0.0 and miss["mrr@10"] == 0.0 and miss["ndcg@10"] == 0.0
    assert metrics.retrieval_scores(["a"], ["a"])["ndcg@10"] == 1.0


def test_path_ids_match_by_suffix() -> None:
    assert metrics.same_article("/abs/work/corpus/x.txt", "corpus/x.txt")
    assert not metrics.same_article("corpus/ax.txt", "x.txt")


def test_answer_matching() -> None:
    assert metrics.answer_correct("KFOR has 3700 troops.", ["3,700"])
    assert metrics.answer_correct("It was “Oppenheimer”, again.", ['"Oppenheimer"'])
    assert not metrics.answer_correct("About 300 people", ["3"])
    assert not metrics.answer_correct("anything", [])
    assert metrics.token_f1("Luke Humphries won", ["Luke Humphries"]) == pytest.approx(0.8)
    assert metrics.token_f1("", ["x"]) == 0.0


def test_answer_hits() -> None:
    texts = ["Nothing here.", "KFOR has 3,700 troops.", "x"]
    assert metrics.answer_hits(texts, ["3700"]) == {"answer@1": 0.0, "answer@5": 1.0}
    assert metrics.answer_hits([], ["3700"]) == {"answer@1": 0.0, "answer@5": 0.0}


def test_refusal_heuristic() -> None:
    assert metrics.is_refusal("The articles don't say.")
    assert metrics.is_refusal("I don't know.")
    assert metrics.is_refusal("The context does not mention the population.")
    assert metrics.is_refusal("")
    assert not metrics.is_refusal("KFOR has 3,700 troops [1].")


def test_citation_scores() -> None:
    cits = [
        {"passage": "KFOR is made up of 3,700 troops"},
        {"passage": "Vucic predicted a difficult meeting"},
    ]
    assert metrics.citation_scores(cits, ["3,700"]) == {
        "citation_precision": 0.5,
        "citation_coverage": 1.0,
    }
    assert (
        metrics.citation_scores([{"passage": "3,700", "supported": False}], ["3,700"])[
            "citation_coverage"
        ]
        == 0.0
    )
    assert metrics.citation_scores([], ["x"]) == {
        "citation_precision": None,
        "citation_coverage": 0.0,
    }
    assert metrics.citation_scores(cits, []) == {
        "citation_precision": None,
        "citation_coverage": None,
    }


def test_aggregates_never_nan() -> None:
    assert metrics.mean([]) is None and metrics.mean([None, float("nan")]) is None
    assert metrics.mean([1.0, None, 0.0]) == 0.5
    assert metrics.percentile([], 50) is None
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([5], 95) == 5


# --- suites ----------------------------------------------------------------------------------
ARTICLES = [
    {
        "id": "art-1",
        "title": "Volcano erupts in Iceland",
        "published": "2024-01-10",
        "text": "A volcano erupted near Grindavik in Iceland. "
        "Lava reached the edge of the fishing town.",
    },
    {
        "id": "art-2",
        "title": "Taiwan election",
        "published": "2024-01-14",
        "text": "Lai Ching-te won the presidential election in Taiwan with 40 percent of the vote.",
    },
    {
        "id": "art-3",
        "title": "Darts final",
        "published": "2024-01-04",
        "text": "Luke Humphries beat Luke Littler to become the PDC world darts champion.",
    },
]
QA = [
    {
        "id": "q1",
        "question": "Which town did the lava reach?",
        "answers": ["Grindavik"],
        "evidence_ids": ["art-1"],
        "answerable": True,
    },
    {
        "id": "q2",
        "question": "Who won the election in Taiwan?",
        "answers": ["Lai Ching-te"],
        "evidence_ids": ["art-2"],
        "answerable": True,
    },
    {
        "id": "q3",
        "question": "Who won the darts world championship?",
        "answers": ["Luke Humphries"],
        "evidence_ids": ["art-3"],
        "answerable": True,
    },
    {
        "id": "q4",
        "question": "Who won the 2030 World Cup?",
        "answers": [],
        "evidence_ids": [],
        "answerable": False,
    },
    {
        "id": "q5",
        "question": "And what percentage did he get?",
        "answers": ["40 percent"],
        "evidence_ids": ["art-2"],
        "answerable": True,
        "history": [
            {"role": "user", "content": "Who won the election in Taiwan?"},
            {"role": "assistant", "content": "Lai Ching-te [1]."},
        ],
    },
]


def make_suite(
    root: Path, qa: list[dict[str, Any]] = QA, articles: list[dict[str, Any]] = ARTICLES
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qa))
    (root / "corpus.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    (root / "qa_meta.jsonl").write_text(
        "".join(json.dumps({"id": q["id"], "question_date": "2024-01-19"}) + "\n" for q in qa)
    )
    return root


def test_load_suite(tmp_path: Path) -> None:
    suite = load_suite(make_suite(tmp_path / "s"))
    assert [c.id for c in suite.cases] == ["q1", "q2", "q3", "q4", "q5"]
    assert suite.cases[0].today == date(2024, 1, 19)
    assert suite.cases[4].history[0]["role"] == "user"
    assert len(suite.answerable) == 4 and suite.corpus == [tmp_path / "s" / "corpus.jsonl"]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "x"}', "missing 'question'"),
        ('{"question": "q", "history": [{"role": "robot"}]}', "history"),
    ],
)
def test_bad_suites(tmp_path: Path, line: str, error: str) -> None:
    (tmp_path / "qa.jsonl").write_text(line + "\n")
    with pytest.raises(ConfigError, match=error):
        load_suite(tmp_path)
    with pytest.raises(ConfigError, match=r"No qa\.jsonl"):
        load_suite(tmp_path / "nowhere")


def test_fingerprint_tracks_corpus_and_chunking(tmp_path: Path, settings: Settings) -> None:
    corpus = make_suite(tmp_path / "s") / "corpus.jsonl"
    base = corpus_fingerprint([corpus], settings)
    assert corpus_fingerprint([corpus], settings) == base
    assert corpus_fingerprint([corpus], settings.model_copy(update={"chunk_size": 500})) != base
    corpus.write_text(corpus.read_text() + json.dumps({"id": "z", "text": "more"}) + "\n")
    assert corpus_fingerprint([corpus], settings) != base


def test_seed_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.ingestion.load import article_id_for_path, iter_articles

    monkeypatch.chdir(REPO)
    suite = load_suite(SEED)
    assert suite.cases[0].question == "How many KFOR troops are there?" and suite.cases[
        0
    ].answers == ["3,700"]
    answerable = [c for c in suite.cases if c.answerable]
    assert len(answerable) >= 30
    assert len([c for c in suite.cases if not c.answerable]) >= 8
    assert len([c for c in suite.cases if c.history]) >= 5
    seed_id = article_id_for_path(Path("corpus/nato-kosovo-kfor.txt"))
    text = next(iter_articles([SEED_ARTICLE], max_bytes=10**7)).text  # type: ignore[union-attr]
    for case in answerable:
        assert case.evidence_ids == [seed_id]
        assert case.passage and case.passage in text, case.id
    assert suite.corpus == [SEED_ARTICLE.resolve()]


# --- runner ----------------------------------------------------------------------------------
class FakeChain:
    """Follows the rag.chain stream contract; answers from the first passage."""

    model_name = "fake"

    def __init__(self, retriever: Any) -> None:
        self.retriever = retriever

    def stream(self, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        question = payload["input"]
        if "2030" in question:
            yield {"standalone_question": question}
            yield {"context": []}
            yield {
                "final": {
                    "answer": "The articles don't say.",
                    "citations": [],
                    "refused": True,
                    "timings": {},
                }
            }
            return
        if "explode" in question:
            raise RuntimeError("boom")
        docs = self.retriever.invoke(question, today=payload["today"])
        yield {"standalone_question": question}
        yield {"context": docs}
        text = docs[0].page_content if docs else ""
        for word in text.split()[:3]:
            yield {"answer": word + " "}
        yield {
            "final": {
                "answer": text + " [1]",
                "refused": False,
                "timings": {},
                "citations": [
                    {
                        "n": 1,
                        "chunk_id": docs[0].id,
                        "article_id": docs[0].metadata["article_id"],
                        "passage": text,
                        "supported": True,
                    }
                ],
            }
        }


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    return make_suite(tmp_path / "suite")


def test_retrieval_only_run_builds_and_reuses_the_suite_index(
    suite_dir: Path, settings: Settings, fake_embedder: KeywordEmbedder
) -> None:
    report = run_suite(suite_dir, settings, retrieval_only=True, embedder=fake_embedder)
    summary = report["systems"]["rag"]["summary"]
    assert report["mode"] == "retrieval" and summary["answerable"] == 4 and summary["errors"] == 0
    assert summary["hit@5"] == 1.0 and summary["mrr@10"] is not None and "correct" not in summary
    assert summary["retrieval_p50_ms"] is not None and summary["answer@5"] is not None
    indexes = list((settings.data_dir / "evals").iterdir())
    assert len(indexes) == 1 and (indexes[0] / "READY.json").is_file()
    encoded = fake_embedder.texts_encoded
    run_suite(suite_dir, settings, retrieval_only=True, embedder=fake_embedder, limit=2)
    assert fake_embedder.texts_encoded == encoded  # no re-ingest


def test_answer_mode_with_fake_chain_and_a_failing_question(
    suite_dir: Path, settings: Settings, fake_embedder: KeywordEmbedder
) -> None:
    qa = [
        *QA,
        {"id": "q6", "question": "Will this explode?", "answers": ["x"], "evidence_ids": ["art-1"]},
    ]
    make_suite(suite_dir, qa)
    from rag.evals.suites import suite_settings
    from rag.retrieve.hybrid import build_retriever

    cfg = suite_settings(load_suite(suite_dir), settings, embedder=fake_embedder)
    retriever = build_retriever(cfg, embedder=fake_embedder)
    seen: list[int] = []
    report = run_suite(
        suite_dir,
        settings,
        chain=FakeChain(retriever),
        retriever=retriever,
        progress=lambda done, total, label: seen.append(done),
    )
    rag = report["systems"]["rag"]
    s = rag["summary"]
    assert s["errors"] == 1 and s["refused_unanswerable"] == 1.0 and s["refused_answerable"] == 0.0
    assert s["correct"] == pytest.approx(3 / 5) and 0 < s["f1"] < 1
    assert s["citation_coverage"] == pytest.approx(3 / 5) and s["ttft_p50_ms"] is not None
    failed = next(q for q in rag["questions"] if q["id"] == "q6")
    assert failed["error"] == "RuntimeError: boom" and failed["metrics"]["hit@10"] == 0.0
    assert seen[-1] == len(qa)
    assert s["judge"] is None


def test_judge_and_tutorial_baseline(
    suite_dir: Path, settings: Settings, fake_embedder: KeywordEmbedder
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from rag.evals.suites import suite_settings
    from rag.retrieve.hybrid import build_retriever

    cfg = suite_settings(load_suite(suite_dir), settings, embedder=fake_embedder)
    retriever = build_retriever(cfg, embedder=fake_embedder)
    llm = FakeListChatModel(responses=["I don't know.", "Lai Ching-te won."] * 10)
    judge = FakeListChatModel(responses=["YES"] * 20)
    report = run_suite(
        suite_dir,
        settings,
        chain=FakeChain(retriever),
        retriever=retriever,
        llm=llm,
        baseline="tutorial",
        judge=judge,
    )
    assert set(report["systems"]) == {"rag", "tutorial"}
    assert report["systems"]["rag"]["summary"]["judge"] == 1.0
    tut = report["systems"]["tutorial"]["summary"]
    assert tut["errors"] == 0 and tut["hit@10"] == 1.0
    assert 0 < tut["refused_answerable"] < 1 and tut["citation_coverage"] == 0.0
    assert list((cfg.data_dir / "tutorial").iterdir())


# --- reports ---------------------------------------------------------------------------------
def fake_report(hit: float, correct: list[float]) -> dict[str, Any]:
    questions = [
        {
            "id": f"q{i}",
            "question": f"question {i}",
            "answerable": True,
            "error": None,
            "answer": "a",
            "retrieval_ms": 10.0 + i,
            "total_ms": 100.0 + i,
            "ttft_ms": 50.0,
            "metrics": {"hit@5": hit, "hit@10": hit, "correct": c},
        }
        for i, c in enumerate(correct)
    ]
    from rag.evals.runner import summarize

    return {
        "suite": "demo",
        "mode": "answer",
        "created": "now",
        "seconds": 1,
        "settings": {"k": 5},
        "systems": {"rag": {"summary": summarize(questions), "questions": questions}},
    }


def test_write_report_and_table(tmp_path: Path) -> None:
    report = fake_report(1.0, [1.0, 0.0])
    paths = write_report(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["suite"] == "demo"
    assert "| article hit@5 |" in paths["md"].read_text()
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    table = format_table(report)
    assert "article hit@5" in table and "1.000" in table and "NaN" not in table


def test_report_md_shows_hostile_text_as_text(tmp_path: Path) -> None:
    from html.parser import HTMLParser

    from tests.hostile_report import HOSTILE_TEXT, render_report, shown_text, write_hostile_report

    md = write_hostile_report(tmp_path / "out")
    raw = md.read_text(encoding="utf-8")
    assert "\x1b" not in raw
    html = render_report(md)

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str | None]]] = []
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append((tag, dict(attrs)))

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    parsed = Tags()
    parsed.feed(html)
    names = [tag for tag, _ in parsed.tags]
    # the report's own markup only: headings, tables, list items, the settings block, the plot
    assert set(names) <= {"h1", "h2", "p", "table", "thead", "tbody", "tr", "th", "td", "ul"} | {
        "li",
        "pre",
        "code",
        "img",
    }
    assert [attrs.get("src") for tag, attrs in parsed.tags if tag == "img"] == ["report.png"]
    assert names.count("code") == 1  # the settings block; no code span from the text
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    text = " ".join("".join(parsed.text).split())
    want = shown_text(HOSTILE_TEXT)
    # the 3 questions are listed as retrieval misses and as wrong answers, q2 also as an error,
    # with its error text after it each time: 3 + 3 + 1 questions, 3 errors
    assert text.count(want) == 10, text[:400]
    assert shown_text(HOSTILE_TEXT[:160]) in text  # answers are cut at 160 characters
    assert "<i>suite</i>" in text and "[model](javascript:alert(1))" in text


def test_compare_reports_deltas_and_flips(tmp_path: Path) -> None:
    old, new = fake_report(1.0, [1.0, 0.0]), fake_report(0.0, [1.0, 1.0])
    result = compare(old, new)
    d = result["metrics"]["rag"]
    assert d["hit@5"]["delta"] == -1.0 and d["hit@5"]["better"] is False
    assert d["correct"]["delta"] == 0.5 and d["correct"]["better"] is True
    flips = {(f["id"], f["metric"]) for f in result["flipped"]["rag"]}
    assert flips == {("q0", "hit@5"), ("q1", "hit@5"), ("q1", "correct")}
    assert "WORSE" in format_compare(result)
    write_report(old, tmp_path / "a")
    write_report(new, tmp_path / "b")
    out = CliRunner().invoke(
        eval_cmd,
        ["--compare", str(tmp_path / "a" / "report.json"), str(tmp_path / "b" / "report.json")],
    )
    assert out.exit_code == 0, out.output
    assert "flipped: 3" in out.output


def test_cli_retrieval_only(
    suite_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.models.embedder

    monkeypatch.setattr(rag.models.embedder, "load_embedder", lambda settings: KeywordEmbedder())
    out = CliRunner().invoke(
        eval_cmd,
        [
            str(suite_dir),
            "--retrieval-only",
            "--data-dir",
            str(tmp_path / "d"),
            "--out",
            str(tmp_path / "rep"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "article hit@5" in out.output and (tmp_path / "rep" / "report.png").is_file()
    assert CliRunner().invoke(eval_cmd, []).exit_code != 0


# --- with the real embedder ------------------------------------------------------------------
@pytest.mark.integration
def test_seed_suite_retrieval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    report = run_suite(SEED, Settings(data_dir=tmp_path / "data"), retrieval_only=True)
    s = report["systems"]["rag"]["summary"]
    assert s["errors"] == 0 and s["hit@1"] == 1.0  # a one-article corpus
    kfor = report["systems"]["rag"]["questions"][0]
    assert kfor["question"] == "How many KFOR troops are there?"


def realtimeqa_subset(
    source: Path, target: Path, questions: int = 40, distractors: int = 160
) -> Path:
    """A small suite (in tmp, never in the project): the first answerable questions, their
    evidence articles and a fixed set of other articles, so the index builds in a minute."""
    qa = [json.loads(line) for line in (source / "qa.jsonl").open()]
    qa = [q for q in qa if q["answerable"]][:questions]
    wanted = {e for q in qa for e in q["evidence_ids"]}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").open()]
    keep = [a for a in corpus if a["id"] in wanted] + [a for a in corpus if a["id"] not in wanted][
        :distractors
    ]
    target.mkdir(parents=True)
    (target / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qa))
    (target / "corpus.jsonl").write_text("".join(json.dumps(a) + "\n" for a in keep))
    (target / "qa_meta.jsonl").write_text((source / "qa_meta.jsonl").read_text())
    return target


@pytest.mark.integration
def test_realtimeqa_retrieval_floor(realtimeqa: Path, tmp_path: Path) -> None:
    """Regression gate on a subset (floors a bit under what it measured: see the test's history)."""
    suite = realtimeqa_subset(realtimeqa, tmp_path / "rtqa")
    report = run_suite(suite, Settings(data_dir=tmp_path / "data"), retrieval_only=True)
    s = report["systems"]["rag"]["summary"]
    assert s["errors"] == 0 and s["answerable"] == 40
    assert s["hit@5"] >= HIT5_FLOOR
    assert s["mrr@10"] >= MRR_FLOOR


# --- lenient matcher fixes and the choice-aware score ---------------------------------------
@pytest.mark.parametrize(
    ("answer", "acceptable"),
    [
        ("Italy's new prime minister", "Italy"),
        ("Italy’s new prime minister", "Italy"),
        ("New Jersey & Oregon", "New Jersey and Oregon"),
        ("New Jersey and Oregon", "New Jersey & Oregon"),
        ("Sweden and Finland", "Finland and Sweden"),
        ("It was Norway, Sweden and Finland [1].", "Finland, Sweden and Norway"),
        ("Beatles", "The Beatles"),
        ("KFOR has 3700 troops", "3,700"),
        ("Donald Trump won by a record margin [1].", "Former President Donald Trump"),
        ("Alejandro Mayorkas faces impeachment", "Homeland Security Secretary Alejandro Mayorkas"),
        ("Antony Blinken flew to Cairo", "Secretary of State Antony Blinken"),
        ("Book during the winter [2].", "In the winter"),
    ],
)
def test_lenient_matcher_accepts(answer: str, acceptable: str) -> None:
    assert metrics.answer_correct(answer, [acceptable])


@pytest.mark.parametrize(
    ("answer", "acceptable"),
    [
        ("Finland", "Finland and Sweden"),  # half a list
        ("Sweden and Norway", "Finland and Sweden"),  # a wrong item
        ("New Jersey", "New Jersey and Oregon"),
        ("Italian officials", "Italy"),  # no stemming
        ("Johnson", "Johnson & Johnson"),  # repeated items are not a list
        (
            "Finland joined first; months later, after a long fight in parliament, Sweden",
            "Finland and Sweden",
        ),
        ("About 300 people", "3"),
        ("The Hague", "The Beatles"),
        ("William", "Prince William"),  # a one-word name keeps its title
        ("Trump", "Former President Donald Trump"),
        ("The Heights", "In the Heights"),  # a title keeps its preposition
        ("Joe Biden won", "Former President Donald Trump"),
    ],
)
def test_lenient_matcher_rejects(answer: str, acceptable: str) -> None:
    assert not metrics.answer_correct(answer, [acceptable])


def test_possessive_and_ampersand_help_token_f1() -> None:
    assert metrics.token_f1("Italy's", ["Italy"]) == 1.0
    assert metrics.token_f1("New Jersey & Oregon", ["New Jersey and Oregon"]) == 1.0


def test_choice_correct() -> None:
    choices = ["Texas", "California", "New Mexico", "Arizona"]
    assert metrics.choice_correct("Texas was sued [1].", choices, 0) is True
    assert metrics.choice_correct("Texas or California", choices, 0) is False  # hedging
    assert metrics.choice_correct("California", choices, 0) is False
    nested = ["New Jersey", "New Jersey and Oregon", "Ohio"]
    assert metrics.choice_correct("New Jersey & Oregon", nested, 1) is True
    assert metrics.choice_correct("New Jersey", nested, 1) is False
    assert metrics.choice_correct("x", [], None) is None
    assert metrics.choice_correct("x", ["a"], 3) is None


# --- dev split -------------------------------------------------------------------------------
def test_split_is_a_fixed_hash_of_the_id(suite_dir: Path) -> None:
    import hashlib

    from rag.evals.suites import select_split, split_of

    ids = [f"q{i}" for i in range(200)]
    for qid in ids[:20]:
        even = hashlib.sha256(qid.encode()).digest()[0] % 2 == 0
        assert split_of(qid) == ("tune" if even else "check")
    tune = {i for i in ids if split_of(i) == "tune"}
    assert 70 < len(tune) < 130  # about half
    cases = load_suite(suite_dir).cases
    a, b = select_split(cases, "tune"), select_split(cases, "check")
    assert {c.id for c in a} | {c.id for c in b} == {c.id for c in cases}
    assert not {c.id for c in a} & {c.id for c in b}
    assert [c.id for c in select_split(list(reversed(cases)), "tune")] == [
        c.id for c in reversed(a)
    ]  # order-independent membership
    assert select_split(cases, "all") == cases
    with pytest.raises(ValueError, match="split"):
        select_split(cases, "train")


def test_run_suite_split_and_scorecard(
    suite_dir: Path, settings: Settings, fake_embedder: KeywordEmbedder
) -> None:
    from rag.evals.suites import split_of

    report = run_suite(
        suite_dir, settings, retrieval_only=True, embedder=fake_embedder, split="check"
    )
    ids = [q["id"] for q in report["systems"]["rag"]["questions"]]
    assert ids == [q["id"] for q in QA if split_of(q["id"]) == "check"]
    assert report["split"] == "check" and report["suite_questions"] == len(QA)
    assert f"split check of {len(QA)}" in format_table(report)
    help_text = CliRunner().invoke(eval_cmd, ["--help"]).output
    assert "--split [all|tune|check]" in help_text and "sha256" in help_text


# --- the answer-loss funnel ------------------------------------------------------------------
def test_funnel_stages_and_summary() -> None:
    from rag.evals.funnel import funnel_stages, summarize_funnel

    passages = [{"n": 1, "article_id": "art-2", "text": "Lai Ching-te won the election."}]
    trimmed = [{"n": 1, "article_id": "art-2", "text": "The election was held."}]
    full = funnel_stages(["art-2"], ["Lai Ching-te"], passages, passages, "Lai Ching-te [1]", True)
    assert all(full.values())
    lost = funnel_stages(["art-2"], ["Lai Ching-te"], passages, trimmed, "Nobody", False)
    assert lost == {
        "gold_passage": True,
        "answer_in_passages": True,
        "answer_in_shown": False,
        "answer_in_raw": False,
        "correct": False,
    }
    other = funnel_stages(["art-9"], ["Lai Ching-te"], passages, passages, "Lai Ching-te", True)
    assert other["gold_passage"] is False and other["correct"] is True
    assert funnel_stages([], ["x"], [], [], "", False)["gold_passage"] is None
    rows = [{"answerable": True, "funnel": f} for f in (full, lost, other)]
    summary = summarize_funnel(rows)
    assert summary is not None and summary["n"] == 3
    stages = summary["stages"]
    assert stages["gold_passage"] == {
        "surviving": pytest.approx(2 / 3),
        "alone": pytest.approx(2 / 3),
    }
    assert stages["answer_in_shown"]["surviving"] == pytest.approx(1 / 3)
    assert stages["correct"]["surviving"] == pytest.approx(1 / 3)  # "other" fell out at (a)
    assert stages["correct"]["alone"] == pytest.approx(2 / 3)
    assert summarize_funnel([{"answerable": True}]) is None


class ScriptedChain:
    """Plays a fixed outcome per question: what was retrieved, shown, streamed and verified."""

    model_name = "scripted"

    def __init__(self) -> None:
        from langchain_core.documents import Document

        text = {a["id"]: a["text"] for a in ARTICLES}

        def doc(aid: str, n: int) -> Document:
            return Document(
                page_content=text[aid], metadata={"article_id": aid, "chunk_id": f"{aid}#0", "n": n}
            )

        # question word -> (context docs, shown texts or None, streamed, final answer, reason)
        self.script: dict[str, tuple[list[Any], list[str] | None, str, str, str | None]] = {
            "lava": ([doc("art-1", 1)], [text["art-1"]], "Grindavik [1].", "Grindavik [1].", None),
            "Taiwan": ([doc("art-2", 1)], ["The vote was in Taiwan."], "", "", "model"),
            "darts": ([doc("art-1", 1)], None, "Luke Littler", "Luke Littler [1].", None),
            "2030": ([doc("art-3", 1)], None, "", "", "stale"),
            "percentage": (
                [doc("art-2", 1)],
                ["40 percent of the vote"],
                "40 percent",
                "",
                "unsupported",
            ),
        }

    def stream(self, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        key = next(k for k in self.script if k in payload["input"])
        context, shown, raw, final, reason = self.script[key]
        yield {"standalone_question": payload["input"]}
        yield {"context": context}
        if raw:
            yield {"answer": raw}
        out: dict[str, Any] = {
            "answer": final or "The articles don't say.",
            "refused": reason is not None,
            "citations": [],
            "evidence": {"coverage": 0.5, "dense": 0.4, "newest": "2024-01-14", "age_days": 5},
        }
        if reason:
            out["refusal_reason"] = reason
        if shown is not None:
            out["shown_passages"] = [{"n": i, "text": t} for i, t in enumerate(shown, start=1)]
        if reason == "unsupported":
            out["unsupported_answer"] = raw
        yield {"final": out}


def test_funnel_and_refusals_in_the_report(
    suite_dir: Path, settings: Settings, fake_embedder: KeywordEmbedder, tmp_path: Path
) -> None:
    from rag.evals.suites import suite_settings
    from rag.retrieve.hybrid import build_retriever

    cfg = suite_settings(load_suite(suite_dir), settings, embedder=fake_embedder)
    retriever = build_retriever(cfg, embedder=fake_embedder)
    report = run_suite(suite_dir, settings, chain=ScriptedChain(), retriever=retriever)
    summary = report["systems"]["rag"]["summary"]
    stages = summary["funnel"]["stages"]
    assert summary["funnel"]["n"] == 4
    # q1 all through; q2 lost when trimmed; q3 wrong article; q5 lost in verification
    assert stages["gold_passage"]["surviving"] == 0.75
    assert stages["answer_in_passages"]["surviving"] == 0.75
    assert stages["answer_in_shown"]["surviving"] == 0.5
    assert stages["answer_in_raw"]["surviving"] == 0.5
    assert stages["correct"]["surviving"] == 0.25 == summary["correct"]
    refusals = summary["refusals"]
    assert refusals["answerable"]["refused"] == 2 and refusals["answerable"]["n"] == 4
    assert refusals["answerable"]["reasons"]["model"] == {"count": 1, "share": 0.25}
    assert refusals["answerable"]["reasons"]["unsupported"]["count"] == 1
    assert refusals["unanswerable"]["reasons"] == {"stale": {"count": 1, "share": 1.0}}
    q5 = next(q for q in report["systems"]["rag"]["questions"] if q["id"] == "q5")
    assert q5["raw_answer"] == "40 percent" and q5["refusal_reason"] == "unsupported"
    assert q5["evidence"]["age_days"] == 5 and q5["shown_source"] == "chain"
    assert q5["shown_passages"] == [
        {"n": 1, "article_id": "art-2", "text": "40 percent of the vote"}
    ]
    q3 = next(q for q in report["systems"]["rag"]["questions"] if q["id"] == "q3")
    assert q3["shown_source"] == "context" and q3["shown_passages"][0]["article_id"] == "art-1"
    assert q3["refusal_reason"] is None
    table = format_table(report)
    assert "Answer-loss funnel" in table and "(c) answer in what the model saw" in table
    assert "unsupported" in table and "1/4 (0.25)" in table and "1/1 (1.00)" in table
    paths = write_report(report, tmp_path / "rep")
    md = paths["md"].read_text()
    assert "## Answer-loss funnel" in md and "## Refusals by reason" in md
    saved = json.loads(paths["json"].read_text())
    assert saved["systems"]["rag"]["questions"][0]["funnel"]["correct"] is True
    assert paths["png"].stat().st_size > 20_000  # the four-panel figure


def test_tutorial_baseline_funnel_with_the_extractive_reader(
    suite_dir: Path, settings: Settings, fake_embedder: KeywordEmbedder
) -> None:
    from rag.evals.suites import suite_settings
    from rag.retrieve.hybrid import build_retriever

    cfg = suite_settings(load_suite(suite_dir), settings, embedder=fake_embedder)
    retriever = build_retriever(cfg, embedder=fake_embedder)
    report = run_suite(
        suite_dir, settings, chain=ScriptedChain(), retriever=retriever, baseline="tutorial"
    )
    tut = report["systems"]["tutorial"]
    assert tut["summary"]["errors"] == 0 and tut["summary"]["funnel"]["n"] == 4
    for q in tut["questions"]:
        assert q["shown_source"] == "context" and 1 <= len(q["shown_passages"]) <= 4
        assert {p["article_id"] for p in q["shown_passages"]} <= {a["id"] for a in ARTICLES}
    stages = tut["summary"]["funnel"]["stages"]
    # the baseline shows its chunks whole: (c) loses nothing after (b)
    assert stages["answer_in_shown"]["surviving"] == stages["answer_in_passages"]["surviving"]
    assert stages["answer_in_passages"]["surviving"] > 0
    assert "tutorial surviving" in format_table(report)


# --- the same-period unanswerable suite ------------------------------------------------------
SP_ARTICLES = [
    *ARTICLES,
    {
        "id": "art-4",
        "title": "Insulin",
        "published": "2024-01-05",
        "text": "Insulin makers cap the price at $35 a month.",
    },
    {
        "id": "art-5",
        "title": "Darts again",
        "published": "2024-01-06",
        "text": "Fans cheered Luke Humphries in London.",
    },
    {"id": "art-6", "title": "Weather", "published": "2024-01-07", "text": "Snow fell in Ohio."},
]
SP_QA = [
    *[q for q in QA if "history" not in q],
    {
        "id": "q7",
        "question": "Insulin costs how much?",
        "answers": ["$35"],
        "evidence_ids": ["art-4"],
        "answerable": True,
    },
    {
        "id": "q8",
        "question": "Where did snow fall?",
        "answers": ["Ohio"],
        "evidence_ids": ["art-6"],
        "answerable": True,
    },
]


def test_distinctive_answers() -> None:
    from rag.evals.same_period import is_distinctive

    assert is_distinctive("Luke Humphries") and is_distinctive("Grindavik")
    assert is_distinctive("climate change")
    for plain in ("$35", "40 percent", "84-82", "yes", "No", "Ohio", "inflation", "2023"):
        assert not is_distinctive(plain), plain


def test_make_same_period(tmp_path: Path) -> None:
    from rag.evals.same_period import make_same_period

    source = make_suite(tmp_path / "src", SP_QA, SP_ARTICLES)
    target = tmp_path / "out" / "sp"
    stats = make_same_period(source, target, share=1.0, max_df=10)
    # Grindavik, Lai Ching-te, Luke Humphries are distinctive; $35 and Ohio are not
    assert stats["unanswerable"] == 3 and stats["controls"] == 2
    # art-5 goes too: it also names Luke Humphries
    assert stats["articles_dropped"] == 4 and stats["articles_kept"] == 2
    kept = [json.loads(line) for line in (target / "corpus.jsonl").open()]
    assert {a["id"] for a in kept} == {"art-4", "art-6"}
    suite = load_suite(target)
    by_id = {c.id: c for c in suite.cases}
    assert {c.id for c in suite.cases if not c.answerable} == {"q1", "q2", "q3"}
    assert {c.id for c in suite.cases if c.answerable} == {"q7", "q8"}
    assert "q4" not in by_id  # the source's own unanswerable questions are not used
    assert by_id["q1"].today == date(2024, 1, 19) and by_id["q1"].answers == []
    corpus_text = (target / "corpus.jsonl").read_text()
    for gone in ("Grindavik", "Lai Ching-te", "Luke Humphries"):
        assert gone not in corpus_text
    meta = {m["id"]: m for m in map(json.loads, (target / "qa_meta.jsonl").open())}
    assert meta["q1"]["kind"] == "same_period_unanswerable"
    assert meta["q1"]["removed_answers"] == ["Grindavik"]
    assert meta["q7"]["kind"] == "same_period_control"
    assert "How:" in (target / "SOURCE.md").read_text()
    # a rare-string limit of 1 article leaves Luke Humphries (2 articles) as a control
    strict = make_same_period(source, tmp_path / "strict", share=1.0, max_df=1)
    assert strict["unanswerable"] == 2 and strict["controls"] == 3
    none = make_same_period(source, tmp_path / "none", share=0.0)
    assert none["unanswerable"] == 0 and none["articles_dropped"] == 0 and none["controls"] == 5


def test_make_same_period_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("msp", REPO / "evals" / "make_same_period.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    source = make_suite(tmp_path / "src", SP_QA, SP_ARTICLES)
    out = tmp_path / "data" / "suites" / "sp"
    assert script.main(["--source", str(source), "--out", str(out), "--share", "1"]) == 0
    printed = capsys.readouterr().out
    assert "3 same-period unanswerable, 2 answerable controls" in printed
    assert "articles: 4 dropped, 2 kept of 6" in printed
    assert (out / "qa.jsonl").is_file()
    assert script.main(["--source", str(tmp_path / "missing"), "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().err
    assert script.main(["--source", str(source), "--out", str(REPO / "evals" / "x")]) == 2


def test_same_period_drops_articles_where_the_answer_is_glued_to_a_word(tmp_path: Path) -> None:
    from rag.evals.same_period import make_same_period

    articles = [
        *ARTICLES,
        {"id": "art-7", "title": "Travel", "text": "Flights resumed to Grindavik.Lava cooled."},
    ]
    source = make_suite(tmp_path / "src", [QA[0], QA[1]], articles)
    stats = make_same_period(source, tmp_path / "out", share=1.0)
    assert stats["unanswerable"] == 2 and stats["articles_dropped"] == 3  # art-1, art-2, art-7
    assert "Grindavik" not in (tmp_path / "out" / "corpus.jsonl").read_text()


def test_compare_reports_funnel_stage_deltas() -> None:
    old, new = fake_report(1.0, [1.0, 0.0]), fake_report(1.0, [1.0, 1.0])
    for report, shown in ((old, 0.5), (new, 1.0)):
        report["systems"]["rag"]["summary"]["funnel"] = {
            "n": 2,
            "stages": {"answer_in_shown": {"surviving": shown, "alone": shown}},
        }
    result = compare(old, new)
    d = result["metrics"]["rag"]["funnel:answer_in_shown"]
    assert d["delta"] == 0.5 and d["better"] is True
    assert "funnel (c) surviving" in format_compare(result)
