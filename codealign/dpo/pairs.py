"""Preference pairs from scored samples, with reference log-probs computed once.

Pairing: per task, chosen = a highest-scoring completion and rejected = a lowest-scoring
one (the first by completion id among equals, so the choice is deterministic). A task
whose completions all score the same gives no pair and is counted as a tie.

Reference log-probs: each pair is tokenized exactly as TRL's DPOTrainer tokenizes a
conversational example (chat template, completion starting where prompt and
prompt+answer tokens diverge, the trainer's collator and `max_length` truncation) and
scored by the same fused log-prob head TRL uses, under the reference (SFT) policy. The
sums are stored as TRL's `ref_chosen_logps` / `ref_rejected_logps` columns, so DPO never
runs the reference model again. The distance is the difference of the mean per-token
log-probs: chosen minus rejected. A pair whose prompt alone fills `max_length` is
dropped, as TRL would drop it, and counted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from codealign.evaluation import chat

log = logging.getLogger(__name__)


def mine_pairs(scored: Sequence[dict]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(pairs, counts): chosen = highest score, rejected = lowest, ties give no pair."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for record in scored:
        by_task[record["task_id"]].append(record)
    pairs, ties, single = [], 0, 0
    for task_id, samples in by_task.items():
        if len(samples) < 2:
            single += 1
            continue
        ordered = sorted(samples, key=lambda s: s["completion_id"])
        best = max(ordered, key=lambda s: s["score"])  # max/min keep the first of equals
        worst = min(ordered, key=lambda s: s["score"])
        if best["score"] == worst["score"]:
            ties += 1
            continue
        pairs.append(
            {
                "pair_id": task_id,
                "task_id": task_id,
                "question": best["question"],
                "adapter": best.get("adapter", 0),
                "chosen": best["completion"],
                "rejected": worst["completion"],
                "chosen_id": best["completion_id"],
                "rejected_id": worst["completion_id"],
                "chosen_score": best["score"],
                "rejected_score": worst["score"],
                "chosen_passed": bool(best["passed"]),
                # sample.add_reference: the task's reference solution, not a policy sample
                "chosen_reference": bool(best.get("reference", False)),
            }
        )
    counts = {"tasks": len(by_task), "pairs": len(pairs), "ties": ties, "single_sample": single}
    return pairs, counts


def dpo_example(pair: dict[str, Any]) -> dict[str, Any]:
    """The conversational `prompt, chosen, rejected` example TRL trains on."""
    return {
        "prompt": chat.messages(pair["question"]),
        "chosen": chat.answer_messages(pair["chosen"]),
        "rejected": chat.answer_messages(pair["rejected"]),
    }


def tokenize_pair(tokenizer, pair: dict[str, Any]) -> dict[str, list[int]]:
    """`prompt_ids, chosen_ids, rejected_ids` as DPOTrainer's `_prepare_dataset` builds them."""
    from trl.data_utils import common_prefix_length

    example = dpo_example(pair)

    def ids(messages, **kwargs):
        return tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, tools=None, **kwargs
        )["input_ids"]

    prompt_ids = ids(example["prompt"], add_generation_prompt=True)
    chosen_full = ids(example["prompt"] + example["chosen"])
    rejected_full = ids(example["prompt"] + example["rejected"])
    cut = min(
        common_prefix_length(prompt_ids, chosen_full),
        common_prefix_length(prompt_ids, rejected_full),
    )
    return {
        "prompt_ids": prompt_ids[:cut],
        "chosen_ids": chosen_full[cut:],
        "rejected_ids": rejected_full[cut:],
    }


def reference_logps(
    model,
    tokenizer,
    pairs: Sequence[dict[str, Any]],
    *,
    batch_size: int,
    max_length: int,
    adapter_of=None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """Pairs with reference log-probs and distance added, and the number dropped as too long.

    `model` must carry TRL's fused log-prob head (`load_policy(..., fused_lm_head=True)`).
    `adapter_of(pair)` names the adapter to score a pair with (routed specialists).
    """
    import torch
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    collator = DataCollatorForPreference(
        pad_token_id=tokenizer.pad_token_id, max_length=max_length, truncation_mode="keep_start"
    )
    tokenized, kept = [], []
    for pair in pairs:
        tokens = tokenize_pair(tokenizer, pair)
        if len(tokens["prompt_ids"]) >= max_length:
            continue
        tokenized.append(tokens)
        kept.append(pair)
    dropped = len(pairs) - len(kept)
    groups: dict[str | None, list[int]] = defaultdict(list)
    for i, pair in enumerate(kept):
        groups[adapter_of(pair) if adapter_of else None].append(i)
    out: list[dict[str, Any]] = [dict(p) for p in kept]
    bar = tqdm(total=len(kept), desc="reference log-probs", unit="pair", disable=not progress)
    model.eval()
    for adapter, members in groups.items():
        if adapter is not None:
            model.set_adapter(adapter)
        for start in range(0, len(members), batch_size):
            batch_index = members[start : start + batch_size]
            batch = collator([tokenized[i] for i in batch_index])
            batch = {key: value.to(model.device) for key, value in batch.items()}
            labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
            with torch.no_grad():
                outputs = model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    labels=labels,
                    fused_lm_head=True,
                    use_cache=False,
                )
            mask = batch["completion_mask"][..., 1:]
            logps = outputs.log_probs[:, -mask.size(1) :].sum(dim=1)
            counts = mask.sum(dim=1)
            half = len(batch_index)
            for row, i in enumerate(batch_index):
                record = out[i]
                record["ref_chosen_logps"] = float(logps[row])
                record["ref_rejected_logps"] = float(logps[half + row])
                record["chosen_tokens"] = int(counts[row])
                record["rejected_tokens"] = int(counts[half + row])
                record["distance"] = record["ref_chosen_logps"] / max(
                    1, record["chosen_tokens"]
                ) - record["ref_rejected_logps"] / max(1, record["rejected_tokens"])
            bar.update(len(batch_index))
    bar.close()
    return out, dropped
