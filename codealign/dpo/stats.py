"""The seed experiment's statistic: mean and bootstrap confidence interval of a difference."""

from __future__ import annotations

from collections.abc import Sequence


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
