"""Sampling from a LoRA policy: merged into the base weights against PEFT's adapter
layers, side by side in one run.

Prints one JSON object: seconds for the same batch of chat prompts (sampled, same
seed) with `PeftModel` and with `merge_and_unload()`, their ratio, and whether the
sampled tokens came out identical (merged weights round differently, so they may not).

    python benchmarks/bench_merged_sampling.py [--adapter models/sft_baseline/adapter_0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from codealign.evaluation import chat
from codealign.evaluation.evaluate import benchmark_questions, load_benchmark


def timed(model, encoded, tokenizer, args) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(args.repeat):
        torch.manual_seed(0)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                **encoded,
                max_new_tokens=args.max_new_tokens,
                do_sample=True,
                temperature=0.8,
                top_k=0,
                top_p=1.0,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="models/base_model")
    parser.add_argument("--adapter", default="models/sft_baseline/adapter_0")
    parser.add_argument("--seed-dir", default="data/seed", type=Path)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.base)
    tokenizer.padding_side = "left"
    # What `evaluate` asks the fine-tuned models: tinyeval tasks as chat questions.
    benchmark = load_benchmark("tinyeval", args.seed_dir, Path("data/raw"), args.rows)
    questions = benchmark_questions(benchmark)
    prompts = chat.render_all(tokenizer, questions)
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    base = AutoModelForCausalLM.from_pretrained(args.base)
    peft = PeftModel.from_pretrained(base, args.adapter).eval()
    peft_s, peft_out = timed(peft, encoded, tokenizer, args)
    merged = peft.merge_and_unload().eval()
    merged_s, merged_out = timed(merged, encoded, tokenizer, args)
    print(
        json.dumps(
            {
                "rows": len(prompts),
                "max_new_tokens": args.max_new_tokens,
                "threads": torch.get_num_threads(),
                "peft_seconds": round(peft_s, 3),
                "merged_seconds": round(merged_s, 3),
                "speedup_merged": round(peft_s / merged_s, 2),
                "identical_tokens": bool(torch.equal(peft_out, merged_out)),
            }
        )
    )


if __name__ == "__main__":
    main()
