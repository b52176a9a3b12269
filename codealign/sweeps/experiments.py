"""The K sweep: collect DVC experiments, aggregate pass@k over seeds per K, and plot it.

A sweep is a grid of `dvc exp run --queue -S k=K -S train_seed=S evaluate`: the
curated data stay fixed and K-means, training and sampling take the seed. This module
reads what `dvc exp show --json` reports (DVC 3.x: a list of baseline rows, the
workspace first, each with its `experiments` as `{"revs": [...], "executor": ...}`),
takes params `k` and `train_seed` (or the master `seed` where `train_seed` is null) from
params.yaml and the routed model's scores from metrics/evaluate.json, and aggregates
them per K.

What it assumes, and what it drops (each drop is counted and reported):

- A queued, running or failed experiment is skipped: DVC shows a failed one with the
  *baseline's* metrics, which would put another K's scores at this K.
- Rows with the same (k, seed) are one run measured more than once; the newest wins.
  The workspace has no timestamp and counts as older than every commit and
  experiment, because it holds whatever was last run there.
- K = 1 for a seed with no `k: 1` run comes from the `k1` model (the single-adapter
  baseline every evaluate run scores), taken from that seed's newest run.
- K on the x axis is the requested `k`; the routed model's own `k` (clusters left after
  small ones are dissolved) is reported beside it as `effective_k`.
"""

from __future__ import annotations

import io
import json
import logging
import re
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.io import read_json
from codealign.sweeps.records import (
    command_line,
    flat,
    provenance,
    row_records,
    runs_dir_option,
    same_value,
    write_outputs,
    write_records,
)

log = logging.getLogger(__name__)

METRICS_FILE = "metrics/evaluate.json"
PARAMS_FILE = "params.yaml"
PASS1 = "pass@1"
SWEPT = ("k", "seed", "train_seed")  # what a K sweep may vary
_PASSK_KEY = re.compile(r"^pass@(\d+)_t")
_UNFINISHED = {"queued", "running", "failed"}


@dataclass(frozen=True)
class ExperimentRow:
    """One row of `dvc exp show`: the workspace, a baseline commit, or an experiment."""

    rev: str
    name: str | None
    timestamp: str | None  # ISO 8601; None for the workspace
    order: int  # position in the listing; DVC lists experiments newest first
    params: dict[str, Any]
    metrics: dict[str, Any] | None  # metrics/evaluate.json, or None when absent
    # Every metrics file DVC shows for the row, path -> data (for collectors of other files).
    all_metrics: dict[str, Any] = field(default_factory=dict)
    # The commit an experiment is based on ("workspace" for the workspace row itself).
    baseline: str = "workspace"

    @property
    def label(self) -> str:
        short = self.rev if self.rev == "workspace" else self.rev[:7]
        return f"{short} [{self.name}]" if self.name else short

    @property
    def recency(self) -> tuple[str, int]:
        return (self.timestamp or "", -self.order)


@dataclass(frozen=True)
class Run:
    """One (k, seed) point of the sweep."""

    k: int
    seed: int
    model: str  # "routed", or "k1" when K = 1 comes from the baseline model
    effective_k: int | None
    scores: dict[str, float]
    row: ExperimentRow
    base_digest: str | None = None  # of the base model evaluate scored; None: not recorded


def dvc_exp_show(repo: str | Path, all_commits: bool = False) -> list[Any]:
    """Run `dvc exp show --json` in `repo` and return its parsed output."""
    # The dvc of this interpreter's environment: the one the project pins, even when
    # the venv is not activated and `dvc` is not on PATH.
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    if all_commits:
        cmd.append("--all-commits")
    try:
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise CodealignError(f"{repo}: cannot run dvc: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise CodealignError(f"{repo}: `dvc exp show --json` failed: {reason}")
    try:
        shown = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CodealignError(f"{repo}: `dvc exp show --json` printed invalid JSON: {exc}") from None
    return _check_shape(shown, f"`dvc exp show --json` in {repo}")


def load_exp_show(path: str | Path) -> list[Any]:
    """Read a saved `dvc exp show --json > FILE` dump."""
    return _check_shape(read_json(path), str(path))


def _check_shape(shown: Any, where: str) -> list[Any]:
    if not isinstance(shown, list) or not all(isinstance(row, dict) for row in shown):
        kind = type(shown).__name__
        raise CodealignError(
            f"{where}: expected the list of rows `dvc exp show --json` prints, got {kind}"
        )
    return shown


# The stages' full metrics files the collectors read. DVC reads only the headline metrics
# (metrics/headline/), so `dvc exp show` lists these only in dumps made before that; for
# other rows they are read from the row's commit in `repo` (the workspace: from disk).
OUT_FILES = (
    "metrics/evaluate.json",
    "metrics/base_model_eval.json",
    "metrics/lintseq_eval.json",
)


def file_at(repo: Path, rev: str, path: str, workspace: bool = True) -> Any | None:
    """The JSON file `path` as commit `rev` of the git repository `repo` holds it (the
    workspace: the file on disk, unless not `workspace`); None where it is absent or not
    JSON."""
    if rev == "workspace":
        if not workspace:
            return None
        try:
            return json.loads((repo / path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    try:
        proc = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, check=False
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def experiment_rows(
    shown: list[Any], skipped: Counter, repo: Path | None = None, workspace: bool = True
) -> list[ExperimentRow]:
    """The finished rows of a `dvc exp show --json` listing; `skipped` counts the others.
    With `repo`, the `OUT_FILES` a row's listing lacks are read from its commit there, and
    the workspace row's from disk where `workspace` (not for a saved dump: the workspace
    it listed is gone)."""
    rows = []
    for order, (entry, state, baseline) in enumerate(_walk(shown)):
        if state in _UNFINISHED:
            skipped[state] += 1
            continue
        data = entry.get("data") or {}
        if entry.get("error") or not data:
            skipped["with an error"] += 1
            continue
        params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {}
        all_metrics = {
            path: shown_file.get("data")
            for path, shown_file in (data.get("metrics") or {}).items()
            if isinstance(shown_file, dict)
        }
        rev = str(entry.get("rev", "?"))
        for path in OUT_FILES if repo is not None else ():
            if (
                all_metrics.get(path) is None
                and (found := file_at(repo, rev, path, workspace)) is not None
            ):
                all_metrics[path] = found
        metrics = all_metrics.get(METRICS_FILE)
        rows.append(
            ExperimentRow(
                rev=rev,
                name=entry.get("name"),
                timestamp=data.get("timestamp"),
                order=order,
                params=params,
                metrics=metrics if isinstance(metrics, dict) else None,
                all_metrics=all_metrics,
                baseline=baseline,
            )
        )
    return rows


def _walk(
    entries: Sequence[Any], state: str | None = None, baseline: str | None = None
) -> Iterator[tuple[dict, str | None, str]]:
    """Yield (rev entry, executor state, baseline rev) for baselines and, depth first,
    their experiments."""
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        base = baseline or str(entry.get("rev", "workspace"))
        yield entry, state, base
        for experiment in entry.get("experiments") or []:
            executor = experiment.get("executor") or {}
            yield from _walk(experiment.get("revs") or [], executor.get("state"), base)


def sweep_runs(rows: Sequence[ExperimentRow], benchmark: str, skipped: Counter) -> list[Run]:
    """One Run per (k, seed): the newest routed score, and K = 1 from `k1` where missing.
    Only runs that changed nothing but k and the seeds count (`same_configuration`)."""
    rows = same_configuration(rows, SWEPT, skipped)
    with_metrics = [row for row in rows if row.metrics is not None]
    skipped[f"no {METRICS_FILE}"] += len(rows) - len(with_metrics)
    if not with_metrics:
        return []
    with_benchmark = [row for row in with_metrics if isinstance(row.metrics.get(benchmark), dict)]
    if not with_benchmark:
        present = sorted({name for row in with_metrics for name in row.metrics})
        raise CodealignError(
            f"benchmark '{benchmark}' is not in {METRICS_FILE} of any experiment "
            f"(present: {', '.join(present) or 'none'})"
        )
    skipped[f"no {benchmark} in {METRICS_FILE}"] += len(with_metrics) - len(with_benchmark)

    candidates: list[Run] = []
    for row in with_benchmark:
        k, seed = row.params.get("k"), or_master_seed(row.params, row.params.get("train_seed"))
        if not is_int(k) or not is_int(seed):
            skipped[f"no integer k and seed in {PARAMS_FILE}"] += 1
            continue
        models = row.metrics[benchmark].get("models") or {}
        digest = lookup(models, "base", "model_digest")
        for model in ("routed", "k1"):
            scores = models.get(model)
            if not isinstance(scores, dict) or not is_number(scores.get(PASS1)):
                if model == "routed":
                    skipped[f"no {benchmark}.models.routed.{PASS1}"] += 1
                continue
            if stale_seed(scores, seed):
                skipped[f"{model} scores of another train_seed (stale {METRICS_FILE})"] += 1
                continue
            candidates.append(
                Run(
                    k=k if model == "routed" else 1,
                    seed=seed,
                    model=model,
                    effective_k=scores["k"] if is_int(scores.get("k")) else None,
                    scores={key: float(v) for key, v in scores.items() if _is_score(key, v)},
                    row=row,
                    base_digest=digest if isinstance(digest, str) else None,
                )
            )

    newest: dict[tuple[int, int], Run] = {}
    routed = [run for run in candidates if run.model == "routed"]
    for run in sorted(routed, key=lambda run: run.row.recency, reverse=True):
        if (run.k, run.seed) in newest:
            skipped["older repeats of a (k, seed)"] += 1
        else:
            newest[(run.k, run.seed)] = run
    baselines = [run for run in candidates if run.model == "k1"]
    for run in sorted(baselines, key=lambda run: run.row.recency, reverse=True):
        newest.setdefault((1, run.seed), run)

    runs = sorted(newest.values(), key=lambda run: (run.k, run.seed))
    for run in runs:
        if run.model == "routed" and run.effective_k not in (None, run.k):
            log.warning(
                "%s: k=%d but the routed model has %d clusters (small ones dissolved)",
                run.row.label,
                run.k,
                run.effective_k,
            )
    return runs


def same_configuration(
    rows: Sequence[ExperimentRow], swept: Sequence[str], skipped: Counter
) -> list[ExperimentRow]:
    """The rows whose params equal the workspace's (the first row where none is the
    workspace) in every key but the `swept` ones, so that a sweep over seeds or K never
    takes in a run that changed something else, such as `-S base_model.code_share=0.5`.
    A key that one side lacks counts as equal when the other holds null or the key's
    schema default (a param added later, whose default keeps the old behaviour).
    `skipped` names the keys that differed.
    """
    if not rows:
        return []
    reference = next((row for row in rows if row.rev == "workspace"), rows[0])
    wanted = flat(reference.params)
    kept = []
    for row in rows:
        row_params = flat(row.params)
        differ = sorted(
            key
            for key in (set(wanted) | set(row_params)) - set(swept)
            if not same_value(row_params, wanted, key)
        )
        if differ:
            shown = ", ".join(differ[:3]) + (", ..." if len(differ) > 3 else "")
            skipped[f"with other params than the workspace ({shown})"] += 1
        else:
            kept.append(row)
    return kept


def passk_metric(runs: Sequence[Run]) -> str | None:
    """The pass@N_t<T> key with the highest N > 1 that every run reports, if any."""
    common = set.intersection(*(set(run.scores) for run in runs)) if runs else set()
    ranked = [
        (int(match.group(1)), key)
        for key in common
        if (match := _PASSK_KEY.match(key)) and int(match.group(1)) > 1
    ]
    return max(ranked)[1] if ranked else None


def aggregate(runs: Sequence[Run], benchmark: str) -> dict[str, Any]:
    """Per K: seeds, and mean/min/max/std (sample; null for one seed) of each metric."""
    passk = passk_metric(runs)
    metrics = [PASS1] + ([passk] if passk else [])
    by_k = []
    for k in sorted({run.k for run in runs}):
        at_k = [run for run in runs if run.k == k]
        point: dict[str, Any] = {
            "k": k,
            "seeds": [run.seed for run in at_k],
            "models": sorted({run.model for run in at_k}),
            "effective_k": sorted({run.effective_k for run in at_k if run.effective_k}),
        }
        for metric in metrics:
            point[metric] = spread([run.scores[metric] for run in at_k])
        by_k.append(point)
    return {
        "benchmark": benchmark,
        "base_model_digest": only_value(run.base_digest for run in runs),
        "metrics": metrics,
        "by_k": by_k,
        "runs": [
            {
                "k": run.k,
                "seed": run.seed,
                "model": run.model,
                "rev": run.row.rev,
                "name": run.row.name,
                **{metric: run.scores[metric] for metric in metrics},
            }
            for run in runs
        ],
    }


def spread(values: list[float]) -> dict[str, Any]:
    """n, mean, min, max, sample std (None for one value) and the values themselves."""
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 6),
        "min": min(values),
        "max": max(values),
        "std": round(statistics.stdev(values), 6) if len(values) > 1 else None,
        "values": values,
    }


def render_plot(summary: dict[str, Any]) -> bytes:
    """PNG of each metric against K: mean line, min-max band over seeds, one dot per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    metrics, by_k = summary["metrics"], summary["by_k"]
    ks = [point["k"] for point in by_k]
    seeds = sorted({run["seed"] for run in summary["runs"]})
    colors = plt.get_cmap("tab10")
    k1_note = "; at K = 1 the single-adapter k1 model"
    top = max([run[m] for run in summary["runs"] for m in metrics] + [0.0])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        mean = [point[metric]["mean"] for point in by_k]
        low = [point[metric]["min"] for point in by_k]
        high = [point[metric]["max"] for point in by_k]
        ax.fill_between(ks, low, high, color="#4c72b0", alpha=0.2, label="min-max over seeds")
        ax.plot(ks, mean, marker="o", color="#222222", label="mean")
        for i, seed in enumerate(seeds):
            # Nudge each seed sideways (a few percent on the log axis) so equal scores show.
            nudge = 1 + 0.025 * (i - (len(seeds) - 1) / 2)
            points = [(run["k"], run[metric]) for run in summary["runs"] if run["seed"] == seed]
            xs, ys = zip(*points, strict=True)
            ax.scatter(
                [x * nudge for x in xs],
                ys,
                s=16,
                color=colors(i % 10),
                zorder=3,
                label=f"seed {seed}",
            )
        # K = 1, 5, 10, 20 are evenly spaced on a log axis; label only the Ks swept.
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_ylim(0, max(0.05, top * 1.15))
        ax.set_xlabel("K (specialists)" + (k1_note if "k1" in by_k[0]["models"] else ""))
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    n_seeds = len(seeds)
    fig.suptitle(f"{summary['benchmark']}: routed model against K ({n_seeds} seeds)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def lookup(data: Any, *keys: str) -> Any:
    """`data[k1][k2]...`, or None where a level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def only_value(values: Iterable[Any]) -> Any:
    """The one non-null value that all of `values` share, else None (none, or several)."""
    distinct = set(values) - {None}
    return distinct.pop() if len(distinct) == 1 else None


def or_master_seed(params: dict[str, Any], seed: Any) -> Any:
    """A seed param as a run used it: null or absent means the master `seed` (as
    `train_seed` and every section's `seed` do)."""
    return params.get("seed") if seed is None else seed


def stale_seed(scores: Any, seed: int) -> bool:
    """Whether a model's scores in metrics/evaluate.json were sampled at another
    train_seed than the experiment's: `evaluate` did not run in it (it ran other stages
    only), so the file is its baseline's. Files that predate the field count as fresh."""
    recorded = scores.get("train_seed") if isinstance(scores, dict) else None
    return is_int(recorded) and recorded != seed


def _is_score(key: str, value: Any) -> bool:
    return key.startswith("pass@") and is_number(value)


def format_stats(stats: dict[str, Any] | None) -> str:
    """`mean [min, max]` of one metric's `spread` over seeds; `-` where it is missing."""
    if stats is None:
        return "-"
    return f"{stats['mean']:.3f} [{stats['min']:.3f}, {stats['max']:.3f}]"


def read_experiments(
    repo: Path, from_json: Path | None, all_commits: bool = False
) -> tuple[list[ExperimentRow], Counter, str]:
    """The finished rows of `dvc exp show` (or of a saved dump), the skip counts, and
    where they came from, for the messages."""
    if from_json is not None:
        shown, source = load_exp_show(from_json), str(from_json)
    else:
        shown, source = dvc_exp_show(repo, all_commits=all_commits), f"dvc exp show in {repo}"
    skipped: Counter = Counter()
    return experiment_rows(shown, skipped, repo, workspace=from_json is None), skipped, source


def skipped_text(skipped: Counter) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()) if n)


def no_runs_error(source: str, metrics_file: str, skipped: Counter) -> CodealignError:
    reasons = skipped_text(skipped)
    return CodealignError(
        f"{source}: no finished experiments with {metrics_file} found"
        + (f" (skipped: {reasons})" if reasons else "")
    )


def sweep_options(name: str, per: str, plot_help: str, benchmark: bool = True, plot: bool = True):
    """The options every sweep collector shares: where to read, what to write, where
    its run records go (and with `benchmark`, which benchmark of evaluate.json; with
    `plot`, the --plot PNG)."""

    def decorate(command):
        options = [
            click.option(
                "--repo",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=Path("."),
                show_default=True,
                help="The DVC repository whose experiments to read.",
            ),
            click.option(
                "--out",
                type=click.Path(dir_okay=False, path_type=Path),
                default=Path(f"metrics/{name}.json"),
                show_default=True,
                help=f"Aggregate per {per} (JSON).",
            ),
            click.option(
                "--plot",
                type=click.Path(dir_okay=False, path_type=Path),
                default=Path(f"metrics/{name}.png"),
                show_default=True,
                help=plot_help,
            ),
            click.option(
                "--from-json",
                "from_json",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Read a saved `dvc exp show --json` dump instead of running dvc.",
            ),
            click.option(
                "--all-commits",
                is_flag=True,
                help="Also read experiments based on older commits (dvc exp show --all-commits).",
            ),
            runs_dir_option(name),
        ]
        if not plot:
            del options[2]  # --plot
        if benchmark:
            options.insert(
                1,
                click.option(
                    "--benchmark",
                    default="tinyeval",
                    show_default=True,
                    help="Key in evaluate.json.",
                ),
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


EVALUATE_OUT = "data/evaluate"  # the evaluate stage's out: samples and verdicts


def verdict_files(benchmark: str, models: Sequence[str] = ("routed", "k1")) -> dict[str, str]:
    """Each evaluated model's verdicts as the evaluate stage writes them, per temperature
    (`pass1`: pass@1's, `passk`: pass@k's): `{"routed/pass1": path, ...}`."""
    return {
        f"{model}/{tag}": f"{EVALUATE_OUT}/{benchmark}/{model}/verdicts_{tag}.jsonl"
        for model in models
        for tag in ("pass1", "passk")
    }


def sweep_records(
    sweep: str,
    rows: Sequence[ExperimentRow],
    *,
    repo: Path,
    from_json: Path | None,
    swept_keys: Sequence[str],
    swept_of,
    metrics_of,
    task_files_of,
) -> list[dict[str, Any]]:
    """The run records of the rows a sweep counted (each row once, in listing order)."""
    unique = list({row.rev: row for row in sorted(rows, key=lambda r: r.order)}.values())
    command = command_line(click.get_current_context())
    return row_records(
        sweep,
        unique,
        repo=None if from_json is not None else repo,
        command=command,
        swept_keys=swept_keys,
        swept_of=swept_of,
        metrics_of=metrics_of,
        task_files_of=task_files_of,
        profile_root=repo,
    )


def finish(
    sweep: str,
    *,
    repo: Path,
    out: Path,
    plot: Path | None,
    summary: dict[str, Any],
    png: bytes | None,
    records: Sequence[dict[str, Any]],
    runs_dir: Path,
) -> None:
    """Write the run records, then the summary and its PNG, each with its provenance
    (the summary's profile: the one every record names, else null)."""
    write_records(runs_dir, records)
    profile = only_value(record["profile"] for record in records)
    prov = provenance(command_line(click.get_current_context()), repo, profile)
    summary = {**summary, "records": [str(runs_dir / f"{r['run_id']}.json") for r in records]}
    write_outputs(out, plot, summary, png, prov)
    click.echo(f"wrote {len(records)} run records to {runs_dir}", err=True)


@click.command("ksweep", cls=Command)
@sweep_options("ksweep", "K", "pass@1 and pass@10 against K (PNG).")
def ksweep_command(
    repo: Path,
    benchmark: str,
    out: Path,
    plot: Path,
    from_json: Path | None,
    all_commits: bool,
    runs_dir: Path,
) -> None:
    """Aggregate a K sweep run as DVC experiments; plot pass@1 and pass@10 against K.

    Queue the sweep, run it, then summarise it:

    \b
        for seed in 0 1 2; do for k in 1 5 10; do
          dvc exp run --queue -S k=$k -S train_seed=$seed evaluate; done; done
        dvc queue start -j 1      # then wait for `dvc queue status`
        codealign ksweep

    Reads params k and train_seed (the master seed where train_seed is null) and
    metrics/evaluate.json of every finished experiment (queued, running and failed ones
    are skipped; of repeated (k, seed) runs the newest counts), prints mean [min, max]
    over seeds per K, and writes --out and --plot, and one record per run counted
    (params, seeds, commit, metrics, per-task verdict counts) under --runs-dir.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    runs = sweep_runs(rows, benchmark, skipped)
    if not runs:
        raise no_runs_error(source, METRICS_FILE, skipped)
    summary = aggregate(runs, benchmark)
    png = render_plot(summary)
    records = sweep_records(
        "ksweep",
        [run.row for run in runs],
        repo=repo,
        from_json=from_json,
        swept_keys=SWEPT,
        swept_of=lambda row: {
            "k": row.params.get("k"),
            "train_seed": or_master_seed(row.params, row.params.get("train_seed")),
        },
        metrics_of=lambda row: row.metrics[benchmark],
        task_files_of=lambda row: verdict_files(benchmark),
    )
    finish(
        "ksweep",
        repo=repo,
        out=out,
        plot=plot,
        summary=summary,
        png=png,
        records=records,
        runs_dir=runs_dir,
    )

    metrics = summary["metrics"]
    click.echo("\t".join(["K", "seeds", *metrics]))
    for point in summary["by_k"]:
        k = f"{point['k']}" + ("" if point["models"] == ["routed"] else " (k1)")
        cells = [format_stats(point[metric]) for metric in metrics]
        click.echo("\t".join([k, str(len(point["seeds"])), *cells]))
    reasons = skipped_text(skipped)
    click.echo(
        f"{len(runs)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out} and {plot}", err=True)


# `dvc exp show` lists every param and metric (hundreds of columns); these are the ones
# an experiment is judged by.
EXPS_COLUMNS = {
    "Experiment|Created": "the experiment and when it ran",
    # DVC names a column `params.yaml:k` only where a metric is also called `k`.
    r"(params\.yaml:)?(seed|k|train_seed)|base_model\.(code_share|seed)": "the params swept",
    # The headline metrics (metrics/headline/); DVC prefixes a key that two files share
    # with the file (`metrics/headline/dedup.json:records`).
    r"(metrics/headline/dedup\.json:)?(records|removed)": "records kept and removed by dedup",
    r"pass@1\.(base|k1|routed)": "pass@1 of the base model, K = 1 and routed",
    "pairs": "DPO pairs after pruning",
    r"pass@1\.(curriculum|shuffled)|(metrics/headline/dpo\.json:)?difference": (
        "DPO final pass@1, and curriculum minus shuffled at equal steps"
    ),
}
EXPS_KEEP = "^(" + "|".join(EXPS_COLUMNS) + ")$"


@click.command(
    "exps",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog="Columns: " + "; ".join(EXPS_COLUMNS.values()) + ".",
)
@click.argument("dvc_args", nargs=-1, type=click.UNPROCESSED)
def exps_command(dvc_args: tuple[str, ...]) -> None:
    """`dvc exp show` with only the columns that matter.

    Any other argument goes to `dvc exp show` as is, e.g.
    `codealign exps --only-changed`, `codealign exps -A --md`,
    `codealign exps --sort-by pass@1.routed --sort-order desc`.
    """
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--drop", ".*", "--keep", EXPS_KEEP]
    raise SystemExit(subprocess.call([*cmd, *dvc_args]))
