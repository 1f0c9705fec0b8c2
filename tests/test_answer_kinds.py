"""Broad questions: question kinds, attribution, per-sentence verification, the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.answer.attribution import claim_speaker, same_person, span_speakers, speaker_supported
from rag.answer.chain import build_chain
from rag.answer.cite import merge_verified, verify_answer
from rag.answer.complete import completion_sentences
from rag.answer.extractive import extractive_answer, select_sentences
from rag.answer.kinds import classify
from rag.config import Settings
from rag.testing import KeywordEmbedder, StaticRetriever

from .conftest import REPO

ARTICLE = (REPO / "corpus" / "nato-kosovo-kfor.txt").read_text(encoding="utf-8")

VUCIC = (
    "In a press conference with Stoltenberg, Vucic said he was aware that the history of his "
    "region “is not simple” but stated that, even without “agreeing on almost nothing” with "
    "Kurti, he considers peace and stability “of crucial importance.” ” for Serbia."
)
KURTI = (
    "Kurti, for his part, assured that Kosovo has shown its commitment to protecting principles "
    "and values common to the Atlantic Alliance and regretted that the Serbian side is acting "
    "“illegal structures that have become criminal gangs”as well as Russian influence in Belgrade."
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many KFOR troops are there?", "fact"),
        ("Who is the Secretary General of NATO?", "fact"),
        ("What is going on between Serbia and Kosovo?", "overview"),
        ("Summarize what Stoltenberg said.", "said"),
        ("What did Kurti say about Serbia?", "said"),
        ("Why did NATO warn Serbia?", "why"),
        ("How did the talks in Brussels go?", "how"),
        ("How much did it cost?", "fact"),
        ("Compare the positions of Vucic and Kurti.", "comparison"),
        ("When did Kosovo declare independence?", "when"),
        ("What did Kosovo announce a ban on?", "fact"),
    ],
)
def test_question_kinds(question: str, kind: str) -> None:
    assert classify(question).kind == kind


def test_said_questions_name_their_speaker_and_cues_leave_the_topic() -> None:
    assert classify("What did Albin Kurti say about Serbia?").speaker == "Kurti"
    assert classify("Summarize what Stoltenberg said.").speaker == "Stoltenberg"
    overview = classify("What is going on between Serbia and Kosovo?")
    assert overview.broad and "going" not in overview.topic and "Serbia" in overview.topic
    assert not classify("How many KFOR troops are there?").broad


def test_speakers_of_claims_and_spans() -> None:
    assert claim_speaker("Kurti said Serbia is not simple.") == "Kurti"
    assert claim_speaker("According to Jens Stoltenberg, KFOR is ready.") == "Stoltenberg"
    assert claim_speaker("Serbia and Kosovo are escalating tensions.") is None
    assert span_speakers(VUCIC) == ["Vucic"]
    assert span_speakers(KURTI) == ["Kurti"]
    assert span_speakers("“We will act,” said Stoltenberg.") == ["Stoltenberg"]
    assert same_person("Stoltenberg", "Jens Stoltenbergheld")  # scraped text glues words
    assert not same_person("Kurti", "Vucic")


def test_a_pronoun_quote_belongs_to_the_last_named_speaker() -> None:
    start = ARTICLE.index("“In the current situation")
    end = ARTICLE.index("he pointed out.") + len("he pointed out.")
    assert speaker_supported("Kurti", ARTICLE, start, end)
    assert not speaker_supported("Vucic", ARTICLE, start, end)


def _docs(*texts: str) -> list[Document]:
    return [
        Document(page_content=t, metadata={"n": i, "article_id": "a", "chunk_id": f"c{i}"})
        for i, t in enumerate(texts, start=1)
    ]


def test_words_of_another_speaker_do_not_support_an_attributed_claim() -> None:
    docs = _docs(VUCIC, KURTI)
    wrong = verify_answer(
        "Kurti said the history of his region is not simple [1].",
        docs,
        question="What did Kurti say about Serbia?",
    )
    assert not wrong.any_supported
    right = verify_answer(
        "Vucic said the history of his region is not simple [1].",
        docs,
        question="What did Vucic say?",
    )
    assert right.any_supported and right.citations[0].n == 1


def test_unsupported_sentences_are_dropped_and_counted() -> None:
    docs = _docs(KURTI)
    out = verify_answer(
        "Kurti regretted that the Serbian side is acting through criminal gangs [1]. "
        "The moon is made of cheese [1].",
        docs,
        question="What did Kurti say?",
    )
    assert out.dropped == 1 and out.supported_claims == 1
    assert "cheese" not in out.answer and "criminal gangs" in out.answer


def test_nothing_is_dropped_when_nothing_is_supported() -> None:
    out = verify_answer("The moon is made of cheese [1].", _docs(KURTI))
    assert out.dropped == 0 and not out.any_supported


def test_a_dangling_pronoun_gets_the_name_of_the_dropped_sentence() -> None:
    docs = _docs("“We must avoid further escalation and unhelpful rhetoric”, Stoltenberg warned.")
    out = verify_answer(
        "Stoltenberg said the moon is made of cheese. "
        "He also warned against further escalation and unhelpful rhetoric [1].",
        docs,
        question="Summarize what Stoltenberg said.",
        lenient=True,
    )
    assert out.dropped == 1
    assert out.answer.startswith("Stoltenberg also warned")


def test_marker_lists_are_read_as_one_run() -> None:
    docs = _docs(KURTI, VUCIC)
    out = verify_answer(
        "Kurti regretted that the Serbian side is acting through criminal gangs. [1], [2]",
        docs,
    )
    assert out.answer.endswith("gangs [1].")


def test_lenient_support_accepts_paraphrase_but_not_new_figures_or_names() -> None:
    passage = "After a new escalation in tensions, NATO warned that it could intervene."
    claim = "NATO is warning it may intervene as escalating tensions grow [1]."
    assert not verify_answer(claim, _docs(passage), question="What is going on?").any_supported
    lenient = verify_answer(claim, _docs(passage), question="What is going on?", lenient=True)
    assert lenient.any_supported
    for bad in (
        "NATO is warning it may send 5,000 troops as escalating tensions grow [1].",
        "NATO and Putin are warning they may intervene as escalating tensions grow [1].",
    ):
        out = verify_answer(
            bad,
            _docs(passage),
            question="What is going on?",
            lenient=True,
            embedder=KeywordEmbedder(),
        )
        assert not out.any_supported, bad


def test_prompt_passages_put_the_speaker_first_and_extractive_picks_their_words() -> None:
    text = VUCIC + " " + KURTI
    shown = select_sentences(
        "What did Kurti say about Serbia?", text, max_chars=300, speaker="Kurti"
    )
    assert "Kurti, for his part" in shown and "Vucic said" not in shown
    answer, _ = extractive_answer(
        "What did Kurti say about Serbia?", _docs(VUCIC, KURTI), speaker="Kurti"
    )
    assert "criminal gangs" in answer and "not simple" not in answer


def test_broad_answers_take_more_passages_and_fall_back_to_passage_sentences(
    tmp_path: Path,
) -> None:
    docs = [
        Document(page_content=t, metadata={"article_id": "a", "chunk_id": f"c{i}", "title": "T"})
        for i, t in enumerate([VUCIC, KURTI, ARTICLE[:400], ARTICLE[400:800], ARTICLE[800:1200]])
    ]
    llm = FakeListChatModel(responses=["Kurti said the moon is made of cheese [1]."] * 2)
    chain = build_chain(
        Settings(data_dir=tmp_path, llm="extractive", llm_passages=2, broad_passages=4),
        llm=llm,
        retriever=StaticRetriever(docs=docs, k=5),
    )
    out = chain.invoke({"input": "What did Kurti say about Serbia?"})
    assert out["kind"] == "said"
    assert len(out["context"]) == 4
    assert not out["refused"]
    assert out["verification"]["extractive_fallback"] is True
    assert "criminal gangs" in out["answer"] and "cheese" not in out["answer"]
    fact = chain.invoke({"input": "How many allied countries does KFOR have?"})
    assert fact["kind"] == "fact" and len(fact["context"]) == 2


# --- completing a short broad answer with passage sentences ----------------------------------
SVB = (
    "Silicon Valley Bank collapsed on Friday after depositors pulled $42 billion in a day. "
    "Regulators at the FDIC seized Silicon Valley Bank to stop bank runs after its collapse. "
    "Is that why regulators were alarmed? "
    "MORE COVERAGE: Silicon Valley Bank regulators alarmed by the collapse of the bank. "
    "The collapse alarmed regulators: Silicon Valley Bank was the largest bank failure since 2008."
)


def test_completion_appends_new_cited_passage_sentences_only() -> None:
    docs = _docs(SVB)
    first = verify_answer(
        "Silicon Valley Bank collapsed after depositors pulled $42 billion in a day [1].",
        docs,
        question="Why did the collapse of Silicon Valley Bank alarm regulators?",
        lenient=True,
    )
    assert first.supported_claims == 1
    extra = completion_sentences(
        first, docs, "collapse of Silicon Valley Bank alarm regulators", target=3
    )
    assert extra, "the passage holds more than the answer says"
    joined = " ".join(extra)
    assert all(s.endswith("[1].") for s in extra)
    assert "largest bank failure since 2008" in joined or "FDIC seized" in joined
    assert "$42 billion" not in joined  # already said
    assert "Is that why" not in joined and "MORE COVERAGE" not in joined  # heading, label
    assert len(extra) <= 2
    merged = merge_verified(first, verify_answer(joined, docs, question="", lenient=True))
    assert merged.supported_claims == 1 + len(extra)
    assert merged.answer.startswith("Silicon Valley Bank collapsed")
    assert completion_sentences(merged, docs, "alarm regulators", target=len(extra) + 1) == []


def test_verification_drops_repeats_question_headings_and_talk_about_the_passage() -> None:
    docs = _docs(SVB)
    looped = (
        "The passage from [1] explains that regulators at the FDIC seized Silicon Valley Bank. "
        "Regulators at the FDIC seized Silicon Valley Bank [1]. "
        "Regulators at the FDIC seized Silicon Valley [1]. "
        "Is that why regulators were alarmed [1]."
    )
    out = verify_answer(looped, docs, question="What did regulators do?", lenient=True)
    assert out.answer == "Regulators at the FDIC seized Silicon Valley Bank [1]."
    assert out.supported_claims == 1


def test_short_broad_answer_is_completed_with_passage_sentences(tmp_path: Path) -> None:
    docs = [
        Document(page_content=t, metadata={"article_id": "a", "chunk_id": f"c{i}", "title": "T"})
        for i, t in enumerate([SVB, ARTICLE[:400]])
    ]
    llm = FakeListChatModel(
        responses=["Silicon Valley Bank collapsed after depositors pulled $42 billion [1]."]
    )
    chain = build_chain(
        Settings(data_dir=tmp_path, llm="extractive", broad_passages=2),
        llm=llm,
        retriever=StaticRetriever(docs=docs, k=2),
    )
    out = chain.invoke({"input": "Why did the collapse of Silicon Valley Bank alarm regulators?"})
    assert out["kind"] == "why" and not out["refused"]
    assert out["verification"]["completed"] >= 1
    assert out["answer"].startswith("Silicon Valley Bank collapsed after depositors pulled")
    assert "FDIC" in out["answer"] or "2008" in out["answer"]
    assert all(c["supported"] for c in out["citations"])


def test_completion_of_a_said_answer_takes_only_the_speakers_words() -> None:
    docs = _docs(VUCIC, KURTI)
    first = verify_answer(
        "Kurti said the Serbian side is acting through criminal gangs [2].",
        docs,
        question="What did Kurti say about Serbia?",
        lenient=True,
    )
    assert first.any_supported
    topic = "history of the region, peace and stability"
    stoltenberg = completion_sentences(first, docs, topic, target=3, speaker="Stoltenberg")
    assert stoltenberg == []  # nobody else's words stand in for the asked speaker's
    kurti = completion_sentences(first, docs, "Serbia", target=3, speaker="Kurti")
    assert all("Vucic" not in s for s in kurti)
