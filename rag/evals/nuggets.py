"""Overview scoring: nugget recall, per-sentence citation precision, attributions, refusals.

Broad questions ("What is going on between Serbia and Kosovo?", "Why ...?", "Compare ...",
"What did Kurti say about Serbia?") have no single right string. A question of an overview
suite (``evals/overview``) lists ``nuggets``, the facts a good answer contains, each a list of
alternative strings, and for "what did X say" questions the asked ``speaker`` and the
``not_speakers`` quoted in the same passages. The rules, per answer:

* **nugget recall**: share of nuggets found in the answer (citation markers removed). A
  nugget is found when one of its alternatives occurs with the project's lenient matcher,
  :func:`rag.evals.metrics.answer_correct` (normalised, word-bounded containment; possessives,
  "&"/"and", a leading article and listed items are forgiven). A refusal or an error scores 0.
* **citation precision per sentence**: the answer is split into sentences
  (:func:`rag.text.split_sentences`; a marker group opening a sentence belongs to the one
  before). A sentence with content words is supported when a passage it cites (``[n]``, the
  text of citation ``n``) holds a sentence, or adjacent pair, supporting it at the chain's own
  threshold: ``rag.answer.cite.best_quote(sentence, passage, question)[0] >=
  SUPPORT_THRESHOLD`` (0.5, strict on figures). It is recomputed per sentence rather than read
  from the citations' ``supported`` flag, which is per passage (the best sentence citing it),
  not per sentence. An uncited sentence is unsupported. Precision = supported / sentences.
* **dropped**: the sentences verification dropped, ``verification["dropped"]`` as the chain
  reports it (``None`` while the chain reports no such count).
* **wrong attributions** (questions with a ``speaker``): who a sentence attributes words to
  is found with a small rule: a reporting verb (:data:`REPORTING_VERBS`: said, warned,
  stressed, assured, pointed out, according to, ...) takes the nearest known person (the
  speaker or a not-speaker, by any alias or the surname of the first) named up to 16 words
  before it, else up to 4 words after it ("said Stoltenberg"); a name one word after a closing
  quote mark is the quote's speaker whatever the verb; "he/she <verb>" takes the last
  person attributed in an earlier sentence of the same text. Passage sentences are attributed
  the same way, over the whole article of each cited passage when the suite's corpus has it
  (so "..., he pointed out" after "Kurti assured ..." is Kurti's), else over the passage; a
  quotation running over several sentences, or a sentence opening with a quote mark right after
  an attributed one, shares that attribution. The
  content of an answer sentence (markers, names and reporting verbs removed) attributed to
  person P must be supported (share of its words >= 0.5, word forms forgiven: answers
  paraphrase) by the passage sentences attributed to P.
  A sentence attributing to the speaker words not supported that way is wrong; a sentence
  attributing to a not-speaker words that the speaker's sentences support and the
  not-speaker's don't is wrong (the speaker's quote given to someone else).
* **refusals**: refused answers, and those refused although every nugget occurs in the text
  of the question's evidence articles (read from the suite's corpus).
* **length**: sentences and words (markers removed) of the answers given.
* **kind agreement**: share of questions whose ``kind`` in the chain's output (recorded by the
  runner) is the suite's ``kind``.

The report's overview block compares with the targets of issue 12 (:data:`TARGETS`). The
scorecard's text and Markdown tables (:func:`nuggets_text`, :func:`nuggets_markdown`) and
``TARGETS`` are :mod:`rag.evals.nuggets_report`, re-exported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.answer.cite import SUPPORT_THRESHOLD, best_quote, parse_markers, strip_markers
from rag.evals.metrics import answer_correct, mean, same_article
from rag.evals.nuggets_report import TARGETS, nuggets_markdown, nuggets_text
from rag.evals.speakers import REPORTING_VERBS, attributions, wrong_attributions
from rag.evals.suites import Case, Suite
from rag.text import split_sentences, tokenize

__all__ = [
    "REPORTING_VERBS",
    "TARGETS",
    "answer_sentences",
    "attributions",
    "citation_precision",
    "corpus_texts",
    "nugget_recall",
    "nuggets_markdown",
    "nuggets_text",
    "score_case",
    "score_overview",
    "summarize_overview",
    "wrong_attributions",
]

_WORD = re.compile(r"\w+")
_MARKER_LEAD = re.compile(r"^(\s*(?:\[[\d\s,;\-–]+\]\s*)+)")


# --- nuggets ---------------------------------------------------------------------------------
def nugget_recall(answer: str, nuggets: Sequence[Sequence[str]]) -> tuple[float | None, list[int]]:
    """Share of ``nuggets`` found in ``answer``, and the indexes of those found.

    Returns:
        ``(recall, found)``; recall is ``None`` when there are no nuggets.
    """
    if not nuggets:
        return None, []
    text = strip_markers(answer)
    found = [i for i, alternatives in enumerate(nuggets) if answer_correct(text, alternatives)]
    return len(found) / len(nuggets), found


# --- sentences and citations -----------------------------------------------------------------
def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences with their markers (a leading marker group joins the previous)."""
    out: list[str] = []
    for start, end in split_sentences(answer):
        sentence = answer[start:end]
        lead = _MARKER_LEAD.match(sentence)
        if lead and out:
            out[-1] = out[-1] + " " + lead.group(1).strip()
            sentence = sentence[lead.end() :]
        if sentence.strip():
            out.append(sentence.strip())
    return [s for s in out if tokenize(strip_markers(s))]


def _passages_by_n(citations: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for c in citations:
        n, text = c.get("n"), c.get("passage")
        if isinstance(n, int) and isinstance(text, str) and text:
            out[n] = text
    return out


def citation_precision(
    answer: str, citations: Sequence[Mapping[str, Any]], question: str = ""
) -> tuple[float | None, int, int]:
    """Per-sentence citation precision of ``answer`` (see the module's rules).

    Returns:
        ``(precision, supported, sentences)``; precision is ``None`` without sentences.
    """
    passages = _passages_by_n(citations)
    sentences = answer_sentences(answer)
    supported = 0
    for sentence in sentences:
        claim = strip_markers(sentence)
        cited = [passages[n] for n in dict.fromkeys(parse_markers(sentence)) if n in passages]
        if any(best_quote(claim, text, question)[0] >= SUPPORT_THRESHOLD for text in cited):
            supported += 1
    if not sentences:
        return None, 0, 0
    return supported / len(sentences), supported, len(sentences)


# --- attributions ----------------------------------------------------------------------------
def corpus_texts(suite: Suite, ids: Iterable[str]) -> dict[str, str]:
    """The text of the articles ``ids`` found in the suite's corpus files (others are absent).

    ``.jsonl`` corpora are looked up by ``id``; any other file is one article, matched by
    path suffix (``corpus/x.txt``).
    """
    wanted = set(ids)
    out: dict[str, str] = {}
    for path in suite.corpus:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".jsonl":
                with file.open(encoding="utf-8") as fh:
                    for line in fh:
                        if not line.strip():
                            continue
                        record = json.loads(line)
                        if str(record.get("id")) in wanted:
                            out[str(record["id"])] = str(record.get("text") or "")
            else:
                for aid in wanted:
                    if same_article(Path(file).resolve().as_posix(), aid):
                        out[aid] = file.read_text(encoding="utf-8", errors="replace")
    return out


def _text_of(aid: str | None, texts: Mapping[str, str]) -> str | None:
    if not aid:
        return None
    if aid in texts:
        return texts[aid]
    for key, text in texts.items():
        if same_article(aid, key) or same_article(key, aid):
            return text
    return None


# --- scoring ---------------------------------------------------------------------------------
def score_case(case: Case, rec: Mapping[str, Any], texts: Mapping[str, str]) -> dict[str, Any]:
    """The overview scores of one answered question (``rec`` is a runner record)."""
    answer = str(rec.get("answer") or "")
    refused = bool(rec.get("refused")) or bool(rec.get("error"))
    citations = [c for c in rec.get("citations") or [] if isinstance(c, Mapping)]
    evidence_text = " \n\n".join(t for e in case.evidence_ids if (t := _text_of(e, texts)))
    in_evidence = nugget_recall(evidence_text, case.nuggets)[0] if evidence_text else None
    recall, found = nugget_recall("" if refused else answer, case.nuggets)
    # where nuggets are lost: not shown to the model, shown but not written, written but dropped
    shown = " \n\n".join(
        str(p.get("text") or "") for p in rec.get("shown_passages") or [] if isinstance(p, Mapping)
    )
    raw = str(rec.get("raw_answer") or "")
    out: dict[str, Any] = {
        "kind": case.kind or None,
        "chain_kind": rec.get("kind"),  # what the chain took the question for, when it says
        "nuggets": len(case.nuggets),
        "found": len(found),
        "missing": [n[0] for i, n in enumerate(case.nuggets) if i not in found],
        "nugget_recall": recall,
        "nuggets_in_evidence": in_evidence,
        "nuggets_in_shown": nugget_recall(shown, case.nuggets)[0] if shown else 0.0,
        "nuggets_in_raw": nugget_recall(raw, case.nuggets)[0] if raw else 0.0,
        "refused": refused,
        "refused_with_nuggets": refused and in_evidence == 1.0,
    }
    verification = rec.get("verification")
    dropped = verification.get("dropped") if isinstance(verification, Mapping) else None
    out["dropped"] = int(dropped) if isinstance(dropped, int | float) else None
    if refused:
        return out
    precision, supported, sentences = citation_precision(answer, citations, case.question)
    out.update(
        citation_precision=precision,
        supported_sentences=supported,
        sentences=sentences,
        words=len(_WORD.findall(strip_markers(answer))),
    )
    if case.speaker:
        sources: list[str] = []
        for c in citations:
            text = _text_of(c.get("article_id"), texts) or str(c.get("passage") or "")
            if text and text not in sources:
                sources.append(text)
        out["wrong_attributions"] = wrong_attributions(
            answer, sources, case.speaker, case.not_speakers
        )
    return out


def summarize_overview(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Aggregate the records' ``overview`` blocks (``None`` when no question has nuggets)."""
    rows = [r["overview"] for r in records if isinstance(r.get("overview"), Mapping)]
    if not rows:
        return None
    answered = [o for o in rows if not o["refused"]]
    attributed = [o for o in answered if "wrong_attributions" in o]
    dropped = [o["dropped"] for o in rows if o.get("dropped") is not None]

    def part(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "questions": len(items),
            "nugget_recall": mean(o["nugget_recall"] for o in items),
            "citation_precision": mean(o.get("citation_precision") for o in items),
            "refused": sum(1 for o in items if o["refused"]),
        }

    kinds = sorted({str(o.get("kind") or "other") for o in rows})
    return {
        **part(rows),
        "answered": len(answered),
        "nugget_recall_answered": mean(o["nugget_recall"] for o in answered),
        "supported_sentences": sum(o.get("supported_sentences", 0) for o in answered),
        "sentences": sum(o.get("sentences", 0) for o in answered),
        "dropped": sum(dropped) if dropped else None,
        "attribution_questions": len(attributed),
        "wrong_attributions": sum(len(o["wrong_attributions"]) for o in attributed),
        "refused_with_nuggets": sum(1 for o in rows if o["refused_with_nuggets"]),
        "nuggets_in_evidence": mean(o.get("nuggets_in_evidence") for o in rows),
        "nuggets_in_shown": mean(o.get("nuggets_in_shown") for o in rows),
        "nuggets_in_raw": mean(o.get("nuggets_in_raw") for o in rows),
        "kind_agreement": mean(
            float(o["chain_kind"] == o["kind"]) for o in rows if o.get("chain_kind") and o["kind"]
        ),
        "sentences_mean": mean(o.get("sentences") for o in answered),
        "words_mean": mean(o.get("words") for o in answered),
        "by_kind": {
            k: part([o for o in rows if str(o.get("kind") or "other") == k]) for k in kinds
        },
        "targets": {k: f"{op} {v:g}" for k, (op, v) in TARGETS.items()},
    }


def score_overview(suite: Suite, systems: Mapping[str, Any]) -> None:
    """Add an ``overview`` block to each record with nuggets, and to each system's summary.

    Only questions with ``nuggets`` and an answer (answer mode) are scored; nothing happens
    for other suites.
    """
    cases = {c.id: c for c in suite.cases if c.nuggets}
    if not cases:
        return
    ids: set[str] = set()
    for spec in cases.values():
        ids.update(spec.evidence_ids)
    for system in systems.values():
        for rec in system["questions"]:
            for c in rec.get("citations") or []:
                if isinstance(c, Mapping) and c.get("article_id"):
                    ids.add(str(c["article_id"]))
    texts = corpus_texts(suite, ids)
    for system in systems.values():
        for rec in system["questions"]:
            found = cases.get(rec["id"])
            if found is not None and "answer" in rec:
                rec["overview"] = score_case(found, rec, texts)
        summary = summarize_overview(system["questions"])
        if summary is not None:
            summary["skipped_questions"] = list(suite.skipped)  # their corpus is missing
            system["summary"]["overview"] = summary
