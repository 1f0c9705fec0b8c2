"""render.py: escaping, url allowlist, quote highlighting, citation links."""

from __future__ import annotations

import html
import re

import pytest
from langchain_core.documents import Document

from rag.ui import render

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">[x](javascript:alert(3)) $$x$$'


def visible_text(markup: str) -> str:
    """What a browser shows for ``markup`` (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup.replace("<br>", "\n")))


# --- escaping ------------------------------------------------------------------------------
def test_escape_html_escapes_markup_and_quotes() -> None:
    out = render.escape_html('<b a="1">&\'</b>')
    assert out == "&lt;b a=&quot;1&quot;&gt;&amp;&#x27;&lt;/b&gt;"


def test_escape_html_drops_control_characters() -> None:
    assert render.escape_html("a\x00b\x1bc\td") == "ab" + "c\td"


def test_escape_chat_leaves_no_markdown_or_html_syntax() -> None:
    out = render.escape_chat(EVIL + "\n**bold** `code` # head")
    assert not set("<>[]()*`#$\"'&").intersection(re.sub(r"&#\d+;|<br>", "", out))
    assert visible_text(out) == EVIL + "\n**bold** `code` # head"


def test_escape_chat_turns_newlines_into_breaks() -> None:
    assert render.escape_chat("a\r\nb\nc") == "a<br>b<br>c"


def test_render_user_is_escaped() -> None:
    out = render.render_user(EVIL)
    assert "<script" not in out and "<img" not in out and "javascript:" not in out
    assert visible_text(out) == EVIL


# --- urls ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["https://example.org/a?b=1&c=2", "http://news.example.com/x#frag", "HTTPS://EXAMPLE.ORG"],
)
def test_safe_url_accepts_http_and_https(url: str) -> None:
    assert render.safe_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example.org/x",
        "/relative/path",
        "https://",
        "http://exa mple.org",
        "http:\\\\evil.example.org",
        "",
        None,
        42,
    ],
)
def test_safe_url_rejects_everything_else(url: object) -> None:
    assert render.safe_url(url) is None


def test_card_links_only_http_urls_with_safe_rel() -> None:
    good = {"n": 1, "title": "T", "url": "https://example.org/a?x=1&y=2", "text": "t"}
    bad = {"n": 2, "title": "T2", "url": "javascript:alert(1)", "text": "t"}
    out = render.render_sources(0, "q", [good, bad], citations=[{"n": 1}, {"n": 2}])
    assert (
        '<a class="rag-card-title" href="https://example.org/a?x=1&amp;y=2" '
        'target="_blank" rel="noopener noreferrer">' in out
    )
    assert "javascript" not in out
    assert out.count("<a ") == 1


def test_url_attribute_cannot_break_out() -> None:
    p = {"n": 1, "title": "T", "url": 'https://example.org/"onmouseover="alert(1)', "text": "t"}
    out = render.render_sources(0, "q", [p], citations=[{"n": 1}])
    assert '"onmouseover' not in out
    assert "&quot;onmouseover=&quot;" in out


# --- highlighting ---------------------------------------------------------------------------
def test_highlight_wraps_exact_offsets() -> None:
    text = "One. The quote here. Three."
    start = text.index("The quote")
    out = render.highlight(text, [(start, start + len("The quote here."))])
    assert out == 'One. <mark class="rag-quote">The quote here.</mark> Three.'


def test_highlight_escapes_inside_and_outside_the_mark() -> None:
    text = "<b>x</b> <script>q</script> tail"
    s = text.index("<script>")
    out = render.highlight(text, [(s, s + len("<script>q</script>"))])
    assert "<script>" not in out and "<b>" not in out
    assert '<mark class="rag-quote">&lt;script&gt;q&lt;/script&gt;</mark>' in out


def test_highlight_clamps_and_merges_spans() -> None:
    text = "abcdefghij"
    out = render.highlight(text, [(-5, 2), (1, 4), (8, 99), (6, 6), ("x", 3), (None, None)])
    assert out == '<mark class="rag-quote">abcd</mark>efgh<mark class="rag-quote">ij</mark>'


def test_merge_spans() -> None:
    assert render.merge_spans([(5, 7), (0, 2), (1, 3), (7, 9)], 8) == [(0, 3), (5, 8)]


def test_card_highlights_quote_of_supported_citations_only() -> None:
    text = "First sentence. KFOR has 3,700 troops. Last one."
    s = text.index("KFOR")
    e = s + len("KFOR has 3,700 troops.")
    p = {"n": 1, "title": "T", "text": text}
    cited = render.render_sources(
        0, "q", [p], citations=[{"n": 1, "quote_start": s, "quote_end": e, "supported": True}]
    )
    assert '<mark class="rag-quote">KFOR has 3,700 troops.</mark>' in cited
    unsupported = render.render_sources(
        0, "q", [p], citations=[{"n": 1, "quote_start": s, "quote_end": e, "supported": False}]
    )
    assert "<mark" not in unsupported


# --- citation links --------------------------------------------------------------------------
def test_link_citations_links_known_numbers_to_cards() -> None:
    out = render.link_citations("A [1]. B [2, 3]. C [9].", turn=4, known={1, 2})
    assert '<a class="rag-cite" href="#src-4-1" title="Source 1">[1]</a>' in out
    assert 'href="#src-4-2"' in out
    assert 'href="#src-4-3"' not in out and 'href="#src-4-9"' not in out
    assert visible_text(out) == "A [1]. B [2][3]. C [9]."


def test_citation_links_match_card_ids() -> None:
    ctx = [{"n": 1, "title": "A", "text": "x"}, {"n": 2, "title": "B", "text": "y"}]
    answer = render.render_answer(3, "Claim [2].", context=ctx, citations=[{"n": 2}])
    sources = render.render_sources(3, "q", ctx, citations=[{"n": 2}])
    hrefs = re.findall(r'href="#(src-[\d-]+)"', answer)
    assert hrefs == ["src-3-2"]
    assert 'id="src-3-2"' in sources


def test_link_citations_escapes_the_text_around_markers() -> None:
    out = render.link_citations('<img src=x onerror="alert(1)"> [1]', 0, {1})
    assert "<img" not in out
    assert visible_text(out) == '<img src=x onerror="alert(1)"> [1]'


def test_partial_marker_while_streaming_stays_text() -> None:
    out = render.render_answer(
        0, "KFOR has 3,700 troops [1", context=[{"n": 1, "text": ""}], streaming=True
    )
    assert "rag-cite" not in out
    assert "rag-cursor" in out


# --- answers, refusals, errors, trace -----------------------------------------------------
def test_refusal_is_marked_and_explains() -> None:
    out = render.render_answer(
        0, "The articles don't say.", context=[{"n": 1, "text": "x"}], refused=True
    )
    assert "rag-refusal" in out and "Not found in the articles" in out
    sources = render.render_sources(0, "q", [{"n": 1, "title": "Close", "text": "x"}], refused=True)
    assert "Closest passages found" in sources and "rag-sources-refused" in sources


def test_copy_button_carries_plain_answer_and_sources() -> None:
    cites = [
        {
            "n": 1,
            "title": "T <x>",
            "source": "S",
            "published": "2022-08-17T00:00",
            "url": "https://e.org/a",
        }
    ]
    out = render.render_answer(0, 'Says "3,700" [1].', citations=cites)
    copy = html.unescape(
        re.search(r'<span class="rag-copy-text" hidden>([^<]*)</span>', out).group(1)
    )
    assert copy == 'Says "3,700" [1].\n\nSources:\n[1] T <x>, S, 2022-08-17 <https://e.org/a>'


def test_error_message_is_escaped() -> None:
    out = render.render_error("model <b>died</b>", hint="Set RAG_LLM=extractive")
    assert "<b>died" not in out and "rag-error" in out
    assert "died" in visible_text(out)


def test_trace_shows_rewrite_ranks_timings_model() -> None:
    ctx = [
        {
            "n": 1,
            "title": "<i>T</i>",
            "dense_rank": 2,
            "bm25_rank": None,
            "fused_rank": 1,
            "score": 0.0312,
            "text": "",
        }
    ]
    out = render.render_trace(
        question="and them?",
        standalone="How many KFOR troops are there?",
        context=ctx,
        citations=[{"n": 1}],
        timings={"condense_s": 0.2, "retrieve_s": 0.05, "first_token_s": 1.5, "total_s": 3.25},
        model="tiny <model>",
    )
    assert out.startswith('<details class="rag-trace"><summary>How this was answered</summary>')
    text = visible_text(out)
    assert "Follow-up rewritten for search: How many KFOR troops are there?" in text
    assert "<i>T</i>" in text and "<i>" not in out
    assert "200 ms" in text and "50 ms" in text and "1.50 s" in text and "3.25 s" in text
    assert "tiny <model>" in text
    assert re.search(r"<td>2</td><td>—</td><td>1</td><td>0.031</td><td>✓</td>", out)


def test_trace_without_rewrite_says_so() -> None:
    out = render.render_trace(question="q", standalone="q", context=[])
    assert "the question as asked" in out and "No passages were retrieved" in out


def test_sources_pending_lists_passages_before_the_answer() -> None:
    ctx = [{"n": 1, "title": "A", "text": "alpha"}]
    out = render.render_sources(0, "q", ctx, pending=True)
    assert "Passages found" in out and "Writing the answer" in out and 'id="src-0-1"' in out
    assert "Searching the articles" in render.render_sources(0, "q", [], pending=True)


def test_uncited_passages_are_folded_away() -> None:
    ctx = [{"n": 1, "title": "A", "text": "a"}, {"n": 2, "title": "B", "text": "b"}]
    out = render.render_sources(0, "q", ctx, citations=[{"n": 2, "quote_start": 0, "quote_end": 1}])
    assert (
        out.index('id="src-0-2"')
        < out.index("Also retrieved, not cited (1)")
        < out.index('id="src-0-1"')
    )


def test_passage_from_doc_keeps_display_fields() -> None:
    doc = Document(
        page_content="text",
        metadata={"n": 2, "title": "T", "url": "u", "dense_rank": 3, "other": 1},
    )
    p = render.passage_from_doc(doc)
    assert p["n"] == 2 and p["title"] == "T" and p["dense_rank"] == 3 and p["text"] == "text"
    assert "other" not in p


def test_corpus_and_upload_report_are_escaped() -> None:
    assert "1</b> article " in render.render_corpus({"index": {"articles": 1, "chunks": 7}})
    assert "7</b> chunks" in render.render_corpus({"index": {"articles": 1, "chunks": 7}})
    assert "<x>" not in render.render_corpus(None, error="<x>")
    out = render.render_upload_report(
        ["a<b>.txt"], [("evil<script>.exe", "not allowed")], summary="1 added"
    )
    assert "<script>" not in out and "a<b>" not in out
    assert "a&lt;b&gt;.txt" in out and "evil&lt;script&gt;.exe" in out and "1 added" in out
