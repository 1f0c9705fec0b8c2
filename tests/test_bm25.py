from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.index.bm25 import BM25Index
from rag.text import tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3,700 troops", ["3700", "troop"]),
        ("3700 Troops!", ["3700", "troop"]),
        ("The countries of NATO", ["country", "nato"]),
        ("He is in the news", ["news"]),  # stop words go
        ("crisis in Texas", ["crisis", "texas"]),  # words that only look plural stay whole
        ("$3.5 million", ["3.5", "million"]),
        ("", []),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def _index() -> BM25Index:
    texts = [
        "KFOR is made up of 3,700 troops from 20 allied countries.",
        "Serbia and Kosovo leaders met in Brussels for talks.",
        "The storm left 50,000 homes without power in California.",
        "Troops patrol the border crossing in Jarinje.",
    ]
    return BM25Index.build([f"c{i}" for i in range(len(texts))], texts, generation=7)


def test_search_ranks_the_matching_chunk_first() -> None:
    index = _index()
    hits = index.search("How many KFOR troops are there?", 3)
    assert hits[0][0] == "c0"
    assert {h[0] for h in hits} == {"c0", "c3"}  # only chunks sharing a term score
    assert hits[0][1] > hits[1][1] > 0


def test_rare_terms_weigh_more_than_common_ones() -> None:
    index = _index()
    scores = index.scores("troops jarinje")
    assert scores[3] > scores[0]  # 'jarinje' is rarer than 'troops'


def test_mask_excludes_rows_and_no_match_returns_nothing() -> None:
    index = _index()
    mask = np.array([False, True, True, True])
    assert [h[0] for h in index.search("KFOR troops", 5, mask=mask)] == ["c3"]
    assert index.search("zebra", 5) == []


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = _index()
    path = tmp_path / "bm25" / "x.npz"
    index.save(path)
    loaded = BM25Index.load(path)
    assert loaded.ids == index.ids and loaded.generation == 7
    np.testing.assert_allclose(loaded.scores("kosovo brussels"), index.scores("kosovo brussels"))
    assert not list(tmp_path.glob("bm25/*.tmp"))


def test_empty_index() -> None:
    index = BM25Index.build([], [], generation=0)
    assert len(index) == 0
    assert index.search("anything", 5) == []
