from __future__ import annotations

import pytest
from langchain_core.documents import Document

from rag.answer.cite import parse_markers, strip_markers, support, verify_answer
from rag.answer.support import best_quote

DOCS = [
    Document(
        page_content="Stoltenberg met Vucic in Brussels on Wednesday. The talks were tense.",
        metadata={"chunk_id": "a#1", "title": "Talks"},
    ),
    Document(
        page_content="KFOR is made up of 3,700 troops from 20 allied and 7 associated countries.",
        metadata={"chunk_id": "a#2", "title": "KFOR"},
    ),
    Document(
        page_content="Kosovo proclaimed independence in 2008, which Serbia does not recognize.",
        metadata={"chunk_id": "a#3", "title": "Independence"},
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a [1] b [2]", [1, 2]),
        ("x [1, 3]", [1, 3]),
        ("x [1][2]", [1, 2]),
        ("x [2-4]", [2, 3, 4]),
        ("none", []),
    ],
)
def test_parse_markers(text: str, expected: list[int]) -> None:
    assert parse_markers(text) == expected


def test_support_is_strict_on_figures() -> None:
    assert support("KFOR has 3,700 troops.", DOCS[1].page_content) == 1.0
    assert support("KFOR has 4,000 troops.", DOCS[1].page_content) == 0.0
    assert support("KFOR has 3700 troops", DOCS[1].page_content) == 1.0


def test_ordinals_match_their_number() -> None:
    passage = "Phish hosts the Mondegreen festival in Dover on Aug. 15-18."
    assert support("The festival on Aug. 15th is Mondegreen.", passage) == 1.0
    assert support("The festival on Aug. 16th is Mondegreen.", passage) == 0.0


def test_a_figure_from_the_question_may_sit_elsewhere_in_the_passage() -> None:
    passage = (
        "Florida passed a law on social media for minors. Lawsuits are expected. "
        "It bans accounts for children under 14."
    )
    question = "Which state banned social media accounts for children under 14?"
    claim = "Florida banned social media accounts for children under 14 [1]."
    score, start, end = best_quote(claim, passage, question)
    assert score >= 0.5 and "Florida" in passage[start:end]
    # the premise must be somewhere in the passage: a passage about "under 16" does not do
    other = passage.replace("14", "16")
    assert best_quote(claim, other, question)[0] == 0.0
    # and a figure the question does not state must be in the quoted sentence itself
    first = passage.split(". ")[0]
    assert support(claim, first, question, context=passage) == 1.0
    assert support(claim, first, "Which state banned accounts?", context=passage) == 0.0


def test_correct_citation_is_kept() -> None:
    out = verify_answer("KFOR has 3,700 troops [2].", DOCS)
    assert out.answer == "KFOR has 3,700 troops [2]."
    assert [c.n for c in out.citations] == [2] and out.citations[0].supported
    assert "3,700 troops" in out.citations[0].to_dict()["quote"]
    assert out.repaired == 0 and out.any_supported


def test_wrong_number_is_repaired() -> None:
    out = verify_answer("KFOR has 3,700 troops from 20 allied countries [1].", DOCS)
    assert out.answer.endswith("[2].") and out.repaired == 1
    assert [c.n for c in out.citations] == [2]


def test_out_of_range_number_is_repaired_and_missing_marker_added() -> None:
    out = verify_answer("Kosovo declared independence in 2008 [9]. KFOR has 3,700 troops.", DOCS)
    assert "[3]" in out.answer and "[9]" not in out.answer and "[2]" in out.answer
    assert out.repaired == 1 and out.added == 1
    assert {c.n for c in out.citations} == {2, 3}


def test_unsupported_claim_loses_its_marker() -> None:
    out = verify_answer("Kosovo has 1.8 million inhabitants [3].", DOCS)
    assert "[3]" not in out.answer and out.removed == 1
    assert out.citations == [] and not out.any_supported


def test_quote_offsets_point_into_the_passage() -> None:
    out = verify_answer("Stoltenberg met Vucic in Brussels [1].", DOCS)
    cite = out.citations[0].to_dict()
    assert cite["passage"][cite["quote_start"] : cite["quote_end"]] == cite["quote"]
    assert cite["quote"].startswith("Stoltenberg met Vucic")


def test_strip_markers() -> None:
    assert strip_markers("A [1]. B [2, 3]") == "A. B"


def test_echoing_the_question_is_not_support() -> None:
    docs = [
        Document(
            page_content="The use of Serbian licence plates in Kosovo was banned.",
            metadata={"chunk_id": "b#1"},
        )
    ]
    question = "What currency does Kosovo use?"
    assert (
        support("Kosovo uses the euro.", docs[0].page_content) >= 0.5
    )  # without the question: fooled
    assert support("Kosovo uses the euro.", docs[0].page_content, question) == 0.0
    out = verify_answer("Kosovo uses the euro [1].", docs, question=question)
    assert not out.any_supported and out.citations == []
    kept = verify_answer(
        "KFOR has 3,700 troops [2].", DOCS, question="How many KFOR troops are there?"
    )
    assert [c.n for c in kept.citations] == [2]


ABORTION = [
    Document(
        page_content="Ohio voters will decide on Issue 1 on Tuesday.", metadata={"chunk_id": "o#1"}
    ),
    Document(
        page_content="France made history on Monday as the first country in the world "
        "to enshrine the right to abortion in its constitution. "
        "Parliament met at the Palace of Versailles.",
        metadata={"chunk_id": "f#1"},
    ),
]
ABORTION_Q = "Which country became the first to enshrine abortion rights in its constitution?"


def test_unsupported_trailing_detail_is_trimmed_not_the_whole_answer() -> None:
    raw = (
        "France became the first country to enshrine abortion rights in its constitution "
        "on Monday, 2024-03-04 [1]."
    )
    out = verify_answer(raw, ABORTION, question=ABORTION_Q)
    assert out.answer == (
        "France became the first country to enshrine abortion rights in its constitution "
        "on Monday [2]."
    )
    assert out.trimmed == 1 and out.any_supported
    assert [c.n for c in out.citations] == [2]
    assert "2024" not in out.answer


def test_trimming_cuts_several_date_clauses_until_supported() -> None:
    raw = "France did it at the Palace of Versailles on Monday, March 4, 2024."
    out = verify_answer(raw, ABORTION, question="Where did French lawmakers meet?")
    assert out.answer == "France did it at the Palace of Versailles on Monday [2]."
    assert out.trimmed == 1


@pytest.mark.parametrize(
    ("raw", "question"),
    [
        # negated claims are never trimmed: cutting could flip their meaning
        ("France did not enshrine abortion rights on 2024-03-04.", ABORTION_Q),
        # what is left after cutting only repeats the question
        ("The first country to enshrine abortion rights was Spain in 2024.", ABORTION_Q),
        # a tail without a date may be the answer itself: "The vote resulted" is no answer
        (
            "The vote in parliament resulted in 780 votes in favour.",
            "How many votes did the bill get?",
        ),
        # when the question asks when, the date is the answer
        (
            "France enshrined abortion rights in its constitution on 2024-03-04.",
            "When did France do it?",
        ),
    ],
)
def test_trimming_refuses_unsafe_or_empty_cuts(raw: str, question: str) -> None:
    out = verify_answer(raw, ABORTION, question=question)
    assert out.trimmed == 0 and not out.any_supported


def test_a_number_in_brackets_at_the_end_of_a_sentence_is_a_citation() -> None:
    out = verify_answer(
        "KFOR has 3,700 troops (2). Kosovo declared independence in 2008 (3).", DOCS
    )
    assert out.answer == "KFOR has 3,700 troops [2]. Kosovo declared independence in 2008 [3]."
    assert out.any_supported and out.supported_claims == 2
    # a number out of range, or inside the sentence, stays text
    kept = verify_answer("KFOR has 3,700 troops (9).", DOCS)
    assert kept.answer == "KFOR has 3,700 troops (9)." and not kept.any_supported
    inner = verify_answer("KFOR (2) has 3,700 troops [2].", DOCS)
    assert "(2)" in inner.answer


def test_talk_about_the_passages_is_not_a_claim() -> None:
    out = verify_answer("KFOR has 3,700 troops, according to the passage [2].", DOCS)
    assert out.answer == "KFOR has 3,700 troops [2]." and out.any_supported
    out = verify_answer("As mentioned in passage 2, KFOR has 3,700 troops [2].", DOCS)
    assert out.answer == "KFOR has 3,700 troops [2]." and out.any_supported
    two = "KFOR has 3,700 troops [2]. Based on the article, Kosovo proclaimed independence in 2008."
    assert verify_answer(two, DOCS).answer == (
        "KFOR has 3,700 troops [2]. Kosovo proclaimed independence in 2008 [3]."
    )
    # the words in a claim's own right stay: "based on the article's figures" is not a reference
    assert "based on" in verify_answer("Fees are based on the articles of 2008 [3].", DOCS).answer
