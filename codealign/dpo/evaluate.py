"""pass@1 of a policy (model dir, adapter dir or routed specialists) on the benchmarks.

DPO's stage-boundary evaluations go through the one evaluation path,
`codealign.evaluation.evaluate.evaluate`: the policy is asked each benchmark question in
the chat format DPO prompts were put to it (`codealign.evaluation.chat`), answers with
whole functions, scored as full programs in the sandbox. pass@1 is the unbiased estimate
from `n` samples per task at a temperature; the seed is the same for every checkpoint, so
two checkpoints are compared on the same random draws, and the `evaluate` stage asked
about the same policy with the same n, temperature, seed and batch size draws the same
samples and verdicts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codealign.evaluation.evaluate import Evaluation, evaluate, load_benchmark
from codealign.evaluation.policy import SamplingSpec, load_policy, resolve_policy

log = logging.getLogger(__name__)


def load_benchmarks(names: Sequence[str], seed_dir: Path, raw_dir: Path, limit: int):
    return [load_benchmark(name, seed_dir, raw_dir, limit) for name in names]


def evaluate_runs(
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
) -> dict[str, Evaluation]:
    """Each benchmark's `Evaluation` (samples, verdicts, metrics) of the policy."""
    from codealign.execution import Limits, Sandbox

    policy = load_policy(resolve_policy(policy_dir, mode, base_dir))
    sampling = SamplingSpec(n, temperature, max_new_tokens, batch_size, seed)
    with Sandbox(workers=workers, limits=Limits(timeout=timeout)) as sandbox:
        return {
            bench.name: evaluate(policy, bench, sampling, sandbox, progress=False)
            for bench in benchmarks
        }


def evaluate_policy(
    policy_dir: Path, benchmarks: Sequence[Any], **options: Any
) -> dict[str, float]:
    """`{"<benchmark>/pass@1": value}` and the mean over benchmarks as `pass@1`
    (options: those of `evaluate_runs`)."""
    runs = evaluate_runs(policy_dir, benchmarks, **options)
    result = {f"{name}/pass@1": run.metrics["pass@1"] for name, run in runs.items()}
    values = list(result.values())
    result["pass@1"] = sum(values) / len(values) if values else 0.0
    log.info("%s: %s", policy_dir, result)
    return result
