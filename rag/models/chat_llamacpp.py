"""A LangChain chat model over an in-process llama.cpp model, streaming token by token."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from rag.errors import ModelError
from rag.hardware import physical_cores
from rag.models.llamacpp import LoadedModel, load_llama, release_sampler

__all__ = ["LlamaCppChatModel"]

logger = logging.getLogger(__name__)


def _message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def _to_chat_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            role = "system"
        elif isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage):
            role = "assistant"
        elif isinstance(message, ToolMessage):
            role = "tool"
        elif isinstance(message, ChatMessage):
            role = message.role
        else:
            role = "user"
        out.append({"role": role, "content": _message_text(message)})
    return out


class LlamaCppChatModel(BaseChatModel):
    """A LangChain chat model running a GGUF file in-process with llama.cpp.

    The model is loaded once per process (cached by path and load settings) and kept warm; a
    lock serialises calls because ``llama_cpp.Llama`` is not thread-safe. llama.cpp keeps the
    previous prompt's KV cache and re-evaluates only what differs, so a fixed system prompt
    is computed once. The GGUF's own chat template formats the messages.
    """

    model_path: str
    label: str = ""
    n_ctx: int = 4096
    n_threads: int | None = None
    n_batch: int = 512
    flash_attn: bool = True  # ~15% faster prompt processing on CPU (benchmarks/llm_speed.py)
    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float = 0.95
    repeat_penalty: float = 1.0
    seed: int = 0
    timeout: float = Field(120.0, description="Seconds to wait for the model lock and to generate.")

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "n_ctx": self.n_ctx,
            "n_threads": self.threads,
            "n_batch": self.n_batch,
            "flash_attn": self.flash_attn,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    @property
    def threads(self) -> int:
        """Threads used for prompt processing and generation."""
        return self.n_threads or physical_cores()

    def _load_key(self) -> tuple[Any, ...]:
        return (
            str(Path(self.model_path).resolve()),
            self.n_ctx,
            self.threads,
            self.n_batch,
            self.flash_attn,
            self.seed,
        )

    def _loaded(self) -> LoadedModel:
        params: dict[str, Any] = {
            "model_path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "n_threads": self.threads,
            "n_threads_batch": self.threads,
            "n_batch": self.n_batch,
            "n_ubatch": self.n_batch,
            "n_gpu_layers": 0,
            "seed": self.seed,
            "flash_attn": self.flash_attn,
            "verbose": False,
        }
        return load_llama(self._load_key(), params)

    @property
    def load_seconds(self) -> float:
        """Seconds the (cached) model took to load."""
        return self._loaded().load_seconds

    def warm_up(self, system_prompt: str | None = None) -> None:
        """Load the model now; given a system prompt, also compute its KV cache ahead of use."""
        loaded = self._loaded()
        if system_prompt is None:
            return
        with self._locked(loaded):
            loaded.llama.create_chat_completion(
                messages=[
                    {"role": "system", "content": system_prompt},
                    {"role": "user", "content": "Hi"},
                ],
                max_tokens=1,
                temperature=0.0,
            )
            release_sampler(loaded.llama)

    @contextlib.contextmanager
    def _locked(self, loaded: LoadedModel) -> Iterator[None]:
        if not loaded.lock.acquire(timeout=self.timeout):
            msg = f"The local model stayed busy for {self.timeout:.0f} s."
            raise ModelError(
                msg, hint="Try again, or raise RAG_LLM_TIMEOUT / lower RAG_CONCURRENCY."
            )
        try:
            yield
        finally:
            loaded.lock.release()

    def _completion_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "top_p": kwargs.get("top_p", self.top_p),
            "repeat_penalty": kwargs.get("repeat_penalty", self.repeat_penalty),
            "stop": list(stop) if stop else None,
        }

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        loaded = self._loaded()
        options = self._completion_kwargs(stop, kwargs)
        chat = _to_chat_messages(messages)
        with self._locked(loaded):
            started = time.perf_counter()
            finish_reason: str | None = None
            stream = loaded.llama.create_chat_completion(messages=chat, stream=True, **options)
            try:
                while True:
                    try:
                        part = next(stream)
                    except StopIteration:
                        break
                    except ValueError as exc:  # e.g. "Requested tokens exceed context window"
                        msg = f"The local model could not answer: {exc}"
                        raise ModelError(
                            msg,
                            hint="Shorten the question or the passages (RAG_K), "
                            "or raise RAG_LLM_CONTEXT.",
                        ) from exc
                    choice = part["choices"][0]
                    text = choice.get("delta", {}).get("content") or ""
                    finish_reason = choice.get("finish_reason") or finish_reason
                    if text:
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                        if run_manager:
                            run_manager.on_llm_new_token(text, chunk=chunk)
                        yield chunk
                    if time.perf_counter() - started > self.timeout:
                        logger.warning(
                            "Local model stopped after %.0f s (RAG_LLM_TIMEOUT).", self.timeout
                        )
                        finish_reason = "timeout"
                        break
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
                release_sampler(loaded.llama)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    response_metadata={
                        "finish_reason": finish_reason or "stop",
                        "model_name": self.label or Path(self.model_path).name,
                    },
                    chunk_position="last",
                ),
                generation_info={"finish_reason": finish_reason or "stop"},
            )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text_parts: list[str] = []
        finish_reason = "stop"
        for chunk in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            text_parts.append(chunk.text)
            if chunk.generation_info and chunk.generation_info.get("finish_reason"):
                finish_reason = chunk.generation_info["finish_reason"]
        message = AIMessage(
            content="".join(text_parts),
            response_metadata={
                "finish_reason": finish_reason,
                "model_name": self.label or Path(self.model_path).name,
            },
        )
        return ChatResult(
            generations=[
                ChatGeneration(message=message, generation_info={"finish_reason": finish_reason})
            ]
        )
