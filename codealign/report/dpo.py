"""Section "Curriculum DPO": the curriculum, the training runs, curriculum against shuffled
(with a bootstrap band over seeds where `metrics/dpo_seeds.json` exists) and per-sample loss
against distance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import read_json
from codealign.params.report import ReportParams
from codealign.report.common import (
    DPO_SEEDS,
    NUMBER,
    OPTIONAL_NUMBER,
    Context,
    base_digests,
    cell,
    natural,
    need,
    table,
)


def _curve(points: Any, where: str) -> tuple[list[float], list[float]]:
    if not isinstance(points, list) or not points:
        raise CodealignError(f"{where} must be a non-empty list of {{step, pass@1}} points")
    steps, values = [], []
    for i, point in enumerate(points):
        steps.append(float(need(point, "step", f"{where}[{i}]", NUMBER)))
        values.append(float(need(point, "pass@1", f"{where}[{i}]", NUMBER)))
    return steps, values


def read_seed_curves(
    path: Path,
) -> tuple[str | None, list[dict[str, tuple[list[float], list[float]]]]]:
    """The base-model digest and each seed's (steps, pass@1) curves from a
    `dpo_seeds.json` (module docstring)."""
    raw = read_json(path)
    where = str(path)
    runs = need(raw, "seeds", where, list)
    if not runs:
        raise CodealignError(f"{where}: seeds: expected a non-empty list of per-seed curves")
    digest = raw.get("base_model_digest")
    if digest is not None and not isinstance(digest, str):
        raise CodealignError(f"{where}: base_model_digest must be a string")
    seeds = []
    for i, run in enumerate(runs):
        curves = {
            arm: _curve(need(run, arm, f"{where}: seeds[{i}]"), f"{where}: seeds[{i}].{arm}")
            for arm in ("curriculum", "shuffled")
        }
        seeds.append(curves)
    lengths = {len(s[arm][0]) for s in seeds for arm in s}
    if len(lengths) != 1:
        raise CodealignError(
            f"{where}: every seed's curves must have the same number of points "
            f"(one per stage boundary), got {sorted(lengths)}"
        )
    return digest, seeds


def seed_band(
    seeds: list[dict[str, tuple[list[float], list[float]]]], params: ReportParams
) -> dict[str, list[dict[str, float]]]:
    """Per arm (and their difference), per boundary: mean and bootstrap interval over seeds."""
    from codealign.dpo.stats import bootstrap_ci

    arms = {arm: [s[arm][1] for s in seeds] for arm in ("curriculum", "shuffled")}
    arms["difference"] = [
        [c - s for c, s in zip(cur, shu, strict=True)]
        for cur, shu in zip(arms["curriculum"], arms["shuffled"], strict=True)
    ]
    return {
        arm: [
            bootstrap_ci(
                [curve[i] for curve in curves],
                confidence=params.confidence,
                resamples=params.resamples,
                seed=i,
            )
            for i in range(len(curves[0]))
        ]
        for arm, curves in arms.items()
    }


def section_dpo(ctx: Context) -> list[str]:
    lines = ["## Curriculum DPO", "", "### Curriculum", ""]
    name = "curriculum.json"
    data = ctx.load(name)
    if data is None:
        lines += ctx.not_run(name, "curriculum")
    else:
        where = str(ctx.path(name))
        stages = need(data, "stages", where, list)
        pruned = need(data, "pruned", where, dict)
        rows = []
        for i, stage in enumerate(stages):
            at = f"{where}: stages[{i}]"
            low = need(stage, "low", at, OPTIONAL_NUMBER)
            high = need(stage, "high", at, OPTIONAL_NUMBER)
            span = "–" if low is None and high is None else f"{cell(low, 3)} … {cell(high, 3)}"
            rows.append(
                [
                    cell(need(stage, "stage", at, int)),
                    cell(need(stage, "bucket", at, int)),
                    span,
                    cell(need(stage, "pairs_before_pruning", at, int)),
                    cell(need(stage, "pairs", at, int)),
                ]
            )
        pruned_text = ", ".join(f"{r}: {n}" for r, n in sorted(pruned.items())) or "none"
        lines += [
            f"{cell(need(data, 'pairs_in', where, int))} pairs in, "
            f"{cell(need(data, 'pairs_kept', where, int))} kept "
            f"(pruned: {pruned_text}); {cell(data.get('ties'))} of {cell(data.get('tasks'))} "
            f"tasks tied and gave no pair; order {data.get('order', '?')} "
            f"({ctx.shown(name)}).",
            "",
        ]
        if data.get("reference_chosen"):
            lines += [
                f"*{cell(data['reference_chosen'])} kept pairs have a task's reference "
                "solution as the chosen answer (`sample.add_reference`: the smoke profile's "
                "model passes no test); those pairs are not on-policy.*",
                "",
            ]
        lines += [
            *table(["Stage", "Bucket", "Distance", "Pairs before pruning", "Pairs"], rows),
        ]
        figure = ctx.include(
            "curriculum/distance_hist.png", "curriculum_distance_hist.png", "pair distances"
        )
        if figure:
            lines += ["", figure]
    lines += ["", "### Training runs", ""]
    runs = sorted(ctx.metrics_dir.glob("dpo/stage_*.json"), key=lambda p: natural(p.name))
    shuffled_path = ctx.path("dpo/shuffled.json")
    if not runs and not shuffled_path.is_file():
        lines += ctx.not_run("dpo/stage_1.json", "dpo")
    else:
        rows = []
        for path in [*runs, shuffled_path]:
            if not path.is_file():
                continue
            metrics = read_json(path)
            where = str(path)
            skipped = need(metrics, "skipped", where, bool)
            evals = metrics.get("evals") or []
            final = metrics.get("eval", evals[-1] if evals else {})
            if not isinstance(final, dict):
                raise CodealignError(f"{where}: 'eval' must be an object, got {final!r}")
            rows.append(
                [
                    path.stem,
                    cell(metrics.get("bucket")),
                    cell(need(metrics, "pairs", where, int)),
                    cell(need(metrics, "steps", where, int)),
                    cell(final.get("pass@1")),
                    str(metrics.get("reason", "")) if skipped else "",
                ]
            )
        header = ["Run", "Bucket", "Pairs", "Steps", "dev pass@1 at the end", "Skipped because"]
        lines += [
            "pass@1 at each run's end is on the dev set (`dpo.eval_benchmarks`), which "
            "chooses; the final benchmarks' scores are under Models and below.",
            "",
            *table(header, rows, "lrrrrl"),
        ]
    lines += ["", "### Curriculum against shuffled", ""]
    lines += _dpo_curves(ctx)
    figure = ctx.include("dpo/loss_vs_distance.png", "dpo_loss_vs_distance.png", "loss vs distance")
    lines += [
        "",
        "### Per-sample loss against pair distance",
        "",
        figure or ctx.not_run("dpo/loss_vs_distance.png", "dpo_shuffled")[0],
    ]
    return lines


def _dpo_curves(ctx: Context) -> list[str]:
    name = "dpo_compare.json"
    data = ctx.load(name)
    seeds_path = ctx.path(DPO_SEEDS)
    digest, seeds = read_seed_curves(seeds_path) if seeds_path.is_file() else (None, None)
    if data is None and seeds is None:
        return ctx.not_run(name, "dpo_compare")
    lines: list[str] = []
    # Seeds from another base model get their table, never a band over this run's curves.
    foreign = ctx.elsewhere(DPO_SEEDS, base_digests(digest)) if seeds else []
    curves: dict[str, tuple[list[float], list[float]]] = {}
    if data is not None:
        where = str(ctx.path(name))
        for arm in ("curriculum", "shuffled"):
            curves[arm] = _curve(need(data, arm, where), f"{where}: {arm}")
        final = {
            key: cell(need(data, key, where, NUMBER))
            for key in (
                "final_curriculum_pass@1",
                "final_shuffled_pass@1",
                "final_difference",
                "mean_difference_at_boundaries",
            )
        }
        dev = ", ".join(data.get("curve_benchmarks") or []) or "the stage-boundary benchmarks"
        lines += [
            f"On {dev} (the dev set the curves are drawn on): final pass@1 curriculum "
            f"{final['final_curriculum_pass@1']}, "
            f"shuffled {final['final_shuffled_pass@1']}, "
            f"difference {final['final_difference']}; mean difference at the stage "
            f"boundaries {final['mean_difference_at_boundaries']} ({ctx.shown(name)}).",
            "",
        ]
        lines += _final_evaluation(data, where)
    table_band = seed_band(seeds, ctx.params) if seeds else None
    band = None if foreign else table_band
    if seeds:
        steps = [s["curriculum"][0] for s in seeds] + [s["shuffled"][0] for s in seeds]
        same_steps = all(s == steps[0] for s in steps)
        xs = steps[0] if same_steps else [float(i) for i in range(len(steps[0]))]
        level = f"{ctx.params.confidence:.0%}"
        rows = []
        for i, x in enumerate(xs):
            rows.append(
                [str(i), cell(int(x)) if same_steps else "varies"]
                + [
                    f"{b[i]['mean']:.4f} [{b[i]['low']:.4f}, {b[i]['high']:.4f}]"
                    for b in (
                        table_band["curriculum"],
                        table_band["shuffled"],
                        table_band["difference"],
                    )
                ]
            )
        lines += [
            *foreign,
            f"Over {len(seeds)} seeds ({ctx.shown(DPO_SEEDS)}): mean pass@1 and {level} "
            f"percentile-bootstrap interval at each stage boundary.",
            "",
            *table(["Boundary", "Step", "Curriculum", "Shuffled", "Difference"], rows),
            "",
        ]
    else:
        lines += [
            f"*One seed: no confidence band. Write {ctx.shown(DPO_SEEDS)} "
            "(`python benchmarks/dpo_seeds.py`: each seed's `dpo_compare.json` curves) "
            "to draw one.*",
            "",
        ]

    if not band and not curves:
        return lines

    def plot(fig) -> None:
        ax = fig.subplots()
        colors = {"curriculum": "#4c72b0", "shuffled": "#dd8452"}
        for arm, color in colors.items():
            if band:
                mean = [b["mean"] for b in band[arm]]
                ax.plot(xs, mean, marker="o", color=color, label=f"{arm} (mean of {len(seeds)})")
                ax.fill_between(
                    xs,
                    [b["low"] for b in band[arm]],
                    [b["high"] for b in band[arm]],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            elif arm in curves:
                ax.plot(*curves[arm], marker="o", color=color, label=arm)
        boundaries = xs[1:] if band else curves.get("curriculum", ([], []))[0][1:]
        for x in sorted(set(boundaries)):
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("DPO optimizer step" if not band or same_steps else "stage boundary")
        ax.set_ylabel("pass@1")
        ax.legend()

    lines.append(ctx.draw("dpo_pass_at_1.png", "pass@1 against step", plot, figsize=(6, 3.5)))
    return lines


def _final_evaluation(data: dict, where: str) -> list[str]:
    """The final models on the final benchmarks, paired over tasks (`final_evaluation`)."""
    finals = data.get("final_evaluation")
    if finals is None:
        return []
    if not isinstance(finals, dict):
        raise CodealignError(f"{where}: final_evaluation must be an object per benchmark")
    rows = []
    for bench in sorted(finals):
        row = need(finals, bench, f"{where}: final_evaluation", dict)
        at = f"{where}: final_evaluation.{bench}"
        rows.append(
            [
                bench,
                cell(need(row, "tasks", at, int)),
                cell(need(row, "curriculum_pass@1", at, NUMBER)),
                cell(need(row, "shuffled_pass@1", at, NUMBER)),
                f"{cell(need(row, 'mean_difference', at, NUMBER))} "
                f"[{cell(need(row, 'low', at, NUMBER))}, {cell(need(row, 'high', at, NUMBER))}]",
                cell(need(row, "p_value", at, NUMBER)),
                f"{row.get('wins', '?')} / {row.get('losses', '?')} / {row.get('ties', '?')}",
                str(need(row, "conclusion", at, str)),
            ]
        )
    level = next(iter(finals.values())).get("confidence", 0.95)
    return [
        "The final curriculum model (stage 4) against the final shuffled model on the final "
        f"benchmarks, paired over tasks: mean difference of per-task pass@1 with its "
        f"{level:.0%} bootstrap interval over tasks, the paired permutation test's p, and "
        "tasks won / lost / tied by the curriculum.",
        "",
        *table(
            [
                "Benchmark",
                "Tasks",
                "Curriculum",
                "Shuffled",
                "Difference [CI]",
                "p",
                "W / L / T",
                "Conclusion",
            ],
            rows,
            "lrrrrrrl",
        ),
        "",
    ]
