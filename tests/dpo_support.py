"""Shared pieces of the curriculum-DPO tests: a tiny chat model, a LoRA adapter, pairs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_model(out: Path, texts: list[str], seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama with a BPE tokenizer and the chat template."""
    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, train_tokenizer

    params = BaseModelParams(
        vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64
    )
    tokenizer = train_tokenizer(texts, params.vocab_size)
    model = build_model(params, tokenizer, seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def lora_adapter(base_dir: Path, out: Path, seed: int = 0) -> Path:
    """A LoRA adapter with random (non-zero) weights, so it differs from its base model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(out)
    return out


def world_texts(world) -> list[str]:
    return [t.prompt + t.canonical_solution for t in world.train[:200]] + [
        t.instruction for t in world.train[:200]
    ]


def crafted_pairs(world, count: int) -> list[dict]:
    """Pairs of a passing canonical program against a failing one, for pool tasks."""
    pairs = []
    for task in world.pool[:count]:
        pairs.append(
            {
                "pair_id": task.task_id,
                "task_id": task.task_id,
                "question": task.instruction,
                "adapter": 0,
                "chosen": task.prompt + task.canonical_solution,
                "rejected": task.prompt + "    return None\n",
                "chosen_passed": True,
            }
        )
    return pairs
