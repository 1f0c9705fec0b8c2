"""Ingest throughput on realtimeqa-dev (818 articles) into a fresh data dir, vs raw encoding.

Measures, in one process: loading the embedder (excluded from the pipeline figures), the full
``rag.ingestion.ingest`` run (read + clean + split, embed, Chroma upsert, manifest commits, BM25
build), and the raw ``embedder.encode`` throughput on exactly the texts ingest embedded, both
as one call and in groups of the size ingest embeds at once
(``rag.ingestion.pipeline._EMBED_CHUNKS``). The
pipeline overhead is ``1 - pipeline chunks/s / raw chunks/s`` (target <= 10%), computed from
wall time and from process CPU time (the CPU figure is steadier on a shared machine).

Usage:
    python benchmarks/bench_ingest.py             # all 818 articles -> results/bench_ingest.json
    python benchmarks/bench_ingest.py --quick     # the first 100 articles
    python benchmarks/bench_ingest.py --backend torch   # any RAG_EMBEDDING_BACKEND value
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from _common import (
    REALTIMEQA,
    Timer,
    current_rss_mb,
    machine,
    machine_line,
    peak_rss_mb,
    save,
    table,
)

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="first 100 articles only")
    parser.add_argument("--articles", type=int, default=0, help="limit to the first N articles")
    parser.add_argument("--backend", default="auto", help="embedding_backend setting")
    parser.add_argument("--dtype", default="auto", help="embedding_dtype setting")
    args = parser.parse_args()
    limit = 100 if args.quick else args.articles
    info = machine()
    print(machine_line(info), flush=True)

    from rag.config import Settings
    from rag.index.schema import embedding_text
    from rag.ingestion.chunk import split_article
    from rag.ingestion.load import Article, iter_articles
    from rag.ingestion.pipeline import _EMBED_CHUNKS, ingest
    from rag.models.embedder import load_embedder

    corpus = REALTIMEQA / "corpus.jsonl"
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    source = corpus
    if limit:  # a subset file in the temp dir (never inside the project)
        source = tmp / "subset.jsonl"
        with open(corpus, encoding="utf-8") as src, open(source, "w", encoding="utf-8") as dst:
            dst.writelines(itertools.islice(src, limit))
    settings = Settings(
        data_dir=tmp / "data", embedding_backend=args.backend, embedding_dtype=args.dtype
    )

    rss_start = current_rss_mb()
    with Timer() as load:
        embedder = load_embedder(settings)
        embedder.encode(["warm-up sentence"])
    rss_model = current_rss_mb()
    print(
        f"embedder: {embedder.name} ({embedder.backend}/{embedder.dtype}), "
        f"loaded in {load.wall:.1f} s",
        flush=True,
    )

    # The texts ingest will embed, for the raw encode runs.
    texts = [
        embedding_text(a.title, c.text)
        for a in iter_articles([source], max_bytes=settings.max_file_bytes)
        if isinstance(a, Article)
        for c in split_article(
            a, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
        )
    ]

    with Timer() as pipe:
        report = ingest([source], settings, embedder=embedder)
    print(f"ingest: {report.summary()}", flush=True)

    with Timer() as raw_all:
        embedder.encode(texts)
    with Timer() as raw_groups:
        for start in range(0, len(texts), _EMBED_CHUNKS):
            embedder.encode(texts[start : start + _EMBED_CHUNKS])

    n = report.chunks_added
    articles = len(report.added) + len(report.updated)
    pipe_rate = n / report.write_seconds if report.write_seconds else 0.0
    raw_rate = len(texts) / raw_all.wall
    raw_group_rate = len(texts) / raw_groups.wall
    # CPU-time view: all of the pipeline's CPU vs the raw encode's CPU for the same texts.
    pipe_cpu_rate = n / pipe.cpu
    raw_cpu_rate = len(texts) / raw_all.cpu
    rows: list[dict[str, Any]] = [
        {
            "what": "ingest pipeline (embed+write+commit)",
            "chunks": n,
            "seconds": round(report.write_seconds, 1),
            "chunks_per_s": round(pipe_rate, 1),
            "chunks_per_cpu_s": None,
        },
        {
            "what": "ingest total (incl. read/split/BM25)",
            "chunks": n,
            "seconds": round(pipe.wall, 1),
            "chunks_per_s": round(n / pipe.wall, 1),
            "chunks_per_cpu_s": round(pipe_cpu_rate, 1),
        },
        {
            "what": "  of which embedding (inside ingest)",
            "chunks": n,
            "seconds": round(report.embed_seconds, 1),
            "chunks_per_s": round(n / report.embed_seconds, 1) if report.embed_seconds else None,
            "chunks_per_cpu_s": None,
        },
        {
            "what": "raw embedder.encode, one call",
            "chunks": len(texts),
            "seconds": round(raw_all.wall, 1),
            "chunks_per_s": round(raw_rate, 1),
            "chunks_per_cpu_s": round(raw_cpu_rate, 1),
        },
        {
            "what": f"raw embedder.encode, groups of {_EMBED_CHUNKS}",
            "chunks": len(texts),
            "seconds": round(raw_groups.wall, 1),
            "chunks_per_s": round(raw_group_rate, 1),
            "chunks_per_cpu_s": round(len(texts) / raw_groups.cpu, 1),
        },
    ]
    overhead_wall = 1 - pipe_rate / raw_rate if raw_rate else None
    overhead_cpu = 1 - pipe_cpu_rate / raw_cpu_rate if raw_cpu_rate else None
    result = {
        "machine": info,
        "embedder": f"{embedder.name} ({embedder.backend}/{embedder.dtype})",
        "articles": articles,
        "chunks": n,
        "embedder_load_s": round(load.wall, 2),
        "ingest_total_s": round(pipe.wall, 2),
        "write_s": round(report.write_seconds, 2),
        "embed_s": round(report.embed_seconds, 2),
        "chunks_per_s": round(pipe_rate, 2),
        "articles_per_s": round(articles / pipe.wall, 2),
        "raw_encode_chunks_per_s": round(raw_rate, 2),
        "raw_encode_group_chunks_per_s": round(raw_group_rate, 2),
        "pipeline_overhead_pct_wall": round(100 * overhead_wall, 1)
        if overhead_wall is not None
        else None,
        "pipeline_overhead_pct_cpu": round(100 * overhead_cpu, 1)
        if overhead_cpu is not None
        else None,
        "rss_mb": {
            "start": round(rss_start),
            "after_model_load": round(rss_model),
            "peak": round(peak_rss_mb()),
        },
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "target": "pipeline overhead <= 10%",
    }
    print()
    print(table(rows, ["what", "chunks", "seconds", "chunks_per_s", "chunks_per_cpu_s"]))
    print(
        f"\narticles/s {result['articles_per_s']}, chunks/s {result['chunks_per_s']}; "
        f"pipeline overhead vs raw encode: {result['pipeline_overhead_pct_wall']}% (wall), "
        f"{result['pipeline_overhead_pct_cpu']}% (CPU); peak RSS {result['rss_mb']['peak']} MB"
    )
    path = save("bench_ingest", result, quick=bool(limit))
    print(f"saved {path}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
