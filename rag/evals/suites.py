"""Evaluation suites: loading ``qa.jsonl`` (+ ``qa_meta.jsonl``) and building a suite's index.

A suite is a directory in the common format of the shared datasets:

* ``qa.jsonl``: ``{"id", "question", "answers", "evidence_ids", "answerable"}`` per line,
  optionally ``"history": [{"role", "content"}, ...]`` (earlier turns of a multi-turn case),
  ``"passage"`` (the supporting sentence) and ``"today"`` (``YYYY-MM-DD``);
* ``corpus.jsonl`` (optional): the articles to index for this suite;
* ``qa_meta.jsonl`` (optional): ``{"id", "question_date", "choices", "answer_index", ...}``;
  ``question_date`` is the ``today`` of the question, ``choices``/``answer_index`` (a
  multiple-choice quiz) enable the choice-aware score;
* ``suite.json`` (optional): ``{"corpus": ["relative/path", ...]}``, article files to index
  when there is no ``corpus.jsonl`` (paths relative to the suite directory), and/or
  ``{"corpus_from": ["path", ...]}``, files resolved relative to the repository (the nearest
  ancestor of the suite holding ``pyproject.toml`` or ``.git``), so a suite can use a shared
  dataset (``../shared/datasets/...``) without copying it. A missing ``corpus_from`` file is
  skipped with a warning, and so are the questions whose evidence is not in the corpora left;
* per question, for overview suites (see :mod:`rag.evals.nuggets`): ``"nuggets"`` (facts a
  good answer contains, each a list of alternative strings), ``"kind"``, and for "what did X
  say" questions ``"speaker"`` and ``"not_speakers"``.

A suite with a corpus is indexed under ``<data_dir>/evals/<hash>``, the hash covering the
corpus bytes, the chunk settings and the embedder, so an unchanged suite is indexed once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError

__all__ = [
    "SPLITS",
    "Case",
    "Suite",
    "corpus_fingerprint",
    "load_suite",
    "select_split",
    "split_of",
    "suite_settings",
]

logger = logging.getLogger(__name__)

_INDEX_VERSION = 1
SPLITS = ("all", "tune", "check")


@dataclass
class Case:
    """One question of a suite."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    evidence_ids: list[str] = field(default_factory=list)
    answerable: bool = True
    history: list[dict[str, str]] = field(default_factory=list)
    today: date | None = None
    passage: str = ""
    choices: list[str] = field(default_factory=list)
    answer_index: int | None = None
    # overview scoring (rag.evals.nuggets): facts as lists of alternatives, the question's kind,
    # and for attribution questions the asked speaker and the others quoted near them
    nuggets: list[list[str]] = field(default_factory=list)
    kind: str = ""
    speaker: list[str] = field(default_factory=list)
    not_speakers: list[list[str]] = field(default_factory=list)


@dataclass
class Suite:
    """A loaded suite: its cases and the corpus to index (if any)."""

    name: str
    path: Path
    cases: list[Case]
    corpus: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # ids dropped: their corpus is missing

    @property
    def answerable(self) -> list[Case]:
        return [c for c in self.cases if c.answerable]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{path}:{number}: not valid JSON ({exc.msg})."
                raise ConfigError(msg) from None
            if not isinstance(record, dict):
                msg = f"{path}:{number}: expected a JSON object."
                raise ConfigError(msg)
            yield number, record


def _date(value: Any, where: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        msg = f"{where}: bad date {value!r} (want YYYY-MM-DD)."
        raise ConfigError(msg) from None


def _case(record: dict[str, Any], where: str) -> Case:
    question = str(record.get("question") or "").strip()
    if not question:
        msg = f"{where}: missing 'question'."
        raise ConfigError(msg)
    answers = record.get("answers") or []
    if isinstance(answers, str):
        answers = [answers]
    history = record.get("history") or []
    if not isinstance(history, list) or not all(
        isinstance(t, dict)
        and t.get("role") in ("user", "assistant", "human", "ai")
        and "content" in t
        for t in history
    ):
        msg = f'{where}: \'history\' must be a list of {{"role": "user"|"assistant", "content"}}.'
        raise ConfigError(msg)
    evidence = record.get("evidence_ids") or []
    answerable = bool(record.get("answerable", bool(answers)))
    return Case(
        id=str(record.get("id") or where),
        question=question,
        answers=[str(a) for a in answers],
        evidence_ids=[str(e) for e in evidence],
        answerable=answerable,
        history=[{"role": str(t["role"]), "content": str(t["content"])} for t in history],
        today=_date(record.get("today"), where),
        passage=str(record.get("passage") or ""),
        nuggets=[_alternatives(n, f"{where}: nugget") for n in _listed(record, "nuggets", where)],
        kind=str(record.get("kind") or ""),
        speaker=_alternatives(record.get("speaker") or [], f"{where}: speaker"),
        not_speakers=[
            _alternatives(n, f"{where}: not_speakers")
            for n in _listed(record, "not_speakers", where)
        ],
    )


def _listed(record: dict[str, Any], key: str, where: str) -> list[Any]:
    value = record.get(key) or []
    if not isinstance(value, list):
        msg = f"{where}: {key!r} must be a list."
        raise ConfigError(msg)
    return value


def _alternatives(value: Any, where: str) -> list[str]:
    """A string or a list of alternative strings, as a list of non-empty strings."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        msg = f"{where}: want a string or a list of non-empty strings, got {value!r}."
        raise ConfigError(msg)
    return [v.strip() for v in items]


def _repo_root(start: Path) -> Path:
    """The nearest ancestor of ``start`` holding ``pyproject.toml`` or ``.git`` (else itself)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return start


def _corpus_ids(paths: list[Path]) -> set[str]:
    """Article ids of ``.jsonl`` corpora (their ``id`` fields) and the paths of other files."""
    ids: set[str] = set()
    for file in _files(paths):
        if file.suffix == ".jsonl":
            for _, record in _jsonl(file):
                if record.get("id") is not None:
                    ids.add(str(record["id"]))
        else:
            ids.add(file.resolve().as_posix())
    return ids


def _has_evidence(case: Case, ids: set[str]) -> bool:
    """All evidence of ``case`` is in ``ids`` (a path id matches on whole path components)."""
    return all(
        e in ids or any(i.endswith("/" + e.lstrip("/")) for i in ids) for e in case.evidence_ids
    )


def load_suite(path: str | Path) -> Suite:
    """Load the suite in directory ``path`` (or the ``qa.jsonl`` file ``path``).

    Raises:
        ConfigError: missing ``qa.jsonl``, malformed lines or duplicate ids.
    """
    path = Path(path)
    root = path.parent if path.is_file() else path
    qa = path if path.is_file() else root / "qa.jsonl"
    if not qa.is_file():
        msg = f"No qa.jsonl in {root}."
        raise ConfigError(
            msg, hint="A suite directory needs a qa.jsonl (see evals/README or evals/suites.py)."
        )
    cases: list[Case] = []
    seen: set[str] = set()
    for number, record in _jsonl(qa):
        case = _case(record, f"{qa}:{number}")
        if case.id in seen:
            msg = f"{qa}:{number}: duplicate id {case.id!r}."
            raise ConfigError(msg)
        seen.add(case.id)
        cases.append(case)
    meta_path = root / "qa_meta.jsonl"
    if meta_path.is_file():
        by_id = {c.id: c for c in cases}
        for number, record in _jsonl(meta_path):
            found = by_id.get(str(record.get("id")))
            if found is None:
                continue
            case = found
            if case.today is None:
                case.today = _date(record.get("question_date"), f"{meta_path}:{number}")
            choices = record.get("choices")
            index = record.get("answer_index")
            if isinstance(choices, list) and isinstance(index, int) and 0 <= index < len(choices):
                case.choices = [str(c) for c in choices]
                case.answer_index = index
    corpus: list[Path] = []
    if (root / "corpus.jsonl").is_file():
        corpus = [root / "corpus.jsonl"]
    elif (root / "suite.json").is_file():
        spec = json.loads((root / "suite.json").read_text(encoding="utf-8"))
        corpus = [(root / p).resolve() for p in spec.get("corpus", [])]
        missing = [str(p) for p in corpus if not p.exists()]
        if missing:
            msg = f"{root / 'suite.json'}: corpus path(s) not found: {', '.join(missing)}."
            raise ConfigError(msg)
        skipped: list[str] = []
        if spec.get("corpus_from"):
            base = _repo_root(root)
            wanted = [(base / p).resolve() for p in spec["corpus_from"]]
            absent = [p for p in wanted if not p.exists()]
            corpus += [p for p in wanted if p.exists()]
            if absent:
                ids = _corpus_ids(corpus)
                skipped = [c.id for c in cases if not _has_evidence(c, ids)]
                cases = [c for c in cases if _has_evidence(c, ids)]
                logger.warning(
                    "%s: %s not found; skipping its %d question(s)",
                    root / "suite.json",
                    ", ".join(str(p) for p in absent),
                    len(skipped),
                )
            if not cases:
                msg = f"{root}: no question left: corpus {', '.join(map(str, absent))} not found."
                raise ConfigError(msg, hint="Fetch the dataset, or run another suite.")
        return Suite(
            name=root.resolve().name, path=root, cases=cases, corpus=corpus, skipped=skipped
        )
    return Suite(name=root.resolve().name, path=root, cases=cases, corpus=corpus)


def split_of(case_id: str) -> str:
    """The fixed dev split of a question: ``tune`` or ``check``.

    ``tune`` when the first byte of sha256(id) is even, else ``check``: it depends on the id
    alone, so a question never changes side when the suite grows or is reordered.
    """
    return "tune" if hashlib.sha256(case_id.encode("utf-8")).digest()[0] % 2 == 0 else "check"


def select_split(cases: list[Case], split: str) -> list[Case]:
    """The cases of ``split`` (``all``, ``tune`` or ``check``), in suite order.

    Raises:
        ValueError: an unknown split name.
    """
    if split not in SPLITS:
        msg = f"Unknown split {split!r} (one of {', '.join(SPLITS)})."
        raise ValueError(msg)
    return list(cases) if split == "all" else [c for c in cases if split_of(c.id) == split]


def _files(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        yield Path(dirpath) / name
        else:
            yield p


def corpus_fingerprint(paths: list[Path], settings: Settings) -> str:
    """A hash of the corpus bytes, the chunk settings and the embedder (the index's identity)."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [
                _INDEX_VERSION,
                settings.chunk_size,
                settings.chunk_overlap,
                settings.embedding_model,
                settings.embedding_dtype,
            ]
        ).encode()
    )
    for file in _files(paths):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def suite_settings(
    suite: Suite,
    settings: Settings,
    *,
    embedder: Any | None = None,
    progress: Callable[[str], None] | None = None,
) -> Settings:
    """Settings pointing at the suite's own index, ingesting its corpus the first time.

    A suite without a corpus uses ``settings`` unchanged (the configured index).
    """
    if not suite.corpus:
        return settings
    key = corpus_fingerprint(suite.corpus, settings)
    target = settings.data_dir / "evals" / key
    suite_cfg = settings.model_copy(update={"data_dir": target, "chroma_url": None})
    stamp = target / "READY.json"
    if stamp.is_file():
        return suite_cfg
    from rag.ingestion.pipeline import ingest

    if progress:
        progress(f"Indexing the {suite.name} corpus into {target} (once) ...")
    report = ingest(suite.corpus, suite_cfg, prune=True, embedder=embedder)
    if report.failed:
        logger.warning("%d corpus items failed to load: %s", len(report.failed), report.failed[:3])
    stamp.write_text(
        json.dumps({"corpus": [str(p) for p in suite.corpus], **report.to_dict()}, indent=1)
    )
    return suite_cfg
