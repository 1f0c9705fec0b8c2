"""Find the time a question is about: "this week", "yesterday", "in March", "January 5, 2024"...

:func:`parse_time` turns the temporal expressions of a question into one inclusive
:class:`DateWindow` relative to ``today`` and returns the question with those expressions cut
out (a cleaner keyword query). Rules, all relative to ``today``:

* ``today``/``tonight`` -> today; ``yesterday`` -> yesterday; ``N days ago`` -> that day;
* ``this week``/``past week``/``this weekend`` -> the 7 days ending today; ``last week`` -> the
  7 days before those; ``N weeks ago`` -> the 7 days ending N weeks ago;
* ``this month``/``last month``/``this year``/``last year`` -> calendar month/year (up to today);
* ``recently``/``past few days``/``latest`` -> the last 14 days; ``next week``/``tomorrow``/
  ``next month`` -> the last 7 (30) days, since news about coming events is recent news;
* weekday names (``on Monday``, ``last Friday``) -> the latest such day before today (or
  today, for a bare name naming today);
* ``in March`` / ``March 2023`` -> that month (the latest one not after today when no year);
* ``March 3``, ``3 March``, ``January 5, 2024``, ``2024-01-05``, ``1/5/2024`` -> that day;
* ``in 2023`` / ``during 2023`` -> that year.

When several expressions occur, the narrowest window wins. Nothing here does I/O.
"""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = ["DateWindow", "TimeQuery", "parse_time"]

logger = logging.getLogger(__name__)

_MONTHS = {
    name: i
    for i in range(1, 13)
    for name in (calendar.month_name[i].lower(), calendar.month_abbr[i].lower())
}
_WEEKDAYS = {calendar.day_name[i].lower(): i for i in range(7)}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": 3, "several": 3,
}  # fmt: skip

# Month names must be capitalised ("may" and "march" are also ordinary words).
_MONTH = r"(?P<month>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?|January|February|March|April|June|July|August|September|October|November|December)"  # noqa: E501
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_NUM = r"(?P<num>\d{1,2}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + ")"
_WEEKDAY = r"(?P<weekday>(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day)"


@dataclass(frozen=True)
class DateWindow:
    """An inclusive range of publication dates, and the phrase it came from."""

    start: date
    end: date
    phrase: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date, slack_days: int = 0, *, before_days: int | None = None) -> bool:
        """True when ``day`` is in the widened window.

        The window is widened by ``slack_days`` after its end and ``before_days`` (default
        ``slack_days``) before its start.
        """
        before = slack_days if before_days is None else before_days
        return self.start - timedelta(days=before) <= day <= self.end + timedelta(days=slack_days)


@dataclass(frozen=True)
class TimeQuery:
    """The result of :func:`parse_time`."""

    window: DateWindow | None
    cleaned: str
    phrases: list[str] = field(default_factory=list)


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _shift_month(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def _latest_month(month: int, today: date) -> int:
    """The year of the latest ``month`` that has started by ``today``."""
    return today.year if month <= today.month else today.year - 1


def _latest_day(month: int, day: int, today: date) -> date | None:
    for year in (today.year, today.year - 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _days(start: date, end: date) -> tuple[date, date]:
    return (start, end) if start <= end else (end, start)


def _number(text: str) -> int:
    text = text.lower()
    return int(text) if text.isdigit() else _NUMBERS.get(text, 1)


def _relative(g: dict[str, str], today: date) -> tuple[date, date] | None:
    """Windows for relative expressions (group names tell which matched)."""
    week = timedelta(days=6)
    if "today" in g:
        return today, today
    if "yesterday" in g:
        day = today - timedelta(days=1)
        return day, day
    if "ago" in g:
        n = _number(g["num"])
        unit = g["unit"].lower()
        if unit.startswith("day"):
            day = today - timedelta(days=n)
            return day, day
        if unit.startswith("week"):
            end = today - timedelta(days=7 * n)
            return end - week, end
        if unit.startswith("month"):
            year, month = _shift_month(today, -n)
            return _month_start(year, month), _month_end(year, month)
        return date(today.year - n, 1, 1), date(today.year - n, 12, 31)
    if "past" in g:
        n = _number(g.get("num2") or "1")
        unit = g["unit2"].lower()
        span = {"day": 1, "week": 7, "month": 30, "year": 365}[unit.rstrip("s")] * n
        return today - timedelta(days=span - 1), today
    if "recent" in g:
        return today - timedelta(days=13), today
    if "coming" in g:
        unit = g["coming"].lower()
        span = 29 if "month" in unit or "year" in unit else 6
        return today - timedelta(days=span), today
    if "weekend" in g:
        which = g["weekend"].split()[0].lower()
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        if which == "last" and today.weekday() >= 5:
            saturday -= timedelta(days=7)
        return saturday, saturday + timedelta(days=1)
    if "period" in g:
        which, unit = g["which"].lower(), g["period"].lower()
        if unit == "week":
            end = today if which == "this" else today - timedelta(days=7)
            return end - week, end
        if unit == "month":
            if which == "this":
                return _month_start(today.year, today.month), today
            year, month = _shift_month(today, -1)
            return _month_start(year, month), _month_end(year, month)
        if which == "this":
            return date(today.year, 1, 1), today
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    return None


_NUM2 = _NUM.replace("num", "num2")  # the same number pattern, second group name

_RELATIVE = re.compile(
    r"\b(?:"
    r"(?P<today>today|tonight|this (?:morning|afternoon|evening))"
    r"|(?P<yesterday>yesterday|last night)"
    r"|(?P<ago>" + _NUM + r" (?P<unit>days?|weeks?|months?|years?) ago)"
    r"|(?P<past>(?:in |over |during )?the (?:past|last) (?:" + _NUM2 + r" )?"
    r"(?P<unit2>days?|weeks?|months?|years?))"
    r"|(?P<recent>recently|(?:in )?recent (?:days|weeks)|the latest"
    r"|(?:in |over )?the past few days)"
    r"|(?P<coming>tomorrow|next (?:week|month|year)|later this (?:week|month|year)|upcoming)"
    r"|(?P<weekend>this|last|over the|past) weekend"
    r"|(?:earlier |so far |(?:at |by )?the (?:end|start|beginning) of )?"
    r"(?P<which>this|last|past|previous)"
    r" (?P<period>week|month|year)"
    r")\b",
    re.IGNORECASE,
)


_EXPLICIT = [
    # August 15 to 18, 2024 / March 3-5 / August 15th to August 18th
    (
        "range",
        re.compile(
            r"\b(?:from |between )?" + _MONTH + r" " + _DAY + r" ?(?:to|through|until|and|-|–) ?"
            r"(?:"
            + _MONTH.replace("(?P<month>", "(?P<month2>")
            + r" )?"
            + _DAY.replace("(?P<day>", "(?P<day2>")
            + r"\b(?:,? "
            + _YEAR
            + r"\b)?"
        ),
    ),
    # ISO 2024-01-05
    ("iso", re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<m>[01]?\d)-(?P<d>[0-3]?\d)\b")),
    # US 1/5/2024
    ("us", re.compile(r"\b(?P<m>[01]?\d)/(?P<d>[0-3]?\d)/(?P<year>(?:19|20)\d\d)\b")),
    # January 5, 2024 / Jan. 5 / March 3rd
    (
        "md",
        re.compile(r"\b(?:on )?" + _MONTH + r" " + _DAY + r"\b(?:,? " + _YEAR + r"\b)?(?!,?\d)"),
    ),
    # 5 January 2024 / 3rd of March
    ("dm", re.compile(r"\b(?:on )?" + _DAY + r" (?:of )?" + _MONTH + r"(?: " + _YEAR + r")?\b")),
    # March 2023 / in March / early March
    (
        "month",
        re.compile(
            r"\b(?:(?:in|during|since|by|until|through|throughout|of|early|mid|late|last|this|"
            r"earlier in|later in|the end of|the start of)(?:-| ))?"
            + _MONTH.replace("(?P<month>", "(?P<month_kw>")
            + r"(?: (?:of )?"
            + _YEAR
            + r")?\b"
        ),
    ),
    # in 2023
    ("year", re.compile(r"\b(?:in|during|throughout|for|of) " + _YEAR + r"\b(?!-)")),
    # on Monday / last Friday / Tuesday
    ("weekday", re.compile(r"\b(?:(?P<last>last|this past|past|on|this) )?" + _WEEKDAY + r"\b")),
]


def _explicit(kind: str, m: re.Match[str], today: date) -> tuple[date, date] | None:
    g = m.groupdict()
    if kind in ("iso", "us"):
        day = _safe_date(int(g["year"]), int(g["m"]), int(g["d"]))
        return (day, day) if day else None
    if kind == "range":
        month = _MONTHS[g["month"].rstrip(".").lower()]
        month2 = _MONTHS[g["month2"].rstrip(".").lower()] if g.get("month2") else month
        year = int(g["year"]) if g.get("year") else _latest_month(month, today)
        first = _safe_date(year, month, int(g["day"]))
        last = _safe_date(year + (month2 < month), month2, int(g["day2"]))
        return (first, last) if first and last and first <= last else None
    if kind in ("md", "dm"):
        month = _MONTHS[g["month"].rstrip(".").lower()]
        if g.get("year"):
            day = _safe_date(int(g["year"]), month, int(g["day"]))
        else:
            day = _latest_day(month, int(g["day"]), today)
        return (day, day) if day else None
    if kind == "month":
        text = m.group(0)
        # A bare capitalised month name: only trust the unambiguous long names.
        if (
            text == g["month_kw"]
            and not g.get("year")
            and (g["month_kw"] in ("May", "March") or len(g["month_kw"]) <= 4)
        ):
            return None
        month = _MONTHS[g["month_kw"].rstrip(".").lower()]
        year = int(g["year"]) if g.get("year") else _latest_month(month, today)
        return _month_start(year, month), min(
            _month_end(year, month), max(today, _month_start(year, month))
        )
    if kind == "year":
        year = int(g["year"])
        return date(year, 1, 1), date(year, 12, 31)
    if kind == "weekday":
        target = _WEEKDAYS[g["weekday"].lower()]
        back = (today.weekday() - target) % 7
        if back == 0 and g.get("last") in ("last", "this past", "past"):
            back = 7
        day = today - timedelta(days=back)
        return day, day
    return None


def parse_time(question: str, today: date) -> TimeQuery:
    """Find the date window a question refers to.

    Args:
        question: The user's question.
        today: The date the question is asked on.

    Returns:
        A :class:`TimeQuery` with the narrowest window found (or ``None``), the question with
        every temporal phrase removed, and the phrases.
    """
    found: list[tuple[tuple[date, date], str, tuple[int, int]]] = []
    taken: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return all(span[1] <= a or span[0] >= b for a, b in taken)

    for m in _RELATIVE.finditer(question):
        window = _relative({k: v for k, v in m.groupdict().items() if v}, today)
        if window is not None:
            found.append((_days(*window), m.group(0), m.span()))
            taken.append(m.span())
    for kind, pattern in _EXPLICIT:
        for m in pattern.finditer(question):
            if not free(m.span()):
                continue
            window = _explicit(kind, m, today)
            if window is not None:
                found.append((_days(*window), m.group(0), m.span()))
                taken.append(m.span())
    if not found:
        return TimeQuery(None, question, [])
    (start, end), phrase, _ = min(found, key=lambda f: ((f[0][1] - f[0][0]).days, f[2][0]))
    cleaned = question
    for _, _, (a, b) in sorted(found, key=lambda f: f[2][0], reverse=True):
        cleaned = cleaned[:a] + " " + cleaned[b:]
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    cleaned = re.sub(r"\s+([?.!,])", r"\1", cleaned)
    phrases = [p for _, p, _ in sorted(found, key=lambda f: f[2][0])]
    logger.debug("time window %s..%s from %r", start, end, phrase)
    return TimeQuery(DateWindow(start, end, phrase), cleaned or question, phrases)
