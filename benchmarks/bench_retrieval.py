"""Latency of the hybrid retriever (dense Chroma + BM25 + fusion) at 1k, 10k and 100k chunks.

The corpus is synthetic but news-like: articles on ~40 topics from 12 sources over two years,
1-12 chunks each, ~700-character chunks of topic words, names, places and numbers. Embedding
100k chunks for real would take most of an hour on 2 cores, so chunk vectors are
random-but-structured instead (topic centroid + article offset + chunk noise, normalised,
384-d like MiniLM) and go straight into the real store through ``store.upsert_chunks`` +
``store.commit_articles``; the retriever then runs its real code path (Chroma HNSW query,
BM25 over the real chunk texts, fusion, time priors, one Chroma ``get``, dedup). Queries get
vectors the same way (near a chunk of the article they were written from), so the measured
latency excludes query embedding; the real embedder's ``embed_query`` latency is measured
separately and added for the headline "p50 incl. embedding" figure.

The same store grows 1k -> 10k -> 100k; at each size the BM25 index is rebuilt once (timed)
before the queries. A power law (t = a * n^b) and a line (t = a + b*n) are fitted to p50 and
projected to 1M chunks.

Usage:
    python benchmarks/bench_retrieval.py            # 1k, 10k, 100k -> results/bench_retrieval.json
    python benchmarks/bench_retrieval.py --quick    # 1k and 10k, fewer queries
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _common import current_rss_mb, machine, machine_line, peak_rss_mb, save, table

warnings.filterwarnings("ignore")

DIM = 384
TODAY = date(2025, 6, 30)
SOURCES = [
    f"{name}.example"
    for name in (
        "dailyherald",
        "globalwire",
        "metrotimes",
        "northpost",
        "capitalnews",
        "harbourgazette",
        "valleytribune",
        "eveningstar",
        "coastalreport",
        "citizenledger",
        "frontierjournal",
        "morningbulletin",
    )
]
TOPICS = {
    "kosovo": "kfor nato peacekeeping troops border serbia pristina belgrade tension "
    "licence plates",
    "storm": "storm rain flooding mudslides evacuation power outage meteorologists "
    "atmospheric river",
    "election": "election ballot candidate polls turnout campaign debate votes runoff parliament",
    "markets": "stocks shares index inflation interest rates central bank bond yields investors",
    "energy": "oil gas pipeline prices opec refinery supply output barrels electricity",
    "health": "hospital vaccine virus outbreak patients doctors cases ministry clinic",
    "space": "rocket launch satellite orbit astronauts mission lunar station telescope",
    "football": "match goal striker league cup coach season transfer stadium fans",
    "tennis": "tennis open final seed set tiebreak champion grand slam court",
    "wildfire": "wildfire blaze firefighters acres containment evacuation smoke drought",
    "earthquake": "earthquake magnitude tremor rescue rubble aftershock epicenter collapsed",
    "tech": "smartphone chip software startup artificial intelligence data privacy app",
    "courts": "court judge trial verdict appeal lawsuit prosecutors jury ruling",
    "climate": "climate emissions summit warming carbon targets renewable pledge",
    "trade": "tariffs exports imports trade deal negotiations customs duties",
    "transport": "airline flights airport strike rail train delays passengers",
    "housing": "housing rent mortgage prices construction homes buyers market",
    "education": "schools teachers students exams university tuition strike",
    "crime": "police arrest suspect investigation shooting charges robbery",
    "diplomacy": "ambassador talks summit foreign minister sanctions treaty envoy",
    "military": "army drills missile defence ministry troops exercise navy",
    "agriculture": "farmers harvest crops wheat drought prices fertilizer",
    "auto": "carmaker electric vehicles recall battery factory sales",
    "music": "album concert tour singer band festival charts",
    "film": "film box office director premiere festival actors studio",
    "science": "researchers study discovery species fossils journal experiment",
    "banking": "bank lenders deposits capital regulators merger profits",
    "labour": "workers union wages strike jobs unemployment employers",
    "migration": "migrants asylum border crossings boats refugees policy",
    "royals": "king queen palace coronation prince ceremony visit",
    "olympics": "olympics athletes medals games qualifying record sprint",
    "cyber": "hackers ransomware breach cyberattack systems outage security",
    "water": "drought reservoir water restrictions rainfall supply dam",
    "tourism": "tourists hotels bookings travel season visitors resorts",
    "retail": "retailers sales shoppers stores discounts online holiday",
    "shipping": "ships port containers freight canal cargo vessels",
    "pharma": "drug approval trial regulator pharmaceutical treatment doses",
    "mining": "mine copper lithium gold miners production exports",
    "telecom": "network mobile operators spectrum broadband outage 5g",
    "weather": "heatwave temperatures forecast warnings humidity records",
}
PLACES = [
    "Kosovo",
    "California",
    "Texas",
    "Brussels",
    "Nairobi",
    "Lagos",
    "Manila",
    "Lima",
    "Oslo",
    "Kyiv",
    "Seoul",
    "Quebec",
    "Sicily",
    "Bavaria",
    "Gujarat",
    "Queensland",
    "Patagonia",
    "Anatolia",
]
FIRST = [
    "Ana",
    "Jens",
    "Maria",
    "Omar",
    "Li",
    "Sofia",
    "Kwame",
    "Elena",
    "Raj",
    "Yuki",
    "Pedro",
    "Aisha",
]
LAST = [
    "Stoltenberg",
    "Okafor",
    "Novak",
    "Haddad",
    "Chen",
    "Rossi",
    "Mensah",
    "Ivanova",
    "Patel",
    "Sato",
]
QUESTION_FORMS = [
    "What happened with the {w1} {w2} in {place}?",
    "What did {person} say about the {w1}?",
    "How many {w1} were reported in {place}?",
    "Why is there {w1} {w2} news from {place}?",
    "Who is {person} and what is their role in the {w1} {w2}?",
]
TIME_SUFFIXES = ["", "", "", "", "", "", " last week", " yesterday", " in March 2025", " this year"]


def _sentence(rng: random.Random, words: list[str]) -> str:
    picks = rng.sample(words, k=min(len(words), rng.randint(4, 7)))
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    place = rng.choice(PLACES)
    number = f"{rng.randint(2, 9000):,}"
    forms = [
        f"{person} said the {picks[0]} and {picks[1]} in {place} affected {number} people "
        f"on {rng.choice(['Monday', 'Tuesday', 'Friday'])}.",
        f"Officials in {place} reported that {picks[2]} {picks[3]} rose to {number} "
        f"as {picks[0]} continued.",
        f"The {picks[1]} over {picks[2]} drew criticism from {person}, "
        f"who called for {picks[3]} measures.",
        f"According to {person}, {number} {picks[0]} were linked to the {picks[-1]} near {place}.",
    ]
    return rng.choice(forms)


def _generate(
    n_chunks: int, start_article: int, rng: random.Random, centroids: dict[str, np.ndarray]
) -> tuple[list[dict[str, Any]], list[tuple[str, str, np.ndarray, str]]]:
    """Articles (with chunk texts and vectors) totalling ``n_chunks`` chunks, plus probe queries."""
    topics = list(TOPICS)
    articles: list[dict[str, Any]] = []
    queries: list[tuple[str, str, np.ndarray, str]] = []
    made = 0
    number = start_article
    while made < n_chunks:
        topic = rng.choice(topics)
        words = TOPICS[topic].split()
        n = min(rng.randint(1, 12), n_chunks - made)
        published = TODAY - timedelta(days=rng.randint(0, 730))
        art_vec = centroids[topic] + 0.6 * np.asarray(rng_normal(rng, DIM))
        chunks = []
        for i in range(n):
            text = " ".join(_sentence(rng, words) for _ in range(rng.randint(5, 7)))
            vec = art_vec + 0.4 * np.asarray(rng_normal(rng, DIM))
            chunks.append(
                (
                    f"synthetic/{number:07d}#{i}",
                    text,
                    (vec / np.linalg.norm(vec)).astype(np.float32),
                )
            )
        title = f"{rng.choice(PLACES)}: {' '.join(rng.sample(words, 3)).capitalize()}"
        articles.append(
            {
                "id": f"synthetic/{number:07d}",
                "title": title,
                "source": rng.choice(SOURCES),
                "published": published.isoformat(),
                "chunks": chunks,
            }
        )
        if rng.random() < 0.05:
            cid, text, vec = rng.choice(chunks)
            q = rng.choice(QUESTION_FORMS).format(
                w1=rng.choice(words),
                w2=rng.choice(words),
                place=rng.choice(PLACES),
                person=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            ) + rng.choice(TIME_SUFFIXES)
            qv = vec + 0.3 * np.asarray(rng_normal(rng, DIM))
            queries.append(
                (q, cid, (qv / np.linalg.norm(qv)).astype(np.float32), articles[-1]["source"])
            )
        made += n
        number += 1
    return articles, queries


def rng_normal(rng: random.Random, n: int) -> np.ndarray:
    return np.random.default_rng(rng.getrandbits(32)).standard_normal(n).astype(np.float32)


class LookupEmbedder:
    """Returns the prepared vector of a known query (else a hashed random one): no model time."""

    name = "synthetic"
    dtype = "float32"
    dimension = DIM

    def __init__(self) -> None:
        self.vectors: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        vec = self.vectors.get(text)
        if vec is None:
            v = np.random.default_rng(abs(hash(text)) % (1 << 32)).standard_normal(DIM)
            vec = (v / np.linalg.norm(v)).astype(np.float32).tolist()
        return vec

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray([self.embed_query(t) for t in texts], dtype=np.float32)


def _insert(store: Any, articles: list[dict[str, Any]]) -> float:
    from rag.dates import date_number
    from rag.index.store import ArticleRecord

    t0 = time.perf_counter()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        flat = [(a, i, c) for a in batch for i, c in enumerate(a["chunks"])]
        if not flat:
            return
        store.upsert_chunks(
            ids=[c[0] for _, _, c in flat],
            embeddings=np.stack([c[2] for _, _, c in flat]),
            documents=[c[1] for _, _, c in flat],
            metadatas=[
                {
                    "article_id": a["id"],
                    "title": a["title"],
                    "source": a["source"],
                    "url": "",
                    "published": a["published"],
                    "published_int": date_number(a["published"]),
                    "chunk_index": i,
                    "start": 0,
                    "end": len(c[1]),
                }
                for a, i, c in flat
            ],
        )
        store.commit_articles(
            [
                ArticleRecord(
                    id=a["id"],
                    hash=a["id"],
                    title=a["title"],
                    chunk_ids=[c[0] for c in a["chunks"]],
                    source=a["source"],
                    published=a["published"],
                    origin=a["id"],
                    chars=sum(len(c[1]) for c in a["chunks"]),
                )
                for a in batch
            ]
        )
        batch.clear()

    size = 0
    for art in articles:
        batch.append(art)
        size += len(art["chunks"])
        if size >= 2000:
            flush()
            size = 0
    flush()
    store.bump_generation()
    return time.perf_counter() - t0


def _fit(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Power law (a * n^b) and line (a + b*n) through the p50s; both projected to 1M chunks."""
    if len(rows) < 2:
        return {}
    n = np.asarray([r["chunks"] for r in rows], dtype=float)
    y = np.asarray([r[key] for r in rows], dtype=float)
    b, log_a = np.polyfit(np.log(n), np.log(y), 1)
    slope, intercept = np.polyfit(n, y, 1)
    return {
        "power_law": {
            "a": float(np.exp(log_a)),
            "b": round(float(b), 3),
            "p50_at_1M_ms": round(float(np.exp(log_a) * 1e6**b), 1),
        },
        "linear": {
            "a_ms": round(float(intercept), 3),
            "b_ms_per_1k_chunks": round(float(slope) * 1000, 4),
            "p50_at_1M_ms": round(float(intercept + slope * 1e6), 1),
        },
    }


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1k and 10k chunks only, 30 queries")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--no-real-embedder", action="store_true", help="skip timing the real embed_query"
    )
    args = parser.parse_args()
    sizes = [1000, 10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    n_queries = 30 if args.quick else args.queries
    info = machine()
    print(machine_line(info), flush=True)

    from rag.config import Settings
    from rag.index.snapshot import Index
    from rag.index.store import open_store
    from rag.retrieve.hybrid import HybridRetriever

    rng = random.Random(7)
    centroids = {t: rng_normal(rng, DIM) * 1.0 for t in TOPICS}
    tmp = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    settings = Settings(data_dir=tmp / "data", today=TODAY)
    store = open_store(settings)
    embedder = LookupEmbedder()
    index = Index(settings, store)
    retriever = HybridRetriever(settings=settings, index=index, embedder=embedder)

    rows: list[dict[str, Any]] = []
    all_queries: list[tuple[str, str, np.ndarray, str]] = []
    have = 0
    article_no = 0
    for size in sizes:
        articles, queries = _generate(size - have, article_no, rng, centroids)
        article_no += len(articles)
        all_queries += queries
        insert_s = _insert(store, articles)
        have = size
        for q, _, vec, _ in all_queries:
            embedder.vectors[q] = vec.tolist()
        t0 = time.perf_counter()
        snap = index.snapshot()  # rebuilds BM25 for the new generation
        bm25_s = time.perf_counter() - t0
        assert snap.chunk_count == size, (snap.chunk_count, size)
        picks = random.Random(size).sample(all_queries, k=min(n_queries, len(all_queries)))
        for q, *_ in picks[:5]:
            retriever.retrieve(q)  # warm-up (row masks, caches)
        lat: list[float] = []
        phases: dict[str, list[float]] = {"dense_ms": [], "bm25_ms": [], "fuse_ms": []}
        lat_filtered: list[float] = []
        hits = 0
        last_year = (TODAY - timedelta(days=365)).isoformat()
        for i, (q, cid, _, _source) in enumerate(picks):
            # Every 10th query has a broad filter (the last year: about half the chunks).
            filters = {"published_from": last_year} if i % 10 == 9 else None
            t = time.perf_counter()
            docs = retriever.retrieve(q, filters=filters)
            lat.append((time.perf_counter() - t) * 1000)
            if filters:
                lat_filtered.append(lat[-1])
            if docs:
                for key, values in phases.items():
                    values.append(float(docs[0].metadata["retrieval_ms"][key]))
            hits += any(d.metadata["chunk_id"] == cid for d in docs)
        # Where the dense time goes: Chroma's query alone, without and with the date `where`
        # clause the retriever always sends (drop_future), and the whole retriever without it.
        today_int = TODAY.year * 10000 + TODAY.month * 100 + TODAY.day
        raw: list[float] = []
        raw_where: list[float] = []
        for _, _, vec, _ in picks[:30]:
            t = time.perf_counter()
            store.query(vec.tolist(), settings.fetch_k)
            raw.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.query(vec.tolist(), settings.fetch_k, {"published_int": {"$lte": today_int}})
            raw_where.append((time.perf_counter() - t) * 1000)
        # A narrow filter (one source, under the share the retriever filters in Python) goes to
        # Chroma as a `where` clause.
        lat_narrow: list[float] = []
        for q, _, _, source in picks[:10]:
            t = time.perf_counter()
            retriever.retrieve(q, filters={"source": source})
            lat_narrow.append((time.perf_counter() - t) * 1000)
        no_future = HybridRetriever(
            settings=settings.model_copy(update={"drop_future": False}),
            index=index,
            embedder=embedder,
        )
        lat_nf: list[float] = []
        for q, *_ in picks[:30]:
            t = time.perf_counter()
            no_future.retrieve(q)
            lat_nf.append((time.perf_counter() - t) * 1000)
        row = {
            "chunks": size,
            "articles": len(snap.articles),
            "insert_s": round(insert_s, 1),
            "bm25_build_s": round(bm25_s, 2),
            "queries": len(lat),
            "p50_ms": round(_pct(lat, 50), 2),
            "p95_ms": round(_pct(lat, 95), 2),
            "dense_p50_ms": round(_pct(phases["dense_ms"], 50), 2),
            "bm25_p50_ms": round(_pct(phases["bm25_ms"], 50), 2),
            "fuse_get_dedup_p50_ms": round(_pct(phases["fuse_ms"], 50), 2),
            "source_chunk_in_top_k": round(hits / max(1, len(lat)), 2),
            "chroma_query_p50_ms": round(_pct(raw, 50), 2),
            "chroma_query_with_date_where_p50_ms": round(_pct(raw_where, 50), 2),
            "p50_drop_future_off_ms": round(_pct(lat_nf, 50), 2),
            "p50_broad_filter_ms": round(_pct(lat_filtered, 50), 2) if lat_filtered else None,
            "p50_narrow_filter_ms": round(_pct(lat_narrow, 50), 2),
            "rss_mb": round(current_rss_mb(), 0),
        }
        rows.append(row)
        print(
            f"  {size:>7} chunks: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms "
            f"(dense {row['dense_p50_ms']}, bm25 {row['bm25_p50_ms']}, "
            f"fuse+get {row['fuse_get_dedup_p50_ms']}); "
            f"insert {row['insert_s']} s, BM25 build {row['bm25_build_s']} s; "
            f"chroma query {row['chroma_query_p50_ms']} ms, "
            f"with date where {row['chroma_query_with_date_where_p50_ms']} ms; "
            "retriever with drop_future off "
            f"{row['p50_drop_future_off_ms']} ms; broad filter {row['p50_broad_filter_ms']} ms, "
            "narrow filter (Chroma where) "
            f"{row['p50_narrow_filter_ms']} ms",
            flush=True,
        )

    fits: dict[str, Any] = {
        "p50": _fit(rows, "p50_ms"),
        "p50_drop_future_off": _fit(rows, "p50_drop_future_off_ms"),
    }

    embed_p50 = None
    if not args.no_real_embedder:
        from rag.models.embedder import load_embedder

        real = load_embedder(Settings())
        real.embed_query("warm up the query path")
        times = []
        for i, (q, *_) in enumerate(all_queries[:30]):
            t = time.perf_counter()
            real.embed_query(f"{q} #{i}")  # distinct text: no cache hit
            times.append((time.perf_counter() - t) * 1000)
        embed_p50 = round(statistics.median(times), 2)
        fits["embed_query_p50_ms"] = embed_p50
        fits["embedder"] = f"{real.name} ({real.backend}/{real.dtype})"

    print()
    print(
        table(
            rows,
            [
                "chunks",
                "articles",
                "p50_ms",
                "p95_ms",
                "dense_p50_ms",
                "bm25_p50_ms",
                "fuse_get_dedup_p50_ms",
                "chroma_query_p50_ms",
                "chroma_query_with_date_where_p50_ms",
                "p50_drop_future_off_ms",
                "p50_broad_filter_ms",
                "p50_narrow_filter_ms",
                "bm25_build_s",
                "insert_s",
                "source_chunk_in_top_k",
                "rss_mb",
            ],
        )
    )
    for label, fit in (
        ("p50", fits["p50"]),
        ("p50 with drop_future off", fits["p50_drop_future_off"]),
    ):
        if fit:
            pl, li = fit["power_law"], fit["linear"]
            print(
                f"\nfit {label}: {pl['a']:.4g} * n^{pl['b']} -> 1M chunks: "
                f"{pl['p50_at_1M_ms']} ms; "
                f"{li['a_ms']} ms + {li['b_ms_per_1k_chunks']} ms per 1k chunks -> 1M chunks: "
                f"{li['p50_at_1M_ms']} ms"
            )
    if embed_p50 is not None:
        print(
            f"real query embedding ({fits['embedder']}): p50 {embed_p50} ms "
            f"-> p50 incl. embedding at {rows[-1]['chunks']} chunks "
            f"~ {rows[-1]['p50_ms'] + embed_p50:.1f} ms"
        )
    path = save(
        "bench_retrieval",
        {
            "machine": info,
            "method": "synthetic news-like chunks; structured random 384-d vectors inserted "
            "via store.upsert_chunks/commit_articles; "
            "real HybridRetriever.retrieve; latency excludes query embedding (measured separately)",
            "settings": {"k": settings.k, "fetch_k": settings.fetch_k, "today": TODAY.isoformat()},
            "rows": rows,
            "fits": fits,
            "peak_rss_mb": round(peak_rss_mb(), 0),
            "target": "p50 <= 30 ms at 100k chunks",
        },
        quick=args.quick,
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
