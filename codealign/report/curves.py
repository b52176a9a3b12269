"""Section "Training curves": every dvclive folder under metrics/, one figure per family."""

from __future__ import annotations

import math
from pathlib import Path

from codealign.errors import CodealignError
from codealign.report.common import Context, natural


def read_tsv_series(path: Path) -> tuple[str, list[float], list[float]]:
    """(name, steps, values) of a dvclive `.tsv` file: a `step` column and the metric's column."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise CodealignError(f"{path}: empty file, expected a header with a 'step' column")
    header = lines[0].split("\t")
    columns = [c for c in header if c not in ("step", "timestamp")]
    if "step" not in header or not columns:
        raise CodealignError(f"{path}:1: expected a 'step' column and a metric column")
    name = columns[-1]
    step_at, value_at = header.index("step"), header.index(name)
    steps, values = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            steps.append(float(cells[step_at]))
            values.append(float(cells[value_at]))
        except (ValueError, IndexError):
            raise CodealignError(f"{path}:{lineno}: expected numbers, got {line!r}") from None
    return name, steps, values


def curve_families(metrics_dir: Path) -> dict[str, dict[str, dict[str, Path]]]:
    """`{family: {metric: {run: tsv}}}` for every dvclive folder `metrics/<family>/plots/metrics`.

    A family with one model has `<split>/<metric>.tsv` (run = the family); one with several
    has `<run>/<split>/<metric>.tsv` (e.g. one run per SFT adapter).
    """
    families: dict[str, dict[str, dict[str, Path]]] = {}
    for root in sorted(metrics_dir.glob("*/plots/metrics")):
        family = root.parent.parent.name
        series: dict[str, dict[str, Path]] = {}
        for tsv in sorted(root.rglob("*.tsv")):
            parts = tsv.relative_to(root).with_suffix("").parts
            run = parts[0] if len(parts) > 2 else family
            metric = "/".join(parts[-2:])
            series.setdefault(metric, {})[run] = tsv
        if series:
            families[family] = series
    return families


def _metric_order(metric: str) -> tuple:
    split, _, name = metric.rpartition("/")
    return ({"train": 0, "eval": 1}.get(split, 2), name != "loss" and "loss" not in name, metric)


def section_curves(ctx: Context) -> list[str]:
    lines = ["## Training curves", ""]
    families = curve_families(ctx.metrics_dir)
    if not families:
        return lines + [
            f"*Not run: no dvclive curves under {ctx.shown('*/plots/metrics')}; they are "
            "written by `dvc repro base_model` and `dvc repro sft`.*"
        ]
    for family, series in families.items():
        metrics = sorted(series, key=_metric_order)
        runs = sorted({run for by_run in series.values() for run in by_run}, key=natural)
        data = {
            metric: {run: read_tsv_series(path) for run, path in series[metric].items()}
            for metric in metrics
        }

        def plot(fig, metrics=metrics, runs=runs, data=data) -> None:
            cols = min(2, len(metrics))
            rows = math.ceil(len(metrics) / cols)
            axes = fig.subplots(rows, cols, squeeze=False).ravel()
            for ax, metric in zip(axes, metrics, strict=False):
                for run in runs:
                    if run in data[metric]:
                        _, steps, values = data[metric][run]
                        ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=run)
                ax.set_title(metric)
                ax.set_xlabel("step")
                ax.xaxis.get_major_locator().set_params(integer=True)
                if len(runs) > 1:
                    ax.legend(fontsize="small")
            for ax in axes[len(metrics) :]:
                ax.axis("off")
            fig.tight_layout()

        cols = min(2, len(metrics))
        size = (5.0 * cols, 3.0 * math.ceil(len(metrics) / cols))
        lines += [
            f"### {family}",
            "",
            f"{len(runs)} run{'s' if len(runs) > 1 else ''} "
            f"({', '.join(runs)}); {ctx.shown(family + '/plots/metrics')}.",
            "",
            ctx.draw(f"curves_{family}.png", f"{family} training curves", plot, figsize=size),
            "",
        ]
    return lines[:-1]
