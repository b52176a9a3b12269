"""DPO with stored reference log-probs against TRL's per-step reference pass; sampling batched.

Prints one JSON object:
- `dpo_epoch`: one epoch of DPO on tiny-world pairs from a LoRA SFT policy, (a) with the
  reference log-probs computed once by `codealign.dpo.pairs.reference_logps` and read from
  the dataset (`StoredReferenceDPOTrainer`), (b) with TRL's default, a reference forward
  pass (the frozen copy of the SFT adapter) every step. Same seed, data order and start;
  reports wall time of training only (best of `--repeat`), the speed-up, and the largest
  difference between the two runs' per-sample losses (pair by pair, step by step).
  The one-off cost of storing the reference log-probs is reported beside it.
- `sampling`: completions per second from `codealign.lm.generation.generate`, batched
  against one prompt at a time, on the same prompts and lengths.

    python benchmarks/bench_dpo.py [--pairs 48] [--batch-size 8] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def tiny_policy(work: Path, world, hidden: int, layers: int) -> Path:
    """A random tiny Llama with a random LoRA adapter: the SFT policy stand-in."""
    import torch
    from peft import LoraConfig, get_peft_model

    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, train_tokenizer

    texts = [t.prompt + t.canonical_solution for t in world.train] + [
        t.instruction for t in world.train
    ]
    params = BaseModelParams(
        vocab_size=512,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=4,
        intermediate_size=hidden * 3,
    )
    tokenizer = train_tokenizer(texts, params.vocab_size)
    model = build_model(params, tokenizer, seed=0)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(work / "base")
    tokenizer.save_pretrained(work / "base")
    torch.manual_seed(0)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    from transformers import AutoModelForCausalLM

    # Reloaded so that the adapter records its base model's path.
    base = AutoModelForCausalLM.from_pretrained(work / "base")
    get_peft_model(base, config).save_pretrained(work / "sft")
    return work / "sft"


def pairs_for(world, count: int) -> list[dict]:
    return [
        {
            "pair_id": t.task_id,
            "question": t.instruction,
            "adapter": 0,
            "chosen": t.prompt + t.canonical_solution,
            "rejected": t.prompt + "    return None\n",
        }
        for t in world.pool[:count]
    ]


def dpo_epoch(sft: Path, pairs, params, work: Path, stored: bool):
    import math

    from codealign.dpo.train import make_trainer
    from codealign.evaluation.policy import resolve_policy

    steps = math.ceil(len(pairs) / params.batch_size)
    trainer = make_trainer(
        resolve_policy(sft),
        pairs,
        params,
        max_steps=steps,
        max_length=512,
        seed=0,
        work_dir=work / ("stored" if stored else "trl"),
        stored_reference=stored,
    )
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, trainer.per_sample


def sampling(sft: Path, world, prompts: int, max_new_tokens: int) -> dict:
    from codealign.evaluation import chat
    from codealign.evaluation.policy import load_policy, resolve_policy
    from codealign.lm.generation import generate

    policy = load_policy(resolve_policy(sft))
    texts = chat.render_all(policy.tokenizer, [t.instruction for t in world.pool[:prompts]])
    # min_new_tokens keeps every row generating to the same length, so both runs do the
    # same work whatever the random model samples.
    policy.model.generation_config.min_new_tokens = max_new_tokens
    out = {}
    for name, batch in (("batched", prompts), ("one_at_a_time", 1)):
        start = time.perf_counter()
        generate(
            policy.model,
            policy.tokenizer,
            texts,
            n=1,
            temperature=1.0,
            max_new_tokens=max_new_tokens,
            batch_size=batch,
            seed=0,
            progress=False,
        )
        elapsed = time.perf_counter() - start
        out[name] = {
            "seconds": round(elapsed, 3),
            "completions_per_s": round(prompts / elapsed, 2),
            "tokens_per_s": round(prompts * max_new_tokens / elapsed, 1),
        }
    out["speedup"] = round(out["one_at_a_time"]["seconds"] / out["batched"]["seconds"], 2)
    out.update(prompts=prompts, max_new_tokens=max_new_tokens)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    import logging
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.disable(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()

    from codealign.dpo.pairs import reference_logps
    from codealign.evaluation.policy import load_policy, resolve_policy
    from codealign.params.dpo import DpoParams
    from codealign.tinyworld.world import build_world

    world = build_world(seed=0, n_train=300, n_pool=max(args.pairs, args.prompts), n_eval=10)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sft = tiny_policy(work, world, args.hidden, args.layers)
        policy = load_policy(resolve_policy(sft), fused_lm_head=True)
        start = time.perf_counter()
        pairs, _ = reference_logps(
            policy.model,
            policy.tokenizer,
            pairs_for(world, args.pairs),
            batch_size=16,
            max_length=512,
            progress=False,
        )
        store_s = time.perf_counter() - start
        params = DpoParams.from_dict({"batch_size": args.batch_size, "lora_r": 8}, "dpo")
        runs = {True: [], False: []}
        losses = {}
        for _ in range(args.repeat):
            for stored in (False, True):
                seconds, per_sample = dpo_epoch(sft, pairs, params, work, stored)
                runs[stored].append(seconds)
                losses[stored] = per_sample
        key = lambda e: (e["step"], e["pair_id"])  # noqa: E731
        a = {key(e): e["loss"] for e in losses[True]}
        b = {key(e): e["loss"] for e in losses[False]}
        assert a.keys() == b.keys()
        diff = max(abs(a[k] - b[k]) for k in a)
        stored_s, trl_s = min(runs[True]), min(runs[False])
        result = {
            "dpo_epoch": {
                "pairs": len(pairs),
                "batch_size": args.batch_size,
                "model": f"llama hidden={args.hidden} layers={args.layers} + LoRA adapter",
                "trl_reference_pass_each_step_s": round(trl_s, 3),
                "stored_reference_logps_s": round(stored_s, 3),
                "speedup": round(trl_s / stored_s, 2),
                "one_off_reference_pass_s": round(store_s, 3),
                "per_sample_losses_compared": len(a),
                "max_abs_per_sample_loss_difference": diff,
                "losses_equal_within_1e-5": diff <= 1e-5,
            },
            "sampling": sampling(sft, world, args.prompts, args.max_new_tokens),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
