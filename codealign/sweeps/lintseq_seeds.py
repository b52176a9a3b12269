"""`codealign lintseq-seeds`: the LintSeq comparison over training seeds run as DVC experiments.

Reads what the `lintseq_eval` stage (codealign.edits.lintseq_eval) writes to
metrics/lintseq_eval.json in every finished experiment, aggregates pass@k and the
edit_failed share per target over seeds, and plots them. Kept out of
codealign.edits.lintseq_eval, a dependency of that stage, so that changing the collector does
not rerun it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.edits.lintseq_eval import EDIT_FAILED
from codealign.params.specialists import TARGETS
from codealign.sweeps.experiments import (
    finish,
    format_stats,
    no_runs_error,
    only_value,
    read_experiments,
    same_configuration,
    skipped_text,
    spread,
    sweep_options,
    sweep_records,
)
from codealign.sweeps.records import flat

SEEDS_FILE = "metrics/lintseq_eval.json"
LINTSEQ_EVAL_OUT = "data/lintseq_eval"  # the stage's out: samples and verdicts per target
SWEPT = ("seed", "train_seed")
# The programs LintSeq trains and is scored on (lintseq.compose): each arm is its own set.
ARM_KEYS = ("lintseq.compose", "lintseq.compose_shape")


def arm_of(params: dict[str, Any]) -> tuple[int, str | None]:
    """(lintseq.compose, its shape) of a run's params; a run from before the keys existed
    is the curated arm (1), and the curated arm has no shape."""
    values = flat(params)
    compose = values.get("lintseq.compose")
    compose = 1 if compose is None else compose
    return (compose, None) if compose == 1 else (compose, values.get("lintseq.compose_shape"))


def seed_runs(
    rows: Sequence[Any], skipped: Counter, arm: tuple[int, str | None] | None = None
) -> list[dict[str, Any]]:
    """One `metrics/lintseq_eval.json` per training seed, the newest, from experiment rows.

    The seed is the one the file records (the stage writes its `train_seed`), so an
    experiment that did not rerun `lintseq_eval` and shows its baseline's file counts as
    a repeat of that seed, not as a new one. Only runs of one `arm` (`arm_of`: curated
    or composed programs, the workspace's when None) count, and of those only runs that
    changed nothing else but the seeds (`same_configuration`), so another base model
    never stands in for a seed.
    """
    if arm is None and rows:
        reference = next((row for row in rows if row.rev == "workspace"), rows[0])
        arm = arm_of(reference.params)
    kept = []
    for row in rows:
        if arm_of(row.params) == arm:
            kept.append(row)
        else:
            skipped["of another lintseq.compose arm"] += 1
    rows = same_configuration(kept, SWEPT + ARM_KEYS, skipped)
    found = []
    for row in rows:
        data = row.all_metrics.get(SEEDS_FILE)
        if not isinstance(data, dict):
            skipped[f"no {SEEDS_FILE}"] += 1
            continue
        seed = data.get("train_seed")
        scores = {t: data.get(t) for t in TARGETS}
        if not (isinstance(seed, int) and not isinstance(seed, bool)) or not all(
            isinstance(s, dict) and isinstance(s.get("pass@1"), int | float)
            for s in scores.values()
        ):
            skipped[f"with a {SEEDS_FILE} lacking train_seed or pass@k"] += 1
            continue
        found.append((row, seed, data))
    newest: dict[int, dict[str, Any]] = {}
    for row, seed, data in sorted(found, key=lambda item: item[0].recency, reverse=True):
        if seed in newest:
            skipped["older repeats of a train_seed"] += 1
            continue
        newest[seed] = {
            "seed": seed,
            "rev": row.rev,
            "name": row.name,
            "metrics": data,
            "row": row,
        }
    return [newest[seed] for seed in sorted(newest)]


def aggregate_seeds(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per target (code, edits): mean/min/max/values over seeds of every pass@k both
    report, and of the share of edit_failed samples."""
    ks = sorted(
        set.intersection(
            *(
                {
                    int(key.removeprefix("pass@"))
                    for key in run["metrics"][t]
                    if key.startswith("pass@")
                }
                for run in runs
                for t in TARGETS
            )
        )
    )
    keys = [f"pass@{k}" for k in ks] + [f"{EDIT_FAILED}_share"]
    by_target = {
        target: {key: spread([float(run["metrics"][target][key]) for run in runs]) for key in keys}
        for target in TARGETS
    }
    first = runs[0]["metrics"]
    return {
        "benchmark": first.get("benchmark"),
        "base_model_digest": only_value(run["metrics"].get("base_model_digest") for run in runs),
        "tasks": first.get("tasks"),
        "samples_per_task": first.get("samples_per_task"),
        "seeds": [run["seed"] for run in runs],
        "ks": ks,
        "by_target": by_target,
        "runs": [
            {
                "seed": run["seed"],
                "rev": run["rev"],
                "name": run["name"],
                **{t: {key: run["metrics"][t][key] for key in keys} for t in TARGETS},
            }
            for run in runs
        ],
    }


def render_seeds_plot(summary: dict[str, Any]) -> bytes:
    """PNG: pass@k against k for each target, mean line with a min-max band over seeds."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ks = summary["ks"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for target, color in zip(TARGETS, ("#4c72b0", "#dd8452"), strict=False):
        stats = [summary["by_target"][target][f"pass@{k}"] for k in ks]
        ax.fill_between(ks, [s["min"] for s in stats], [s["max"] for s in stats], color=color,
                        alpha=0.2)  # fmt: skip
        ax.plot(ks, [s["mean"] for s in stats], marker="o", color=color, label=target)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xticks(ks)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="trained on")
    ax.set_title(
        f"{summary['benchmark']}: mean and min-max over {len(summary['seeds'])} train seeds"
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


@click.command("lintseq-seeds", cls=Command)
@sweep_options(
    "lintseq_seeds", "target", "pass@k against k for code and edits (PNG).", benchmark=False
)
@click.option(
    "--compose",
    type=click.IntRange(min=1),
    default=None,
    help="Count the runs of this lintseq.compose (1: the curated programs; more: composed "
    "ones) [default: the workspace's].",
)
@click.option(
    "--compose-shape",
    type=click.Choice(["chain", "parallel"]),
    default="chain",
    show_default=True,
    help="With --compose > 1: the lintseq.compose_shape of the runs to count.",
)
def lintseq_seeds_command(
    repo: Path,
    out: Path,
    plot: Path,
    from_json: Path | None,
    all_commits: bool,
    runs_dir: Path,
    compose: int | None,
    compose_shape: str,
) -> None:
    """Aggregate the LintSeq experiment over training seeds run as DVC experiments.

    Queue one run per extra seed (lintseq_eval alone reruns), then summarise:

    \b
        for seed in 1 2; do dvc exp run --queue -S train_seed=$seed lintseq_eval; done
        dvc queue start -j 1      # then wait for `dvc queue status`
        codealign lintseq-seeds   # --all-commits once HEAD has moved on

    The runs on composed programs (`-S lintseq.compose=4 -S lintseq.compose_shape=parallel`)
    are a set of their own: `--compose 4 --compose-shape parallel` counts those and only
    those (write them with --out/--plot elsewhere); without --compose, the workspace's
    lintseq.compose is counted.

    Reads metrics/lintseq_eval.json of the workspace, its commit and every finished
    experiment; a file counts once per train_seed it records (the newest), so an
    experiment that did not rerun the stage adds nothing. Prints mean [min, max] of
    pass@k and of the edit_failed share per target, and writes --out and --plot, and
    one record per run counted (per-task verdict counts of each target) under --runs-dir.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    arm = None if compose is None else (compose, None if compose == 1 else compose_shape)
    runs = seed_runs(rows, skipped, arm)
    if not runs:
        raise no_runs_error(source, SEEDS_FILE, skipped)
    summary = aggregate_seeds(runs)
    png = render_seeds_plot(summary)
    seed_of = {run["rev"]: run["seed"] for run in runs}
    records = sweep_records(
        "lintseq_seeds",
        [run["row"] for run in runs],
        repo=repo,
        from_json=from_json,
        swept_keys=SWEPT,
        swept_of=lambda row: {"train_seed": seed_of[row.rev]},
        metrics_of=lambda row: row.all_metrics[SEEDS_FILE],
        task_files_of=lambda row: {t: f"{LINTSEQ_EVAL_OUT}/{t}/verdicts.jsonl" for t in TARGETS},
    )
    finish(
        "lintseq_seeds",
        repo=repo,
        out=out,
        plot=plot,
        summary=summary,
        png=png,
        records=records,
        runs_dir=runs_dir,
    )
    keys = list(summary["by_target"][TARGETS[0]])
    click.echo("\t".join(["target", "seeds", *keys]))
    for target in TARGETS:
        cells = [format_stats(summary["by_target"][target][key]) for key in keys]
        click.echo("\t".join([target, str(len(runs)), *cells]))
    reasons = skipped_text(skipped)
    click.echo(
        f"{len(runs)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out} and {plot}", err=True)
