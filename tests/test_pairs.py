"""Pair mining rules, and stored reference log-probs equal to TRL's own reference pass."""

import pytest
from dpo_support import crafted_pairs, lora_adapter, tiny_model, world_texts

from codealign.dpo.pairs import mine_pairs, reference_logps
from codealign.evaluation.policy import load_policy, resolve_policy
from codealign.lm.generation import load_causal_lm


def scored(task, cid, score, passed=None):
    return {
        "task_id": task,
        "completion_id": cid,
        "completion": f"code {task} {cid}",
        "question": f"q {task}",
        "score": score,
        "passed": score == 1.0 if passed is None else passed,
    }


def test_chosen_is_highest_rejected_lowest_and_ties_give_no_pair():
    records = [
        scored("a", 0, 0.5),
        scored("a", 1, 1.0),
        scored("a", 2, 0.0),
        scored("a", 3, 1.0),
        scored("b", 0, 0.25),
        scored("b", 1, 0.25),  # tie
        scored("c", 0, 0.0),
        scored("c", 1, 0.0),
        scored("c", 2, 0.0),  # tie at zero
        scored("d", 0, 1.0),  # one sample: nothing to compare
        scored("e", 2, 0.0),
        scored("e", 1, 0.0),
        scored("e", 0, 0.75),
    ]
    pairs, counts = mine_pairs(records)
    assert counts == {"tasks": 5, "pairs": 2, "ties": 2, "single_sample": 1}
    by_id = {p["pair_id"]: p for p in pairs}
    assert (by_id["a"]["chosen_id"], by_id["a"]["rejected_id"]) == (1, 2)  # first of equals
    assert by_id["a"]["chosen_score"] == 1.0 and by_id["a"]["chosen_passed"]
    assert (by_id["e"]["chosen_id"], by_id["e"]["rejected_id"]) == (0, 1)
    assert not by_id["e"]["chosen_passed"]


def test_all_ties_give_no_pairs():
    pairs, counts = mine_pairs([scored("a", i, 0.0) for i in range(4)])
    assert pairs == [] and counts["ties"] == 1


def _trl_reference(model, tokenizer, pairs, tmp_path, peft_config=None):
    """TRL's own precomputed reference log-probs for the same pairs."""
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from codealign.dpo.pairs import dpo_example

    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        precompute_ref_log_probs=True,
        max_length=256,
        per_device_train_batch_size=3,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([dpo_example(p) for p in pairs]),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    data = trainer.train_dataset
    return data["ref_chosen_logps"], data["ref_rejected_logps"]


@pytest.mark.slow
@pytest.mark.parametrize("with_adapter", [True, False], ids=["sft-adapter", "plain-model"])
def test_stored_reference_logps_equal_trls(small_world, tmp_path, with_adapter):
    from peft import LoraConfig

    base = tiny_model(tmp_path / "base", world_texts(small_world))
    policy_dir = lora_adapter(base, tmp_path / "sft") if with_adapter else base
    pairs = crafted_pairs(small_world, 7)
    policy = load_policy(resolve_policy(policy_dir, "single"), fused_lm_head=True)
    ours, dropped = reference_logps(
        policy.model, policy.tokenizer, pairs, batch_size=3, max_length=256, progress=False
    )
    assert dropped == 0
    # Same batches as TRL's pass (batch 3); other batch shapes differ by float32 rounding
    # only (one ulp of a ~-250 sum, 1.5e-5, a relative 1e-7).
    # TRL's PEFT path: a pretrained adapter is copied as the frozen "ref" adapter; a new
    # LoRA on a plain model is disabled for the reference pass.
    tokenizer, model = load_causal_lm(base)
    if with_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, policy_dir, is_trainable=True)
    peft_config = None if with_adapter else LoraConfig(r=4, target_modules=["q_proj"])
    chosen, rejected = _trl_reference(model, tokenizer, pairs, tmp_path, peft_config)
    assert [p["ref_chosen_logps"] for p in ours] == pytest.approx(chosen, abs=1e-5)
    assert [p["ref_rejected_logps"] for p in ours] == pytest.approx(rejected, abs=1e-5)
    for p in ours:
        expected = p["ref_chosen_logps"] / p["chosen_tokens"] - (
            p["ref_rejected_logps"] / p["rejected_tokens"]
        )
        assert p["distance"] == pytest.approx(expected)


@pytest.mark.slow
def test_a_prompt_longer_than_max_length_is_dropped_as_trl_drops_it(small_world, tmp_path):
    base = tiny_model(tmp_path / "base", world_texts(small_world))
    pairs = crafted_pairs(small_world, 3)
    pairs[1]["question"] = "word " * 400
    policy = load_policy(resolve_policy(base, "single"), fused_lm_head=True)
    out, dropped = reference_logps(
        policy.model, policy.tokenizer, pairs, batch_size=2, max_length=64, progress=False
    )
    assert dropped == 1 and [p["pair_id"] for p in out] == [
        pairs[0]["pair_id"],
        pairs[2]["pair_id"],
    ]
