"""News boilerplate removal: photo captions and their repeats, link lists, trailing source lines."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["clean_body", "host_of"]


_AGENCY = (
    r"(?:REUTERS|Reuters|AP(?:\s+Photo)?|AFP|EFE|Getty(?:\s+Images)?|GETTY(?:\s+IMAGES)?|"
    r"Europa\s+Press|EUROPA\s+PRESS|Bloomberg|XINHUA|Xinhua|ANSA|DPA|dpa|Anadolu|TASS|"
    r"Sputnik|Shutterstock|iStock|NurPhoto|SOPA|T[eé]lam|T[EÉ]LAM|ZUMA|Pool|POOL|Cuartoscuro|"
    r"(?:Photo|Foto|Image|Imagen|Credit|Cr[eé]dito)s?\s*:)"
)
# "(REUTERS / Johanna Geron)" / "(REUTERS/Laura Hasani)" / "(EFE)" possibly + "(JOHANNA GERON /)".
_CREDIT = re.compile(
    r"\(\s*" + _AGENCY + r"(?![\w-])[^()\n]{0,80}\)(?:\s*\([^()\n]{0,60}/\s*\))?\s*$"
)
_MAX_CAPTION = 400
_LABEL = re.compile(
    r"(?i:keep\s+reading|read\s+more|read\s+also|also\s+read|related(?:\s+(?:news|articles|"
    r"stories|content|coverage|links|reading))?|see\s+also|more\s+on\s+this(?:\s+story|\s+topic)?|"
    r"you\s+may\s+also\s+like|recommended(?:\s+reading)?|further\s+reading|continue\s+reading|"
    r"more\s+from\s+[^:\n]{1,40}|lee\s+también|seguir\s+leyendo)"
)
_LABEL_ONLY = re.compile(_LABEL.pattern + r"\s*:?\s*")
_LABEL_INLINE = re.compile(_LABEL.pattern + r"\s*:\s*\S.{0,200}")
_MAX_LINK_LINES = 15
_SOURCE_LINE = re.compile(
    r"(?i:source|fuente)\s*(?:[-:–—]\s*|(?=www\.|https?://))(?P<value>\S.{0,80})"
)
_DOMAIN = re.compile(r"(?:https?://)?(?:[\w-]+\.)+[a-z]{2,}(?::\d+)?(?:/\S*)?", re.I)
_AGENCY_SOURCE = re.compile(
    r"(?i:reuters|ap|afp|efe|europa press|bloomberg|associated press|agence france-presse|"
    r"xinhua|ansa|dpa|infobae)"
)
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_WORDS = re.compile(r"\w+")


def host_of(url: str) -> str | None:
    """Return the host of ``url`` without ``www.``, e.g. ``infobae.com``; ``None`` if none."""
    url = url.strip()
    if "://" not in url:
        url = "//" + url
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    return host.removeprefix("www.")


def _source_value(line: str) -> str | None:
    m = _SOURCE_LINE.fullmatch(line)
    if not m:
        return None
    value = m.group("value").strip().rstrip(".")
    if _DOMAIN.fullmatch(value):
        return host_of(value)
    if _AGENCY_SOURCE.fullmatch(value):
        return value
    return None


def _tokens(line: str) -> set[str]:
    return set(_WORDS.findall(line.casefold()))


def _near_duplicate(line: str, caption: str) -> bool:
    """True when ``line`` repeats ``caption`` (Jaccard >= 0.5, at most twice as many words)."""
    ta, tb = _tokens(line), _tokens(caption)
    if not ta or not tb or len(ta) > 2 * len(tb):
        return False
    return len(ta & tb) / len(ta | tb) >= 0.5


def _is_caption(line: str) -> bool:
    """A caption ends in a photo credit: "(AGENCY / Name)", "(Photo: X)" or "(AGENCY)".

    A bare "(AGENCY)" only counts on a short line with no full stop before it, so prose such
    as "..., the ministry said. (AFP)" is kept.
    """
    if len(line) > _MAX_CAPTION or not (m := _CREDIT.search(line)):
        return False
    credit = m.group()
    if "/" in credit or ":" in credit:
        return True
    return len(line) <= 200 and not line[: m.start()].rstrip().endswith((".", "!", "?", '"', "”"))


def _strip_trailing(paras: list[list[str]]) -> str | None:
    """Drop trailing source lines and link blocks in place; return a source found there."""
    source: str | None = None
    changed = True
    while changed and paras:
        changed = False
        value = _source_value(paras[-1][-1])
        if value is not None:
            source = source or value
            paras[-1].pop()
            if not paras[-1]:
                paras.pop()
            changed = True
            continue
        if _LABEL_INLINE.fullmatch(paras[-1][-1]) and not paras[-1][-1].endswith((".", "?", "!")):
            paras[-1].pop()  # a trailing "Read more: headline" line
            if not paras[-1]:
                paras.pop()
            changed = True
            continue
        lines = [(p, i) for p in range(len(paras)) for i in range(len(paras[p]))]
        for k in range(len(lines) - 1, max(-1, len(lines) - _MAX_LINK_LINES - 2), -1):
            p, i = lines[k]
            if len(paras[p][i]) > 200:
                break
            if _LABEL_ONLY.fullmatch(paras[p][i]) and k < len(lines) - 1:
                del paras[p][i:]
                del paras[p + 1 :]
                if not paras[p]:
                    paras.pop()
                changed = True
                break
    return source


def _drop_captions(paras: list[list[str]]) -> list[list[str]]:
    """Remove photo caption lines and the near-duplicate caption next to them."""
    out: list[list[str]] = []
    last_caption: str | None = None  # caption removed just before (line or paragraph)
    for para in paras:
        kept: list[str] = []
        for line in para:
            if _is_caption(line):
                last_caption = _CREDIT.sub("", line)
                continue
            if (
                last_caption is not None
                and len(line) <= _MAX_CAPTION
                and _near_duplicate(line, last_caption)
            ):
                last_caption = None
                continue
            last_caption = None
            kept.append(line)
        if kept:
            out.append(kept)
            last_caption = None
    return out


def clean_body(text: str) -> tuple[str, str | None]:
    """Clean a scraped article body.

    Rules, applied conservatively (a line is only dropped when the whole line matches):
    photo caption lines ending in an agency credit ("... (REUTERS / Johanna Geron)", optionally
    followed by "(JOHANNA GERON /)") and a near-duplicate caption line right after one; a
    trailing "Keep reading:" / "Read more:" / "Related:"-style block of short link lines (at
    most 15, each at most 200 characters) or trailing "Read more: <headline>" lines; a trailing
    "Source-www.infobae.com" / "Source: <domain or news agency>" line (its value is returned).
    Attribution like "(With information from EFE)" is prose and kept. Whitespace: invisible and
    control characters removed, runs of spaces collapsed, lines stripped, paragraphs separated
    by exactly one blank line, lines inside a paragraph kept.

    Args:
        text: Raw body text.

    Returns:
        ``(cleaned_text, source)``; ``source`` is the normalised host or agency name from a
        trailing source line, else ``None``.
    """
    text = (
        text.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\u2028", "\n")
        .replace("\u2029", "\n\n")
    )
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    paras: list[list[str]] = []
    current: list[str] = []
    for raw in text.split("\n"):
        line = " ".join(raw.split())  # all Unicode spaces (NBSP, thin, ideographic) -> " "
        if line:
            current.append(line)
        elif current:
            paras.append(current)
            current = []
    if current:
        paras.append(current)
    source = _strip_trailing(paras)
    paras = _drop_captions(paras)
    source = _strip_trailing(paras) or source
    return "\n\n".join("\n".join(p) for p in paras), source
