"""`codealign equal-steps`: the equal-steps-per-adapter K runs, collected from DVC experiments.

Each K adapter trains on about 1/K of the data; at `sft.epochs` K times the profile's,
it takes about as many optimizer steps as the single adapter does at the profile's
epochs. The runs are `dvc exp run --queue -S k=K -S sft.epochs=E -S train_seed=T
evaluate`; this collects the finished ones at that K and E (newest per train_seed, only
those that changed nothing else against the workspace) into the file the docs read
(`results/full/k5_equal_steps.json`'s shape: each run's K = 1 and routed scores,
`sft_epochs`, `train_seed`, the experiment's name and rev), with one run record each.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.sweeps.experiments import (
    METRICS_FILE,
    PASS1,
    SWEPT,
    finish,
    is_number,
    lookup,
    no_runs_error,
    or_master_seed,
    read_experiments,
    same_configuration,
    skipped_text,
    stale_seed,
    sweep_options,
    sweep_records,
    verdict_files,
)
from codealign.sweeps.records import flat as flat_params

EPOCHS = "sft.epochs"
SCORES = ("k", "pass@1", "pass@10_t0.8")


def equal_steps_rows(rows, benchmark: str, k: int, epochs: int, skipped: Counter) -> list:
    """The newest finished row per train_seed at this K and sft.epochs whose evaluate
    ran in it (routed scores at its own train_seed)."""
    rows = same_configuration(rows, (*SWEPT, EPOCHS), skipped)
    newest: dict[int, Any] = {}
    for row in sorted(rows, key=lambda r: r.recency, reverse=True):
        flat = flat_params(row.params)
        if flat.get("k") != k or flat.get(EPOCHS) != epochs:
            skipped[f"at another k or {EPOCHS}"] += 1
            continue
        seed = or_master_seed(row.params, row.params.get("train_seed"))
        routed = lookup(row.metrics, benchmark, "models", "routed")
        if not isinstance(routed, dict) or not is_number(routed.get(PASS1)):
            skipped[f"no {benchmark}.models.routed.{PASS1} in {METRICS_FILE}"] += 1
            continue
        if stale_seed(routed, seed):
            skipped[f"routed scores of another train_seed (stale {METRICS_FILE})"] += 1
            continue
        if seed in newest:
            skipped["older repeats of a train_seed"] += 1
            continue
        newest[seed] = row
    return [newest[seed] for seed in sorted(newest)]


def summary_of(rows, benchmark: str, epochs: int) -> dict[str, Any]:
    runs = []
    for row in rows:
        models = lookup(row.metrics, benchmark, "models") or {}
        runs.append(
            {
                "base_model_digest": lookup(models, "base", "model_digest"),
                "models": {
                    name: {key: models[name][key] for key in SCORES if key in models[name]}
                    for name in ("k1", "routed")
                    if isinstance(models.get(name), dict)
                },
                "name": row.name,
                "rev": row.rev,
                "sft_epochs": epochs,
                "train_seed": or_master_seed(row.params, row.params.get("train_seed")),
            }
        )
    return {"benchmark": benchmark, "runs": runs}


@click.command("equal-steps", cls=Command)
@click.option("--k", "k", type=int, required=True, help="The K of the runs.")
@click.option("--epochs", type=int, required=True, help=f"Their {EPOCHS}.")
@sweep_options("k_equal_steps", "train seed", "", plot=False)
def equal_steps_command(
    k: int,
    epochs: int,
    repo: Path,
    benchmark: str,
    out: Path,
    from_json: Path | None,
    all_commits: bool,
    runs_dir: Path,
) -> None:
    """Collect the equal-steps K runs (K adapters at K times the epochs) into --out.

    \b
        for seed in 0 1 2; do
          dvc exp run --queue -S k=5 -S sft.epochs=30 -S train_seed=$seed evaluate; done
        dvc queue start -j 1
        codealign equal-steps --k 5 --epochs 30 --out results/full/k5_equal_steps.json

    Writes each run's K = 1 and routed pass@1 and pass@10, and one record per run (with
    per-task verdict counts) under --runs-dir.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    kept = equal_steps_rows(rows, benchmark, k, epochs, skipped)
    if not kept:
        raise no_runs_error(source, METRICS_FILE, skipped)
    summary = summary_of(kept, benchmark, epochs)
    records = sweep_records(
        "k_equal_steps",
        kept,
        repo=repo,
        from_json=from_json,
        swept_keys=(*SWEPT, EPOCHS),
        swept_of=lambda row: {
            "k": k,
            "epochs": epochs,
            "train_seed": or_master_seed(row.params, row.params.get("train_seed")),
        },
        metrics_of=lambda row: row.metrics[benchmark],
        task_files_of=lambda row: verdict_files(benchmark),
    )
    finish(
        "k_equal_steps",
        repo=repo,
        out=out,
        plot=None,
        summary=summary,
        png=None,
        records=records,
        runs_dir=runs_dir,
    )
    click.echo("train_seed\tk1 pass@1\trouted pass@1")
    for run in summary["runs"]:
        models = run["models"]
        cells = [f"{models.get(m, {}).get(PASS1, float('nan')):.3f}" for m in ("k1", "routed")]
        click.echo("\t".join([str(run["train_seed"]), *cells]))
    reasons = skipped_text(skipped)
    click.echo(
        f"{len(kept)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out}", err=True)
