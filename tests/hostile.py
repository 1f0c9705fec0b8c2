"""A deterministic generator of hostile article files, mixed with good articles of known content.

:func:`generate` writes a folder of several hundred files across every supported format:
empty and binary files, broken and mixed encodings, a file over the size limit, one very long
line, control characters and terminal escapes, right-to-left and zero-width text, truncated,
encrypted and image-only PDFs, deeply nested and unclosed HTML, JSON/JSONL with bad lines,
wrong types, duplicate ids and missing text, symlinks (a loop, one pointing outside the folder,
dangling ones, one to a device), odd file names, and good articles whose titles and ids are
known. The returned :class:`HostileSet` says what each file must become: a good article (by
title, or id for JSON records), a failure with one of the listed reasons, or either.

Used by ``tests/test_reliability_ingest.py`` (small sizes) and ``benchmarks/reliability.py``
(a 100 MB file).
"""

from __future__ import annotations

import codecs
import io
import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingestion.load import Article, LoadFailure
from tests.test_documents import make_pdf

__all__ = ["HostileSet", "check_outcome", "generate", "good_body"]

_WORDS = (
    "harbor council budget railway festival reservoir museum bridge election drought vaccine "
    "tariff wildfire satellite orchestra glacier ferry stadium refinery archive"
).split()
_CITIES = "Tallinn Lisbon Accra Hanoi Quito Perth Oslo Lima Kyiv Dakar".split()

EMPTY = ("empty file",)
BINARY = ("binary file", "not valid UTF-8")
NOT_UTF8 = ("not valid UTF-8",)
NO_TEXT = ("no article text", "no extractable text", "no 'text'", "no text left")
BAD_PDF = ("unreadable PDF", "no extractable text", "not a PDF")
BAD_JSON = ("invalid JSON", "is not a JSON object", "has no 'text'", "a 'text' that is not")


@dataclass
class HostileSet:
    """What :func:`generate` wrote and what each file must become.

    Keys of ``bad`` and ``either`` are paths relative to ``root`` (posix), as the file or link
    is named; ``good_titles`` / ``good_ids`` are articles that must be ingested.
    """

    root: Path
    good_titles: dict[str, str] = field(default_factory=dict)  # title -> file
    good_ids: dict[str, str] = field(default_factory=dict)  # JSON record id -> file
    bad: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file -> accepted reasons
    either: set[str] = field(default_factory=set)  # may load or fail (with a reason)
    files: int = 0  # files and links written (not counting the outside target)
    bad_records: int = 0  # bad JSON/JSONL records inside otherwise good files

    @property
    def hostile(self) -> int:
        """Bad inputs tried: bad files, bad records and either-way files."""
        return len(self.bad) + self.bad_records + len(self.either)


def good_body(rng: random.Random, key: str) -> str:
    """A few sentences about ``key`` (a unique marker word, so retrieval can find it)."""
    word, city = rng.choice(_WORDS), rng.choice(_CITIES)
    n = rng.randrange(2, 999)
    return (
        f"The {word} project known as {key} was approved in {city} on Tuesday. "
        f"Officials said {key} will cost {n} million dollars over four years. "
        f"Residents of {city} asked whether {key} would reduce traffic near the {word}. "
        f"A spokesperson said construction of {key} starts in the spring."
    )


class _Writer:
    def __init__(self, root: Path, rng: random.Random, out: HostileSet) -> None:
        self.root, self.rng, self.out = root, rng, out
        self.n = 0

    def _path(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out.files += 1
        return path

    def raw(self, name: str, data: bytes) -> Path:
        path = self._path(name)
        path.write_bytes(data)
        return path

    def bad(self, name: str, data: bytes, reasons: tuple[str, ...]) -> None:
        self.raw(name, data)
        self.out.bad[name] = reasons

    def either(self, name: str, data: bytes) -> None:
        self.raw(name, data)
        self.out.either.add(name)

    def key(self) -> str:
        self.n += 1
        return f"zq{self.rng.randrange(16**6):06x}k{self.n}"

    def good_text(self, name: str, *, encode: str = "utf-8", bom: bytes = b"") -> str:
        key = self.key()
        title = f"Good article {key}"
        text = f"{title}\n\n{good_body(self.rng, key)}\n"
        self.raw(name, bom + text.encode(encode))
        self.out.good_titles[title] = name
        return title


def _pdf_bytes(lines: list[str], title: str | None = None) -> bytes:
    return make_pdf(lines, title=title)


def _encrypted_pdf(data: bytes, user_password: str) -> bytes | None:
    try:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password, owner_password="owner-secret")
        buf = io.BytesIO()
        writer.write(buf)
        return buf.getvalue()
    except Exception:  # pypdf without the crypto it needs: no encrypted sample
        return None


def _big_text(path: Path, size: int, rng: random.Random) -> None:
    """A text file of ``size`` bytes written in pieces (never held in memory at once)."""
    line = ("The " + " ".join(rng.choice(_WORDS) for _ in range(15)) + ".\n").encode()
    with path.open("wb") as fh:
        fh.write(b"A very large file\n\n")
        written = 19
        block = line * max(1, (1 << 20) // len(line))
        while written + len(block) <= size:
            fh.write(block)
            written += len(block)
        fh.write(b"x" * max(0, size - written))


def generate(
    root: Path,
    *,
    seed: int = 0,
    copies: int = 8,
    big_mb: float = 2.0,
    max_file_mb: float = 1.0,
    line_mb: float = 0.25,
    html_depth: int = 20_000,
    outside: Path | None = None,
) -> HostileSet:
    """Write the hostile set under ``root`` (created) and return what to expect of it.

    Args:
        root: the folder to fill.
        seed: the same seed writes the same files.
        copies: how many variants of each randomised case (about 45 files per copy).
        big_mb: size of the oversized text file; ingest must be run with ``max_file_mb`` below
            it (the file is refused before it is read).
        max_file_mb: the limit the caller ingests with; every other file stays below it.
        line_mb: length of the single-line file (MB); must be below ``max_file_mb``.
        html_depth: nesting depth of the deeply nested HTML page.
        outside: a folder outside ``root`` for the targets of outward symlinks (default: a
            sibling ``<root>-outside``).
    """
    if big_mb <= max_file_mb or line_mb >= max_file_mb:
        raise ValueError("need line_mb < max_file_mb < big_mb")
    root.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(root))
    rng = random.Random(seed)
    out = HostileSet(root=root)
    w = _Writer(root, rng, out)
    mb = 1 << 20

    # --- good articles in every format --------------------------------------------------------
    for c in range(copies):
        w.good_text(f"good/plain-{c}.txt")
        key = w.key()
        title = f"Good markdown {key}"
        w.raw(
            f"good/front-{c}.md",
            f"---\ntitle: {title}\nsource: Hostile Wire\npublished: 2024-03-{c % 28 + 1:02d}\n"
            f"---\n\n## Details\n\n**{good_body(rng, key)}**\n".encode(),
        )
        out.good_titles[title] = f"good/front-{c}.md"
        key = w.key()
        title = f"Good page {key}"
        w.raw(
            f"good/page-{c}.html",
            f"<html><head><title>{title}</title></head><body><nav>Menu</nav>"
            f"<article><p>{good_body(rng, key)}</p></article></body></html>".encode(),
        )
        out.good_titles[title] = f"good/page-{c}.html"
        key = w.key()
        title = f"Good PDF {key}"
        sentences = good_body(rng, key).split(". ")
        w.raw(f"good/doc-{c}.pdf", _pdf_bytes(sentences, title))
        out.good_titles[title] = f"good/doc-{c}.pdf"
        rid = f"good-json-{seed}-{c}"
        w.raw(
            f"good/record-{c}.json",
            json.dumps({"id": rid, "title": f"Record {rid}", "text": good_body(rng, rid)}).encode(),
        )
        out.good_ids[rid] = f"good/record-{c}.json"
        # UTF-16 and UTF-32 with a BOM, UTF-8 with a BOM: valid, must load.
        w.good_text(f"enc/utf16-bom-{c}.txt", encode="utf-16")
        w.good_text(f"enc/utf16be-bom-{c}.md", encode="utf-16-be", bom=codecs.BOM_UTF16_BE)
        w.good_text(f"enc/utf8-bom-{c}.txt", encode="utf-8", bom=codecs.BOM_UTF8)

    # --- JSON / JSONL: good records among bad lines, wrong types, duplicates ------------------
    for c in range(copies):
        lines: list[str] = []
        name = f"json/feed-{c}.jsonl"
        for j in range(6):
            rid = f"feed-{seed}-{c}-{j}"
            lines.append(
                json.dumps({"id": rid, "title": f"Feed {rid}", "text": good_body(rng, rid)})
            )
            out.good_ids[rid] = name
        bad_lines = [
            '{"id": broken',
            "[1, 2, 3]",
            '"just a string"',
            json.dumps({"id": f"x-{c}", "title": "No text"}),
            json.dumps({"id": f"y-{c}", "text": 42}),
            json.dumps({"id": f"z-{c}", "text": ["a", "list"]}),
            json.dumps({"id": f"w-{c}", "text": "   "}),
            "garbage \x1b[2J not json",
            "{" * 50,
        ]
        rng.shuffle(bad_lines)
        for bad_line in bad_lines:
            lines.insert(rng.randrange(len(lines) + 1), bad_line)
        out.bad_records += len(bad_lines)
        w.raw(name, ("\n".join(lines) + "\n").encode())
        # wrong types that still load: numeric id, list title, dict source, odd date
        rid = 9_000_000 + seed * 100 + c
        w.raw(
            f"json/types-{c}.json",
            json.dumps(
                [
                    {
                        "id": rid,
                        "title": ["not", "a", "string"],
                        "source": {"name": "Dict Source"},
                        "published": {"year": 2024},
                        "url": 12345,
                        "text": good_body(rng, f"types{c}"),
                    },
                    "a string record",
                    None,
                ]
            ).encode(),
        )
        out.good_ids[str(rid)] = f"json/types-{c}.json"
        out.bad_records += 2
        # lone surrogates and control characters in every field
        rid = f"surrogate-{seed}-{c}"
        w.raw(
            f"json/surrogate-{c}.json",
            (
                f'{{"id": "{rid}", "title": "Lone \\ud800 surrogate", '
                f'"text": "Text with a lone \\udc00 surrogate. {good_body(rng, rid)}", '
                '"source": "\\ud83d"}'
            ).encode(),
        )
        out.good_ids[rid] = f"json/surrogate-{c}.json"
    # the same id in two files and twice in one file: the first wins, the others are reported
    w.raw(
        "json/dup-a.json",
        json.dumps({"id": f"dup-{seed}", "text": good_body(rng, "dupa")}).encode(),
    )
    out.good_ids[f"dup-{seed}"] = "json/dup-a.json"
    w.bad(
        "json/dup-b.json",
        json.dumps({"id": f"dup-{seed}", "text": good_body(rng, "dupb")}).encode(),
        ("duplicate article id",),
    )
    w.raw(
        "json/dup-inner.jsonl",
        (
            json.dumps({"id": f"dupin-{seed}", "text": good_body(rng, "dupin1")})
            + "\n"
            + json.dumps({"id": f"dupin-{seed}", "text": good_body(rng, "dupin2")})
            + "\n"
        ).encode(),
    )
    out.good_ids[f"dupin-{seed}"] = "json/dup-inner.jsonl"
    out.bad_records += 1
    w.bad("json/scalar.json", b"42", ("record object or a list",))
    w.bad("json/empty-list.json", b"[]", ("no records",))
    w.bad("json/truncated.json", b'{"title": "x", "text": "y', ("invalid JSON",))
    w.bad("json/deep.json", b"[" * 100_000 + b"]" * 100_000, ("nested too deeply",))
    w.bad("json/notext.json", json.dumps({"title": "only"}).encode(), ("has no 'text'",))
    w.bad("json/all-bad.jsonl", b"{bad\n[]\n{}\n", BAD_JSON)

    # --- empty, whitespace, binary, encodings -------------------------------------------------
    suffixes = [".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".pdf"]
    for suffix in suffixes:
        w.bad(f"empty/zero{suffix}", b"", EMPTY)
    for suffix in suffixes[:-1]:
        w.bad(f"empty/blank{suffix}", b" \n\t\r\n  \n", ("only whitespace",))
        zero_width = "\u200b\u2060\ufeff\u00ad".encode() * 40
        w.bad(f"empty/zero-width{suffix}", zero_width, (*NO_TEXT, "invalid JSON"))
    for c in range(copies):
        suffix = suffixes[c % (len(suffixes) - 1)]
        w.bad(f"binary/random-{c}{suffix}", rng.randbytes(rng.randrange(64, 4096)), BINARY)
        w.bad(
            f"binary/png-{c}{suffix}",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(256),
            BINARY,
        )
        w.bad(
            f"binary/elf-{c}.txt",
            b"\x7fELF\x02\x01\x01" + bytes(32) + rng.randbytes(512),
            BINARY,
        )
        text = f"Sin BOM {c}\n\nEl café costó {c} pesos en la ciudad.\n"
        w.bad(f"enc/utf16-nobom-{c}.txt", text.encode("utf-16-le"), BINARY)
        w.bad(f"enc/latin1-{c}.txt", text.encode("latin-1"), NOT_UTF8)
        w.bad(f"enc/cp1252-{c}.md", ("“Quoted” — " + text).encode("cp1252"), NOT_UTF8)
        w.bad(
            f"enc/mixed-{c}.txt",
            text.encode("utf-8") + "Y también ñandú.".encode("latin-1"),
            NOT_UTF8,
        )
        w.bad(
            f"enc/bom-then-junk-{c}.txt",
            codecs.BOM_UTF16_LE + b"\x00\xd8\x41\x00",  # a lone surrogate in UTF-16
            ("not valid UTF-16",),
        )

    # --- size: over the limit, one very long line ---------------------------------------------
    _big_text(w._path("size/huge.txt"), int(big_mb * mb), rng)
    out.bad["size/huge.txt"] = ("too large",)
    line = " ".join(rng.choice(_WORDS) for _ in range(int(line_mb * mb) // 8))
    w.raw("size/one-line.txt", line[: int(line_mb * mb)].encode())
    out.good_titles["one line"] = "size/one-line.txt"  # the title comes from the file name
    w.raw("size/one-word.txt", b"Long word\n\n" + b"x" * int(line_mb * mb / 4))
    out.good_titles["Long word"] = "size/one-word.txt"

    # --- control characters, terminal escapes, right-to-left and zero-width -------------------
    for c in range(copies):
        key = w.key()
        title = f"Escapes {key}"
        body = good_body(rng, key)
        escapes = ["\x1b[31m", "\x1b[2J", "\x07", "\x08", "\x1b]0;pwned\x07", "\x1b[0m"]
        noisy = "".join(  # about one in 20 characters: below the loader's binary threshold
            ch + (rng.choice(escapes) if rng.random() < 0.05 else "") for ch in body
        )
        w.raw(f"ctrl/ansi-{c}.txt", f"{title}\n\n{noisy}\n".encode())
        out.good_titles[title] = f"ctrl/ansi-{c}.txt"
        rid = f"ansi-title-{seed}-{c}"
        w.raw(
            f"ctrl/ansi-title-{c}.json",
            json.dumps(
                {
                    "id": rid,
                    "title": f"\x1b[1;31mRed\x1b[0m title \x9b31m {c}",
                    "url": "https://example.com/\x1b[2J",
                    "source": "\x1b]0;evil\x07Wire",
                    "text": good_body(rng, rid) + " \x1b[2J\x1b[H",
                }
            ).encode(),
        )
        out.good_ids[rid] = f"ctrl/ansi-title-{c}.json"
        key = w.key()
        title = f"Right to left {key}"
        rtl = (
            "\u202eThis text is reversed by an override.\u202c "
            "\u0627\u0644\u0645\u062c\u0644\u0633 \u0648\u0627\u0641\u0642. "
            "\u05d4\u05de\u05d5\u05e2\u05e6\u05d4 \u05d0\u05d9\u05e9\u05e8\u05d4. "
        )
        zw = "\u200b".join(good_body(rng, key))  # a zero-width space between every character
        w.raw(f"rtl/rtl-{c}.md", f"# {title}\n\n{rtl}\n\n{zw}\n".encode())
        out.good_titles[title] = f"rtl/rtl-{c}.md"
        w.bad(f"ctrl/only-controls-{c}.txt", b"\x1b[2J\x1b[H" * 3 + b"\x07\x08", BINARY + NO_TEXT)

    # --- PDFs ---------------------------------------------------------------------------------
    sample = _pdf_bytes(["A headline for a PDF.", "Body sentence one. Body sentence two."], "PDF")
    for c in range(copies):
        cut = rng.randrange(9, len(sample) - 60)
        w.bad(f"pdf/truncated-{c}.pdf", sample[:cut], BAD_PDF)
        w.either(f"pdf/truncated-tail-{c}.pdf", sample[: len(sample) - rng.randrange(1, 40)])
        garbled = bytearray(sample)
        for _ in range(20):
            garbled[rng.randrange(9, len(garbled))] = rng.randrange(256)
        w.either(f"pdf/garbled-{c}.pdf", bytes(garbled))
    w.bad("pdf/image-only.pdf", _pdf_bytes([]), ("no extractable text",))
    w.bad("pdf/header-only.pdf", b"%PDF-1.7\n", BAD_PDF)
    w.bad("pdf/not-a-pdf.pdf", b"Plain text pretending to be a PDF.", ("not a PDF",))
    w.bad("pdf/html-inside.pdf", b"<html><body>Hello</body></html>", ("not a PDF",))
    locked = _encrypted_pdf(sample, "secret")
    if locked is not None:
        w.bad("pdf/encrypted.pdf", locked, ("encrypted PDF",))
    key = w.key()
    opened = _encrypted_pdf(_pdf_bytes(good_body(rng, key).split(". "), f"Owner-locked {key}"), "")
    if opened is not None:  # an empty user password: readable, must load
        w.raw("pdf/owner-password-only.pdf", opened)
        out.good_titles[f"Owner-locked {key}"] = "pdf/owner-password-only.pdf"

    # --- HTML: deeply nested, unclosed, junk --------------------------------------------------
    key = w.key()
    depth = html_depth
    w.raw(
        "html/deep.html",
        (
            f"<html><head><title>Deep {key}</title></head><body>"
            + "<div>" * depth
            + f"<p>{good_body(rng, key)}</p>"
            + "</div>" * depth
            + "</body></html>"
        ).encode(),
    )
    out.good_titles[f"Deep {key}"] = "html/deep.html"
    key = w.key()
    w.raw(
        "html/unclosed.html",
        f"<html><head><title>Unclosed {key}</title><body><p>{good_body(rng, key)}<div><p><b><i>"
        "<span>never closed <table><tr><td>cell".encode(),
    )
    out.good_titles[f"Unclosed {key}"] = "html/unclosed.html"
    key = w.key()
    w.raw(
        "html/never-ending-tags.htm",
        ("<span>" * 5000 + f"<h1>Spans {key}</h1><p>{good_body(rng, key)}</p>").encode(),
    )
    out.good_titles[f"Spans {key}"] = "html/never-ending-tags.htm"
    w.bad("html/only-script.html", b"<script>alert(1)</script><style>p{}</style>", NO_TEXT)
    w.bad("html/only-tags.html", b"<div><span></span><br><br></div>" * 100, NO_TEXT)
    w.either("html/unclosed-comment.html", b"<p>Visible text.</p><!-- never closed " + b"x" * 500)
    w.either("html/bad-entities.html", b"<p>&#xD800; &#99999999; &bogus; &amp text.</p>")

    # --- odd file names -----------------------------------------------------------------------
    for name in [
        "names/with space.txt",
        "names/ünïcödé-名前.txt",
        "names/-leading-dash.txt",
        "names/quote'and\"double.md",
        "names/hash#percent%.txt",
        "names/back\\slash.txt",
        "names/new\nline.txt",
        "names/tab\tname.txt",
        "names/esc\x1b[31m.txt",
        "names/" + "l" * 200 + ".txt",
        "names/UPPER.TXT",
        "names/dots...md",
        "names/rtl-\u202etxt.md",
    ]:
        w.good_text(name)
    w.bad("names/esc-\x1b[2J\x1b]0;title\x07-empty.txt", b"", EMPTY)  # printed when reported
    bad_name = os.fsencode(root / "names") + b"/latin1-\xe9\xff.txt"
    with open(bad_name, "wb") as fh:
        fh.write(b"A title\n\nA body that would load if the name could be stored.")
    out.files += 1
    out.bad["names/latin1-\udce9\udcff.txt"] = ("not valid UTF-8",)
    w.raw("names/.hidden.txt", b"")  # hidden: skipped silently, never a failure
    out.files -= 1
    w.raw("names/notes.docx", b"PK\x03\x04")  # unsupported in a walk: skipped silently
    out.files -= 1

    # --- symlinks -----------------------------------------------------------------------------
    links = root / "links"
    links.mkdir(exist_ok=True)
    outside = outside or root.with_name(root.name + "-outside")
    outside.mkdir(parents=True, exist_ok=True)
    key = w.key()
    (outside / "target.txt").write_text(
        f"Outside {key}\n\n{good_body(rng, key)}\n", encoding="utf-8"
    )
    (outside / "secret.txt").write_text("Secret\n\nNot for the index, maybe.\n", encoding="utf-8")

    def link(name: str, target: str | Path) -> None:
        os.symlink(target, links / name)
        out.files += 1

    link("loop-a.txt", "loop-b.txt")
    link("loop-b.txt", "loop-a.txt")
    link("self.txt", "self.txt")
    out.bad.update(
        {f"links/{n}": ("symbolic links", "cannot read") for n in ("loop-a.txt", "loop-b.txt")}
    )
    out.bad["links/self.txt"] = ("symbolic links", "cannot read")
    link("dangling.txt", "does-not-exist.txt")
    out.bad["links/dangling.txt"] = ("file not found",)
    link("outside.txt", outside / "target.txt")
    out.either.add("links/outside.txt")  # followed or refused, but reported either way
    link("outside-dir", outside)  # a directory link: os.walk does not follow it
    out.files -= 1
    link("device.txt", "/dev/zero")
    out.bad["links/device.txt"] = ("not a regular file",)
    link("dir.md", root / "good")  # a directory link with a text suffix: not followed either
    out.files -= 1
    link("again.txt", root / "good" / "plain-0.txt")  # a second name for a good file: once
    out.files -= 1
    fifo = links / "fifo.txt"
    os.mkfifo(fifo)
    out.files += 1
    out.bad["links/fifo.txt"] = ("not a regular file",)
    return out


def _rel(path: str, root: Path) -> str:
    full = Path(path)
    if not full.is_absolute():
        full = Path.cwd() / full
    parent = Path(os.path.realpath(full.parent))
    try:
        return (parent / full.name).relative_to(Path(os.path.realpath(root))).as_posix()
    except ValueError:
        return full.as_posix()


def check_outcome(
    hostile: HostileSet,
    failures: Iterable[LoadFailure],
    titles: Iterable[str],
    ids: Iterable[str],
) -> dict[str, object]:
    """Compare what ingest reported and stored with what :func:`generate` promised.

    Args:
        hostile: the generated set.
        failures: every failure reported (ingest report or ``iter_articles``).
        titles: titles of the stored articles.
        ids: ids of the stored articles.

    Returns:
        Counts and the problems found: ``unreported`` (bad files with no failure),
        ``wrong_reason``, ``lost`` (good articles not stored), ``unexpected`` (failures of
        files that should have loaded).
    """
    by_file: dict[str, list[str]] = {}
    for failure in failures:
        by_file.setdefault(_rel(failure.path, hostile.root), []).append(failure.reason)
    title_set, id_set = set(titles), set(ids)
    unreported = sorted(name for name in hostile.bad if name not in by_file)
    wrong = {
        name: by_file[name]
        for name, accepted in hostile.bad.items()
        if name in by_file and not any(a in r for a in accepted for r in by_file[name])
    }
    lost = sorted(t for t in hostile.good_titles if t not in title_set)
    lost += sorted(i for i in hostile.good_ids if i not in id_set)
    good_files = set(hostile.good_titles.values()) | set(hostile.good_ids.values())
    record_files = set(hostile.good_ids.values())
    unexpected = {
        name: reasons
        for name, reasons in by_file.items()
        if name not in hostile.bad and name not in hostile.either and name not in record_files
    }
    unexpected.update({n: by_file[n] for n in good_files - record_files if n in by_file})
    return {
        "files": hostile.files,
        "bad_inputs": hostile.hostile,
        "failures_reported": sum(len(r) for r in by_file.values()),
        "bad_files_reported": len(hostile.bad) - len(unreported),
        "good_articles": len(hostile.good_titles) + len(hostile.good_ids),
        "good_articles_stored": len(hostile.good_titles) + len(hostile.good_ids) - len(lost),
        "unreported": unreported,
        "wrong_reason": wrong,
        "lost": lost,
        "unexpected": unexpected,
    }


def article_titles_and_ids(items: Iterable[Article | LoadFailure]) -> tuple[set[str], set[str]]:
    """Titles and ids of the articles among ``items``."""
    arts = [i for i in items if isinstance(i, Article)]
    return {a.title for a in arts}, {a.id for a in arts}
