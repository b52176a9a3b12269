"""pass@1 of a policy (model dir, adapter dir or routed specialists) on the benchmarks.

The policy is asked each benchmark question through its chat template, exactly as DPO
prompts were put to it, and answers with whole functions, scored as full programs in the
sandbox. pass@1 is the unbiased estimate from `n` samples per task at a temperature; the
seed is the same for every checkpoint, so two checkpoints are compared on the same
random draws.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codealign.dpo.policy import load_policy, program_of, question_of, resolve_policy
from codealign.dpo.sample import sample_completions

log = logging.getLogger(__name__)


def load_benchmarks(names: Sequence[str], seed_dir: Path, raw_dir: Path, limit: int):
    from codealign.evaluation.evaluate import load_benchmark

    return [load_benchmark(name, seed_dir, raw_dir, limit) for name in names]


def evaluate_policy(
    policy_dir: Path,
    benchmarks: Sequence[Any],
    *,
    mode: str,
    n: int,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    workers: int,
    timeout: float,
    seed: int,
    base_dir: Path | None = None,
) -> dict[str, float]:
    """`{"<benchmark>/pass@1": value}` and the mean over benchmarks as `pass@1`."""
    from codealign.execution import Limits, Sandbox, pass_at_k
    from codealign.problems import problem_from_record

    policy = load_policy(resolve_policy(policy_dir, mode, base_dir))
    result: dict[str, float] = {}
    with Sandbox(workers=workers, limits=Limits(timeout=timeout)) as sandbox:
        for bench in benchmarks:
            questions = [question_of(r) for r in bench.records]
            answers, _ = sample_completions(
                policy,
                questions,
                n=n,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                seed=seed,
                progress=False,
            )
            samples = [
                {"task_id": str(r["task_id"]), "completion_id": i, "completion": program_of(text)}
                for r, texts in zip(bench.records, answers, strict=True)
                for i, text in enumerate(texts)
            ]
            problems = {
                str(r["task_id"]): problem_from_record(r, f"{bench.name}:{i + 1}")
                for i, r in enumerate(bench.records)
            }
            verdicts = sandbox.score(problems, samples, full_program=True)
            result[f"{bench.name}/pass@1"] = pass_at_k(verdicts, [1])["pass@1"]
    values = list(result.values())
    result["pass@1"] = sum(values) / len(values) if values else 0.0
    log.info("%s: %s", policy_dir, result)
    return result
