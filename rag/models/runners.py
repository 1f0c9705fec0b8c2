"""Embedding runners: sentence-transformers on torch, and an exported ONNX graph.

The graph runs on OpenVINO or ONNX Runtime. Both take tokenised, length-sorted batches and
return normalised vectors.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = []


class TorchRunner:
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
        return embedding_dimension(self.model)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        # sentence-transformers already sorts by length before batching.
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.dtype == "bfloat16"),
        ):
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().cpu().numpy()


class ExportedRunner:
    """An exported (ONNX) sentence-transformers model on OpenVINO or ONNX Runtime."""

    def __init__(
        self, export: Path, meta: dict[str, Any], backend: str, dtype: str, threads: int
    ) -> None:
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
            self._session = ort.InferenceSession(
                str(onnx_file), options, providers=["CPUExecutionProvider"]
            )

    def _batches(
        self, texts: list[str], batch_size: int
    ) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
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


def load_sentence_transformer(path: str, **kwargs: Any) -> Any:
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    return SentenceTransformer(path, device="cpu", **kwargs)


def embedding_dimension(model: Any) -> int:
    getter = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return int(getter() or 0)
