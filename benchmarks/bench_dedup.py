"""Benchmark: exact chunked dedup against an all-pairs reference, and the faiss path's recall.

Prints one JSON object. The data are synthetic unit vectors with planted near-duplicates
(cosines to their original spread over [0.85, 1], so some fall just below the threshold)
in proportions that take 35,000 items to about 20,000, as in the paper. Only the cost of
the similarity search is measured here; embedding cost is bench_embed_cache's subject.

- exact: `greedy_dedup` on 35,000 items at 384 and 768 dimensions; wall time, peak
  memory (tracemalloc sees numpy's buffers; the input itself is reported apart), and
  whether its keep-set equals a reference that builds the full graph of pairs above
  the threshold with plain lower-triangle blocks and then walks it greedily.
- approximate: `approximate_pairs` + `greedy_from_pairs` on a larger set
  (--approx-n, 1,000,000 for the paper-scale figure); recall of the duplicate pairs and
  of the duplicate items of a random sample of queries against an exact scan of
  everything before them.

Usage: python benchmarks/bench_dedup.py [--n 35000] [--approx-n 200000] [--approx-dim 384]
"""

from __future__ import annotations

import json
import os
import platform
import time
import tracemalloc

import click
import numpy as np

from codealign.curation.dedup import (
    approximate_pairs,
    default_nlist,
    faiss_available,
    greedy_dedup,
    greedy_from_pairs,
)
from codealign.lm.embedding import l2_normalize

THRESHOLD = 0.95


def planted(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit rows: half originals, half copies of a random earlier-or-later original.

    Copies sit at cosine U(0.955, 1) to their original (83% of them) or
    U(0.85, 0.945) (near misses that must be kept); several copies of one original
    are near-duplicates of each other too, as in generated data.
    """
    rng = np.random.default_rng(seed)
    n_base = int(n * 0.5)
    n_copy = n - n_base
    base = l2_normalize(rng.standard_normal((n_base, dim), dtype=np.float32))
    src = rng.integers(0, n_base, n_copy)
    above = rng.random(n_copy) < 0.83
    cos = np.where(above, rng.uniform(0.955, 1.0, n_copy), rng.uniform(0.85, 0.945, n_copy))
    cos = cos.astype(np.float32)[:, None]
    noise = rng.standard_normal((n_copy, dim), dtype=np.float32)
    noise -= (noise * base[src]).sum(axis=1, keepdims=True) * base[src]
    copies = cos * base[src] + np.sqrt(1 - cos**2) * l2_normalize(noise)
    rows = np.concatenate([base, copies])
    rng.shuffle(rows)
    return l2_normalize(rows)


def reference_keep_set(x: np.ndarray, threshold: float, block: int = 4096) -> np.ndarray:
    """All pairs (i > j) above the threshold from full lower-triangle blocks, then greedy."""
    n = x.shape[0]
    earlier: dict[int, list[int]] = {}
    for i0 in range(0, n, block):
        rows = x[i0 : i0 + block]
        for j0 in range(0, i0 + block, block):
            sims = rows @ x[j0 : min(j0 + block, n)].T
            ii, jj = np.nonzero(sims > threshold)
            for i, j in zip((ii + i0).tolist(), (jj + j0).tolist(), strict=True):
                if j < i:
                    earlier.setdefault(i, []).append(j)
    kept = np.ones(n, dtype=bool)
    for i in sorted(earlier):
        if kept[earlier[i]].any():
            kept[i] = False
    return np.nonzero(kept)[0]


def bench_exact(n: int, dim: int, seed: int) -> dict:
    x = planted(n, dim, seed)
    tracemalloc.start()
    start = time.perf_counter()
    result = greedy_dedup(x, THRESHOLD)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ref_start = time.perf_counter()
    reference = reference_keep_set(x, THRESHOLD)
    return {
        "n": n,
        "dim": dim,
        "kept": int(result.kept.size),
        "seconds": round(seconds, 2),
        "peak_mib_beyond_input": round(peak / 2**20, 1),
        "input_mib": round(x.nbytes / 2**20, 1),
        "same_keep_set_as_reference": bool(np.array_equal(result.kept, reference)),
        "reference_seconds": round(time.perf_counter() - ref_start, 2),
    }


def bench_approximate(n: int, dim: int, seed: int, sample: int, nprobe: int) -> dict:
    x = planted(n, dim, seed)
    tracemalloc.start()
    start = time.perf_counter()
    later, earlier, sims = approximate_pairs(x, THRESHOLD, nprobe=nprobe, seed=seed)
    join_seconds = time.perf_counter() - start
    result = greedy_from_pairs(n, later, earlier, sims)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # Exact truth for a sample of queries: every earlier row above the threshold.
    rng = np.random.default_rng(seed + 1)
    queries = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    in_sample = np.isin(later, queries)
    found_by_query: dict[int, set[int]] = {}
    for i, j in zip(later[in_sample].tolist(), earlier[in_sample].tolist(), strict=True):
        found_by_query.setdefault(i, set()).add(j)
    true_pairs = found_pairs = dup_items = found_items = 0
    for q in queries.tolist():
        truth = set(np.flatnonzero(x[:q] @ x[q] > THRESHOLD).tolist())
        if not truth:
            continue
        hits = len(truth & found_by_query.get(q, set()))
        true_pairs += len(truth)
        found_pairs += hits
        dup_items += 1
        found_items += hits > 0
    return {
        "n": n,
        "dim": dim,
        "nprobe": nprobe,
        "nlist": default_nlist(n, nprobe),
        "kept": int(result.kept.size),
        "seconds": round(seconds, 2),
        "join_seconds": round(join_seconds, 2),
        "peak_mib_beyond_input": round(peak / 2**20, 1),
        "input_mib": round(x.nbytes / 2**20, 1),
        "sample_queries": int(queries.size),
        "sample_duplicate_items": dup_items,
        "duplicate_item_recall": round(found_items / dup_items, 4) if dup_items else None,
        "duplicate_pair_recall": round(found_pairs / true_pairs, 4) if true_pairs else None,
    }


@click.command()
@click.option("--n", default=35_000, show_default=True, help="Items for the exact benchmark.")
@click.option("--dims", default="384,768", show_default=True)
@click.option(
    "--approx-n",
    default=200_000,
    show_default=True,
    help="Items for the faiss path (1000000 for the paper-scale figure; 0 skips it).",
)
@click.option("--approx-dim", default=384, show_default=True)
@click.option("--approx-nprobe", default=16, show_default=True)
@click.option(
    "--sample",
    default=2000,
    show_default=True,
    help="Queries checked exactly for the recall figure.",
)
@click.option("--seed", default=0, show_default=True)
def main(n, dims, approx_n, approx_dim, approx_nprobe, sample, seed) -> None:
    report = {
        "benchmark": "dedup",
        "threshold": THRESHOLD,
        "cpus": os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "machine": platform.processor() or platform.machine(),
        "exact": [bench_exact(n, int(d), seed) for d in dims.split(",")],
    }
    if approx_n and faiss_available():
        report["approximate"] = bench_approximate(approx_n, approx_dim, seed, sample, approx_nprobe)
    elif approx_n:
        report["approximate"] = "skipped: faiss-cpu is not installed (pip install faiss-cpu)"
    print(json.dumps(report))


if __name__ == "__main__":
    main()
