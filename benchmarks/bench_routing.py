"""Benchmark: serving K specialists over one base model, against the baselines the issue names.

Prints one JSON object with three figures:

1. memory: peak resident memory that loading and generating adds to a process, for the
   base model alone, for `Router` with K adapters over one base, and for the paper's K
   merged models (each adapter merged into its own copy of the base). Goal:
   routed <= (base + K x adapter file size) x 1.05. Each case runs in a fresh process
   that imports the same libraries first, and the figure is its peak RSS minus its RSS
   after those imports, so the interpreter and the libraries are not counted; the median
   of 3 such processes per case.
2. mixed batch: tokens/s of a batch whose rows go to all K adapters (the router's
   `GatheredLora`) against a batch of the same size on one adapter. Goal: >= 0.8.
   The paper's alternative, one batch per adapter after `set_adapter`, is reported too.
3. batching: tokens/s of `Router.sample` over `batch` questions in one batch against one
   question at a time. Goal: >= 5 at batch 32.

The model is a Llama built from a config (no download): random weights, LoRA adapters
with random A and B on every linear projection. Generation is greedy with a fixed
number of new tokens (`min_new_tokens`), so every case produces the same token count.

Usage: python benchmarks/bench_routing.py [--k 10] [--hidden 512] [--layers 6] [--batch 32]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

QUESTIONS = [
    f"Write a function {name}(values) that returns {what} of the list values."
    for name, what in [
        ("total", "the sum"),
        ("largest", "the largest element"),
        ("smallest", "the smallest element"),
        ("evens", "the even numbers"),
        ("odds", "the odd numbers"),
        ("reverse", "the reverse"),
        ("unique", "the distinct elements"),
        ("count_pos", "the number of positive elements"),
    ]
]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build_world(root: Path, k: int, hidden: int, layers: int, rank: int) -> dict:
    """Save a random base model, K random adapters and a router manifest under `root`."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, train_tokenizer
    from codealign.specialists.adapters import model_digest, write_adapter_meta, write_router
    from codealign.specialists.sft import adapter_bytes

    corpus = [q + "\n    return values\n" for q in QUESTIONS] * 20
    tokenizer = train_tokenizer(corpus, 1024)
    params = BaseModelParams(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=max(1, hidden // 64),
        intermediate_size=int(hidden * 8 / 3) // 8 * 8,
        block_size=256,
    )
    base_dir, sft_dir = root / "base", root / "sft"
    model = build_model(params, tokenizer, seed=0)
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    base = model_digest(base_dir)
    sft_dir.mkdir()
    adapters = []
    for cluster in range(k):
        fresh = AutoModelForCausalLM.from_pretrained(base_dir)
        torch.manual_seed(cluster)
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False
        )
        peft_model = get_peft_model(fresh, config)
        # Small adapter weights keep the random model's logits in a sane range.
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_B" in name:
                    parameter.mul_(0.01)
        name = f"adapter_{cluster}"
        peft_model.save_pretrained(sft_dir / name)
        write_adapter_meta(sft_dir / name, cluster, base_dir, base)
        adapters.append({"cluster": cluster, "path": name})
    centroids = np.eye(k, 8, dtype=np.float32)
    embedder = {"model": "none", "identity": None, "prefix": "", "normalize": True}
    write_router(sft_dir, base_dir, base, centroids, embedder, adapters)
    return {
        "base_dir": str(base_dir),
        "sft_dir": str(sft_dir),
        "base_parameters": model.num_parameters(),
        "base_bytes": sum(p.stat().st_size for p in base_dir.glob("*.safetensors")),
        "adapter_bytes": adapter_bytes(sft_dir / "adapter_0"),
    }


def _generate(router_or_model, tokenizer, prompts, adapter_names, new_tokens) -> None:
    import torch

    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    extra = {"adapter_names": adapter_names} if adapter_names is not None else {}
    with torch.no_grad():
        router_or_model.generate(
            **encoded,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            **extra,
        )


def run_memory_case(case: str, base_dir: str, sft_dir: str, k: int, batch: int, new_tokens: int):
    """Run in a child process: load one serving setup, generate one batch, report memory."""
    import torch
    from peft import PeftModel  # noqa: F401  (every case pays the same imports)

    from codealign.evaluation import chat
    from codealign.lm.generation import load_causal_lm
    from codealign.specialists.routing import Router

    torch.set_num_threads(1)
    before = _rss_bytes()
    prompts_of = [QUESTIONS[i % len(QUESTIONS)] for i in range(batch)]
    if case == "base":
        tokenizer, model = load_causal_lm(base_dir)
        prompts = chat.render_all(tokenizer, prompts_of)
        tokenizer.padding_side = "left"
        _generate(model, tokenizer, prompts, None, new_tokens)
    elif case == "routed":
        router = Router(sft_dir)
        router.model.get_base_model().generation_config.min_new_tokens = new_tokens
        clusters = [i % k for i in range(batch)]
        router.sample(prompts_of, clusters=clusters, max_new_tokens=new_tokens, batch_size=batch)
    else:  # the paper's online setup: K merged models held at once
        from peft import PeftModel

        merged = []
        for cluster in range(k):
            tokenizer, base = load_causal_lm(base_dir)
            adapter = PeftModel.from_pretrained(base, Path(sft_dir) / f"adapter_{cluster}")
            merged.append(adapter.merge_and_unload())
        tokenizer.padding_side = "left"
        prompts = chat.render_all(tokenizer, prompts_of)
        # Each request goes to its cluster's model: one sub-batch per merged model.
        for cluster, model in enumerate(merged):
            rows = [p for i, p in enumerate(prompts) if i % k == cluster]
            if rows:
                _generate(model, tokenizer, rows, None, new_tokens)
    print(json.dumps({"added_peak_bytes": _peak_bytes() - before}))


def measure_memory(world: dict, k: int, batch: int, new_tokens: int, runs: int = 5) -> dict:
    """Median over `runs` fresh processes per case: one process's peak varies by several
    MiB (allocator and thread-pool timing), as much as the 5 % the goal allows."""
    results = {}
    for case in ("base", "routed", "merged"):
        peaks = [_memory_run(world, case, k, batch, new_tokens) for _ in range(runs)]
        results[case] = sorted(peaks)[len(peaks) // 2]
    return _memory_summary(results, world, k)


def _memory_run(world: dict, case: str, k: int, batch: int, new_tokens: int) -> int:
    command = [
        sys.executable,
        __file__,
        "--memory-case",
        case,
        "--world",
        json.dumps(world),
        "--k",
        str(k),
        "--batch",
        str(batch),
        "--new-tokens",
        str(new_tokens),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"memory case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["added_peak_bytes"]


def _memory_summary(results: dict, world: dict, k: int) -> dict:
    budget = (results["base"] + k * world["adapter_bytes"]) * 1.05
    return {
        "base_peak_mib": results["base"] / 2**20,
        "routed_peak_mib": results["routed"] / 2**20,
        "merged_peak_mib": results["merged"] / 2**20,
        "budget_mib": budget / 2**20,
        "routed_within_budget": results["routed"] <= budget,
        "merged_over_routed": results["merged"] / results["routed"],
    }


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_throughput(world: dict, k: int, batch: int, new_tokens: int, repeats: int) -> dict:
    from codealign.specialists.routing import Router

    router = Router(world["sft_dir"])
    # A fixed number of new tokens: every case then produces batch x new_tokens tokens.
    router.model.get_base_model().generation_config.min_new_tokens = new_tokens
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(batch)]
    spread = [i % k for i in range(batch)]
    tokens = batch * new_tokens

    def run(clusters, batch_size, mixed=True):
        return lambda: router.sample(
            questions,
            clusters=clusters,
            max_new_tokens=new_tokens,
            batch_size=batch_size,
            mixed=mixed,
        )

    single = timed(run([0] * batch, batch), repeats)
    mixed = timed(run(spread, batch), repeats)
    grouped = timed(run(spread, batch, mixed=False), repeats)
    one_by_one = timed(run(spread, 1), max(1, repeats // 2))
    return {
        "mixed_batch": {
            "single_adapter_tokens_per_s": tokens / single,
            "mixed_adapters_tokens_per_s": tokens / mixed,
            "grouped_by_adapter_tokens_per_s": tokens / grouped,
            "mixed_over_single": single / mixed,
            "goal": 0.8,
        },
        "batching": {
            "batched_tokens_per_s": tokens / mixed,
            "one_at_a_time_tokens_per_s": tokens / one_by_one,
            "speedup": one_by_one / mixed,
            "goal": 5.0,
        },
    }


@click.command()
@click.option("--k", default=10, show_default=True, help="Number of adapters.")
@click.option("--hidden", default=512, show_default=True, help="Base model hidden size.")
@click.option("--layers", default=6, show_default=True)
@click.option("--rank", default=8, show_default=True, help="LoRA rank.")
@click.option("--batch", default=32, show_default=True)
@click.option("--new-tokens", default=32, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option(
    "--threads", default=1, show_default=True, help="torch threads (1: stable on a shared CPU)."
)
@click.option("--memory-case", hidden=True, default=None)
@click.option("--world", "world_json", hidden=True, default=None)
def main(
    k, hidden, layers, rank, batch, new_tokens, repeats, threads, memory_case, world_json
) -> None:
    """Memory and throughput of routed serving; one JSON object on stdout."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if memory_case:
        world = json.loads(world_json)
        run_memory_case(memory_case, world["base_dir"], world["sft_dir"], k, batch, new_tokens)
        return
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp), k, hidden, layers, rank)
        memory = measure_memory(world, k, batch, new_tokens)
        throughput = measure_throughput(world, k, batch, new_tokens, repeats)
    print(
        json.dumps(
            {
                "setup": {
                    "k": k,
                    "base_parameters": world["base_parameters"],
                    "base_file_mib": world["base_bytes"] / 2**20,
                    "adapter_file_mib": world["adapter_bytes"] / 2**20,
                    "lora_rank": rank,
                    "batch": batch,
                    "new_tokens": new_tokens,
                    "device": "cuda" if torch.cuda.is_available() else "cpu",
                    "torch_threads": torch.get_num_threads(),
                },
                "memory": memory,
                **throughput,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
