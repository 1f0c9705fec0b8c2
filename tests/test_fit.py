"""answer_gap: a fact answer that does not say what the question asks for (rag.answer.fit)."""

from __future__ import annotations

import pytest

from rag.answer.fit import answer_gap


@pytest.mark.parametrize(
    ("question", "answer", "kind", "gap"),
    [
        (
            "When was KFOR first deployed in Kosovo?",
            "KFOR was first deployed in Kosovo [1].",
            "when",
            "no date",
        ),
        (
            "When was KFOR first deployed?",
            "KFOR was first deployed in June 1999 [1].",
            "when",
            None,
        ),
        ("When did the talks resume?", "The talks resumed on Thursday [2].", "when", None),
        ("How many people were hurt?", "Several people were hurt [1].", "fact", None),
        ("How many people were hurt?", "People were hurt in the clashes [1].", "fact", "no number"),
        ("How much did the bridge cost?", "It cost 48 million dollars [3].", "fact", None),
        (
            "What was agreed at Thursday's meeting in Brussels?",
            "Agreements were made at Thursday's meeting in Brussels [1].",
            "fact",
            "echo",
        ),
        (
            "Which network had an outage this week?",
            "AT&T had an outage this week [2].",
            "fact",
            None,
        ),
        ("Which company surpassed Apple?", "Apple surpassed Apple [1].", "fact", "echo"),
        ("Did Serbia recognise Kosovo?", "Serbia did not recognise Kosovo [1].", "fact", None),
        ("Was it Paris or Rome?", "It was Rome [1].", "fact", None),
        ("Why did the talks fail?", "The talks failed [1].", "why", None),  # broad: per sentence
    ],
)
def test_answer_gap(question: str, answer: str, kind: str, gap: str | None) -> None:
    assert answer_gap(question, answer, kind) == gap
