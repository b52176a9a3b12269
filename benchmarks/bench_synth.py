"""Synth with the openai backend against the local stub server: throughput and rerun cost.

Runs the whole synth method (self-instruct cycles and strategies 1-3) on smoke-sized
tiny-world seed sets, with the answers coming from `codealign.synth.stub_server` at a
fixed per-request latency. Reports requests/s at concurrency 1 (the baseline) and at the
configured concurrency, and the number of HTTP requests a rerun sends (goal: zero, every
answer comes from the cache). The sandbox check is off so the figure is the backend's.

    .venv/bin/python benchmarks/bench_synth.py [--latency 0.05] [--concurrency 8]

Prints one JSON object.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import click

from codealign.curation.seed import tinyworld_seed_sets, write_seed_sets
from codealign.params import load_params
from codealign.params.synth import SynthParams
from codealign.synth.backends import make_backend
from codealign.synth.pipeline import load_seed_sets, run_synth
from codealign.synth.stub_server import StubServer

ROOT = Path(__file__).resolve().parents[1]


def run_once(seed, params: SynthParams, server: StubServer) -> dict:
    backend = make_backend(params)
    hits = server.hits
    start = time.perf_counter()
    try:
        result = run_synth(seed, params, backend, 0, progress=False)
    finally:
        backend.close()
    seconds = time.perf_counter() - start
    sent = server.hits - hits
    return {
        "seconds": round(seconds, 3),
        "http_requests": sent,
        "requests_per_s": round(sent / seconds, 1) if sent else None,
        "cache_hits": backend.stats["cache_hits"],
        "accepted": result.metrics["total"]["accepted"],
    }


@click.command()
@click.option("--latency", default=0.05, show_default=True, help="Stub seconds per request.")
@click.option("--concurrency", default=8, show_default=True, help="synth.openai_concurrency.")
@click.option("--items-per-cycle", default=40, show_default=True)
@click.option(
    "--strategy-requests", default=80, show_default=True, help="Requests of each of strategies 1-3."
)
def main(latency: float, concurrency: int, items_per_cycle: int, strategy_requests: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    smoke = load_params(ROOT / "params" / "smoke.yaml")
    with tempfile.TemporaryDirectory() as tmp, StubServer(delay=latency) as server:
        seed_dir = Path(tmp) / "seed"
        write_seed_sets(tinyworld_seed_sets(smoke["data"], smoke.seed), seed_dir)
        seed = load_seed_sets(seed_dir)

        def params(workers: int, cache: str) -> SynthParams:
            return SynthParams.from_dict(
                {
                    "backend": "openai",
                    "openai_base_url": server.base_url,
                    "openai_model": "stub",
                    "openai_concurrency": workers,
                    "items_per_cycle": items_per_cycle,
                    "s3_requests": strategy_requests,
                    "s4_requests": strategy_requests,
                    "s5_requests": strategy_requests,
                    "verify": False,
                    "cache_dir": str(Path(tmp) / cache),
                },
                "synth",
            )

        baseline = run_once(seed, params(1, "cache-1"), server)
        configured = run_once(seed, params(concurrency, "cache-n"), server)
        rerun = run_once(seed, params(concurrency, "cache-n"), server)
    speedup = (
        round(configured["requests_per_s"] / baseline["requests_per_s"], 2)
        if baseline["requests_per_s"] and configured["requests_per_s"]
        else None
    )
    print(
        json.dumps(
            {
                "benchmark": "synth_openai_stub",
                "stub_latency_s": latency,
                "concurrency": concurrency,
                "requests": configured["http_requests"],
                "requests_per_s": configured["requests_per_s"],
                "requests_per_s_concurrency_1": baseline["requests_per_s"],
                "speedup_vs_concurrency_1": speedup,
                "ideal_requests_per_s": round(concurrency / latency, 1) if latency else None,
                "rerun_http_requests": rerun["http_requests"],
                "rerun_cache_hits": rerun["cache_hits"],
                "rerun_seconds": rerun["seconds"],
                "accepted": configured["accepted"],
                "rerun_accepted": rerun["accepted"],
            }
        )
    )


if __name__ == "__main__":
    main()
