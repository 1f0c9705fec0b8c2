"""Property-based tests (hypothesis) for the loaders, the cleaner and the chunker.

Bounded: a modest number of examples each, no deadline, so the file runs in seconds.
"""

from __future__ import annotations

import json
import os
import re
import string
import tempfile
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.ingestion.chunk import pack_spans, split_article
from rag.ingestion.clean import clean_body
from rag.ingestion.load import SUPPORTED_SUFFIXES, Article, LoadFailure, iter_articles, load_file

from .test_documents import check_chunks

MB = 1024 * 1024
BOUNDED = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),  # more for a longer hunt
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TEXT_SUFFIXES = sorted(SUPPORTED_SUFFIXES - {".pdf"})

# Text that looks like news some of the time: words, sentence ends, paragraphs, and any
# Unicode at all the rest of the time.
_word = st.text(alphabet=string.ascii_letters + "éñüß日本語العربية", min_size=1, max_size=12)
_sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(_word, min_size=1, max_size=25),
    st.sampled_from([".", "!", "?", "…", ".\u201d", ""]),
)
_paragraph = st.lists(_sentence, min_size=1, max_size=8).map(" ".join)
prose = st.lists(_paragraph, min_size=1, max_size=8).map("\n\n".join)
any_text = st.one_of(prose, st.text(max_size=400), st.text(alphabet=st.characters(), max_size=2000))


def _storable(article: Article) -> None:
    """What the store needs of an article: UTF-8 encodable fields, some text."""
    for value in (article.id, article.title, article.text, article.source, article.url):
        (value or "").encode("utf-8")
    assert article.text.strip()


def _check_loaded(items: list[Article | LoadFailure]) -> None:
    assert items
    for item in items:
        if isinstance(item, LoadFailure):
            assert item.path and item.reason.strip()
        else:
            _storable(item)


# --- loaders ------------------------------------------------------------------------------------


@BOUNDED
@given(text=any_text, suffix=st.sampled_from(TEXT_SUFFIXES))
def test_any_unicode_text_loads_or_is_refused_with_a_reason(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"article{suffix}"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        items = load_file(path, max_bytes=MB)
        _check_loaded(items)
        again = load_file(path, max_bytes=MB)
        assert again == items  # ids, titles, text: stable across runs


@BOUNDED
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_any_bytes_load_or_are_refused_with_a_reason(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"file{suffix}"
        path.write_bytes(data)
        _check_loaded(load_file(path, max_bytes=MB))


_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=60)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_record = st.fixed_dictionaries(
    {},
    optional={
        "id": _json,
        "title": _json,
        "text": st.one_of(any_text, _json),
        "source": _json,
        "url": _json,
        "published": _json,
        "body": _json,
    },
)


@BOUNDED
@given(records=st.lists(st.one_of(_record, _json), max_size=6), lines=st.booleans())
def test_any_json_loads_or_is_refused_with_a_reason(records: list[object], lines: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("feed.jsonl" if lines else "feed.json")
        if lines:
            path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        else:
            path.write_text(json.dumps(records), encoding="utf-8")
        if not records and lines:
            return  # an empty .jsonl is an empty file: covered elsewhere
        items = list(iter_articles([path], max_bytes=MB))
        _check_loaded(items)
        ids = [i.id for i in items if isinstance(i, Article)]
        assert len(ids) == len(set(ids))  # a duplicate id is reported, never stored twice


# --- cleaner ------------------------------------------------------------------------------------


@BOUNDED
@given(text=any_text)
def test_cleaned_text_is_tidy(text: str) -> None:
    cleaned, source = clean_body(text)
    assert "\r" not in cleaned and "\n\n\n" not in cleaned
    assert not any(c < " " and c != "\n" for c in cleaned)  # no control characters, no ESC
    assert not any(c in cleaned for c in "\u200b\u2060\ufeff\u00ad\u2028\u2029")
    for line in cleaned.split("\n"):
        assert line == line.strip() and "  " not in line
    assert cleaned == cleaned.strip()
    assert source is None or (source.strip() and "\n" not in source)
    # cleaning only drops: every word left was a word of the input (invisible characters out)
    bare = re.sub(r"[\u200b\u2060\ufeff\u00ad\x00-\x08\x0b\x0e-\x1f\x7f]", "", text)
    bare = re.sub(r"[\r\u2028\u2029]", "\n", bare)
    assert set(cleaned.split()) <= set(bare.split())


# --- chunker ------------------------------------------------------------------------------------


def _article(text: str, article_id: str = "a") -> Article:
    return Article(
        id=article_id, title="T", text=text, source=None, url=None, published=None, origin="/x"
    )


sizes = st.tuples(st.integers(100, 1200), st.integers(0, 400)).filter(lambda t: t[1] < t[0])


@BOUNDED
@given(raw=any_text, size_overlap=sizes)
def test_chunk_offsets_point_at_the_chunk_text_and_cover_the_article(
    raw: str, size_overlap: tuple[int, int]
) -> None:
    size, overlap = size_overlap
    text, _ = clean_body(raw)
    if not text:
        return
    article = _article(text)
    chunks = split_article(article, chunk_size=size, chunk_overlap=overlap)
    check_chunks(article, chunks, size, overlap)  # offsets, whole sentences, overlap bound
    spans = pack_spans(text, size, overlap)
    # nothing lost: every non-space character lies in some span
    covered = bytearray(len(text))
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    # nothing duplicated beyond the overlap: consecutive spans share at most `overlap` chars
    for (s1, e1), (s2, e2) in pairwise(spans):
        assert s1 < s2 and e1 < e2 and e1 - s2 <= overlap
    # a span dropped as a repeat has the text of a chunk that was kept
    kept = {c.text for c in chunks}
    assert all(text[s:e] in kept for s, e in spans)


@BOUNDED
@given(raw=prose, size_overlap=sizes, other=st.text(min_size=1, max_size=20))
def test_chunk_ids_are_stable_and_depend_on_article_and_text(
    raw: str, size_overlap: tuple[int, int], other: str
) -> None:
    size, overlap = size_overlap
    text, _ = clean_body(raw)
    if not text:
        return
    article = _article(text)
    first = split_article(article, chunk_size=size, chunk_overlap=overlap)
    second = split_article(_article(text), chunk_size=size, chunk_overlap=overlap)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    moved = split_article(replace(article, id="b" + other), chunk_size=size, chunk_overlap=overlap)
    assert [c.id.rpartition("#")[2] for c in moved] == [c.id.rpartition("#")[2] for c in first]
    assert not {c.id for c in moved} & {c.id for c in first}
