from __future__ import annotations

from datetime import date

import pytest

from rag.retrieve.timeparse import DateWindow, parse_time

FRIDAY = date(2024, 1, 19)


def window(question: str, today: date = FRIDAY) -> tuple[str, str] | None:
    w = parse_time(question, today).window
    return (w.start.isoformat(), w.end.isoformat()) if w else None


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who won today?", ("2024-01-19", "2024-01-19")),
        ("What happened yesterday?", ("2024-01-18", "2024-01-18")),
        ("Which state was sued this week?", ("2024-01-13", "2024-01-19")),
        ("What blew out last week?", ("2024-01-06", "2024-01-12")),
        ("What did he say this month?", ("2024-01-01", "2024-01-19")),
        ("What was last month's jobs number?", ("2023-12-01", "2023-12-31")),
        ("What happened this year?", ("2024-01-01", "2024-01-19")),
        ("Who won last year?", ("2023-01-01", "2023-12-31")),
        ("Who won in March?", ("2023-03-01", "2023-03-31")),
        ("Who won in January?", ("2024-01-01", "2024-01-19")),
        ("What happened in March 2023?", ("2023-03-01", "2023-03-31")),
        ("What happened on March 3?", ("2023-03-03", "2023-03-03")),
        ("What happened on January 5, 2024?", ("2024-01-05", "2024-01-05")),
        ("What happened on 5 January 2024?", ("2024-01-05", "2024-01-05")),
        ("What happened on 2024-01-05?", ("2024-01-05", "2024-01-05")),
        ("What happened on 1/5/2024?", ("2024-01-05", "2024-01-05")),
        ("What were sales in 2023?", ("2023-01-01", "2023-12-31")),
        ("Who surpassed Apple last Friday?", ("2024-01-12", "2024-01-12")),
        ("Who clinched the nomination Tuesday?", ("2024-01-16", "2024-01-16")),
        ("What happened on Friday?", ("2024-01-19", "2024-01-19")),
        ("What happened three days ago?", ("2024-01-16", "2024-01-16")),
        ("What happened two weeks ago?", ("2023-12-30", "2024-01-05")),
        ("What happened in the past 3 days?", ("2024-01-17", "2024-01-19")),
        ("Who recently launched a moon mission?", ("2024-01-06", "2024-01-19")),
        ("Which comedian returns next month?", ("2023-12-21", "2024-01-19")),
        ("The festival runs August 15 to August 18, 2024.", ("2024-08-15", "2024-08-18")),
    ],
)
def test_windows(question: str, expected: tuple[str, str]) -> None:
    assert window(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "Which film won at the 2024 Golden Globes?",
        "May I ask who leads NATO?",
        "Who organised the March for Life?",
        "How many KFOR troops are there?",
    ],
)
def test_no_window(question: str) -> None:
    assert window(question) is None


def test_cleaned_question_drops_the_phrases() -> None:
    tq = parse_time("Which state was sued this week over an immigration law?", FRIDAY)
    assert tq.cleaned == "Which state was sued over an immigration law?"
    assert tq.phrases == ["this week"]


def test_narrowest_window_wins() -> None:
    tq = parse_time("This month, what happened yesterday?", FRIDAY)
    assert tq.window is not None and tq.window.days == 1
    assert tq.window.phrase.lower() == "yesterday"


def test_month_in_the_future_means_last_year() -> None:
    assert window("What happened in December?", date(2024, 3, 1)) == ("2023-12-01", "2023-12-31")


def test_leap_day_and_bad_dates() -> None:
    assert window("What happened on February 29?", date(2024, 3, 5)) == ("2024-02-29", "2024-02-29")
    # an impossible day falls back to its month
    assert window("What happened on February 30?", date(2024, 3, 5)) == ("2024-02-01", "2024-02-29")


def test_window_contains_with_slack() -> None:
    w = DateWindow(date(2024, 1, 10), date(2024, 1, 12))
    assert w.contains(date(2024, 1, 10)) and not w.contains(date(2024, 1, 13))
    assert w.contains(date(2024, 1, 13), slack_days=1)
    assert w.days == 3
