"""Speed of the bundled local LLM on RAG-style prompts.

Runs each configuration (threads x n_batch x flash-attention) in a fresh process and measures
load time, time to first token (cold: empty KV cache; warm: same system prompt as the previous
question, different passages and question), prompt and decode tokens/s and peak RSS, for a
~800-token and a ~300-token prompt built from corpus/nato-kosovo-kfor.txt.

Usage:
    python benchmarks/llm_speed.py                 # full matrix, table + results/llm_speed.json
    python benchmarks/llm_speed.py --quick         # only the default configuration

Other processes on the machine distort every number; to measure as on an idle machine while
other jobs run, give it the CPU: ``chrt -f 10 python benchmarks/llm_speed.py`` (as root).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARTICLE = ROOT / "corpus" / "nato-kosovo-kfor.txt"
RESULTS = ROOT / "benchmarks" / "results" / "llm_speed.json"

SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered passages given with the "
    "question. Cite the passages you use like [1] or [2]. If the passages do not contain the "
    "answer, say that the articles do not say. Be brief: one to three sentences. Do not invent "
    "facts, names, dates or numbers that are not in the passages."
)

QUESTIONS = [
    "How many KFOR troops are there?",
    "What did Stoltenberg say KFOR is ready to do?",
    "Which documents did Kosovo plan to ban?",
    "Who did Stoltenberg meet in Brussels?",
]

DECODE_TOKENS = 128


def _paragraphs() -> list[str]:
    text = ARTICLE.read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n") if len(p.strip()) > 80]


def _user_message(question: str, passages: list[str]) -> str:
    numbered = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    return f"Passages:\n\n{numbered}\n\nQuestion: {question}"


def build_prompts(llama: Any, target_tokens: int, count: int) -> list[list[dict[str, str]]]:
    """``count`` chat prompts of about ``target_tokens`` tokens.

    Each has other passages and another question.
    """
    paragraphs = _paragraphs()
    prompts: list[list[dict[str, str]]] = []
    for n in range(count):
        # rotate the article so each prompt has different passages (only the system prompt is
        # shared)
        start = (n * 3) % len(paragraphs)
        rotated = paragraphs[start:] + paragraphs[:start]
        chosen: list[str] = []
        for para in rotated:
            trial = [*chosen, para]
            messages = _messages(QUESTIONS[n % len(QUESTIONS)], trial)
            if chosen and _count(llama, messages) > target_tokens:
                break
            chosen = trial
        prompts.append(_messages(QUESTIONS[n % len(QUESTIONS)], chosen))
    return prompts


def _messages(question: str, passages: list[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _user_message(question, passages)},
    ]


def _count(llama: Any, messages: list[dict[str, str]]) -> int:
    text = "".join(m["content"] for m in messages)
    return len(llama.tokenize(text.encode(), add_bos=False)) + 20  # + chat template tokens


# --------------------------------------------------------------------------------------------
# Worker: one configuration, in its own process
# --------------------------------------------------------------------------------------------


def _perf(llama: Any) -> dict[str, float]:
    import llama_cpp

    data = llama_cpp.llama_perf_context(llama._ctx.ctx)
    return {
        "t_p_eval_ms": data.t_p_eval_ms,
        "n_p_eval": data.n_p_eval,
        "t_eval_ms": data.t_eval_ms,
        "n_eval": data.n_eval,
    }


def _perf_reset(llama: Any) -> None:
    import llama_cpp

    llama_cpp.llama_perf_context_reset(llama._ctx.ctx)


def _run_one(
    model: Any, llama: Any, messages: list[dict[str, str]], max_tokens: int
) -> dict[str, Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    lc_messages = [SystemMessage(messages[0]["content"]), HumanMessage(messages[1]["content"])]
    prompt_tokens = len(
        llama.tokenize(_formatted(llama, messages).encode(), add_bos=False, special=True)
    )
    _perf_reset(llama)
    started = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    for chunk in model.stream(lc_messages, max_tokens=max_tokens):
        if chunk.content and first is None:
            first = time.perf_counter() - started
        pieces.append(str(chunk.content))
    total = time.perf_counter() - started
    perf = _perf(llama)
    return {
        "prompt_tokens": prompt_tokens,
        "evaluated_prompt_tokens": perf["n_p_eval"],
        "ttft_s": round(first if first is not None else total, 3),
        "total_s": round(total, 3),
        "prompt_tok_s": round(perf["n_p_eval"] / (perf["t_p_eval_ms"] / 1000), 1)
        if perf["t_p_eval_ms"]
        else None,
        "decode_tokens": perf["n_eval"],
        "decode_tok_s": round(perf["n_eval"] / (perf["t_eval_ms"] / 1000), 2)
        if perf["t_eval_ms"]
        else None,
        "answer": "".join(pieces)[:300],
    }


def _formatted(llama: Any, messages: list[dict[str, str]]) -> str:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template", "")
    eos = llama._model.token_get_text(llama.token_eos())
    bos = llama._model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(
        messages=messages
    ).prompt


def worker(threads: int, n_batch: int, flash_attn: bool, warm_runs: int) -> dict[str, Any]:
    """Measure one configuration in this process."""
    from rag.config import Settings
    from rag.models.bundled import bundled_model_path
    from rag.models.chat_llamacpp import LlamaCppChatModel
    from rag.models.llamacpp import loaded_cpu_variant

    path = bundled_model_path(Settings())
    model = LlamaCppChatModel(
        model_path=str(path),
        n_ctx=4096,
        n_threads=threads,
        n_batch=n_batch,
        flash_attn=flash_attn,
        temperature=0.0,
        max_tokens=64,
    )
    started = time.perf_counter()
    loaded = model._loaded()
    load_s = time.perf_counter() - started
    llama = loaded.llama

    result: dict[str, Any] = {
        "threads": threads,
        "n_batch": n_batch,
        "flash_attn": flash_attn,
        "load_s": round(load_s, 3),
        "cpu_variant": loaded_cpu_variant() or "built-in",
        "sizes": {},
    }
    for target in (800, 300):
        prompts = build_prompts(llama, target, warm_runs + 1)
        llama.reset()  # empty KV cache: cold
        cold = _run_one(model, llama, prompts[0], 64)
        warm = [_run_one(model, llama, p, 64) for p in prompts[1:]]
        result["sizes"][str(target)] = {
            "cold": cold,
            "warm": warm,
            "ttft_warm_p50_s": round(statistics.median(w["ttft_s"] for w in warm), 3),
            "prompt_tok_s": cold["prompt_tok_s"],
        }
    # decode speed on a longer generation
    llama.reset()
    long_prompt = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": "Write a detailed, multi-paragraph explanation of what NATO's KFOR mission "
            "is, its history since 1999 and why tensions between Serbia and Kosovo matter.",
        },
    ]
    decode = _run_one(model, llama, long_prompt, DECODE_TOKENS)
    result["decode_tok_s"] = decode["decode_tok_s"]
    result["decode_tokens"] = decode["decode_tokens"]
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _scheduler() -> str:
    policy = os.sched_getscheduler(0)
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        return "real-time (chrt): other processes mostly held off, as on an idle machine"
    return "normal: shares the CPU with whatever else runs"


def machine_info() -> dict[str, Any]:
    """CPU model, cores and the SIMD flags llama.cpp cares about."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags_line = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    wanted = [
        "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512vbmi",
        "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
    ]  # fmt: skip
    from rag.hardware import physical_cores

    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "cpu_flags": {f: f in flags for f in wanted},
        "python": platform.python_version(),
        "scheduler": _scheduler(),
        "loadavg_1_5_15min_at_start": [round(x, 2) for x in os.getloadavg()],
        "llama_cpp_python": llama_version,
    }


def _run_worker(
    threads: int, n_batch: int, flash_attn: bool, warm_runs: int, omp_wait: str | None
) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--worker", "--threads", str(threads), "--n-batch", str(n_batch),
        "--warm-runs", str(warm_runs),
    ]  # fmt: skip
    if flash_attn:
        cmd.append("--flash-attn")
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if omp_wait:
        env["OMP_WAIT_POLICY"] = omp_wait
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    load_after = os.getloadavg()[0]
    if proc.returncode != 0:
        return {
            "threads": threads,
            "n_batch": n_batch,
            "flash_attn": flash_attn,
            "omp_wait_policy": omp_wait,
            "error": proc.stderr[-2000:],
        }
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # other processes on the machine slow every number down: record how busy it was
    result["loadavg_1min_before_after"] = [round(load_before, 2), round(load_after, 2)]
    result["omp_wait_policy"] = omp_wait or "PASSIVE"  # rag.llms default
    return result


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'thr':>3} {'batch':>5} {'fa':>3} {'omp':>7} {'load s':>6} | "
        f"{'800: tok':>8} {'cold s':>6} {'warm s':>6} {'pp t/s':>6} | "
        f"{'300: tok':>8} {'cold s':>6} {'warm s':>6} {'pp t/s':>6} | "
        f"{'decode t/s':>10} {'RSS MB':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(
                f"{r['threads']:>3} {r['n_batch']:>5} {int(r['flash_attn']):>3} "
                f"ERROR {r['error'][-200:]!r}"
            )
            continue
        s8, s3 = r["sizes"]["800"], r["sizes"]["300"]
        lines.append(
            f"{r['threads']:>3} {r['n_batch']:>5} {int(r['flash_attn']):>3} "
            f"{(r.get('omp_wait_policy') or 'PASSIVE')[:7]:>7} {r['load_s']:>6.2f} | "
            f"{s8['cold']['prompt_tokens']:>8} {s8['cold']['ttft_s']:>6.2f} "
            f"{s8['ttft_warm_p50_s']:>6.2f} "
            f"{s8['prompt_tok_s']:>6.0f} | "
            f"{s3['cold']['prompt_tokens']:>8} {s3['cold']['ttft_s']:>6.2f} "
            f"{s3['ttft_warm_p50_s']:>6.2f} "
            f"{s3['prompt_tok_s']:>6.0f} | {r['decode_tok_s']:>10.2f} {r['peak_rss_mb']:>7.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the matrix, print the table and save the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-batch", type=int, default=512)
    parser.add_argument("--flash-attn", action="store_true")
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="only threads=physical cores, n_batch=512"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--omp-wait", choices=["PASSIVE", "ACTIVE"], help="with --quick: OpenMP wait policy"
    )
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.threads, args.n_batch, args.flash_attn, args.warm_runs)))
        return

    from rag.hardware import physical_cores

    cores = physical_cores()
    configs: list[tuple[int, int, bool, str | None]]
    if args.quick:
        configs = [(cores, 512, True, args.omp_wait)]
    else:
        configs = [(1, 512, False, None)] if cores > 1 else []
        configs += [(cores, b, fa, None) for b in (128, 512) for fa in (False, True)]
        configs.append((cores, 512, True, "ACTIVE"))  # OpenMP's own default: spinning threads
    info = machine_info()
    rows = []
    for threads, n_batch, fa, omp in configs:
        print(
            f"running threads={threads} n_batch={n_batch} flash_attn={fa} omp={omp or 'default'}",
            file=sys.stderr,
            flush=True,
        )
        rows.append(_run_worker(threads, n_batch, fa, args.warm_runs, omp))
    ok = [r for r in rows if "error" not in r]
    best = (
        min(ok, key=lambda r: (r["sizes"]["800"]["ttft_warm_p50_s"], -r["decode_tok_s"]))
        if ok
        else None
    )
    if ok:
        info["cpu_variant"] = ok[0]["cpu_variant"]
    print(
        f"CPU: {info['cpu']}, {info['physical_cores']} cores; "
        f"flags: {', '.join(k for k, v in info['cpu_flags'].items() if v)}; "
        f"llama.cpp CPU variant: {info.get('cpu_variant', '?')}; "
        f"llama-cpp-python {info['llama_cpp_python']}"
    )
    print("TTFT cold = empty KV cache; warm = p50 over questions sharing only the system prompt.")
    print(_table(rows))
    if best:
        print(
            f"fastest (warm TTFT, 800 tokens): threads={best['threads']} n_batch={best['n_batch']} "
            f"flash_attn={best['flash_attn']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": info,
        "runs": rows,
        "fastest": best and {k: best[k] for k in ("threads", "n_batch", "flash_attn")},
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"saved {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
