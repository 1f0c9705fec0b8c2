"""Tests for rag.documents: loading every format, hostile input, cleaning, chunking."""

from __future__ import annotations

import codecs
import os
import time
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from rag.dates import parse_date
from rag.ingestion.chunk import Chunk, split_article
from rag.ingestion.load import Article, LoadFailure, article_id_for_path, iter_articles, load_file
from rag.text import split_sentences

DATA = Path(__file__).resolve().parent / "data" / "formats"
SEED = Path(__file__).resolve().parent.parent / "corpus" / "nato-kosovo-kfor.txt"
MB = 1024 * 1024


def make_pdf(lines: list[str], *, title: str | None = None, created: str | None = None) -> bytes:
    """A minimal one-page PDF showing ``lines`` in Helvetica (no PDF library needed)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({esc(x)}) Tj T*" for x in lines) + " ET"
    info = "".join(
        f" /{k} ({esc(v)})" for k, v in (("Title", title), ("CreationDate", created)) if v
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<<{info} >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return out


def only_articles(items: list[Article | LoadFailure]) -> list[Article]:
    assert not [i for i in items if isinstance(i, LoadFailure)], items
    return [i for i in items if isinstance(i, Article)]


def by_title(paths: list[Path]) -> dict[str, Article]:
    return {a.title: a for a in only_articles(list(iter_articles(paths, max_bytes=MB)))}


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


def test_every_format_loads_with_metadata() -> None:
    got = by_title([DATA])
    fm = got["Harbor Town Opens New Ferry Terminal"]
    assert (fm.source, fm.url, fm.published) == (
        "Example News",
        "https://www.example-news.org/local/ferry-terminal",
        "2024-03-14",
    )
    assert "(REUTERS" not in fm.text and "Read more" not in fm.text and "old pier" not in fm.text
    assert fm.text.endswith("from 6 a.m. to 11 p.m., the port authority said.")

    plain = got["Rain Delays City Marathon"]
    assert plain.text.startswith("Organizers of the city marathon")
    assert (plain.source, plain.url, plain.published) == (None, None, None)
    assert plain.id == article_id_for_path(DATA / "plain.txt")

    md = got["Library Extends Opening Hours"]
    assert md.source == "city-gazette.example.com"
    assert "city council decided" in md.text and "10 p.m." in md.text
    for junk in ("#", "**", "__", "](", "![", "reading-room.jpg", "> ", "Source:"):
        assert junk not in md.text
    assert "- Weekday hours run from 8 a.m. to 10 p.m." in md.text

    html = got["Bridge Reopens After Repairs"]
    assert (html.source, html.url, html.published) == (
        "The Valley Courier",
        "https://valleycourier.example.com/news/bridge-reopens",
        "2024-02-05",
    )
    assert html.text == (
        "The Elm Street bridge reopened to traffic on Monday after six months of repairs.\n\n"
        "Engineers replaced 40 steel beams.\nThe work cost $2.3 million.\n\n"
        "Commuters said the detour had added 20 minutes to their trips."
    )

    rec = got["School Board Approves Budget"]
    assert (rec.id, rec.source, rec.published) == (
        "courier-001",
        "The Valley Courier",
        "2024-01-09",
    )

    trees, tours = got["Park Gets New Trees"], got["Museum Adds Night Tours"]
    assert trees.id == article_id_for_path(DATA / "records.json") + "#1"
    assert tours.id == article_id_for_path(DATA / "records.json") + "#2"
    assert (trees.source, trees.published, tours.published) == (
        "parks-daily.example.net",
        "2023-11-04",
        "2023-05-20",
    )
    assert got["Airport Adds Routes"].id == "feed-1"
    assert got["Power Outage Ends"].published == "2024-03-03"
    assert all(Path(a.origin).is_absolute() and Path(a.origin).exists() for a in got.values())


def test_html_fallbacks_and_json_container(tmp_path: Path) -> None:
    (tmp_path / "bare.htm").write_text(
        "<html><head><title>Storm Hits Coast - Coast Daily</title>"
        '<meta property="og:site_name" content="Coast Daily"></head><body>'
        "<nav>Menu</nav><h2>Storm Hits Coast</h2><div><p>Winds reached 90 km/h.</p>"
        "<p>Schools closed <b>early</b> on Friday.</p></div>"
        '<p>Posted <time datetime="2024-01-12T07:00">Jan 12</time></p>'
        "<form>Sign up</form><script>x()</script></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "wrapped.json").write_text(
        '{"articles": [{"headline": "Wrapped", "body": "Body text.", "date": "3 March 2024", '
        '"link": "https://www.wrap.example.com/a", "id": 7}]}',
        encoding="utf-8",
    )
    got = by_title([tmp_path])
    bare = got["Storm Hits Coast"]
    assert (bare.source, bare.published, bare.url) == ("Coast Daily", "2024-01-12", None)
    assert bare.text == "Winds reached 90 km/h.\n\nSchools closed early on Friday.\n\nPosted Jan 12"
    wrapped = got["Wrapped"]
    assert (wrapped.id, wrapped.published, wrapped.source) == (
        "7",
        "2024-03-03",
        "wrap.example.com",
    )


def test_markdown_front_matter(tmp_path: Path) -> None:
    (tmp_path / "fm.markdown").write_text(
        '---\ntitle: "Front Title"\ndate: 2024-04-01\nsource: Gazette\n---\n'
        "# Heading In Body\n\nText with `code` and ~~old~~ words.\n",
        encoding="utf-8",
    )
    (article,) = only_articles(load_file(tmp_path / "fm.markdown", max_bytes=MB))
    assert (article.title, article.published, article.source) == (
        "Front Title",
        "2024-04-01",
        "Gazette",
    )
    assert article.text == "Heading In Body\n\nText with code and old words."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-01-02", "2023-01-02"),
        ("2023-01-02T23:30:00-05:00", "2023-01-02"),
        ("2023/1/2", "2023-01-02"),
        ("D:20230102120000+00'00'", "2023-01-02"),
        ("Mon, 02 Jan 2023 10:00:00 GMT", "2023-01-02"),
        ("January 2, 2023", "2023-01-02"),
        ("Sept. 3, 2023", "2023-09-03"),
        ("2nd February 2023", "2023-02-02"),
        ("13/01/2023", "2023-01-13"),
        ("01/13/2023", "2023-01-13"),
        ("01/02/2023", None),  # ambiguous day/month
        ("2023-02-30", None),
        ("yesterday", None),
        ("", None),
        (1672617600, "2023-01-02"),
        (None, None),
        (["2023-01-02"], None),
    ],
)
def test_parse_date(value: object, expected: str | None) -> None:
    assert parse_date(value) == expected


def test_pdf_loads_with_title_and_dehyphenation(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(
        make_pdf(
            ["The council met on Monday and voted on the inter-", "national trade agreement."],
            title="Council Backs Trade Deal",
            created="D:20230305120000Z",
        )
    )
    (article,) = only_articles(load_file(pdf, max_bytes=MB))
    assert article.title == "Council Backs Trade Deal"
    assert article.published == "2023-03-05"
    assert "international trade agreement." in article.text

    untitled = tmp_path / "untitled.pdf"
    untitled.write_bytes(make_pdf(["Flood Warning Issued", "Rivers rose overnight."]))
    (article,) = only_articles(load_file(untitled, max_bytes=MB))
    assert (article.title, article.text) == ("Flood Warning Issued", "Rivers rose overnight.")


def test_utf8_bom_and_utf16_with_bom_load(tmp_path: Path) -> None:
    text = "Café Reopens\n\nThe café on Main St. reopened — with crêpes."
    (tmp_path / "a.txt").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    (tmp_path / "b.txt").write_bytes(text.encode("utf-16"))  # BOM included
    (tmp_path / "c.md").write_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    articles = only_articles(list(iter_articles([tmp_path], max_bytes=MB)))
    assert [(a.title, a.text) for a in articles] == [(text[:12], text[14:])] * 3


def test_txt_without_title_line_uses_file_name(tmp_path: Path) -> None:
    path = tmp_path / "city_news-update.txt"
    path.write_text("A single long paragraph of reporting. " * 10, encoding="utf-8")
    (article,) = only_articles(load_file(path, max_bytes=MB))
    assert article.title == "city news update"
    assert article.text.startswith("A single long paragraph")


def test_article_ids_and_content_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert article_id_for_path(Path("sub/x.txt")) == "sub/x.txt"
    assert article_id_for_path(tmp_path / "sub" / "x.txt") == "sub/x.txt"
    assert article_id_for_path(DATA / "plain.txt") == (DATA / "plain.txt").as_posix()
    (a,) = load_file(SEED, max_bytes=MB)
    (b,) = load_file(SEED, max_bytes=MB)
    assert isinstance(a, Article) and isinstance(b, Article)
    assert a.content_hash() == b.content_hash() and len(a.content_hash()) == 64
    assert replace(a, text=a.text + " More.").content_hash() != a.content_hash()
    assert replace(a, published="2022-08-17").content_hash() != a.content_hash()
    assert replace(a, origin="/elsewhere").content_hash() == a.content_hash()


# --------------------------------------------------------------------------------------------
# The seed article
# --------------------------------------------------------------------------------------------


def test_seed_article_is_cleaned_conservatively() -> None:
    (article,) = only_articles(load_file(SEED, max_bytes=MB))
    assert article.title.startswith("After a new escalation in tensions between Serbia and Kosovo")
    assert article.source == "infobae.com"
    text = article.text
    for kept in (
        "who recalled that KFOR is made up of 3,700 troops from 20 allied and 7 associated "
        "countries.",
        "NATO on Wednesday urged Serbia and Kosovo to lower tensions",
        "Kosovo proclaimed in 2008 an independence that Serbia does not recognize",
        "“Our history is not easy, but we want to further strengthen our cooperation",
        "(With information from EFE)",
    ):
        assert kept in text
    for dropped in (
        "REUTERS",
        "JOHANNA GERON",
        "Secretary General of NATO, urged Serbia",
        "Members of the KFOR peacekeepers patrol",
        "President of Serbia (",
        "Prime Minister of Kosovo (",
        "Keep reading",
        "Zaporizhzhia",
        "Macron also ratified",
        "Source",
        "infobae.com",
    ):
        assert dropped not in text
    assert article.title not in text
    # every prose paragraph of the raw file survives verbatim (modulo whitespace)
    raw_paragraphs = [p.strip() for p in SEED.read_text(encoding="utf-8").split("\n\n")]
    body = raw_paragraphs[1 : raw_paragraphs.index("Keep reading:")]
    prose = [p for p in body if "(REUTERS" not in p]
    assert len(prose) == 16
    assert all(p in text for p in prose)
    assert text.split("\n\n") == prose
    assert "\n\n\n" not in text and not any(line != line.strip() for line in text.split("\n"))


# --------------------------------------------------------------------------------------------
# Hostile input
# --------------------------------------------------------------------------------------------


def test_bad_files_fail_with_reasons_while_good_ones_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.txt").write_text("Good Title\n\nGood body sentence.", encoding="utf-8")
    cases = {
        "empty.txt": (b"", "empty file"),
        "blank.md": (b" \n\t\n  \n", "only whitespace"),
        "nul.txt": (b"Title\n\nBody\x00\x00\x00 with NULs", "binary file"),
        "ctrl.html": (bytes(range(1, 32)) * 20, "binary file"),
        "image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        "latin1.txt": ("Títle\n\nCafé con leche".encode("latin-1"), "not valid UTF-8 (byte 1)"),
        "big.txt": (b"Title\n\n" + b"word " * 300, "too large"),
        "broken.json": (b'{"title": "x", "text": "y"', "invalid JSON on line 1"),
        "scalar.json": (b"42", "record object or a list"),
        "emptylist.json": (b"[]", "no records"),
        "notext.json": (
            b'[{"title": "a", "text": "ok"}, {"title": "b"}, {"text": 5}]',
            "record 2 has no 'text'",
        ),
        "lines.jsonl": (
            b'{"id": "ok-1", "title": "A", "text": "Fine."}\n{"id": broken}\n\n["list"]\n'
            b'{"id": "ok-2", "title": "B", "text": "Also fine."}\n',
            "invalid JSON on line 2",
        ),
        "scanned.pdf": (make_pdf([]), "no extractable text (scanned PDF?)"),
        "fake.pdf": (b"just text pretending", "not a PDF"),
        "truncated.pdf": (make_pdf(["Hello there."])[:60], "unreadable PDF"),
        "captions.txt": (
            b"Title\n\nA photo (REUTERS/Someone)\n\nSource: www.example.com",
            "no article text",
        ),
    }
    for name, (data, _) in cases.items():
        (d / name).write_bytes(data)
    (d / ".hidden.txt").write_bytes(b"")  # hidden: skipped silently
    (d / ".git").mkdir()
    (d / ".git" / "x.txt").write_bytes(b"")
    (d / "notes.docx").write_bytes(b"PK\x03\x04")  # unsupported in a walk: skipped silently
    (d / "denied.txt").write_text("Denied\n\nSecret body.", encoding="utf-8")
    real_open = Path.open

    def fake_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self.name == "denied.txt":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", fake_open)
    fifo = d / "pipe.txt"
    os.mkfifo(fifo)
    cases["denied.txt"] = (b"", "permission denied")
    cases["pipe.txt"] = (b"", "not a regular file")

    items = list(iter_articles([d, tmp_path / "missing", d / "notes.docx"], max_bytes=1000))
    failures = [i for i in items if isinstance(i, LoadFailure)]
    articles = [i for i in items if isinstance(i, Article)]
    assert sorted(a.title for a in articles) == ["A", "B", "Good Title", "a"]
    reasons: dict[str, list[str]] = {}
    for f in failures:
        assert f.reason and f.path
        reasons.setdefault(Path(f.path).name, []).append(f.reason)
    for name, (_, expected) in cases.items():
        assert any(expected in r for r in reasons.get(name, [])), (name, reasons.get(name))
    assert (
        "too large: " in reasons["big.txt"][0]
        and "(raise RAG_MAX_FILE_MB)" in reasons["big.txt"][0]
    )
    assert len(reasons["lines.jsonl"]) == 2  # the broken line and the non-object line
    assert reasons["missing"] == ["no such file or directory"]
    assert "unsupported file type '.docx'" in reasons["notes.docx"][0]
    assert not any(name.startswith(".") or name == "x.txt" for name in reasons)


def test_file_vanishing_and_duplicates(tmp_path: Path) -> None:
    gone = load_file(tmp_path / "gone.txt", max_bytes=MB)
    assert gone == [LoadFailure(article_id_for_path(tmp_path / "gone.txt"), gone[0].reason)]
    assert "not found" in gone[0].reason
    (tmp_path / "a.jsonl").write_text(
        '{"id": "same", "title": "t", "text": "One."}\n', encoding="utf-8"
    )
    (tmp_path / "b.jsonl").write_text(
        '{"id": "same", "title": "t", "text": "Two."}\n', encoding="utf-8"
    )
    items = list(iter_articles([tmp_path, tmp_path / "a.jsonl"], max_bytes=MB))
    assert [type(i).__name__ for i in items] == ["Article", "LoadFailure"]
    assert "duplicate article id 'same'" in items[1].reason  # type: ignore[union-attr]


def test_load_file_never_raises_on_parser_bugs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.ingestion.load as documents

    def boom(*_: object) -> None:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(documents, "parse_html", boom)
    (tmp_path / "x.html").write_text("<p>hi</p>", encoding="utf-8")
    (failure,) = load_file(tmp_path / "x.html", max_bytes=MB)
    assert isinstance(failure, LoadFailure) and "parser exploded" in failure.reason


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


def sample_articles() -> list[Article]:
    loaded = only_articles(list(iter_articles([DATA, SEED], max_bytes=MB)))
    long_sentence = "This sentence keeps going " + "and going " * 150 + "until it stops."
    giant_word = "x" * 2500
    paragraphs = "\n\n".join(
        " ".join(
            f"Paragraph {p} sentence {i} says something about item No. {i}."
            for i in range(p % 5 + 1)
        )
        for p in range(40)
    )
    synthetic = [
        ("long", f"Short start.\n\n{long_sentence}\n\nShort end."),
        ("giant", f"Before the word. {giant_word} After the word."),
        ("paras", paragraphs),
        ("repeat", "\n\n".join(["The same paragraph repeats here. Again and again."] * 30)),
    ]
    base = loaded[0]
    return loaded + [replace(base, id=i, text=t) for i, t in synthetic]


def check_chunks(article: Article, chunks: list[Chunk], size: int, overlap: int) -> None:
    text = article.text
    starts = {s for s, _ in split_sentences(text)}
    ends = {e for _, e in split_sentences(text)}
    assert chunks, article.id
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    for c in chunks:
        assert c.text == text[c.start : c.end] and c.text == c.text.strip()
        assert 0 < len(c.text) <= size
        assert c.article_id == article.id and c.id.startswith(article.id + "#")
        # whole sentences, unless the sentence alone is longer than the chunk size
        if c.start not in starts:  # at a word boundary unless a single word exceeds size
            assert any(s < c.start < e and e - s > size for s, e in split_sentences(text))
            assert text[c.start - 1].isspace() or len(max(text.split(), key=len)) > size
        if c.end not in ends:
            assert any(s < c.end < e and e - s > size for s, e in split_sentences(text))
    for a, b in pairwise(chunks):
        assert b.start > a.start and b.end > a.end
        assert a.end - b.start <= overlap
    # nothing is lost: every sentence lies inside some chunk (or is a repeat of an emitted one)
    texts = {c.text for c in chunks}
    for s, e in split_sentences(text):
        if e - s <= size:
            assert any(c.start <= s and e <= c.end for c in chunks) or any(
                text[s:e] in t for t in texts
            )


@pytest.mark.parametrize(
    ("size", "overlap"), [(1000, 150), (300, 100), (120, 0), (200, 199), (100, 60)]
)
def test_chunk_invariants(size: int, overlap: int) -> None:
    for article in sample_articles():
        chunks = split_article(article, chunk_size=size, chunk_overlap=overlap)
        check_chunks(article, chunks, size, overlap)
        assert article.title not in chunks[0].text or article.title in article.text
        again = split_article(article, chunk_size=size, chunk_overlap=overlap)
        assert [c.id for c in again] == [c.id for c in chunks]


def test_chunks_prefer_paragraph_breaks_and_overlap_whole_sentences() -> None:
    para = "This is a sentence of some forty chars."  # 39 chars
    text = "\n\n".join(" ".join([para] * 4) for _ in range(6))  # paragraphs of 159 chars
    article = replace(sample_articles()[0], id="p", text=text)
    chunks = split_article(article, chunk_size=300, chunk_overlap=50)
    assert all(c.text.endswith(para) for c in chunks)
    assert all(
        text[c.end : c.end + 2] in ("\n\n", "") for c in chunks[:-1]
    )  # ends at a paragraph break
    for a, b in pairwise(chunks):
        assert a.end - b.start in (len(para), -2)  # one whole sentence of overlap, or none


def test_chunk_ids_stable_and_change_with_text() -> None:
    article = next(a for a in sample_articles() if a.id == "paras")
    chunks = split_article(article, chunk_size=300, chunk_overlap=50)
    changed = replace(
        article, text=article.text.replace("Paragraph 20 sentence 0", "Paragraph 20 sentence zero")
    )
    new = split_article(changed, chunk_size=300, chunk_overlap=50)
    old_ids, new_ids = {c.id for c in chunks}, {c.id for c in new}
    assert old_ids != new_ids and len(old_ids & new_ids) >= len(chunks) - 3
    assert all(("Paragraph 20 sentence zero" in c.text) == (c.id not in old_ids) for c in new)
    renamed = split_article(replace(article, id="other"), chunk_size=300, chunk_overlap=50)
    assert {c.id.split("#", 1)[1] for c in renamed} == {c.id.split("#", 1)[1] for c in chunks}


def test_repeated_text_is_emitted_once() -> None:
    article = next(a for a in sample_articles() if a.id == "repeat")
    chunks = split_article(article, chunk_size=200, chunk_overlap=0)
    assert len(chunks) == 1


def test_realtimeqa_corpus_loads_and_splits(realtimeqa: Path) -> None:
    started = time.perf_counter()
    items = list(iter_articles([realtimeqa / "corpus.jsonl"], max_bytes=20 * MB))
    articles = only_articles(items)
    assert len(articles) == 818 and len({a.id for a in articles}) == 818
    assert all(a.published and len(a.published) == 10 and a.source and a.url for a in articles)
    chunks = [c for a in articles for c in split_article(a, chunk_size=1000, chunk_overlap=150)]
    assert len(chunks) > 5000
    assert all(len(c.text) <= 1000 for c in chunks)
    assert time.perf_counter() - started < 30
