"""`codealign specialist-ideas`: the runs of the two ideas measured beside the K claim.

Each idea is a variant of the K sweep's runs, `dvc exp run --queue -S k=K -S
train_seed=T ... evaluate`, with one more param set:

- `specialists.init=generalist`: every specialist starts from the K = 1 adapter's weights;
- `specialists.fallback_margin=M` (M chosen on tinydev, `codealign fallback-margin`): the
  routed model answers low-margin questions with the K = 1 adapter.

Every evaluate run also scores the K = 1 adapter (`k1`) at the same train seed, so each
record pairs the idea's routed model with the single adapter. This collects the finished
runs at that K where one of the ideas is on and nothing but k, the seeds and the two
`specialists` keys differ from the workspace (newest per idea setting and train_seed),
into `--out` and one run record each under `--runs-dir` (sweep `specialist_ideas`;
findings select them by `specialists.init` and `specialists.fallback_margin`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError
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

SWEEP = "specialist_ideas"
INIT = "specialists.init"
MARGIN = "specialists.fallback_margin"
IDEAS = (INIT, MARGIN)
SCORES = ("k", "pass@1", "pass@10_t0.8", "fallback_margin", "tasks_by_cluster")


def idea_of(flat: dict[str, Any]) -> tuple[str, float] | None:
    """`(init, fallback_margin)` of a run where an idea is on, else None."""
    init, margin = flat.get(INIT) or "base", flat.get(MARGIN) or 0.0
    if init == "base" and not margin:
        return None
    return str(init), float(margin)


def idea_rows(rows, benchmark: str, k: int, skipped: Counter) -> list:
    """The newest finished row per (idea setting, train_seed) at this K whose evaluate ran
    in it (routed scores at its own train_seed)."""
    rows = same_configuration(rows, (*SWEPT, *IDEAS), skipped)
    newest: dict[tuple, Any] = {}
    for row in sorted(rows, key=lambda r: r.recency, reverse=True):
        flat = flat_params(row.params)
        idea = idea_of(flat)
        if flat.get("k") != k or idea is None:
            skipped["at another k or with neither idea on"] += 1
            continue
        seed = or_master_seed(row.params, row.params.get("train_seed"))
        routed = lookup(row.metrics, benchmark, "models", "routed")
        if not isinstance(routed, dict) or not is_number(routed.get(PASS1)):
            skipped[f"no {benchmark}.models.routed.{PASS1} in {METRICS_FILE}"] += 1
            continue
        if stale_seed(routed, seed):
            skipped[f"routed scores of another train_seed (stale {METRICS_FILE})"] += 1
            continue
        if (idea, seed) in newest:
            skipped["older repeats of an idea and train_seed"] += 1
            continue
        newest[(idea, seed)] = row
    margins = {idea[1] for idea, _ in newest if idea[0] == "base"}
    if len(margins) > 1:
        shown = ", ".join(f"{m:g}" for m in sorted(margins))
        raise CodealignError(
            f"runs at several {MARGIN} values ({shown}): the margin is chosen once on tinydev "
            "(codealign fallback-margin); remove the others' experiments (dvc exp remove)"
        )
    return [newest[key] for key in sorted(newest, key=lambda key: (key[0], key[1]))]


def summary_of(rows, benchmark: str) -> dict[str, Any]:
    runs = []
    for row in rows:
        flat = flat_params(row.params)
        init, margin = idea_of(flat) or ("base", 0.0)
        models = lookup(row.metrics, benchmark, "models") or {}
        runs.append(
            {
                "init": init,
                "fallback_margin": margin,
                "train_seed": or_master_seed(row.params, row.params.get("train_seed")),
                "models": {
                    name: {key: models[name][key] for key in SCORES if key in models[name]}
                    for name in ("k1", "routed")
                    if isinstance(models.get(name), dict)
                },
                "name": row.name,
                "rev": row.rev,
            }
        )
    return {"benchmark": benchmark, "runs": runs}


@click.command("specialist-ideas", cls=Command)
@click.option("--k", "k", type=int, default=5, show_default=True, help="The K of the runs.")
@sweep_options(SWEEP, "run", "", plot=False)
def specialist_ideas_command(
    k: int,
    repo: Path,
    benchmark: str,
    out: Path,
    from_json: Path | None,
    all_commits: bool,
    runs_dir: Path,
) -> None:
    """Collect the generalist-init and fallback runs at K into --out, with their records.

    \b
        for seed in 0 1 2; do
          dvc exp run --queue -S k=5 -S specialists.init=generalist -S train_seed=$seed evaluate
          dvc exp run --queue -S k=5 -S specialists.fallback_margin=M -S train_seed=$seed evaluate
        done
        dvc queue start -j 1
        codealign specialist-ideas --k 5

    M is the margin `codealign fallback-margin` chose on tinydev.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    kept = idea_rows(rows, benchmark, k, skipped)
    if not kept:
        raise no_runs_error(source, METRICS_FILE, skipped)
    summary = summary_of(kept, benchmark)
    records = sweep_records(
        SWEEP,
        kept,
        repo=repo,
        from_json=from_json,
        swept_keys=(*SWEPT, *IDEAS),
        swept_of=lambda row: {
            "k": k,
            "init": (idea_of(flat_params(row.params)) or ("base", 0.0))[0],
            "fallback_margin": (idea_of(flat_params(row.params)) or ("base", 0.0))[1],
            "train_seed": or_master_seed(row.params, row.params.get("train_seed")),
        },
        metrics_of=lambda row: row.metrics[benchmark],
        task_files_of=lambda row: verdict_files(benchmark),
    )
    finish(
        SWEEP,
        repo=repo,
        out=out,
        plot=None,
        summary=summary,
        png=None,
        records=records,
        runs_dir=runs_dir,
    )
    click.echo("init\tfallback_margin\ttrain_seed\tk1 pass@1\trouted pass@1")
    for run in summary["runs"]:
        models = run["models"]
        cells = [f"{models.get(m, {}).get(PASS1, float('nan')):.3f}" for m in ("k1", "routed")]
        click.echo(
            "\t".join([run["init"], f"{run['fallback_margin']:g}", str(run["train_seed"]), *cells])
        )
    reasons = skipped_text(skipped)
    click.echo(
        f"{len(kept)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out}", err=True)
