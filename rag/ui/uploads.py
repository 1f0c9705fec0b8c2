"""Articles uploaded on the chat page.

Which files are taken, where they are saved, and indexing them with visible progress
(:func:`rag.ingestion.ingest`, one upload at a time).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import RagError
from rag.ui import render

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "MAX_FILES_PER_UPLOAD",
    "UPLOAD_SUFFIXES",
    "ingest_uploads",
    "safe_filename",
    "save_uploads",
]

logger = logging.getLogger(__name__)

# What the upload box takes (a subset of what rag.documents can read).
UPLOAD_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl")
MAX_FILES_PER_UPLOAD = 50


def safe_filename(name: str) -> str | None:
    """A plain file name for an upload (no directories, no odd characters), or ``None``.

    ``None`` when the suffix is not an allowed article type.
    """
    base = unicodedata.normalize("NFKC", str(name)).replace("\\", "/").split("/")[-1]
    base = re.sub(r"[^\w.\- ]+", "_", base, flags=re.UNICODE).strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        return None
    suffix = "." + suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return None
    stem = re.sub(r"\s+", " ", stem).strip(" .-_")[:100] or "upload"
    return f"{stem}{suffix}"


def _display_name(path: Any) -> str:
    orig = getattr(path, "orig_name", None) or getattr(path, "name", None) or str(path)
    return Path(str(orig)).name[:200]


def save_uploads(
    files: Sequence[Any], settings: Settings
) -> tuple[list[Path], list[str], list[tuple[str, str]]]:
    """Copy accepted uploads into ``<data_dir>/uploads/``.

    Returns (saved paths, their names, [(name, reason)] of refused files). Refuses files of
    other types, over ``settings.max_upload_mb``, or too many at once.
    """
    target_dir = (settings.data_dir / "uploads").resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    limit = int(settings.max_upload_mb * 1024 * 1024)
    saved: list[Path] = []
    names: list[str] = []
    rejected: list[tuple[str, str]] = []
    for position, item in enumerate(files or []):
        raw = getattr(item, "path", None) or getattr(item, "name", None) or item
        source = Path(str(raw))
        shown = _display_name(item)
        if position >= MAX_FILES_PER_UPLOAD:
            rejected.append(
                (
                    shown,
                    f"more than {MAX_FILES_PER_UPLOAD} files at once; upload the rest separately",
                )
            )
            continue
        name = safe_filename(shown)
        if name is None:
            allowed = ", ".join(s.lstrip(".") for s in UPLOAD_SUFFIXES)
            rejected.append((shown, f"not an article file type (allowed: {allowed})"))
            continue
        try:
            info = source.stat()
        except OSError:
            rejected.append((shown, "the upload could not be read"))
            continue
        if not source.is_file():
            rejected.append((shown, "not a regular file"))
            continue
        if info.st_size > limit:
            rejected.append(
                (
                    shown,
                    f"too large ({info.st_size / 1048576:.1f} MB; "
                    f"the limit is {settings.max_upload_mb:g} MB)",
                )
            )
            continue
        if info.st_size == 0:
            rejected.append((shown, "the file is empty"))
            continue
        dest = (target_dir / name).resolve()
        if dest.parent != target_dir:
            rejected.append((shown, "unsafe file name"))
            continue
        fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".upload-", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            rejected.append((shown, f"could not be saved: {exc.strerror or exc}"))
            continue
        saved.append(dest)
        names.append(name)
    return saved, names, rejected


def ingest_uploads(
    files: Sequence[Any],
    settings: Settings,
    lock: threading.Lock,
    corpus_html: Callable[[], str],
) -> Iterator[tuple[Any, ...]]:
    """Save ``files`` and index them while holding ``lock``; yields (status, corpus, file box).

    ``corpus_html`` redraws the corpus statistics once the index has changed.
    """
    import gradio as gr  # here, so the HTTP API can reuse save_uploads without Gradio

    saved, names, rejected = save_uploads(files, settings)
    if not saved:
        yield (
            render.render_upload_report([], rejected, summary="Nothing was added."),
            gr.skip(),
            None,
        )
        return
    running = "Indexing… (loading the embedding model)"
    yield render.render_upload_report(names, rejected, running=running), gr.skip(), gr.skip()
    updates: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        from rag.ingestion.pipeline import ingest

        try:
            with lock:
                outcome["report"] = ingest(saved, settings, prune=False, progress=updates.put)
        except RagError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:
            logger.exception("ingest of uploads failed")
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            updates.put(None)

    threading.Thread(target=work, name="rag-ui-ingest", daemon=True).start()
    while (item := updates.get()) is not None:
        line = (
            f"Indexing: {item.chunks_done}/{item.chunks_total} chunks, "
            f"{item.files_done}/{item.files_total} files"
        )
        bar = (
            f'<progress max="{max(int(item.chunks_total), 1)}" '
            f'value="{int(item.chunks_done)}"></progress>'
        )
        yield (
            render.render_upload_report(names, rejected, running=line) + bar,
            gr.skip(),
            gr.skip(),
        )
    if "error" in outcome:
        failed = [(n, outcome["error"]) for n in names]
        report_html = render.render_upload_report(
            [], rejected, failed=failed, summary="Indexing failed."
        )
        yield report_html, corpus_html(), None
        return
    report = outcome["report"]
    failed = [(Path(f.path).name, f.reason) for f in report.failed]
    summary = report.summary() + (" Ask about them now." if report.added or report.updated else "")
    yield (
        render.render_upload_report(names, rejected, summary=summary, failed=failed),
        corpus_html(),
        None,
    )
