"""Tests for rag.text: sentence splitting, normalisation, body cleaning, span packing."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from rag.ingestion.chunk import pack_spans
from rag.ingestion.clean import clean_body, host_of
from rag.text import normalize, split_sentences

SEED = Path(__file__).resolve().parent.parent / "corpus" / "nato-kosovo-kfor.txt"


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("The U.S. Army left. It was late.", ["The U.S. Army left.", "It was late."]),
        ("It grew in the U.S. The rest fell.", ["It grew in the U.S.", "The rest fell."]),
        ("He came on Jan. 5 and left. Fine.", ["He came on Jan. 5 and left.", "Fine."]),
        ("It is No. 1 in the world. Good.", ["It is No. 1 in the world.", "Good."]),
        ("Main St. Louis is far. Yes.", ["Main St. Louis is far.", "Yes."]),
        ("At 3 p.m. Central, it rained. Then sun.", ["At 3 p.m. Central, it rained.", "Then sun."]),
        ("It ended at 5 p.m. The crowd left.", ["It ended at 5 p.m.", "The crowd left."]),
        (
            "J. K. Rowling wrote it. George W. Bush read it.",
            ["J. K. Rowling wrote it.", "George W. Bush read it."],
        ),
        (
            "It cost $3.5 million. About 3,700 troops went.",
            ["It cost $3.5 million.", "About 3,700 troops went."],
        ),
        (
            'He said, "We will act." The crowd cheered.',
            ['He said, "We will act."', "The crowd cheered."],
        ),
        ("“We will act.” Then he left.", ["“We will act.”", "Then he left."]),
        ("“Why?” he asked. “Because.”", ["“Why?” he asked.", "“Because.”"]),
        ("Wait... what? No... The end.", ["Wait... what?", "No...", "The end."]),
        ("So … we wait. Later.", ["So … we wait.", "Later."]),
        (
            "Headline without a stop\n\nBody here. More.",
            ["Headline without a stop", "Body here.", "More."],
        ),
        (
            "Shares of Apple Inc. rose. The index fell.",
            ["Shares of Apple Inc. rose.", "The index fell."],
        ),
        ("Robert Downey Jr. (“Barbie”) won.", ["Robert Downey Jr. (“Barbie”) won."]),
        ("Wow! Really? Yes.", ["Wow!", "Really?", "Yes."]),
        ("He left (for good.) Then rain.", ["He left (for good.)", "Then rain."]),
        ("Intro:\n- first item\n- second item", ["Intro:", "- first item", "- second item"]),
        ("1. First step\n2. Second step", ["1. First step", "2. Second step"]),
        (
            "hard wrapped line\ncontinues here. Next one.",
            ["hard wrapped line\ncontinues here.", "Next one."],
        ),
        ("lower.case glitch.Next stays", ["lower.case glitch.Next stays"]),
        ("  \n\n  ", []),
        ("", []),
        ("   Padded sentence.   ", ["Padded sentence."]),
    ],
)
def test_split_sentences_table(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        SEED.read_text(encoding="utf-8"),
        "A.\n\n\n\nB. C!  D?\n \n E",
        "no punctuation at all",
        "…. . . !!! ??",
        "x" * 5000,
    ],
)
def test_split_sentences_spans_are_trimmed_ordered_and_nonempty(text: str) -> None:
    spans = split_sentences(text)
    prev_end = 0
    for start, end in spans:
        assert prev_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        prev_end = end
    # nothing but whitespace is left outside the spans
    outside = list(text)
    for start, end in spans:
        outside[start:end] = [" "] * (end - start)
    assert not "".join(outside).strip()


def test_split_sentences_seed_keeps_the_troops_sentence_whole() -> None:
    text = SEED.read_text(encoding="utf-8")
    found = [s for s in sentences(text) if "3,700 troops" in s]
    assert found == [
        "We will do whatever it takes to prevent an escalation and to ensure the freedom and "
        "security of all communities in Kosovo.”said Stoltenberg, who recalled that KFOR is made "
        "up of 3,700 troops from 20 allied and 7 associated countries."
    ]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("3,700 troops", "3700 troops"),
        ("“Hello,” she said.", '"hello" she said'),
        ("Kosovo’s army", "kosovo's army"),
        ("2012–2014", "2012-2014"),
        ("  many   spaces\n\nhere ", "many spaces here"),
        ("ＦＵＬＬ width", "full width"),
        ("STRASSE", "straße"),
        ("(With information from EFE)", "with information from efe"),
    ],
)
def test_normalize_makes_variants_equal(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)


def test_normalize_keeps_decimals_symbols_and_inner_punctuation() -> None:
    assert (
        normalize("It cost $3.5 million — U.S. said (50%)...")
        == "it cost $3.5 million u.s said 50%"
    )
    assert normalize("3.5") != normalize("35")
    assert normalize("1,23") == "1,23"  # not a thousands separator
    assert normalize("") == ""


def test_clean_body_removes_captions_links_and_source() -> None:
    raw = (
        "First paragraph of prose.\n\n"
        "Jens Stoltenberg, head of NATO (REUTERS / Johanna Geron) (JOHANNA GERON /)\n\n"
        "Second paragraph.   With  extra   spaces.   \n\n\n\n"
        "KFOR patrol near the border (REUTERS/Laura Hasani)\n"
        "Members of the KFOR patrol near the border in Jarinje\n\n"
        "(With information from EFE)\n\n"
        "Keep reading:\n\n"
        "Some other headline\n\n"
        "Another headline\n\n"
        "Source-www.infobae.com"
    )
    body, source = clean_body(raw)
    assert source == "infobae.com"
    assert body == (
        "First paragraph of prose.\n\n"
        "Second paragraph. With extra spaces.\n\n"
        "(With information from EFE)"
    )


@pytest.mark.parametrize(
    ("line", "source"),
    [
        ("Source: https://www.example.com/a/b", "example.com"),
        ("Source: Reuters", "Reuters"),
        ("SOURCE - news.example.org", "news.example.org"),
    ],
)
def test_clean_body_trailing_source_line(line: str, source: str) -> None:
    assert clean_body(f"Prose here.\n\n{line}") == ("Prose here.", source)


@pytest.mark.parametrize(
    "text",
    [
        "Prose here.\n\nSource: County Election Commission",  # a data source, not a publisher
        "The talks collapsed, the ministry said. (AFP)",  # prose ending with an agency tag
        "Keep reading for steps on how to protect your key fob.",
        "Related Cos. plans two towers.",
        "Read more:\n\n" + "A long paragraph of real prose that continues. " * 6,
        "He said (AP) that it was over, and then the meeting ended.",
    ],
)
def test_clean_body_keeps_prose(text: str) -> None:
    body, source = clean_body(text)
    assert normalize(body) == normalize(text)
    assert source is None


def test_clean_body_normalises_whitespace() -> None:
    body, _ = clean_body(
        "\ufeffTitle\u00a0line\r\n\r\n\r\nBody\u200b text\t here \x07\r\nnext line  "
    )
    assert body == "Title line\n\nBody text here\nnext line"
    assert clean_body("  \n\n ") == ("", None)


def test_host_of() -> None:
    assert host_of("https://www.infobae.com/x?y=1") == "infobae.com"
    assert host_of("www.infobae.com") == "infobae.com"
    assert host_of("not a url") is None


def test_pack_spans_basic_properties() -> None:
    text = "\n\n".join(" ".join(f"Sentence {p}.{i} is here." for i in range(7)) for p in range(5))
    spans = pack_spans(text, 120, 40)
    assert all(e - s <= 120 for s, e in spans)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b[0] > a[0] and b[1] > a[1] and a[1] - b[0] <= 40 for a, b in pairwise(spans))
    assert pack_spans("", 100, 10) == []
    with pytest.raises(ValueError):
        pack_spans(text, 0, 0)
