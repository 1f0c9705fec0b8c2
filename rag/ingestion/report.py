"""What an ingest run reports: progress after each committed group, and the final report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag.ingestion.load import LoadFailure

__all__ = ["IngestProgress", "IngestReport"]


@dataclass
class IngestProgress:
    """Passed to the progress callback after each committed group."""

    files_done: int
    files_total: int
    chunks_done: int
    chunks_total: int
    seconds: float


@dataclass
class IngestReport:
    """What an ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    articles_total: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    @property
    def chunks_per_second(self) -> float:
        """Chunks embedded and written per second (model loading excluded)."""
        return self.chunks_added / self.write_seconds if self.write_seconds > 0 else 0.0

    def summary(self) -> str:
        head = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.failed)} failed; "
            f"{self.chunks_added} chunks written, {self.chunks_removed} removed "
            f"in {self.seconds:.1f}s"
        )
        if self.chunks_added and self.write_seconds:
            head += f" ({self.chunks_per_second:.1f} chunks/s)"
        tail = f"Index: {self.articles_total} articles, {self.chunks_total} chunks."
        if not self.changed and not self.failed:
            return f"Nothing changed: {len(self.unchanged)} articles already up to date. {tail}"
        return f"{head}. {tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "articles_total": self.articles_total,
            "chunks_total": self.chunks_total,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 2),
        }
