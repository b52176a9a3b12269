"""The figures of the curriculum-DPO experiment (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codealign.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)


def distance_histogram(distances: Sequence[float], edges: Sequence[float], path) -> None:
    """Histogram of pair distances with the bucket edges as vertical lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if distances:
        ax.hist(distances, bins=min(40, max(5, len(distances) // 3)), color="#4c72b0")
    for edge in edges:
        ax.axvline(edge, color="#c44e52", linestyle="--", linewidth=1)
    ax.set_xlabel("mean log-prob(chosen) - mean log-prob(rejected), reference policy")
    ax.set_ylabel("pairs")
    ax.set_title(f"{len(distances)} pairs; dashed: bucket edges")
    _save(fig, path)


def loss_vs_distance(points: Sequence[tuple[float, float]], path, title: str) -> None:
    """Per-sample DPO loss against pair distance (one point per pair)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=10, alpha=0.7, color="#4c72b0")
    ax.set_xlabel("distance under the reference policy")
    ax.set_ylabel("per-sample DPO loss")
    ax.set_title(title)
    _save(fig, path)


def pass_curves(curves: dict[str, Sequence[dict[str, Any]]], boundaries: Sequence[int], path):
    """pass@1 against optimizer step, one line per run; dotted lines at stage boundaries."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, points in curves.items():
        points = [p for p in points if p.get("pass@1") is not None]
        ax.plot([p["step"] for p in points], [p["pass@1"] for p in points], marker="o", label=name)
    for step in boundaries:
        ax.axvline(step, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("DPO optimizer step")
    ax.set_ylabel("pass@1")
    ax.legend()
    _save(fig, path)
