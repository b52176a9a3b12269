"""Tiny base models, SFT records and untrained adapters for the cluster/sft/routing tests.

Everything here builds in seconds on a CPU: a ~20k-parameter Llama with a real BPE
tokenizer and chat template (codealign.pretraining.base_model), and LoRA adapters created with
PEFT and saved as the sft stage saves them, with random (non-zero) weights so that
each adapter changes the model's output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ADD = "Write a function add_{i}(x) that returns x plus {i}."
ADD_CODE = 'def add_{i}(x):\n    """Return x plus {i}."""\n    return x + {i}\n'
REP = "Write a function rep_{i}(s) that returns the string s repeated {i} times."
REP_CODE = 'def rep_{i}(s):\n    """Return s repeated {i} times."""\n    return s * {i}\n'


def sft_records(n_per_family: int, start: int = 0) -> list[dict]:
    """Two families of SFT records (arithmetic, strings), interleaved."""
    records = []
    for i in range(start, start + n_per_family):
        for family, (question, code) in {"add": (ADD, ADD_CODE), "rep": (REP, REP_CODE)}.items():
            records.append(
                {
                    "id": f"{family}/{i}",
                    "question": question.format(i=i),
                    "code": code.format(i=i),
                    "keywords": [family],
                    "source": "test",
                }
            )
    return records


def make_base_model(path: Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a tiny random Llama with a BPE tokenizer and the project's chat template."""
    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, train_tokenizer

    texts = [r["question"] + "\n" + r["code"] for r in sft_records(30)]
    tokenizer = train_tokenizer(texts * 3, 320)
    params = BaseModelParams(
        hidden_size=hidden, num_layers=2, num_heads=2, intermediate_size=2 * hidden, block_size=64
    )
    model = build_model(params, tokenizer, seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_random_adapter(base_dir: Path, out: Path, seed: int, r: int = 4) -> int:
    """A LoRA adapter with random A and B over `base_dir`, saved to `out`; returns its size."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, config)
    model.save_pretrained(out)
    return sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)


def make_router_dir(
    base_dir: Path,
    out: Path,
    centroids: np.ndarray,
    embedder: dict | None = None,
    seed: int = 0,
) -> Path:
    """A models/sft-style directory with one random adapter per centroid."""
    from codealign.specialists.adapters import model_digest, write_adapter_meta, write_router

    out.mkdir(parents=True)
    base = model_digest(base_dir)
    adapters = []
    for cluster in range(len(centroids)):
        name = f"adapter_{cluster}"
        save_random_adapter(base_dir, out / name, seed + cluster)
        write_adapter_meta(out / name, cluster, base_dir, base)
        adapters.append({"cluster": cluster, "path": name})
    embedder = embedder or {
        "model": "bundled:all-MiniLM-L6-v2",
        "identity": None,
        "prefix": "",
        "normalize": True,
        "max_seq_length": None,
    }
    write_router(out, base_dir, base, centroids, embedder, adapters)
    return out
