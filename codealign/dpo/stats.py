"""Intervals and tests over tasks: the unit of noise of a benchmark is the task, not the sample.

Samples of one task are not independent draws of a model's skill: ten samples of one task
say much about that task and nothing about the next, so an interval over samples (the
"±0.02 (640 samples)" kind) is too narrow whenever tasks differ in difficulty. Here:

- `bootstrap_ci(values)`: the mean of `values` and its percentile-bootstrap interval (the
  one implementation: seeds of the DPO experiment, tasks of a benchmark);
- `task_scores(verdicts)`: each task's mean of a verdict field (pass rate by default);
- `task_ci(verdicts)`: a benchmark score with its interval from resampling *tasks*;
- `task_pass_at_k(verdicts, k)`, `task_passk_ci(verdicts, k)`: the same for pass@k, each
  task's unbiased estimate resampled (the `evaluate` stage's intervals);
- `seeds_then_tasks(per_seed)`: paired differences over seeds and tasks, resampled seeds
  first and then tasks, with the minimum effect detectable at 80% power (`codealign
  findings`);
- `paired_comparison(a, b)`: two models on the same tasks: the mean per-task difference,
  its bootstrap-over-tasks interval, and a paired permutation test (scipy's
  `permutation_test`, swapping the two models' scores within each task);
- `compare_on_tasks(a_verdicts, b_verdicts)`: the paired comparison of two models'
  verdicts with its `conclusion` ('inconclusive' when the interval contains 0):
  `dpo_compare`'s curriculum against shuffled on the final benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Mean of `values` and the percentile-bootstrap interval of that mean.

    With three seeds the interval is coarse (only 10 distinct resamples exist); it is
    reported because it is honest about that, not because it is tight.
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {
        "mean": float(data.mean()),
        "low": float(low),
        "high": float(high),
        "n": int(data.size),
        "confidence": confidence,
    }


def task_scores(verdicts: Iterable[Mapping[str, Any]], field: str = "passed") -> dict[str, float]:
    """Each task's mean of `field` over its samples (`passed`: the task's pass rate)."""
    totals: dict[str, list[float]] = {}
    for verdict in verdicts:
        totals.setdefault(str(verdict["task_id"]), []).append(float(verdict[field]))
    return {task: sum(v) / len(v) for task, v in totals.items()}


def task_pass_at_k(verdicts: Iterable[Mapping[str, Any]], k: int) -> dict[str, float]:
    """Each task's unbiased pass@k from its n samples (k = 1: its pass rate)."""
    from codealign.passk import estimate_pass_at_k

    counts: dict[str, list[int]] = {}
    for verdict in verdicts:
        n_c = counts.setdefault(str(verdict["task_id"]), [0, 0])
        n_c[0] += 1
        n_c[1] += bool(verdict["passed"])
    return {task: estimate_pass_at_k(n, c, k) for task, (n, c) in counts.items()}


def task_passk_ci(
    verdicts: Iterable[Mapping[str, Any]],
    k: int,
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, float]:
    """pass@k (the mean over tasks of each task's unbiased estimate, as `passk.pass_at_k`
    gives it) and its bootstrap interval over tasks; `n` is the number of tasks."""
    scores = task_pass_at_k(verdicts, k)
    return bootstrap_ci(
        list(scores.values()), confidence=confidence, resamples=resamples, seed=seed
    )


def task_ci(
    verdicts: Iterable[Mapping[str, Any]],
    field: str = "passed",
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, float]:
    """The benchmark score (mean over tasks of each task's mean `field`) and its bootstrap
    interval over tasks; `n` is the number of tasks, whatever the samples per task."""
    scores = task_scores(verdicts, field)
    return bootstrap_ci(
        list(scores.values()), confidence=confidence, resamples=resamples, seed=seed
    )


def paired_comparison(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Model a against model b on the same tasks (per-task scores, e.g. `task_scores`).

    `mean_difference` is mean(a - b) over tasks with its bootstrap-over-tasks interval
    (`low`, `high`); `p_value` is the two-sided paired permutation test of a zero mean
    difference (exact when 2^tasks <= resamples). `wins`, `losses`, `ties` count tasks.
    """
    import numpy as np
    from scipy.stats import permutation_test

    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ValueError(
            "paired_comparison needs the same tasks for both models: "
            f"only in a: {only_a[:3]}, only in b: {only_b[:3]}"
        )
    tasks = sorted(a)
    x = np.asarray([a[t] for t in tasks], dtype=float)
    y = np.asarray([b[t] for t in tasks], dtype=float)
    diff = x - y
    ci = bootstrap_ci(diff, confidence=confidence, resamples=resamples, seed=seed)
    if np.all(diff == 0):
        p_value = 1.0
    else:
        test = permutation_test(
            (x, y),
            lambda u, v, axis: np.mean(u - v, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            alternative="two-sided",
            random_state=seed,
        )
        p_value = float(test.pvalue)
    return {
        "mean_difference": ci["mean"],
        "low": ci["low"],
        "high": ci["high"],
        "p_value": p_value,
        "tasks": len(tasks),
        "wins": int((diff > 0).sum()),
        "losses": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),
        "confidence": confidence,
    }


def conclusion(comparison: Mapping[str, Any], a: str = "a", b: str = "b") -> str:
    """What a paired comparison's interval supports, and nothing stronger."""
    level = f"{comparison['confidence']:.0%}"
    if comparison["low"] <= 0 <= comparison["high"]:
        return f"inconclusive: the {level} interval over tasks contains 0"
    better, worse = (a, b) if comparison["low"] > 0 else (b, a)
    return (
        f"{better} above {worse} on these tasks: the {level} interval over tasks excludes 0 "
        "(one model each: training noise across seeds is not in it)"
    )


def compare_on_tasks(
    a_verdicts: Iterable[Mapping[str, Any]],
    b_verdicts: Iterable[Mapping[str, Any]],
    *,
    names: tuple[str, str] = ("a", "b"),
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Two models' verdicts on the same tasks: each one's pass rate, the paired comparison
    of their per-task pass rates (`paired_comparison`) and its `conclusion`."""
    a, b = task_scores(a_verdicts), task_scores(b_verdicts)
    result = paired_comparison(a, b, confidence=confidence, resamples=resamples, seed=seed)
    result[f"{names[0]}_pass@1"] = sum(a.values()) / len(a)
    result[f"{names[1]}_pass@1"] = sum(b.values()) / len(b)
    result["conclusion"] = conclusion(result, *names)
    return result


def seeds_then_tasks(
    per_seed: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    power: float = 0.8,
) -> dict[str, Any]:
    """Mean of paired differences and its bootstrap interval over seeds, then tasks.

    `per_seed[i]` holds seed i's per-task differences (arm a minus arm b on the same
    tasks), or one run-level difference where no per-task outcomes exist. Each resample
    draws seeds with replacement and, for every seed drawn, its tasks with replacement;
    the statistic is the mean over drawn seeds of each seed's mean over drawn tasks. `se`
    is the standard deviation of the resampled means; `mde` the smallest true difference
    a two-sided test at 1 - `confidence` detects with probability `power` under this
    design and this variance, (z_(1-alpha/2) + z_power) * se.
    """
    import numpy as np
    from scipy.stats import norm

    arrays = [np.asarray(values, dtype=float) for values in per_seed]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("seeds_then_tasks needs at least one seed, each with a value")
    rng = np.random.default_rng(seed)
    n_seeds = len(arrays)
    # means[j, r, c]: seed j's task-resampled mean for resample r, seed slot c.
    means = np.stack(
        [a[rng.integers(0, a.size, size=(resamples, n_seeds, a.size))].mean(axis=2) for a in arrays]
    )
    picks = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    slots = np.arange(n_seeds)[None, :]
    rows = np.arange(resamples)[:, None]
    stats = means[picks, rows, slots].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    se = float(stats.std(ddof=1)) if resamples > 1 else 0.0
    z = float(norm.ppf(1 - (1 - confidence) / 2) + norm.ppf(power))
    return {
        "mean": float(np.mean([a.mean() for a in arrays])),
        "low": float(low),
        "high": float(high),
        "se": se,
        "mde": z * se,
        "seeds": n_seeds,
        "tasks": [int(a.size) for a in arrays],
        "confidence": confidence,
        "power": power,
    }
