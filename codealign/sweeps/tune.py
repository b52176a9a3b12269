"""`codealign tune`: choose one hyperparameter on the dev split from a grid of DVC experiments.

A profile's values are chosen on tinydev (MBPP validation in the paper profiles), never on
tinyeval (docs/heldout.md). A choice is a grid of experiments that change only the
param and a seed, e.g.

    for seed in 0 1 2; do for steps in 300 1200; do
      dvc exp run --queue -S base_model.steps=$steps -S base_model.seed=$seed base_model; done; done
    dvc queue start -j 1
    codealign tune base_model.steps --metric metrics/base_model.json:pass@1_greedy \\
        --seed-key base_model.seed

Every finished experiment (and the workspace) whose params equal the workspace's in every
key but the param and the seed counts; of repeated (value, seed) runs the newest counts.
Per value: the metric's mean, min and max over seeds. Each other value is compared with
the workspace's value, paired by seed, with a bootstrap interval over seeds
(`codealign.dpo.stats.seeds_then_tasks`; the metric files hold run-level numbers only).
The decision rule is conservative: the workspace's value is kept unless another value's
paired interval excludes 0 in the better direction; then the best such value is
proposed. With two paired seeds that interval is just their range, with no task-level
noise in it, and the decision says so. The summary (`--out`, default
results/tune/<param>.json) and one run record per experiment (`--runs-dir`) carry the
command, commit and profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.sweeps.experiments import (
    file_at,
    finish,
    is_number,
    lookup,
    no_runs_error,
    or_master_seed,
    read_experiments,
    same_configuration,
    skipped_text,
    spread,
    sweep_records,
)
from codealign.sweeps.records import RUNS_DIR, flat


def parse_metric(spec: str) -> tuple[str, tuple[str, ...]]:
    """`metrics/base_model.json:pass@1_greedy` -> (file, key path); dots nest the key."""
    path, sep, key = spec.partition(":")
    if not sep or not path.endswith(".json") or not key:
        raise CodealignError(
            f"--metric {spec!r}: expected FILE.json:KEY "
            "(e.g. metrics/base_model.json:pass@1_greedy)"
        )
    return path, tuple(key.split("."))


def metric_of(row, repo: Path, path: str, key: tuple[str, ...]) -> float | None:
    data = row.all_metrics.get(path)
    if data is None:
        data = file_at(repo, row.rev, path)
    value = lookup(data, *key) if isinstance(data, dict) else None
    return float(value) if is_number(value) else None


def choose(
    points: dict[Any, dict[int, float]], current: Any, higher_is_better: bool
) -> dict[str, Any]:
    """Per value: spread over seeds; each other value against `current`, paired by seed;
    and the decision by the rule of this module's docstring."""
    from codealign.dpo.stats import seeds_then_tasks

    sign = 1 if higher_is_better else -1
    values = []
    for value in sorted(points, key=lambda v: (str(type(v)), v)):
        by_seed = points[value]
        entry: dict[str, Any] = {
            "value": value,
            "seeds": sorted(by_seed),
            **spread([by_seed[s] for s in sorted(by_seed)]),
        }
        if value != current and current in points:
            common = sorted(set(by_seed) & set(points[current]))
            if common:
                stats = seeds_then_tasks([[by_seed[s] - points[current][s]] for s in common])
                entry["against_current"] = {
                    key: stats[key] for key in ("mean", "low", "high", "seeds")
                }
                entry["against_current"]["paired_seeds"] = common
        values.append(entry)

    better = [
        e
        for e in values
        if "against_current" in e
        and len(e["against_current"]["paired_seeds"]) >= 2
        and sign * (e["against_current"]["low"] if sign > 0 else e["against_current"]["high"]) > 0
    ]
    if current not in points:
        decision, chosen = "no run at the workspace's value: nothing to compare with", None
    elif better:
        best = max(better, key=lambda e: sign * e["against_current"]["mean"])
        chosen = best["value"]
        decision = (
            f"change to {chosen}: its paired interval over seeds excludes 0 "
            f"({best['against_current']['mean']:+.3f} "
            f"[{best['against_current']['low']:+.3f}, {best['against_current']['high']:+.3f}])"
        )
        if len(best["against_current"]["paired_seeds"]) < 3:
            decision += (
                f"; only {len(best['against_current']['paired_seeds'])} paired seeds: the "
                "interval is their range and holds no task-level noise, so weigh the "
                "difference against the tasks the metric counts before applying it"
            )
    else:
        chosen = current
        decision = (
            f"keep {current}: no other value's paired interval over seeds excludes 0 "
            "in the better direction"
        )
    return {"values": values, "current": current, "chosen": chosen, "decision": decision}


@click.command("tune", cls=Command)
@click.argument("param")
@click.option(
    "--metric",
    "metric_spec",
    required=True,
    help="FILE.json:KEY the choice is made on (a dev-split score; dots nest the key).",
)
@click.option(
    "--seed-key",
    default="train_seed",
    show_default=True,
    help="The seed key that varies between the grid's repeats (null: the master seed).",
)
@click.option("--lower-is-better", is_flag=True, help="The metric is a loss: lower values win.")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The DVC repository whose experiments to read.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The summary JSON (default: results/tune/<param>.json).",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where one record per run counted goes (default: results/runs/tune_<param>).",
)
@click.option(
    "--from-json",
    "from_json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read a saved `dvc exp show --json` dump instead of running dvc.",
)
@click.option("--all-commits", is_flag=True, help="Also read experiments of older commits.")
def tune_command(
    param: str,
    metric_spec: str,
    seed_key: str,
    lower_is_better: bool,
    repo: Path,
    out: Path | None,
    runs_dir: Path | None,
    from_json: Path | None,
    all_commits: bool,
) -> None:
    """Choose PARAM on the dev split from a grid of DVC experiments.

    Reads every finished experiment that changed only PARAM and --seed-key against the
    workspace, takes --metric from each (a tinydev score: never choose on tinyeval),
    prints mean [min, max] over seeds per value and each value against the workspace's,
    paired by seed, and says whether to keep the workspace's value: another value is
    proposed only where its 95% interval over seeds excludes 0 in the better direction.
    Writes --out and one run record per experiment under --runs-dir.

    \b
        codealign tune base_model.steps --metric metrics/base_model.json:pass@1_greedy \\
            --seed-key base_model.seed
    """
    path, key = parse_metric(metric_spec)
    safe = param.replace("/", "_")
    out = out or Path("results/tune") / f"{safe}.json"
    runs_dir = runs_dir or RUNS_DIR / f"tune_{safe}"
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    workspace = next((row for row in rows if row.rev == "workspace"), None)
    if workspace is None or param not in flat(workspace.params):
        raise CodealignError(f"{param}: not a param of the workspace's params.yaml")
    current = flat(workspace.params)[param]
    kept = same_configuration(rows, (param, seed_key, "seed"), skipped)

    newest: dict[tuple[Any, Any], Any] = {}
    for row in sorted(kept, key=lambda r: r.recency, reverse=True):
        params = flat(row.params)
        seed = or_master_seed(row.params, params.get(seed_key))
        if metric_of(row, repo, path, key) is None:
            skipped[f"no {metric_spec}"] += 1
            continue
        if (params.get(param), seed) in newest:
            skipped["older repeats of a (value, seed)"] += 1
            continue
        newest[(params.get(param), seed)] = row
    if not newest:
        raise no_runs_error(source, path, skipped)

    points: dict[Any, dict[int, float]] = {}
    for (value, seed), row in newest.items():
        points.setdefault(value, {})[seed] = metric_of(row, repo, path, key)
    summary = {
        "param": param,
        "metric": metric_spec,
        "seed_key": seed_key,
        "higher_is_better": not lower_is_better,
        **choose(points, current, not lower_is_better),
    }
    records = sweep_records(
        f"tune_{safe}",
        list(newest.values()),
        repo=repo,
        from_json=from_json,
        swept_keys=(param, seed_key),
        swept_of=lambda row: {
            param: flat(row.params).get(param),
            seed_key: or_master_seed(row.params, flat(row.params).get(seed_key)),
        },
        metrics_of=lambda row: {metric_spec: metric_of(row, repo, path, key)},
        task_files_of=lambda row: {},
    )
    finish(
        f"tune_{safe}",
        repo=repo,
        out=out,
        plot=None,
        summary=summary,
        png=None,
        records=records,
        runs_dir=runs_dir,
    )
    click.echo("\t".join([param, "seeds", metric_spec, "against current [95%]"]))
    for entry in summary["values"]:
        against = entry.get("against_current")
        cell = (
            f"{against['mean']:+.3f} [{against['low']:+.3f}, {against['high']:+.3f}]"
            if against
            else ("(current)" if entry["value"] == current else "")
        )
        stats = f"{entry['mean']:.3f} [{entry['min']:.3f}, {entry['max']:.3f}]"
        click.echo("\t".join([str(entry["value"]), str(len(entry["seeds"])), stats, cell]))
    click.echo(summary["decision"])
    reasons = skipped_text(skipped)
    click.echo(
        f"{len(newest)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""),
        err=True,
    )
