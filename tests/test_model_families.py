"""The paper profile's two model families: phi-2 (params/paper.yaml) and Qwen2.5-Coder-1.5B
(params/paper_qwen.yaml), each built tiny from its vendored config, its configured LoRA
target modules present, and one SFT and one DPO step through the project's trainers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from codealign.curation.datasets import load_mbpp, mbpp_to_sft
from codealign.lm.fetch import build_tiny, vendored_config
from codealign.params import load_params

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"paper": "microsoft/phi-2", "paper_qwen": "Qwen/Qwen2.5-Coder-1.5B"}

# key -> (paper.yaml, paper_qwen.yaml)
DIFFERENCES = {
    "base_model.name": ("microsoft/phi-2", "Qwen/Qwen2.5-Coder-1.5B"),
    "dpo.target_modules": (
        ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    ),
}


def flat(path: Path) -> dict:
    out = {}
    for key, value in yaml.safe_load(path.read_text(encoding="utf-8")).items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def test_the_qwen_profile_differs_from_paper_in_the_model_alone():
    paper, qwen = flat(ROOT / "params/paper.yaml"), flat(ROOT / "params/paper_qwen.yaml")
    assert set(paper) == set(qwen)
    assert {k: (paper[k], qwen[k]) for k in paper if paper[k] != qwen[k]} == DIFFERENCES


def test_the_vendored_qwen_config_is_the_published_architecture():
    config = vendored_config("Qwen/Qwen2.5-Coder-1.5B")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    # The model card: 1.54B parameters, 28 layers, 12 query and 2 key/value heads, tied
    # embeddings, a 151,936-token vocabulary.
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == 1.54
    assert (config["num_hidden_layers"], config["num_attention_heads"]) == (28, 12)
    assert config["num_key_value_heads"] == 2 and config["tie_word_embeddings"]


@pytest.fixture(scope="module")
def texts():
    return [t for r in load_mbpp("train", ROOT / "data/raw")[:200] for t in (r["text"], r["code"])]


@pytest.mark.parametrize("profile", sorted(FAMILIES))
def test_a_family_builds_tiny_and_trains_one_sft_and_one_dpo_step(profile, texts, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from codealign.dpo.train import make_trainer
    from codealign.evaluation.policy import PolicySpec
    from codealign.specialists.sft import train_adapter

    params = load_params(ROOT / f"params/{profile}.yaml")
    name = params["base_model"].name
    assert name == FAMILIES[profile]
    base = tmp_path / "base"
    build_tiny(name, base, texts, seed=0)
    model = AutoModelForCausalLM.from_pretrained(base)
    assert type(model).__name__ == vendored_config(name)["architectures"][0]
    linear = {
        n.rsplit(".", 1)[-1]: m for n, m in model.named_modules() if type(m).__name__ == "Linear"
    }
    assert set(params["dpo"].target_modules) <= set(linear), "a DPO target module is missing"
    if profile == "paper_qwen":  # grouped-query attention survives the shrink
        assert linear["k_proj"].out_features < linear["q_proj"].out_features

    records = mbpp_to_sft(load_mbpp("train", ROOT / "data/raw")[:4])
    sft = dataclasses.replace(
        params["sft"], quantization="none", compute_dtype="float32", optimizer="adamw_torch",
        max_length=128, batch_size=2, grad_accum=1, gradient_checkpointing=False,
        save_steps=1000, logging_steps=1,
    )  # fmt: skip
    adapter = tmp_path / "sft"
    report = train_adapter(base, records, [], sft, adapter, tmp_path / "ckpt", 0, max_steps=1)
    assert report["steps"] == 1 and report["trainable_parameters"] > 0
    trained = load_file(adapter / "adapter_model.safetensors")
    for module in params["dpo"].target_modules:  # all-linear: every one of them
        assert any(f".{module}.lora_A" in key for key in trained), module

    pairs = [
        {"pair_id": f"p{i}", "question": r["question"], "chosen": r["code"], "rejected": "pass"}
        for i, r in enumerate(records)
    ]
    dpo = dataclasses.replace(
        params["dpo"], dtype="float32", batch_size=2, grad_accum=1,
        gradient_checkpointing=False, save_steps=0,
    )  # fmt: skip
    trainer = make_trainer(
        PolicySpec(base), pairs, dpo, max_steps=1, max_length=128, seed=0,
        work_dir=tmp_path / "dpo", stored_reference=False,
    )  # fmt: skip
    trainer.train()
    lora = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    for module in params["dpo"].target_modules:
        assert any(f".{module}.lora_A" in n for n in lora), module
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in trainer.per_sample)
    assert len(trainer.per_sample) == 2
