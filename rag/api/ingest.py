"""Adding articles over HTTP: uploaded files and JSON records, one ingest at a time.

Files pass the web page's checks (limits, allowlist, messages) through
:func:`rag.ui.uploads.save_uploads`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.api.schemas import IngestRecord, IngestResponse, IngestResult
from rag.ingestion.load import article_id_for_path
from rag.ui.uploads import save_uploads

if TYPE_CHECKING:
    import threading

    from rag.config import Settings
    from rag.ingestion.pipeline import IngestReport

__all__ = ["Upload", "ingest_files", "save_records"]


@dataclass(frozen=True)
class Upload:
    """An uploaded file spooled to disk: where it is and the name the client gave it."""

    path: str
    orig_name: str


def save_records(records: list[IngestRecord], settings: Settings) -> Path:
    """Write JSON records to ``<data_dir>/uploads/records-<hash>.jsonl``.

    The same records make the same file, so posting them again changes nothing.
    """
    lines = [json.dumps(r.model_dump(exclude_none=True), ensure_ascii=False) for r in records]
    body = "\n".join(lines) + "\n"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    target_dir = (settings.data_dir / "uploads").resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    dest = target_dir / f"records-{digest}.jsonl"
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".upload-", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(tmp, dest)
    return dest


def _results(
    saved: list[Path], names: list[str], report: IngestReport, settings: Settings
) -> list[IngestResult]:
    """Per saved file: its articles and what happened to them."""
    from rag.index.snapshot import Index

    by_origin: dict[str, list[str]] = {}
    for article in Index(settings).snapshot().articles.values():
        by_origin.setdefault(article.origin, []).append(article.id)
    added, updated = set(report.added), set(report.updated)
    results = []
    for path, name in zip(saved, names, strict=True):
        origin = str(path.resolve())
        ids = sorted(by_origin.get(origin, []))
        reasons = [f.reason for f in report.failed if f.path in (origin, article_id_for_path(path))]
        status: Any
        if not ids:
            status, reason = "failed", "; ".join(reasons) or "no article could be read from it"
        else:
            status = (
                "added" if added & set(ids) else "updated" if updated & set(ids) else "unchanged"
            )
            reason = "; ".join(reasons)
        results.append(IngestResult(name=name, status=status, reason=reason, articles=ids))
    return results


def ingest_files(
    uploads: list[Upload],
    records: list[IngestRecord],
    settings: Settings,
    lock: threading.Lock,
) -> tuple[IngestResponse, bool]:
    """Save and index the uploads and records.

    Returns:
        The response, and whether anything was taken (an article added, updated or already
        there).
    """
    from rag.ingestion.pipeline import ingest

    saved, names, rejected = save_uploads(uploads, settings)
    if records:
        saved.append(save_records(records, settings))
        names.append(f"records ({len(records)})")
    results = [IngestResult(name=n, status="rejected", reason=r) for n, r in rejected]
    if not saved:
        return IngestResponse(files=results, summary="Nothing was added."), False
    with lock:
        report = ingest(saved, settings, prune=False)
    results = _results(saved, names, report, settings) + results
    taken = any(r.status in ("added", "updated", "unchanged") for r in results)
    return (
        IngestResponse(
            files=results,
            summary=report.summary(),
            articles_total=report.articles_total,
            chunks_total=report.chunks_total,
        ),
        taken,
    )
