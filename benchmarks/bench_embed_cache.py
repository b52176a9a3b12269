"""Benchmark: what a rerun costs once the embedding cache holds the earlier texts.

Prints one JSON object. Each phase opens a fresh `Embedder` on the same cache directory,
as a new stage run would:

1. full: an empty cache, all N texts (loads the model, encodes everything);
2. rerun: the same N texts again (reads the cache index, never loads the model);
3. plus 1%: the N texts and N/100 new ones (loads the model, encodes only the new).

The goal is plus_one_percent_seconds <= 5% of full_seconds. Importing
sentence-transformers (and torch) is a fixed cost of any process that embeds; it is
paid before phase 1 and reported apart as `library_import_seconds`, together with the
ratio a cold process would see when it pays it in both phases.

The texts are synthetic programming questions of 15-45 words from a seeded generator, in
the range of the curated questions. The bundled all-MiniLM-L6-v2 runs on the CPU.

Usage: python benchmarks/bench_embed_cache.py [--n 8000] [--model bundled:all-MiniLM-L6-v2]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time

import click

from codealign.lm.embedding import Embedder
from codealign.params.lm import EmbedParams

VERBS = ("Write", "Implement", "Create", "Define", "Build", "Design")
THINGS = ("function", "program", "method", "routine", "helper", "class")
TASKS = (
    "returns the largest element of",
    "counts the vowels in",
    "reverses",
    "sorts",
    "removes duplicates from",
    "finds the second smallest value in",
    "merges two",
    "checks whether a palindrome is hidden in",
    "computes the running sum of",
    "groups by first letter",
    "rotates by k positions",
    "flattens one level of",
)
OBJECTS = (
    "a list of integers",
    "a string",
    "a dictionary of scores",
    "a matrix",
    "a linked list",
    "a binary tree",
    "a list of words",
    "a sentence",
    "a tuple of floats",
    "an array",
)
DETAILS = (
    "without using built-in sorting",
    "in linear time",
    "and handles empty input",
    "ignoring case",
    "returning None when nothing matches",
    "using recursion",
    "with a single pass",
    "preserving the original order",
    "raising ValueError on bad input",
    "and returns the result as a new list",
    "for very large inputs",
    "using a helper dict",
)


def questions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        detail = " ".join(rng.sample(DETAILS, rng.randint(1, 4)))
        out.append(
            f"{rng.choice(VERBS)} a {rng.choice(THINGS)} that {rng.choice(TASKS)} "
            f"{rng.choice(OBJECTS)} {detail}. Example {i}: the input {rng.randint(0, 10**6)} "
            f"gives {rng.randint(0, 10**6)}."
        )
    return out


def timed_embed(params: EmbedParams, cache_dir: str, texts: list[str]) -> tuple[float, Embedder]:
    start = time.perf_counter()
    embedder = Embedder(params, cache_dir, progress=False)
    embedder.embed(texts)
    return time.perf_counter() - start, embedder


@click.command()
@click.option("--n", default=8000, show_default=True, help="Texts in the first run.")
@click.option("--model", default="bundled:all-MiniLM-L6-v2", show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(n: int, model: str, batch_size: int, seed: int) -> None:
    params = EmbedParams(model=model, batch_size=batch_size)
    texts = questions(n + n // 100, seed)
    base, added = texts[:n], texts[n:]
    start = time.perf_counter()
    import sentence_transformers  # noqa: F401

    import_seconds = time.perf_counter() - start
    cache_dir = tempfile.mkdtemp(prefix="bench-embed-cache-")
    try:
        full, first = timed_embed(params, cache_dir, base)
        rerun, second = timed_embed(params, cache_dir, base)
        plus, third = timed_embed(params, cache_dir, base + added)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "embed_cache",
                "model": model,
                "cpus": os.cpu_count(),
                "load_average_at_start": round(os.getloadavg()[0], 2),
                "n": n,
                "added": len(added),
                "full_seconds": round(full, 2),
                "full_texts_encoded": first.texts_encoded,
                "rerun_seconds": round(rerun, 3),
                "rerun_texts_encoded": second.texts_encoded,
                "plus_one_percent_seconds": round(plus, 2),
                "plus_one_percent_texts_encoded": third.texts_encoded,
                "plus_one_percent_ratio": round(plus / full, 4),
                "rerun_ratio": round(rerun / full, 5),
                "library_import_seconds": round(import_seconds, 2),
                "cold_process_plus_one_percent_ratio": round(
                    (plus + import_seconds) / (full + import_seconds), 4
                ),
                "goal_met": plus / full <= 0.05,
            }
        )
    )


if __name__ == "__main__":
    main()
