"""Overview scoring (rag.evals.nuggets) and the overview suite (evals/overview)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.errors import ConfigError
from rag.evals import nuggets as N  # noqa: N812
from rag.evals.report import format_table, write_report
from rag.evals.runner import run_suite
from rag.evals.suites import load_suite
from rag.testing import KeywordEmbedder
from tests.conftest import REPO, SEED_ARTICLE

OVERVIEW = REPO / "evals" / "overview"
DATASET = REPO.parent / "shared" / "datasets" / "realtimeqa-dev" / "corpus.jsonl"
ARTICLE = SEED_ARTICLE.read_text(encoding="utf-8")

KURTI = ["Albin Kurti", "Kurti", "prime minister of Kosovo"]
STOLTENBERG = ["Jens Stoltenberg", "Stoltenberg", "NATO Secretary General"]
VUCIC = ["Aleksandar Vucic", "Vucic", "Serbian president"]

KFOR = "KFOR is made up of 3,700 troops from 20 allied and 7 associated countries."
VUCIC_SAID = "Vucic himself predicted a difficult meeting this Thursday."


def cite(n: int, passage: str) -> dict[str, Any]:
    return {"n": n, "passage": passage, "article_id": None, "supported": True}


# --- nuggets ---------------------------------------------------------------------------------
def test_nugget_recall_is_lenient_containment() -> None:
    nuggets = [["3,700"], ["criminal gangs", "illegal structures"], ["Borrell"]]
    recall, found = N.nugget_recall(
        "KFOR has 3700 troops [1]. Illegal Structures, he said.", nuggets
    )
    assert recall == pytest.approx(2 / 3) and found == [0, 1]
    assert N.nugget_recall("Nothing relevant here.", nuggets) == (0.0, [])
    assert N.nugget_recall("37,000 troops", [["3,700"]])[0] == 0.0  # word-bounded, not substrings
    assert N.nugget_recall("anything", []) == (None, [])


# --- sentences and citations -----------------------------------------------------------------
def test_answer_sentences_keep_their_markers() -> None:
    sentences = N.answer_sentences("KFOR has 3,700 troops [1]. It is ready [2].\n[3] Troops left.")
    assert sentences == ["KFOR has 3,700 troops [1].", "It is ready [2]. [3]", "Troops left."]
    assert N.answer_sentences("Then more.") == []  # no content words
    assert N.answer_sentences("[1]") == []


def test_citation_precision_per_sentence() -> None:
    citations = [cite(1, KFOR), cite(2, VUCIC_SAID)]
    good = (
        "KFOR has 3,700 troops from 20 allied countries [1]. "
        "Vucic predicted a difficult meeting [2]."
    )
    assert N.citation_precision(good, citations) == (1.0, 2, 2)
    # right fact, wrong passage; a figure the passage doesn't have; no citation at all
    wrong = (
        "KFOR has 3,700 troops from 20 allied countries [2]. "
        "KFOR has 4,000 troops [1]. "
        "Vucic predicted a difficult meeting."
    )
    assert N.citation_precision(wrong, citations) == (0.0, 0, 3)
    mixed = "KFOR has 3,700 troops [2][1]. Vucic predicted a difficult meeting [1]."
    assert N.citation_precision(mixed, citations) == (0.5, 1, 2)
    assert N.citation_precision("", citations) == (None, 0, 0)


# --- attributions ----------------------------------------------------------------------------
def test_passage_attributions_follow_quotes_and_pronouns() -> None:
    people = [KURTI, STOLTENBERG, VUCIC]
    said = {
        tuple(who): sentence for sentence, who in N.attributions(ARTICLE, people) if who
    }.values()
    by_kurti = [s for s, who in N.attributions(ARTICLE, people) if who == [0]]
    assert any("criminal gangs" in s for s in by_kurti)
    assert any("Russian agenda" in s for s in by_kurti)  # "..., he pointed out"
    by_stoltenberg = [s for s, who in N.attributions(ARTICLE, people) if 1 in who]
    # the first sentence of a quotation closed (and attributed) in the next one
    assert any("proportionate and measured" in s for s in by_stoltenberg)
    # a name right after the closing quote mark is the speaker, whatever the verb
    by_vucic = [s for s, who in N.attributions(ARTICLE, people) if who == [2]]
    assert any(s.startswith("\u201cOur history is not easy") for s in by_vucic)
    # ... but not a name the quote is merely next to ("... 'almost nothing' with Kurti")
    assert all(0 not in who for s, who in N.attributions(ARTICLE, people) if "press conf" in s)
    assert said


def test_a_right_attribution_is_not_flagged() -> None:
    args = ([ARTICLE], KURTI, [VUCIC, STOLTENBERG])
    right = (
        "Kurti said the Serbian side runs illegal structures that have become criminal gangs [1]. "
        "He warned that Kosovo has reason to be vigilant about the Russian agenda [1]."
    )
    assert N.wrong_attributions(right, *args) == []
    # a paraphrase (other word forms) of the speaker's words is still the speaker's
    paraphrase = "Kurti said Serbia is run by criminal gangs and influenced by Russia [1]."
    assert N.wrong_attributions(paraphrase, *args) == []
    # sentences attributing nothing are not attribution errors
    assert N.wrong_attributions("KFOR has 3,700 troops [1].", *args) == []


def test_the_speakers_quote_given_to_someone_else_is_flagged() -> None:
    wrong = N.wrong_attributions(
        "Stoltenberg said illegal structures have become criminal gangs [1].",
        [ARTICLE],
        KURTI,
        [VUCIC, STOLTENBERG],
    )
    assert len(wrong) == 1
    assert wrong[0]["attributed_to"] == "Jens Stoltenberg"
    assert wrong[0]["reason"] == "the speaker's words given to someone else"


def test_someone_elses_words_given_to_the_speaker_are_flagged() -> None:
    wrong = N.wrong_attributions(
        "Kurti warned that we must avoid further escalation and unhelpful rhetoric [1].",
        [ARTICLE],
        KURTI,
        [VUCIC, STOLTENBERG],
    )
    assert [w["attributed_to"] for w in wrong] == ["Albin Kurti"]
    # but Stoltenberg saying it is right when he is the one asked about
    assert (
        N.wrong_attributions(
            "Stoltenberg warned that we must avoid further escalation and unhelpful rhetoric.",
            [ARTICLE],
            STOLTENBERG,
            [VUCIC, KURTI],
        )
        == []
    )
    assert N.wrong_attributions("Kurti said anything.", [ARTICLE], [], []) == []


# --- per question and summary ----------------------------------------------------------------
def _case(**extra: Any) -> Any:
    from rag.evals.suites import Case

    base: dict[str, Any] = {
        "id": "q",
        "question": "What did Kurti say about Serbia?",
        "evidence_ids": ["corpus/nato-kosovo-kfor.txt"],
        "nuggets": [["illegal structures", "criminal gangs"], ["Russian"]],
        "kind": "said",
        "speaker": KURTI,
        "not_speakers": [VUCIC, STOLTENBERG],
    }
    return Case(**(base | extra))


def test_score_case_answer_and_refusal() -> None:
    texts = {"corpus/nato-kosovo-kfor.txt": ARTICLE}
    case = _case()
    rec = {
        "answer": "Kurti said illegal structures have become criminal gangs [1]. "
        "Stoltenberg said Kosovo must be vigilant about the Russian agenda [1].",
        "refused": False,
        "citations": [{"n": 1, "article_id": "corpus/nato-kosovo-kfor.txt", "passage": ARTICLE}],
        "verification": {"claims": 3, "supported_claims": 2, "dropped": 1},
        "shown_passages": [{"n": 1, "text": "Kurti: illegal structures became criminal gangs."}],
        "raw_answer": "Kurti spoke of illegal structures [1]. Kurti spoke of Atlantis [2].",
    }
    out = N.score_case(case, rec, texts)
    assert out["nugget_recall"] == 1.0 and out["nuggets_in_evidence"] == 1.0
    # where nuggets are lost: "Russian" was never shown to the model, so not in its raw answer
    assert out["nuggets_in_shown"] == 0.5 and out["nuggets_in_raw"] == 0.5
    assert out["citation_precision"] == 1.0 and out["sentences"] == 2 and out["words"] > 10
    assert out["dropped"] == 1
    assert [w["attributed_to"] for w in out["wrong_attributions"]] == ["Jens Stoltenberg"]
    refused = N.score_case(case, {"answer": "The articles don't say.", "refused": True}, texts)
    assert refused["refused_with_nuggets"] and refused["nugget_recall"] == 0.0
    assert "citation_precision" not in refused and refused["dropped"] is None
    # nuggets absent from the evidence: a refusal is not held against the answer step
    absent = N.score_case(_case(nuggets=[["Atlantis"]]), {"answer": "", "refused": True}, texts)
    assert absent["nuggets_in_evidence"] == 0.0 and not absent["refused_with_nuggets"]

    summary = N.summarize_overview(
        [{"overview": out}, {"overview": refused}, {"overview": absent}, {"no": 1}]
    )
    assert summary is not None
    assert summary["questions"] == 3 and summary["answered"] == 1 and summary["refused"] == 2
    assert summary["nugget_recall"] == pytest.approx(1 / 3)
    assert summary["wrong_attributions"] == 1 and summary["attribution_questions"] == 1
    assert summary["refused_with_nuggets"] == 1 and summary["dropped"] == 1
    assert summary["by_kind"]["said"]["questions"] == 3
    assert summary["nuggets_in_shown"] == pytest.approx(0.5 / 3)
    assert N.summarize_overview([{"id": "x"}]) is None


# --- the suite -------------------------------------------------------------------------------
def test_overview_suite_shape() -> None:
    lines = [json.loads(x) for x in (OVERVIEW / "qa.jsonl").read_text().splitlines() if x]
    assert len(lines) >= 25
    kinds = {r["kind"] for r in lines}
    assert {"overview", "why", "how", "comparison", "said"} <= kinds
    questions = {r["question"] for r in lines}
    for seed in (
        "What is going on between Serbia and Kosovo?",
        "Summarize what Stoltenberg said.",
        "What did Kurti say about Serbia?",
    ):
        assert seed in questions
    for r in lines:
        assert r["nuggets"] and r["evidence_ids"], r["id"]
        assert (r["kind"] == "said") == bool(r.get("speaker")), r["id"]
        if r.get("speaker"):
            assert r["not_speakers"], r["id"]
    spec = json.loads((OVERVIEW / "suite.json").read_text())
    assert "../shared/datasets/realtimeqa-dev/corpus.jsonl" in spec["corpus_from"]
    # the suite references the dataset, it does not copy it
    assert not (OVERVIEW / "corpus.jsonl").exists()


def test_every_nugget_is_in_its_evidence() -> None:
    suite = load_suite(OVERVIEW)
    texts = N.corpus_texts(suite, {e for c in suite.cases for e in c.evidence_ids})
    for case in suite.cases:
        evidence = " ".join(texts[e] for e in case.evidence_ids)
        assert N.nugget_recall(evidence, case.nuggets)[0] == 1.0, case.id
        if case.speaker:  # the speaker is quoted in the evidence
            people = [case.speaker, *case.not_speakers]
            quoted = [w for e in case.evidence_ids for _, w in N.attributions(texts[e], people)]
            assert any(0 in w for w in quoted), case.id


def _copy_repo(tmp_path: Path, dataset: bool) -> Path:
    """A minimal repository: pyproject.toml, corpus/, evals/overview (+ ../shared if asked)."""
    repo = tmp_path / "repo"
    (repo / "corpus").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    shutil.copy(SEED_ARTICLE, repo / "corpus" / SEED_ARTICLE.name)
    shutil.copytree(OVERVIEW, repo / "evals" / "overview")
    if dataset:
        target = tmp_path / "shared" / "datasets" / "realtimeqa-dev"
        target.mkdir(parents=True)
        (target / "corpus.jsonl").write_text('{"id": "rtqa-x", "text": "x"}\n')
    return repo / "evals" / "overview"


def test_seed_part_loads_without_the_dataset(tmp_path: Path) -> None:
    suite = load_suite(_copy_repo(tmp_path, dataset=False))
    assert len(suite.cases) == 8 and all(c.id.startswith("ov-seed") for c in suite.cases)
    assert len(suite.skipped) >= 17 and all(i.startswith("ov-rtqa") for i in suite.skipped)
    assert [p.name for p in suite.corpus] == [SEED_ARTICLE.name]
    kurti = next(c for c in suite.cases if c.question == "What did Kurti say about Serbia?")
    assert kurti.speaker[1] == "Kurti" and kurti.not_speakers and kurti.kind == "said"


def test_corpus_from_resolves_against_the_repository(tmp_path: Path) -> None:
    suite = load_suite(_copy_repo(tmp_path, dataset=True))
    assert len(suite.cases) >= 25 and suite.skipped == []
    assert suite.corpus[-1] == (tmp_path / "shared/datasets/realtimeqa-dev/corpus.jsonl").resolve()


def test_a_suite_with_no_corpus_left_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / ".git").mkdir()
    (root / "suite.json").write_text('{"corpus_from": ["../nowhere/corpus.jsonl"]}')
    (root / "qa.jsonl").write_text('{"id": "a", "question": "Q?", "evidence_ids": ["rtqa-1"]}\n')
    with pytest.raises(ConfigError, match="no question left"):
        load_suite(root)


def test_bad_nuggets_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_text('{"id": "a", "question": "Q?", "nuggets": [["x", 3]]}\n')
    with pytest.raises(ConfigError, match="nugget"):
        load_suite(tmp_path)


# --- through the runner and the report -------------------------------------------------------
class FixedChain:
    """Answers every question with the same cited text (the rag.chain stream contract)."""

    model_name = "fixed"

    def stream(self, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        passage = ARTICLE
        yield {"standalone_question": payload["input"]}
        yield {"answer": "Kurti said "}
        yield {
            "final": {
                "answer": "Kurti said illegal structures have become criminal gangs [1].",
                "refused": False,
                "citations": [
                    {
                        "n": 1,
                        "article_id": "corpus/nato-kosovo-kfor.txt",
                        "passage": passage,
                        "supported": True,
                    }
                ],
                "verification": {"claims": 1, "supported_claims": 1, "dropped": 0},
                "kind": "said",
            }
        }


def test_runner_and_report_show_the_overview_scorecard(tmp_path: Path) -> None:
    suite_dir = _copy_repo(tmp_path, dataset=False)
    report = run_suite(
        suite_dir,
        Settings(data_dir=tmp_path / "data"),
        chain=FixedChain(),
        embedder=KeywordEmbedder(),
        limit=3,
    )
    rag = report["systems"]["rag"]
    overview = rag["summary"]["overview"]
    assert overview["questions"] == 3 and overview["answered"] == 3
    assert overview["wrong_attributions"] == 0 and overview["dropped"] == 0
    assert overview["kind_agreement"] == pytest.approx(2 / 3)  # 2 of the 3 ask what X said
    kurti = next(q for q in rag["questions"] if q["question"].startswith("What did Kurti"))
    assert kurti["overview"]["nugget_recall"] == pytest.approx(1 / 3)
    assert kurti["overview"]["citation_precision"] == 1.0
    table = format_table(report)
    assert "nugget recall" in table and ">= 0.95" in table and "wrong attributions" in table
    paths = write_report(report, tmp_path / "out")
    markdown = paths["md"].read_text()
    assert "Overview questions" in markdown and "per question" in markdown
    saved = json.loads(paths["json"].read_text())
    assert saved["systems"]["rag"]["summary"]["overview"]["questions"] == 3


@pytest.mark.skipif(not DATASET.exists(), reason="../shared/datasets/realtimeqa-dev is absent")
def test_the_full_suite_loads_with_the_dataset() -> None:
    suite = load_suite(OVERVIEW)
    assert len(suite.cases) >= 25 and not suite.skipped
    assert sum(1 for c in suite.cases if c.id.startswith("ov-seed")) == 8
