"""A same-period unanswerable suite: questions whose answer was removed from the corpus.

The shared suites' unanswerable questions are about events after the corpus ends, so a date
check alone can refuse them. This builds harder ones from a suite with a corpus: take
answerable questions with a *distinctive* answer, drop every article whose text contains that
answer (normalised, even glued to a neighbouring word), and keep the question and its date,
now unanswerable: the corpus still covers that week, just not that fact. The other
answerable questions whose evidence and answer survive in the reduced corpus stay as
answerable controls on the same index.

A distinctive answer (a general rule, nothing keyed to one dataset): after normalising, at
least 4 characters with a word of 3+ letters and no digit (numbers, amounts, dates, scores
are too easy to meet by chance); not yes/no; a one-word answer must be capitalised (a name,
not a common word); and it occurs in at most ``max_df`` articles (a rare string, so removing
it does not gut the corpus).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.evals.metrics import normalize_answer

__all__ = ["is_distinctive", "make_same_period"]

_COMMON = frozenset("yes no true false none all both neither nobody nothing other unknown".split())
_LETTERS = re.compile(r"[^\W\d_]{3,}")


def is_distinctive(answer: str) -> bool:
    """Whether ``answer`` is specific enough that its absence from the corpus means something.

    Examples:
        >>> is_distinctive("Luke Humphries"), is_distinctive("$35"), is_distinctive("yes")
        (True, False, False)
    """
    norm = normalize_answer(answer)
    tokens = norm.split()
    if len(norm) < 4 or not tokens or norm in _COMMON:
        return False
    if any(c.isdigit() for c in norm) or not any(_LETTERS.fullmatch(t) for t in tokens):
        return False  # numbers, amounts ("40 percent"), dates, scores, initials
    if len(tokens) == 1:
        return answer.strip()[:1].isupper() and len(norm) >= 5
    return True


def _read(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _contains(norm_text: str, answer: str) -> bool:
    """The answer occurs on word boundaries (as the lenient metric finds it)."""
    needle = normalize_answer(answer)
    return bool(needle) and f" {needle} " in norm_text


def _mentions(norm_text: str, answer: str) -> bool:
    """The answer occurs anywhere, even glued to a neighbouring word by a missing space.

    Articles are dropped on this looser test, so a removed answer cannot leak back.
    """
    needle = normalize_answer(answer)
    return bool(needle) and needle in norm_text


def _selected(case_id: str, share: float) -> bool:
    """A fixed pseudo-random ``share`` of the eligible questions (by a hash of the id)."""
    digest = hashlib.sha256(f"same-period:{case_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < share * 2**32


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def make_same_period(
    source: str | Path, target: str | Path, *, max_df: int = 10, share: float = 0.5
) -> dict[str, int]:
    """Write the same-period suite built from the suite in ``source`` into ``target``.

    Args:
        source: a suite directory with ``qa.jsonl``, ``corpus.jsonl`` and optionally
            ``qa_meta.jsonl`` (read only).
        target: the directory to write ``qa.jsonl``, ``qa_meta.jsonl``, ``corpus.jsonl``
            and ``SOURCE.md`` into (created; keep it out of the repository).
        max_df: the most articles a distinctive answer may occur in.
        share: the share of eligible questions turned unanswerable (a fixed hash of the id
            picks them); the rest stay answerable controls.

    Returns:
        Counts: ``unanswerable``, ``controls``, ``eligible``, ``lost`` (answerable questions
        left out because their evidence or answer went with the dropped articles),
        ``skipped_unanswerable`` (the source's own unanswerable questions, not used),
        ``articles``, ``articles_dropped``, ``articles_kept``.
    """
    src, out = Path(source), Path(target)
    qa = list(_read(src / "qa.jsonl"))
    meta_path = src / "qa_meta.jsonl"
    meta = {str(m.get("id")): m for m in _read(meta_path)} if meta_path.is_file() else {}
    corpus = list(_read(src / "corpus.jsonl"))
    texts = {
        str(
            a["id"]
        ): f" {normalize_answer(str(a.get('title') or '') + ' ' + str(a.get('text') or ''))} "
        for a in corpus
    }

    def holders(answers: Sequence[str]) -> set[str]:
        return {aid for aid, text in texts.items() if any(_mentions(text, a) for a in answers)}

    answerable = [q for q in qa if q.get("answerable", bool(q.get("answers"))) and q.get("answers")]
    eligible = []
    for q in answerable:
        answers = [str(a) for a in q["answers"]]
        found = holders(answers)
        if all(is_distinctive(a) for a in answers) and 1 <= len(found) <= max_df:
            eligible.append((q, found))
    chosen = [(q, found) for q, found in eligible if _selected(str(q["id"]), share)]
    dropped = set().union(*(found for _, found in chosen)) if chosen else set()
    kept_texts = {aid: t for aid, t in texts.items() if aid not in dropped}
    chosen_ids = {str(q["id"]) for q, _ in chosen}

    questions: list[dict[str, Any]] = []
    metas: list[dict[str, Any]] = []
    lost = 0
    for q in answerable:
        qid = str(q["id"])
        m = dict(meta.get(qid) or {"id": qid})
        if qid in chosen_ids:
            questions.append(
                {
                    "id": qid,
                    "question": q["question"],
                    "answers": [],
                    "evidence_ids": [],
                    "answerable": False,
                }
            )
            m.update(
                kind="same_period_unanswerable",
                removed_answers=list(q["answers"]),
                removed_evidence=list(q.get("evidence_ids") or []),
            )
        else:
            evidence = [e for e in q.get("evidence_ids") or [] if e in kept_texts]
            answers = [str(a) for a in q["answers"]]
            if not evidence or not any(
                _contains(kept_texts[e], a) for e in evidence for a in answers
            ):
                lost += 1
                continue
            questions.append({**q, "evidence_ids": evidence})
            m.update(kind="same_period_control")
        metas.append(m)

    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "qa.jsonl", questions)
    _write_jsonl(out / "qa_meta.jsonl", metas)
    _write_jsonl(out / "corpus.jsonl", [a for a in corpus if str(a["id"]) not in dropped])
    stats = {
        "unanswerable": len(chosen),
        "controls": len(questions) - len(chosen),
        "eligible": len(eligible),
        "lost": lost,
        "skipped_unanswerable": len(qa) - len(answerable),
        "articles": len(corpus),
        "articles_dropped": len(dropped),
        "articles_kept": len(corpus) - len(dropped),
    }
    (out / "SOURCE.md").write_text(_source_md(src, stats, max_df, share), encoding="utf-8")
    return stats


def _source_md(src: Path, stats: dict[str, int], max_df: int, share: float) -> str:
    made = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""# Same-period unanswerable suite (generated)

Made {made} by `evals/make_same_period.py` (`rag.evals.same_period`) from `{src}`;
see that directory's SOURCE.md for the data's origin and licence (evaluation use only).

How: answerable questions whose every acceptable answer is distinctive (normalised: 4+
characters with a word of 3+ letters, no digit, not yes/no, a one-word answer capitalised)
and occurs in 1 to {max_df} articles are eligible; a fixed hash of the question id picks
{share:.0%} of them. Every article whose title or text contains a picked question's answer
(normalised; anywhere, even glued to a neighbouring word) is dropped. The picked questions
keep their wording and `question_date` and become unanswerable (`qa_meta.jsonl`:
`kind: same_period_unanswerable`, the removed answers and evidence). The other answerable
questions whose evidence still holds the answer stay as controls (`kind:
same_period_control`); the source's own unanswerable questions are not used.

- questions: {stats["unanswerable"]} unanswerable (same period),
  {stats["controls"]} answerable controls ({stats["eligible"]} eligible;
  {stats["lost"]} answerable questions left out, their evidence dropped;
  {stats["skipped_unanswerable"]} source unanswerable questions not used)
- articles: {stats["articles_kept"]} kept of {stats["articles"]},
  {stats["articles_dropped"]} dropped
"""
