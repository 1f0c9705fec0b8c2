"""Text helpers every stage shares: sentence spans, matching normalisation, search tokens.

Pure functions, regex based, no I/O and no heavy imports: fast enough to run over hundreds
of thousands of chunks.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["markdown_literal", "normalize", "split_sentences", "tokenize", "valid_text"]

_SURROGATES = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD.

    They come from undecodable bytes (``rag ask`` with a non-UTF-8 argument) or JSON escapes
    such as a backslash-u D800 escape; tokenizers and the vector store only take valid Unicode.
    """
    return _SURROGATES.sub("\ufffd", text)


# Control characters (terminal escapes, line breaks that would end a table row or start a block)
# and bidi overrides; then every character Markdown or HTML gives a meaning to.
_MD_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~:])")


def markdown_literal(value: object) -> str:
    """``value`` as inert Markdown text: it renders as the same characters, on one line.

    For text from articles, suites and model answers in reports: no HTML, link, image, code
    span, emphasis or table cell can come from it, and no control character reaches a file.
    ``&`` becomes ``&amp;`` so no character reference is decoded either.
    """
    text = _MD_CONTROL.sub(" ", valid_text(str(value)))
    return _MD_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


_CLOSERS = "\"'”’»)]}"
_OPENERS = "\"'“‘«([{"
# A candidate boundary: terminal punctuation (+ closing quotes/brackets) followed by whitespace,
# a paragraph break, or a newline that starts a list item.
_BOUNDARY = re.compile(
    r"(?=[.!?…\n])(?:(?P<punct>[.!?…]+[" + re.escape(_CLOSERS) + r"]*)(?P<ws>\s+)"
    r"|(?P<para>\n[ \t\f\v\r]*\n\s*)"
    r"|(?P<item>\n[ \t]*(?=(?:[-*•►▪]|\d{1,3}[.)])[ \t])))"  # lookahead: 4x faster scan
)
PARA_BREAK = re.compile(r"\n[ \t\f\v\r]*\n")
_NEXT_WORD = re.compile(r"[A-Z][a-z']*(?![.\w])")
# Abbreviations that are (nearly) never the last word of a sentence: titles, months, "St.".
_NEVER_END = frozenset(
    "mr mrs ms dr prof gen gov sen rep reps sens lt col capt sgt cmdr adm maj rev fr hon pres "
    "supt st mt ft jan feb mar apr jun jul aug sep sept oct nov dec vs v e.g i.e cf approx "
    "dept univ assn bros ave blvd messrs mmes gens fig figs ca no op vol pp".split()
)
# Abbreviations that may end a sentence: split only when a typical sentence opener follows.
_MAYBE_END = frozenset("etc inc corp co ltd llc jr sr plc bros".split())
_STARTERS = frozenset(
    "The A An He She It They We I You But And In On At This That These Those There His Her "
    "Its Their Our My As After Before If When While Meanwhile However Officials Both Some Many "
    "Most Not So Yet For With What Why How Who Where According Still Also Then Now Last "
    "Earlier Later Since Police Authorities During Under Over Other Such Each Every One Two "
    "Despite Although Though Because Instead Still Here".split()
)
_ACRONYM = re.compile(r"(?:[A-Za-z]\.){2,}")
_MARKER = re.compile(r"\d{1,3}[.)]|[A-Za-z][.)]")


def _is_boundary(text: str, sent_start: int, punct_start: int, punct_end: int, nxt: int) -> bool:
    """Decide whether terminal punctuation at ``punct_start`` really ends a sentence."""
    n = len(text)
    i = nxt
    while i < n and text[i] in _OPENERS:
        i += 1
    if i >= n:
        return True
    ch = text[i]
    if ch.islower() or ch in ",;:":
        return False
    punct = text[punct_start:punct_end]
    if punct[0] != ".":  # ? ! … end a sentence when something capitalised follows
        return True
    if punct.startswith(".."):  # ellipsis: already checked that no lowercase follows
        return True
    word_start = max(
        text.rfind(" ", sent_start, punct_start), text.rfind("\n", sent_start, punct_start)
    )
    token = text[max(word_start + 1, sent_start) : punct_start].lstrip(_OPENERS)
    token = token[max(token.rfind("-"), token.rfind("/")) + 1 :]  # "2-Jan." -> "Jan"
    if not token:
        return True
    if punct_end - sent_start <= 4 and _MARKER.fullmatch(text, sent_start, punct_end):
        return False  # "1." or "A." opening a list item
    low = token.lower()
    if low in _NEVER_END:
        return low == "no" and not ch.isdigit() and _NEXT_WORD.match(text, i) is not None
    single = len(token) == 1 and token.isalpha()
    if single or low in _MAYBE_END or _ACRONYM.fullmatch(token + "."):
        if i > nxt and text[nxt] in "\"“‘'«":  # a quotation opens: U.S. "We ...
            return not single
        m = _NEXT_WORD.match(text, i)
        return m is not None and m.group() in _STARTERS
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split news prose into sentence spans.

    Args:
        text: Any text; paragraphs are separated by blank lines.

    Returns:
        ``(start, end)`` offsets into ``text``, in order, non-empty, trimmed of surrounding
        whitespace. Paragraph breaks always end a sentence (headlines have no full stop);
        abbreviations (Mr., U.S., Jan., a.m., initials), decimals, ellipses followed by
        lowercase and quotes after the full stop are handled.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    n = len(text)
    while start < n and text[start].isspace():
        start += 1
    for m in _BOUNDARY.finditer(text):
        if m.start() < start:
            continue
        if m.group("punct") is not None:
            end = m.end("punct")
            if not (
                PARA_BREAK.search(m.group("ws"))
                or _is_boundary(text, start, m.start(), end, m.end())
            ):
                continue
        else:
            end = m.start()
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
        start = m.end()
    end = n
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
    return spans


_QUOTES = str.maketrans(
    dict.fromkeys("‘’‚‛′`´", "'") | dict.fromkeys("“”„‟″«»", '"') | dict.fromkeys("‐‑‒–—―−", "-")
)
_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u00a0'](?=\d{3}(?!\d))")


def _edge_punct(ch: str) -> bool:
    return ch not in "%‰#@&" and unicodedata.category(ch).startswith("P")


def normalize(text: str) -> str:
    """Normalise text for fuzzy matching of claims, quotes and answers.

    NFKC, casefold, curly quotes to straight, all dashes to ``-``, thousands separators
    between digits dropped (``"3,700"`` and ``"3700"`` compare equal; decimals ``"3.5"`` are
    kept), punctuation stripped from both edges of every whitespace token (``"U.S."`` ->
    ``"u.s"``, ``"(EFE)"`` -> ``"efe"``; ``$ % # @ &`` are kept), tokens that
    were only punctuation dropped, whitespace collapsed to single spaces.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    text = _THOUSANDS.sub("", text)
    out: list[str] = []
    for token in text.split():
        a, b = 0, len(token)
        while a < b and _edge_punct(token[a]):
            a += 1
        while b > a and _edge_punct(token[b - 1]):
            b -= 1
        if a < b:
            out.append(token[a:b])
    return " ".join(out)


# A small English stop list: words that carry no topic (kept short so "who"/"when" style
# question words, which are already absent from passages, don't matter either way).
_STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t also said says say""".split()
)
_NOT_PLURAL = frozenset(
    {"series", "species", "always", "perhaps", "whereas", "texas", "kansas", "arkansas"}
)
_DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def _stem(token: str) -> str:
    """Harman's S-stemmer: fold plurals without the damage of a full stemmer."""
    if len(token) <= 3 or token[-1] != "s" or token.isdigit():
        return token
    if token.endswith("ies") and not token.endswith(("eies", "aies")):
        return token[:-3] + "y"
    if token.endswith("es") and not token.endswith(("aes", "ees", "oes")):
        return token[:-1]
    if token.endswith(("us", "ss", "is", "ics", "news")) or token in _NOT_PLURAL:
        return token
    return token[:-1]


def tokenize(text: str) -> list[str]:
    """Lower-cased, plural-folded content words; "3,700" and "3700" give the same token."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    text = _DIGIT_GROUP.sub("", text)
    return [_stem(t) for t in _TOKEN.findall(text) if t not in _STOP]
