"""How many edits LintSeq's sequences have: the histogram, its summary and its plot.

Kept apart from `codealign.edits.lintseq` (a dependency of most stages) so that the
report of the `lintseq` stage can change without invalidating them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def edit_counts(records: Iterable[Mapping[str, Any]]) -> Counter:
    """Sequences per number of edits, over edit-sequence records (their `edits` lists)."""
    return Counter(len(record["edits"]) for record in records)


def summary(counts: Mapping[int, int]) -> dict[str, Any]:
    """`histogram` (edits -> sequences, every count from 1 to the largest), `sequences`,
    `mean`, `median` and `p90` (numpy's linear percentiles); nulls without sequences."""
    import numpy as np

    total = sum(counts.values())
    if not total:
        return {"histogram": {}, "sequences": 0, "mean": None, "median": None, "p90": None}
    top = max(counts)
    values = np.repeat(np.array(sorted(counts)), [counts[n] for n in sorted(counts)])
    return {
        "histogram": {str(n): int(counts.get(n, 0)) for n in range(1, top + 1)},
        "sequences": total,
        "mean": round(float(values.mean()), 3),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
    }


def plot(splits: Mapping[str, Mapping[int, int]], path: str | Path, title: str) -> None:
    """Bar chart: sequences per number of edits, one group of bars per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = max((max(c) for c in splits.values() if c), default=1)
    xs = list(range(1, top + 1))
    width = 0.8 / max(len(splits), 1)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for i, (split, counts) in enumerate(splits.items()):
        total = sum(counts.values()) or 1
        mean = sum(n * c for n, c in counts.items()) / total
        ax.bar(
            [x + (i - (len(splits) - 1) / 2) * width for x in xs],
            [counts.get(x, 0) for x in xs],
            width=width,
            label=f"{split} (mean {mean:.2f})",
        )
    ax.set_xticks(xs)
    ax.set_xlabel("edits in the sequence")
    ax.set_ylabel("sequences")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
