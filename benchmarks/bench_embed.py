"""Embedding options for all-MiniLM-L6-v2 on ~1000-character news chunks: speed vs fidelity.

Every option encodes the same chunks of realtimeqa-dev (every 5th chunk, as ingest would embed
them: title + chunk, chunk_size 1000 / overlap 150) and is compared with torch fp32
sentence-transformers: min and mean cosine per chunk (the bar is min >= 0.999). Throughput is
reported as wall chunks/s and as chunks per CPU-second (steadier on a shared machine: on an
idle machine wall chunks/s ~ cores x chunks/CPU-s for options that keep all cores busy).

The "levers" (sorting, batch size, threads, max_seq_length, torch.compile) run on a smaller
subset (--lever-n) to keep the run under ~30 minutes on 2 busy cores.

Usage:
    python benchmarks/bench_embed.py            # full table -> benchmarks/results/bench_embed.json
    python benchmarks/bench_embed.py --quick    # 300 chunks, main options only
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import Timer, machine, machine_line, realtimeqa_chunks, save, table

warnings.filterwarnings("ignore")

Encode = Callable[[list[str]], np.ndarray]


def _st(**kwargs: Any) -> Any:
    from rag.models.embedder import bundled_embedding_path
    from rag.models.runners import load_sentence_transformer

    return load_sentence_transformer(str(bundled_embedding_path()), **kwargs)


def _torch_encode(
    model: Any, batch_size: int = 32, *, autocast: bool = False, sort: bool = True
) -> Encode:
    import torch

    def run(texts: list[str]) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if sort:
                out = model.encode(
                    texts, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True
                )
                return out.float().numpy()
            parts = []
            for i in range(
                0, len(texts), batch_size
            ):  # corpus order: batches padded to their longest
                feats = model.tokenize(texts[i : i + batch_size])
                parts.append(model(feats)["sentence_embedding"].float())
            vecs = torch.cat(parts)
            return torch.nn.functional.normalize(vecs, dim=1).numpy()

    return run


def _embedder_encode(**settings: Any) -> tuple[Encode, str]:
    from rag.config import Settings
    from rag.models.embedder import load_embedder

    emb = load_embedder(Settings(**settings))
    return emb.encode, f"{emb.backend}/{emb.dtype}"


def _onnx_file() -> tuple[Path, dict[str, Any]]:
    from rag.config import Settings
    from rag.models.embedder import bundled_embedding_path
    from rag.models.export import exported_model

    folder, meta = exported_model(str(bundled_embedding_path()), Settings())
    return folder / "model.onnx", meta


def _feeds(
    texts: list[str], tokenizer: Any, batch_size: int
) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    order = np.argsort([-len(x) for x in ids], kind="stable")
    out = []
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        width = max(len(ids[r]) for r in rows)
        a = np.zeros((len(rows), width), np.int64)
        m = np.zeros_like(a)
        for i, r in enumerate(rows):
            a[i, : len(ids[r])] = ids[r]
            m[i, : len(ids[r])] = 1
        out.append((rows, {"input_ids": a, "attention_mask": m}))
    return out


def _ort_encode(onnx_path: Path, tokenizer: Any, threads: int, batch_size: int = 32) -> Encode:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    def run(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), np.float32)
        for rows, feed in _feeds(texts, tokenizer, batch_size):
            out[rows] = sess.run(None, feed)[0]
        return out

    return run


def _ov_encode(
    onnx_path: Path, tokenizer: Any, threads: int, precision: str, batch_size: int = 32
) -> Encode:
    import openvino as ov

    core = ov.Core()
    cm = core.compile_model(
        core.read_model(str(onnx_path)),
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
        },
    )
    req = cm.create_infer_request()

    def run(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), np.float32)
        for rows, feed in _feeds(texts, tokenizer, batch_size):
            out[rows] = req.infer(feed)[0]
        return out

    return run


def _ov_int8_static(onnx_path: Path, calibration: list[str]) -> Encode:
    """Full int8 (weights and activations) by NNCF post-training quantisation, calibrated on other
    chunks, run by the project's OpenVINO runner (2 streams, bf16 for what stays float)."""
    import nncf  # optional: pip install nncf
    import openvino as ov

    from rag.config import Settings
    from rag.models.embedder import load_embedder

    # A copy: load_embedder caches its runner, which the later "rag.models embedder" rows reuse.
    runner = copy.copy(load_embedder(Settings(embedding_backend="openvino")).runner)
    runner._lock = threading.Lock()
    feeds = [feed for _, feed in runner._batches(calibration, 8)]
    model = nncf.quantize(
        ov.Core().read_model(str(onnx_path)),
        nncf.Dataset(feeds),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(feeds),
    )
    threads = runner._compiled.get_property("INFERENCE_NUM_THREADS")
    compiled = ov.Core().compile_model(
        model,
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": "bf16",
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": threads,
        },
    )
    runner._compiled, runner._queue = compiled, ov.AsyncInferQueue(compiled)
    runner._single = compiled.create_infer_request()
    return lambda texts: runner.encode(texts, 16)


def _int8_dynamic(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)
    return dst


def _matmul_nbits(src: Path, dst: Path, block: int = 32, accuracy_level: int = 4) -> Path:
    """Weights int8 in blocks of 32 along K, activations quantised per block (accuracy_level 4)."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    inits = {i.name: i for i in m.graph.initializer}
    nodes, drop = [], set()
    for k, n in enumerate(m.graph.node):
        if n.op_type != "MatMul" or n.input[1] not in inits:
            nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        kk, nn = w.shape
        nb = -(-kk // block)
        padded = np.zeros((nb * block, nn), np.float32)
        padded[:kk] = w
        blocks = padded.T.reshape(nn, nb, block)
        scale = np.abs(blocks).max(-1) / 127.0
        scale[scale == 0] = 1.0
        q = (np.clip(np.round(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        bq, bs = f"{n.input[1]}_q{k}", f"{n.input[1]}_s{k}"
        m.graph.initializer.extend(
            [numpy_helper.from_array(q, bq), numpy_helper.from_array(scale.reshape(-1), bs)]
        )
        drop.add(n.input[1])
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [n.input[0], bq, bs],
                list(n.output),
                name=f"{n.name}_nbits",
                domain="com.microsoft",
                K=kk,
                N=nn,
                bits=8,
                block_size=block,
                accuracy_level=accuracy_level,
            )
        )
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    keep = [i for i in m.graph.initializer if i.name not in drop]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, str(dst))
    return dst


def _measure(
    name: str,
    make: Callable[[], Encode],
    texts: list[str],
    ref: np.ndarray | None,
    note: str = "",
    keep: list[Any] | None = None,
) -> dict[str, Any]:
    """Time one option on ``texts`` and compare it with ``ref`` (None: it *is* the reference)."""
    row: dict[str, Any] = {"option": name, "chunks": len(texts), "note": note}
    try:
        with Timer() as setup:
            encode = make()
            encode(texts[:32])  # warm-up (also triggers lazy compilation)
        with Timer() as t:
            vecs = np.asarray(encode(texts), dtype=np.float32)
    except Exception as exc:  # an option that cannot run here is reported, not fatal
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        print(f"  {name}: unavailable ({row['error']})", flush=True)
        return row
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    if keep is not None:
        keep.append(vecs)
    cos = np.sum(vecs * (vecs if ref is None else ref[: len(texts)]), axis=1)
    row.update(
        chunks_per_s=round(len(texts) / t.wall, 2),
        chunks_per_cpu_s=round(len(texts) / max(t.cpu, 1e-9), 2),
        min_cosine=round(float(cos.min()), 6),
        mean_cosine=round(float(cos.mean()), 6),
        passes=bool(cos.min() >= 0.999),
        setup_s=round(setup.wall, 1),
    )
    print(
        f"  {name:44s} {row['chunks_per_s']:7.1f}/s  {row['chunks_per_cpu_s']:6.1f}/cpu-s  "
        f"min cos {row['min_cosine']:.5f}  mean {row['mean_cosine']:.6f}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="chunks for the main options")
    parser.add_argument("--lever-n", type=int, default=500, help="chunks for the secondary levers")
    parser.add_argument("--quick", action="store_true", help="300 chunks, main options only")
    parser.add_argument(
        "--no-levers", action="store_true", help="main options only (all --n chunks)"
    )
    args = parser.parse_args()
    n = 300 if args.quick else args.n
    info = machine()
    print(machine_line(info), flush=True)
    from rag.hardware import physical_cores

    threads = physical_cores()
    texts = realtimeqa_chunks(limit=n, stride=5)
    calibration = realtimeqa_chunks(limit=n + 300, stride=5)[n:]  # int8 calibration: other chunks
    lever_texts = texts[: min(args.lever_n, n)]
    tokens = None

    import torch

    torch.set_num_threads(threads)
    st = _st()
    tokens = [len(x) for x in st.tokenizer(texts, truncation=False)["input_ids"]]
    print(
        f"{len(texts)} chunks, mean {np.mean([len(t) for t in texts]):.0f} chars, "
        f"mean {np.mean(tokens):.0f} word pieces, {sum(x > 256 for x in tokens)} over 256",
        flush=True,
    )
    print("reference: torch fp32 (sentence-transformers, length-sorted batches of 32)", flush=True)
    kept: list[Any] = []
    ref_row = _measure("torch fp32 (reference)", lambda: _torch_encode(st), texts, None, keep=kept)
    ref = kept[0]
    rows = [ref_row]
    onnx_path, _ = _onnx_file()
    tok = st.tokenizer
    tmp = Path(tempfile.mkdtemp(prefix="bench-embed-"))

    main_options: list[tuple[str, Callable[[], Encode], str]] = [
        (
            "torch bf16 (whole model .to(bfloat16))",
            lambda: _torch_encode(copy.deepcopy(st).to(torch.bfloat16)),
            "",
        ),
        ("torch autocast bf16 (bf16 matmuls)", lambda: _torch_encode(st, autocast=True), ""),
        ("onnxruntime fp32", lambda: _ort_encode(onnx_path, tok, threads), "ORT_ENABLE_ALL"),
        (
            "onnxruntime int8 dynamic (per-channel)",
            lambda: _ort_encode(_int8_dynamic(onnx_path, tmp / "q8.onnx"), tok, threads),
            "",
        ),
        (
            "onnxruntime MatMulNBits int8 blk32 acc4",
            lambda: _ort_encode(_matmul_nbits(onnx_path, tmp / "nb.onnx"), tok, threads),
            "",
        ),
        ("openvino fp32 (1 request)", lambda: _ov_encode(onnx_path, tok, threads, "f32"), ""),
        ("openvino bf16 (1 request)", lambda: _ov_encode(onnx_path, tok, threads, "bf16"), ""),
        (
            "openvino int8 static (NNCF, calibrated)",
            lambda: _ov_int8_static(onnx_path, calibration),
            "needs `pip install nncf`; 2 streams like the embedder",
        ),
    ]
    for name, make, note in main_options:
        rows.append(_measure(name, make, texts, ref, note))
    for backend in ("openvino", "onnxruntime"):
        holder: dict[str, str] = {}

        def make(backend: str = backend, holder: dict[str, str] = holder) -> Encode:
            enc, label = _embedder_encode(embedding_backend=backend)
            holder["label"] = label
            return enc

        row = _measure(f"rag.models embedder, backend={backend}", make, texts, ref)
        row["note"] = holder.get("label", "") + (
            " (DEFAULT: auto)" if backend == "openvino" else ""
        )
        rows.append(row)

    try:
        from sentence_transformers import SentenceTransformer  # noqa: F401

        _st(backend="onnx")
        st_onnx = "loaded"
    except Exception as exc:
        st_onnx = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    rows.append(
        {
            "option": "sentence-transformers backend='onnx'",
            "error": st_onnx,
            "note": "needs optimum[onnxruntime]; "
            "would run the same ORT graph as 'onnxruntime fp32'",
        }
    )

    if not args.quick and not args.no_levers:
        print(f"levers on {len(lever_texts)} chunks:", flush=True)
        lever_ref = ref[: len(lever_texts)]
        levers: list[tuple[str, Callable[[], Encode]]] = [
            ("lever: torch fp32 sorted bs32", lambda: _torch_encode(st)),
            ("lever: torch fp32 unsorted bs32", lambda: _torch_encode(st, sort=False)),
            ("lever: torch fp32 sorted bs8", lambda: _torch_encode(st, 8)),
            ("lever: torch fp32 sorted bs128", lambda: _torch_encode(st, 128)),
            ("lever: torch fp32 max_seq_length 128", lambda: _torch_encode(_short(st))),
            ("lever: openvino bf16 bs8", lambda: _ov_encode(onnx_path, tok, threads, "bf16", 8)),
            (
                "lever: openvino bf16 bs128",
                lambda: _ov_encode(onnx_path, tok, threads, "bf16", 128),
            ),
            ("lever: onnxruntime fp32 1 thread", lambda: _ort_encode(onnx_path, tok, 1)),
            ("lever: torch.compile + autocast bf16", lambda: _compiled(st)),
        ]
        for name, make in levers:
            rows.append(_measure(name, make, lever_texts, lever_ref))
        torch.set_num_threads(threads)

    cols = [
        "option",
        "chunks",
        "chunks_per_s",
        "chunks_per_cpu_s",
        "min_cosine",
        "mean_cosine",
        "passes",
        "note",
        "error",
    ]
    print()
    print(table(rows, cols))
    path = save(
        "bench_embed",
        {
            "machine": info,
            "chunks": len(texts),
            "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
            "mean_word_pieces": round(float(np.mean(tokens)), 1),
            "over_256_word_pieces": int(sum(x > 256 for x in tokens)),
            "threads": threads,
            "bar": "min cosine vs torch fp32 >= 0.999",
            "rows": rows,
        },
        quick=args.quick,
    )
    print(f"\nsaved {path}")


def _short(st: Any) -> Any:
    short = copy.deepcopy(st)
    short.max_seq_length = 128
    return short


def _compiled(st: Any) -> Encode:
    import torch

    model = copy.deepcopy(st)
    model[0].auto_model = torch.compile(model[0].auto_model, dynamic=True)
    return _torch_encode(model, autocast=True)


if __name__ == "__main__":
    main()
