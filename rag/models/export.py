"""Export a sentence-transformers model to ONNX once and cache it.

The exported graph is checked to agree with torch fp32 before it is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ModelError
from rag.models.runners import (
    ExportedRunner,
    TorchRunner,
    embedding_dimension,
    load_sentence_transformer,
)

if TYPE_CHECKING:
    from rag.config import Settings

__all__ = ["MIN_COSINE", "embedding_cache_dir"]

logger = logging.getLogger(__name__)

MIN_COSINE = 0.999  # an accelerated backend must match torch fp32 this closely on the probes
_EXPORT_VERSION = 1  # bump when the exported graph changes

# Probe sentences for the one-off agreement check: short, long (truncated at max_seq_length),
# and mixed lengths so padding is exercised.
_PROBES = [
    "How many KFOR troops are there?",
    "NATO",
    "Storm battered California could get more rain as residents brace for flooding and mudslides.",
    " ".join(
        [
            "The NATO-led peacekeeping force in Kosovo said it was ready to intervene "
            "if stability was",
            "jeopardised, after weeks of tension over licence plates and identity documents "
            "issued by",
            "Belgrade, which Pristina planned to stop recognising at border crossings "
            "in the north.",
        ]
        * 6
    ),
    "Stoltenberg met the leaders of Serbia and Kosovo in Brussels on Wednesday.",
]


def embedding_cache_dir(settings: Settings) -> Path:
    """Where exported embedding models are cached (shared by every data dir of the user)."""
    configured = getattr(settings, "embedding_cache_dir", None)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "article-rag" / "embedders"


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


def _exportable(model: Any) -> bool:
    names = [type(m).__name__ for m in model]
    return (
        bool(names)
        and names[0] == "Transformer"
        and all(n in {"Transformer", "Pooling", "Normalize"} for n in names)
    )


def _export(path: str, target: Path) -> dict[str, Any]:
    """Export the sentence-transformers model at ``path`` to ``target/model.onnx`` (+ tokenizer)."""
    import warnings

    import torch

    model = load_sentence_transformer(path, model_kwargs={"attn_implementation": "eager"})
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

    sample = first.tokenizer(
        ["a short probe", "a slightly longer probe sentence"], padding=True, return_tensors="pt"
    )
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
        "dimension": embedding_dimension(model),
        "max_seq_length": int(model.max_seq_length),
        "do_lower_case": bool(getattr(first, "do_lower_case", False)),
        "torch": torch.__version__,
        "checks": {},
    }


_export_lock = threading.Lock()


def exported_model(path: str, settings: Settings) -> tuple[Path, dict[str, Any]]:
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


def _agreement(runner: ExportedRunner, path: str, folder: Path) -> float:
    """Min cosine between ``runner`` and torch fp32 on the probes (cached in meta.json)."""
    label = f"{runner.backend}/{runner.dtype}"
    meta_file = folder / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if label in meta.get("checks", {}):
        return float(meta["checks"][label])
    reference = TorchRunner(load_sentence_transformer(path), "float32", 0).encode(_PROBES, 2)
    got = runner.encode(_PROBES, 2)
    cosine = float(np.min(np.sum(reference * got, axis=1)))
    meta.setdefault("checks", {})[label] = round(cosine, 6)
    tmp = meta_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    tmp.replace(meta_file)
    return cosine


def load_exported(
    path: str, settings: Settings, backend: str, dtype: str, threads: int
) -> ExportedRunner:
    if backend == "openvino":
        import openvino  # noqa: F401  (fail fast before exporting)
    else:
        import onnxruntime  # noqa: F401
    folder, meta = exported_model(path, settings)
    runner = ExportedRunner(folder, meta, backend, dtype, threads)
    cosine = _agreement(runner, path, folder)
    if cosine < MIN_COSINE:
        msg = f"{backend}/{dtype} agrees with torch fp32 only to cosine {cosine:.5f} < {MIN_COSINE}"
        raise ModelError(msg)
    return runner
