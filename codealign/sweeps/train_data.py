"""`codealign train-data`: the K = 1 adapter on the curated set against the seed sets alone.

The runs are `dvc exp run --queue -S sft_baseline.train_data=D -S train_seed=T evaluate`
for D in curated, seed: the seed arm trains `sft_baseline` on the curated set's S1 and S2
items only, for as many optimizer steps as the curated arm takes (stages/sft.py). This
reads the `k1` model's scores in metrics/evaluate.json of every finished experiment that
changed nothing but those two params, the master seed and `k` (the K = 1 adapter does not
depend on k, so a K-sweep run counts as a curated run), keeps the newest per (arm,
train_seed), and writes one run record each (`results/runs/train_data/`; per-task
verdicts of `k1`) and a summary: pass@1 and pass@k per arm over seeds, and curated minus
seed per train_seed. The claim `curated-beats-seed` (codealign.findings.claims) reads
the records and selects the arms by `sft_baseline.train_data`.

Scores whose `train_data` (evaluate copies it from the adapter's router.json; absent:
curated) is not the run's param are skipped as stale: such an experiment did not rerun
`evaluate`, so its file is its baseline's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.params.specialists import TRAIN_DATA
from codealign.sweeps.experiments import (
    METRICS_FILE,
    PASS1,
    ExperimentRow,
    Run,
    finish,
    format_stats,
    is_number,
    lookup,
    no_runs_error,
    or_master_seed,
    passk_metric,
    read_experiments,
    same_configuration,
    skipped_text,
    spread,
    stale_seed,
    sweep_options,
    sweep_records,
    verdict_files,
)
from codealign.sweeps.records import flat, value_before

TRAIN_DATA_KEY = "sft_baseline.train_data"
SWEPT = ("k", "seed", "train_seed", TRAIN_DATA_KEY)
MODEL = "k1"


def arm_of(params: dict[str, Any]) -> Any:
    """The run's `sft_baseline.train_data`; a run made before the key: its `before` value."""
    return flat(params).get(TRAIN_DATA_KEY, value_before(TRAIN_DATA_KEY))


def arm_runs(rows: Sequence[ExperimentRow], benchmark: str, skipped: Counter) -> list[Run]:
    """The newest `k1` scores per (train_data, train_seed); `skipped` counts the rest.
    A Run's `model` is its arm (curated or seed)."""
    rows = same_configuration(rows, SWEPT, skipped)
    found: list[Run] = []
    for row in rows:
        arm = arm_of(row.params)
        seed = or_master_seed(row.params, row.params.get("train_seed"))
        scores = lookup(row.metrics, benchmark, "models", MODEL)
        if not isinstance(scores, dict) or not is_number(scores.get(PASS1)):
            skipped[f"no {benchmark}.models.{MODEL}.{PASS1} in {METRICS_FILE}"] += 1
            continue
        if arm not in TRAIN_DATA or not isinstance(seed, int):
            skipped[f"no {TRAIN_DATA_KEY} of {', '.join(TRAIN_DATA)} and integer seed"] += 1
            continue
        if stale_seed(scores, seed) or scores.get("train_data", "curated") != arm:
            skipped[f"{MODEL} scores of another train_seed or data (stale {METRICS_FILE})"] += 1
            continue
        found.append(
            Run(
                k=1,
                seed=seed,
                model=arm,
                effective_k=1,
                scores={
                    key: float(v)
                    for key, v in scores.items()
                    if key.startswith("pass@") and is_number(v)
                },
                row=row,
            )
        )
    newest: dict[tuple[str, int], Run] = {}
    for run in sorted(found, key=lambda run: run.row.recency, reverse=True):
        if (run.model, run.seed) in newest:
            skipped["older repeats of a (train_data, train_seed)"] += 1
        else:
            newest[(run.model, run.seed)] = run
    return sorted(newest.values(), key=lambda run: (TRAIN_DATA.index(run.model), run.seed))


def summarise(runs: Sequence[Run], benchmark: str) -> dict[str, Any]:
    """Per arm: seeds and the spread of pass@1 (and the largest pass@k all report) over
    seeds; per train_seed both arms ran: curated minus seed."""
    passk = passk_metric(runs)
    metrics = [PASS1] + ([passk] if passk else [])
    arms = {}
    for arm in TRAIN_DATA:
        at = [run for run in runs if run.model == arm]
        if at:
            arms[arm] = {
                "seeds": [run.seed for run in at],
                **{metric: spread([run.scores[metric] for run in at]) for metric in metrics},
            }
    by_seed = {(run.model, run.seed): run for run in runs}
    paired = sorted({s for arm, s in by_seed if arm == "curated" and ("seed", s) in by_seed})
    differences = {
        metric: [
            round(by_seed[("curated", s)].scores[metric] - by_seed[("seed", s)].scores[metric], 6)
            for s in paired
        ]
        for metric in metrics
    }
    return {
        "benchmark": benchmark,
        "model": MODEL,
        "metrics": metrics,
        "arms": arms,
        "paired_seeds": paired,
        "curated_minus_seed": {
            metric: spread(values) if values else None for metric, values in differences.items()
        },
        "runs": [
            {
                "train_data": run.model,
                "train_seed": run.seed,
                "rev": run.row.rev,
                "name": run.row.name,
                **{metric: run.scores[metric] for metric in metrics},
            }
            for run in runs
        ],
    }


@click.command("train-data", cls=Command)
@sweep_options("train_data", "arm", "", plot=False)
def train_data_command(
    repo: Path,
    benchmark: str,
    out: Path,
    from_json: Path | None,
    all_commits: bool,
    runs_dir: Path,
) -> None:
    """The K = 1 adapter trained on the curated set against one on S1 + S2 alone.

    Queue both arms at three train seeds, run them, then collect:

    \b
        for seed in 0 1 2; do for d in curated seed; do
          dvc exp run --queue -S sft_baseline.train_data=$d -S train_seed=$seed evaluate
        done; done
        dvc queue start -j 1      # then wait for `dvc queue status`
        codealign train-data

    Prints pass@1 mean [min, max] over seeds per arm and curated minus seed over the
    seeds both arms ran, and writes --out and one record per run counted (params,
    seeds, commit, metrics, per-task verdict counts of k1) under --runs-dir, which
    `codealign findings` reads for curated-beats-seed.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    runs = arm_runs(rows, benchmark, skipped)
    if not runs:
        raise no_runs_error(source, METRICS_FILE, skipped)
    summary = summarise(runs, benchmark)
    records = sweep_records(
        "train_data",
        [run.row for run in runs],
        repo=repo,
        from_json=from_json,
        swept_keys=SWEPT,
        swept_of=lambda row: {
            TRAIN_DATA_KEY: arm_of(row.params),
            "train_seed": or_master_seed(row.params, row.params.get("train_seed")),
        },
        metrics_of=lambda row: row.metrics[benchmark],
        task_files_of=lambda row: verdict_files(benchmark, (MODEL,)),
    )
    finish(
        "train_data",
        repo=repo,
        out=out,
        plot=None,
        summary=summary,
        png=None,
        records=records,
        runs_dir=runs_dir,
    )
    metrics = summary["metrics"]
    click.echo("\t".join(["train_data", "seeds", *metrics]))
    for arm, point in summary["arms"].items():
        cells = [format_stats(point[metric]) for metric in metrics]
        click.echo("\t".join([arm, str(len(point["seeds"])), *cells]))
    diff = summary["curated_minus_seed"]
    if summary["paired_seeds"]:
        cells = [format_stats(diff[metric]) for metric in metrics]
        n = str(len(summary["paired_seeds"]))
        click.echo("\t".join(["curated - seed", n, *cells]))
    reasons = skipped_text(skipped)
    click.echo(
        f"{len(runs)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out}", err=True)
