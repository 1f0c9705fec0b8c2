"""The one date parser: free-form dates in articles and requests, as days and as numbers.

:func:`parse_date` reads what article files carry ("March 5, 2024", "05/03/2024", PDF dates);
:func:`to_date` and :func:`require_date` read what the program passes around (ISO strings,
``date`` objects); :func:`date_number` is the ``YYYYMMDD`` integer the index filters on.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from rag.errors import InputError

__all__ = ["date_number", "parse_date", "require_date", "to_date"]


def to_date(value: Any) -> date | None:
    """A date from a date, datetime or ISO string (``YYYY-MM-DD...``); ``None`` when it is none."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def require_date(value: Any, name: str) -> date | None:
    """Like :func:`to_date` for request fields: ``None`` when empty, an error when malformed.

    Raises:
        InputError: ``value`` is given but is not a date.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    day = to_date(value)
    if day is None:
        msg = f"{name} must be a date like 2024-01-31, got {value!r}."
        raise InputError(msg)
    return day


def date_number(value: Any) -> int:
    """YYYYMMDD as an int (Chroma range filters need numbers); 0 when unknown."""
    day = to_date(value) if value else None
    return day.year * 10000 + day.month * 100 + day.day if day else 0


_FULL_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_YMD = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
_COMPACT = re.compile(r"(?:D:)?(\d{4})(\d{2})(\d{2})(?:\d{0,6})(?:$|[TZ+\-' ])")
_DMY = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})(?!\d)")
_D_MONTH_Y = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})(?!\d)")
_MONTH_D_Y = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)")


def _ymd(year: int | str, month: int | str, day: int | str) -> str | None:
    try:
        value = date(int(year), int(month), int(day))
    except ValueError:
        return None
    return value.isoformat() if 1800 <= value.year <= 2200 else None


def _month(name: str) -> int | None:
    low = name.lower()
    for i, full in enumerate(_FULL_MONTHS):
        if len(low) >= 3 and full.startswith(low):
            return i + 1
    return None


def parse_date(value: object) -> str | None:
    """Normalise a publication date to ``YYYY-MM-DD``; ``None`` when unparseable.

    Accepts ISO 8601 (the date as written, no time-zone conversion), ``YYYY/MM/DD``, PDF
    ``D:YYYYMMDD...``, RFC 2822, "January 2, 2023", "2 Jan 2023", epoch seconds and
    ``DD/MM/YYYY`` or ``MM/DD/YYYY`` only when unambiguous (one part above 12, or both equal).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if m := _YMD.match(text):
        return _ymd(m.group(1), m.group(3), m.group(4))
    if m := _COMPACT.match(text):
        return _ymd(*m.groups())
    if m := _DMY.match(text):
        a, b, year = int(m.group(1)), int(m.group(3)), m.group(4)
        if a > 12 or a == b:
            return _ymd(year, b, a)
        return _ymd(year, a, b) if b > 12 else None
    for pattern, order in ((_D_MONTH_Y, (3, 2, 1)), (_MONTH_D_Y, (3, 1, 2))):
        if m := pattern.search(text):
            year, month, day = (m.group(i) for i in order)
            number = _month(month)
            if number is not None:
                return _ymd(year, number, day)
    return None
