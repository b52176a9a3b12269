"""`codealign mixture`: the code-share ablation run as DVC experiments, per code share.

Reads what the `base_model_eval` stage (codealign.pretraining.base_model_eval) writes to
metrics/base_model_eval.json and the K = 1 model's pass@1 in metrics/evaluate.json of
every finished experiment, aggregates them per `base_model.code_share`, and plots them.
Kept out of codealign.pretraining.base_model_eval, a dependency of that stage, so that changing the
collector does not rerun it.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.sweeps.experiments import (
    PARAMS_FILE,
    ExperimentRow,
    finish,
    format_stats,
    is_int,
    is_number,
    lookup,
    no_runs_error,
    or_master_seed,
    read_experiments,
    same_configuration,
    skipped_text,
    spread,
    stale_seed,
    sweep_options,
    sweep_records,
    verdict_files,
)

BASE_EVAL_FILE = "metrics/base_model_eval.json"
BASE_MODEL_FILE = "metrics/base_model.json"
EVALUATE_FILE = "metrics/evaluate.json"
# The phase schedule (docs/code-share.md#phases): a run with one is kept apart from the
# single-mixture grid (its own `by_schedule` points) but gets its record all the same.
PHASES = ("continue", "cooldown")
PHASE_KEYS = tuple(
    f"base_model.{phase}_{key}" for phase in PHASES for key in ("fraction", "code_share")
)
SWEPT = ("base_model.code_share", "base_model.seed", "seed", "train_seed", *PHASE_KEYS)

# (phase, fraction, code share) of each phase after the main one; () for one mixture.
Schedule = tuple[tuple[str, float, float], ...]

# name -> (metrics file section, key); values are read from metrics/base_model_eval.json.
BASE_METRICS = {
    "english_perplexity": ("english", "perplexity"),
    "english_bits_per_byte": ("english", "bits_per_byte"),
    "code_perplexity": ("code", "perplexity"),
    "code_bits_per_byte": ("code", "bits_per_byte"),
    "instruction_accuracy": ("instructions_heldout", "accuracy"),
}
SFT_PASS1 = "sft_pass@1"
# Bits per byte, not per-token perplexity: each code share has its own tokenizer.
PANELS = {
    "english_bits_per_byte": "English, held out: bits per byte",
    "code_bits_per_byte": "tinyeval solutions: bits per byte",
    "instruction_accuracy": "English instructions, held out: exact match",
    SFT_PASS1: "pass@1 after SFT (K = 1 model)",
}


@dataclass(frozen=True)
class MixtureRun:
    """One (code share, pretraining seed, training seed) point of the ablation."""

    code_share: float
    base_seed: int
    train_seed: int
    model_digest: str | None
    scores: dict[str, float | None]
    row: ExperimentRow
    schedule: Schedule = ()


def schedule_of(base: dict[str, Any]) -> Schedule | None:
    """The phases after the main one that `base_model` params set (null or 0 fraction:
    none), or None where a set phase has no numeric code share."""
    phases = []
    for phase in PHASES:
        fraction, share = base.get(f"{phase}_fraction"), base.get(f"{phase}_code_share")
        if fraction is None or fraction == 0:
            continue
        if not is_number(fraction) or not is_number(share):
            return None
        phases.append((phase, float(fraction), float(share)))
    return tuple(phases)


def measured_schedule(measured: dict[str, Any]) -> Schedule | None:
    """The schedule a base_model_eval.json was measured under (its `phases`, absent
    before a schedule existed and where it is off), or None where malformed."""
    phases = measured.get("phases") or []
    if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
        return None
    out = []
    for phase in phases:
        if phase.get("name") == "main":
            continue
        fraction, share = phase.get("fraction"), phase.get("code_share")
        if not is_number(fraction) or not is_number(share):
            return None
        out.append((str(phase.get("name")), float(fraction), float(share)))
    return tuple(out)


def schedule_label(schedule: Schedule) -> dict[str, str]:
    """`{"schedule": "cooldown0.2at0"}` for a record's swept values (and so its file
    name); nothing for one mixture, whose records keep the names they always had."""
    if not schedule:
        return {}
    return {"schedule": "+".join(f"{n}{f:g}at{c:g}" for n, f, c in schedule)}


def schedule_dicts(schedule: Schedule) -> list[dict[str, Any]]:
    return [{"name": n, "fraction": f, "code_share": c} for n, f, c in schedule]


def mixture_runs(
    rows: Sequence[ExperimentRow], benchmark: str, skipped: Counter
) -> list[MixtureRun]:
    """One run per (code share, pretraining seed, training seed); `skipped` counts the
    rows (and SFT scores) left out and why. Only runs that changed nothing but those
    params count (`same_configuration`)."""
    rows = same_configuration(rows, SWEPT, skipped)
    candidates = []
    for row in rows:
        base = row.params.get("base_model")
        base = base if isinstance(base, dict) else {}
        share = base.get("code_share")
        base_seed = or_master_seed(row.params, base.get("seed"))
        train_seed = or_master_seed(row.params, row.params.get("train_seed"))
        if not is_number(share) or not is_int(base_seed) or not is_int(train_seed):
            skipped[f"no base_model.code_share and integer seeds in {PARAMS_FILE}"] += 1
            continue
        schedule = schedule_of(base)
        if schedule is None:
            skipped[f"a phase fraction without a numeric code share in {PARAMS_FILE}"] += 1
            continue
        measured = row.all_metrics.get(BASE_EVAL_FILE)
        if not isinstance(measured, dict):
            skipped[f"no {BASE_EVAL_FILE}"] += 1
            continue
        # Where the stage did not run in an experiment, the file is its baseline's.
        if is_number(measured.get("code_share")) and measured["code_share"] != share:
            skipped[f"with a stale {BASE_EVAL_FILE} (measured at another code share)"] += 1
            continue
        if is_int(measured.get("base_seed")) and measured["base_seed"] != base_seed:
            skipped[f"with a stale {BASE_EVAL_FILE} (measured at another base_model.seed)"] += 1
            continue
        if measured_schedule(measured) != schedule:
            skipped[f"with a stale {BASE_EVAL_FILE} (measured under another phase schedule)"] += 1
            continue
        scores = {name: lookup(measured, *path) for name, path in BASE_METRICS.items()}
        if not all(is_number(v) for v in scores.values()):
            skipped[f"with a {BASE_EVAL_FILE} lacking {', '.join(BASE_METRICS)}"] += 1
            continue
        digest = measured.get("model_digest")
        digest = digest if isinstance(digest, str) else None
        models = lookup(row.all_metrics.get(EVALUATE_FILE), benchmark, "models")
        pass1 = lookup(models, "k1", "pass@1")
        # Where evaluate did not run in the experiment, its scores are the baseline's:
        # another base model's, or another train_seed's.
        evaluated_base = lookup(models, "base", "model_digest")
        if (
            is_number(pass1)
            and isinstance(evaluated_base, str)
            and digest not in (None, evaluated_base)
        ):
            skipped[f"SFT scores of another base model (stale {EVALUATE_FILE})"] += 1
            pass1 = None
        if is_number(pass1) and stale_seed(lookup(models, "k1"), train_seed):
            skipped[f"SFT scores of another train_seed (stale {EVALUATE_FILE})"] += 1
            pass1 = None
        scores[SFT_PASS1] = float(pass1) if is_number(pass1) else None
        candidates.append(
            MixtureRun(float(share), base_seed, train_seed, digest, scores, row, schedule)
        )

    # Of repeats, the newest with SFT scores, else the newest: a run whose evaluate.json
    # was stale never shadows one that measured them.
    def preference(run: MixtureRun) -> tuple[bool, Any]:
        return run.scores[SFT_PASS1] is not None, run.row.recency

    newest: dict[tuple, MixtureRun] = {}
    for run in sorted(candidates, key=preference, reverse=True):
        key = (run.code_share, run.schedule, run.base_seed, run.train_seed)
        if key in newest:
            skipped["older repeats of a (code share, schedule, base seed, train seed)"] += 1
        else:
            newest[key] = run
    return sorted(
        newest.values(),
        key=lambda run: (run.schedule, run.code_share, run.base_seed, run.train_seed),
    )


def aggregate(runs: Sequence[MixtureRun], benchmark: str) -> dict[str, Any]:
    """Per code share: mean/min/max/n/values of each metric, over the single-mixture
    runs; the same per (code share, schedule) of the phase-schedule runs in `by_schedule`.

    Base-model metrics are taken once per distinct base model: runs that differ only in
    `train_seed` share one pretrained model, and counting it three times would fake a
    spread of zero over three seeds. Their spread comes from `base_model.seed`. pass@1
    after SFT is taken once per run that evaluated its own base model.
    """
    counted: set[int] = set()

    def point(at: list[MixtureRun]) -> dict[str, Any]:
        models = _distinct_models(at)
        counted.update(id(run) for run in models)
        scored = [run for run in at if run.scores[SFT_PASS1] is not None]
        out: dict[str, Any] = {
            "code_share": at[0].code_share,
            "base_seeds": [run.base_seed for run in models],
            "base_models": len(models),
            "sft_runs": [[run.base_seed, run.train_seed] for run in scored],
        }
        for name in BASE_METRICS:
            out[name] = spread([run.scores[name] for run in models])
        sft = [run.scores[SFT_PASS1] for run in scored]
        out[SFT_PASS1] = spread(sft) if sft else None
        return out

    single = [run for run in runs if not run.schedule]
    by_share = [
        point([run for run in single if run.code_share == share])
        for share in sorted({run.code_share for run in single})
    ]
    by_schedule = []
    for share, schedule in sorted({(r.code_share, r.schedule) for r in runs if r.schedule}):
        at = [run for run in runs if (run.code_share, run.schedule) == (share, schedule)]
        by_schedule.append({"phases": schedule_dicts(schedule), **point(at)})
    return {
        "benchmark": benchmark,
        "metrics": [*BASE_METRICS, SFT_PASS1],
        "by_share": by_share,
        "by_schedule": by_schedule,
        "runs": [
            {
                "code_share": run.code_share,
                "phases": schedule_dicts(run.schedule),
                "base_seed": run.base_seed,
                "train_seed": run.train_seed,
                "rev": run.row.rev,
                "name": run.row.name,
                "model_digest": run.model_digest,
                "base_model_counted": id(run) in counted,
                **run.scores,
            }
            for run in runs
        ],
    }


def _record_metrics(run: MixtureRun, benchmark: str) -> dict[str, Any]:
    """A mixture run's record metrics: the base-model metrics file, its model's digest,
    and the K = 1 model's scores where evaluate ran in the run (else null)."""
    models = lookup(run.row.all_metrics.get(EVALUATE_FILE), benchmark, "models")
    sft = lookup(models, "k1") if run.scores[SFT_PASS1] is not None else None
    return {
        "base_model_eval": run.row.all_metrics.get(BASE_EVAL_FILE),
        # The pretraining stage's own scores (tinydev pass@k of the base model) and, under
        # a schedule, its phases as trained.
        "base_model": run.row.all_metrics.get(BASE_MODEL_FILE),
        "model_digest": run.model_digest,
        "scores": dict(run.scores),
        "k1": sft,
    }


def _distinct_models(runs: Sequence[MixtureRun]) -> list[MixtureRun]:
    seen: set[str] = set()
    distinct = []
    for run in runs:
        if run.model_digest is None or run.model_digest not in seen:
            distinct.append(run)
            if run.model_digest is not None:
                seen.add(run.model_digest)
    return distinct


def log_scale(metric: str, values: Sequence[float]) -> bool:
    """Whether a panel wants a log y-axis: bits per byte spanning more than 20x, as when a
    share never saw the text (code share 0 scores code ~100x worse than the others)."""
    return metric.endswith("bits_per_byte") and 0 < 20 * min(values) < max(values)


def zoom_shares(points: Sequence[dict[str, Any]], metric: str) -> list[float]:
    """On a log-scaled panel, the shares close to the best (their max within 20x of the
    lowest min): a linear inset shows the differences the log axis flattens."""
    low = min(p[metric]["min"] for p in points)
    return [p["code_share"] for p in points if p[metric]["max"] <= 20 * low]


def _draw(ax, points: Sequence[dict[str, Any]], metric: str, dots: dict[int, list]) -> None:
    """Min-max band, mean line, and a dot per counted value coloured by its seed."""
    import matplotlib.pyplot as plt

    xs = [p["code_share"] for p in points]
    ax.fill_between(
        xs,
        [p[metric]["min"] for p in points],
        [p[metric]["max"] for p in points],
        color="#4c72b0",
        alpha=0.2,
        label="min-max",
    )
    ax.plot(xs, [p[metric]["mean"] for p in points], marker="o", color="#222222", label="mean")
    for i, (seed, seed_dots) in enumerate(sorted(dots.items())):
        nudge = 0.012 * (i - (len(dots) - 1) / 2)  # equal scores stay visible
        ax.scatter(
            [x + nudge for x, _ in seed_dots],
            [y for _, y in seed_dots],
            s=16,
            color=plt.get_cmap("tab10")(seed % 10),
            zorder=3,
            label=f"seed {seed}",
        )


def render_plot(summary: dict[str, Any]) -> bytes:
    """PNG, one panel per metric against code share: mean line, min-max band, a dot per run.
    A log-scaled panel gets a linear inset of the shares close to the best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_share = summary["by_share"]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.8), squeeze=False)
    for ax, (metric, title) in zip(axes[0], PANELS.items(), strict=True):
        points = [p for p in by_share if p[metric] is not None]
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("code share of the pretraining corpus")
        ax.set_xlim(-0.05, 1.05)
        ax.set_xticks([p["code_share"] for p in by_share])
        ax.grid(alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, f"no {EVALUATE_FILE}", ha="center", transform=ax.transAxes)
            continue
        # A dot per counted value, as aggregated: per base model (coloured by its
        # pretraining seed), or per SFT run (coloured by its training seed).
        per_model = metric in BASE_METRICS
        seed_key = "base_seed" if per_model else "train_seed"
        dots: dict[int, list] = {}
        for run in summary["runs"]:
            if run.get("phases"):
                continue  # a phase schedule: not a point of the single-mixture grid
            if run[metric] is not None and (run["base_model_counted"] or not per_model):
                dots.setdefault(run[seed_key], []).append((run["code_share"], run[metric]))
        _draw(ax, points, metric, dots)
        if not log_scale(metric, [v for p in points for v in (p[metric]["min"], p[metric]["max"])]):
            continue
        ax.set_yscale("log")
        near = zoom_shares(points, metric)
        if len(near) < 2:
            continue
        far = [p["code_share"] for p in points if p["code_share"] not in near]
        right = min(far) > max(near)  # the outlier is right: the inset goes top left
        inset = ax.inset_axes([0.17, 0.5, 0.46, 0.4] if right else [0.5, 0.5, 0.46, 0.4])
        near_dots = {s: [d for d in ds if d[0] in near] for s, ds in dots.items()}
        _draw(inset, [p for p in points if p["code_share"] in near], metric, near_dots)
        inset.set_xticks(near)
        inset.tick_params(labelsize=7)
        inset.grid(alpha=0.3)
        inset.set_title("linear zoom", fontsize=7)
    legend: dict[str, Any] = {}  # every seed, whichever panels it has dots in
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[0][0].legend(list(legend.values()), list(legend), fontsize=7, loc="lower right")
    base_seeds = max((len(p["base_seeds"]) for p in by_share), default=0)
    train_seeds = max((len(p["sft_runs"]) for p in by_share), default=0)
    fig.suptitle(
        f"code share ablation (up to {base_seeds} pretraining seeds per share; pass@1 on "
        f"{summary['benchmark']}: up to {train_seeds} SFT runs)"
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


@click.command("mixture", cls=Command)
@sweep_options("mixture", "code share", "The four metrics against code share (PNG).")
def mixture_command(
    repo: Path,
    benchmark: str,
    out: Path,
    plot: Path,
    from_json: Path | None,
    all_commits: bool,
    runs_dir: Path,
) -> None:
    """Aggregate the code-share ablation run as DVC experiments, and plot it.

    Queue the grid, run it, then summarise it:

    \b
        for s in 0 0.25 0.5 1.0; do
          for seed in 0 1 2; do       # training seeds: pass@1 after SFT
            dvc exp run --queue -S base_model.code_share=$s -S train_seed=$seed \\
              base_model_eval evaluate; done
          for seed in 1 2; do         # pretraining seeds: the base-model metrics
            dvc exp run --queue -S base_model.code_share=$s -S base_model.seed=$seed \\
              base_model_eval; done; done
        dvc queue start -j 1      # then wait for `dvc queue status`
        codealign mixture

    Reads params base_model.code_share, base_model.seed and train_seed (each seed null:
    the master seed), metrics/base_model_eval.json and the K = 1 model's pass@1 in
    metrics/evaluate.json of every finished experiment (queued, running and failed ones
    are skipped; of repeated (share, base seed, train seed) runs the newest that measured
    pass@1 after SFT counts, else the newest),
    prints mean [min, max] per share, and writes --out and --plot. Base-model metrics
    count each distinct base model once (train_seed does not change it; base_model.seed
    does). pass@1 after SFT counts only where `evaluate` ran in the experiment: on its own
    base model and at its train_seed. One record per run counted goes under --runs-dir
    (its base-model metrics, and where evaluate ran in it, the K = 1 model's pass@1 and
    per-task verdict counts).

    Runs with a phase schedule (base_model.continue_fraction / cooldown_fraction and
    their code shares, docs/code-share.md#phases) are aggregated apart, per (code share,
    schedule) under `by_schedule`, and kept off the plot; they get records all the same.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    runs = mixture_runs(rows, benchmark, skipped)
    reasons = skipped_text(skipped)
    if not runs:
        raise no_runs_error(source, BASE_EVAL_FILE, skipped)
    if not any(not run.schedule for run in runs):
        raise CodealignError(
            f"{source}: only phase-schedule runs; the grid needs single-mixture runs too "
            "(base_model.continue_fraction and cooldown_fraction null)"
        )
    summary = aggregate(runs, benchmark)
    png = render_plot(summary)
    by_rev = {run.row.rev: run for run in runs}
    records = sweep_records(
        "mixture",
        [run.row for run in runs],
        repo=repo,
        from_json=from_json,
        swept_keys=SWEPT,
        swept_of=lambda row: {
            "code_share": by_rev[row.rev].code_share,
            **schedule_label(by_rev[row.rev].schedule),
            "base_seed": by_rev[row.rev].base_seed,
            "train_seed": by_rev[row.rev].train_seed,
        },
        metrics_of=lambda row: _record_metrics(by_rev[row.rev], benchmark),
        task_files_of=lambda row: (
            verdict_files(benchmark, ("k1",))
            if by_rev[row.rev].scores[SFT_PASS1] is not None
            else {}
        ),
    )
    finish(
        "mixture",
        repo=repo,
        out=out,
        plot=plot,
        summary=summary,
        png=png,
        records=records,
        runs_dir=runs_dir,
    )

    columns = list(PANELS)
    click.echo("\t".join(["code_share", "base_models", "sft_runs", *columns]))
    for point in summary["by_share"]:
        share, models = f"{point['code_share']:g}", point["base_models"]
        cells = [format_stats(point[metric]) for metric in columns]
        click.echo("\t".join([share, str(models), str(len(point["sft_runs"])), *cells]))
    for point in summary["by_schedule"]:
        phases = " then ".join(
            f"{p['name']} {p['fraction']:g} at {p['code_share']:g}" for p in point["phases"]
        )
        share, models = f"{point['code_share']:g}, {phases}", point["base_models"]
        cells = [format_stats(point[metric]) for metric in columns]
        click.echo("\t".join([share, str(models), str(len(point["sft_runs"])), *cells]))
    click.echo(
        f"{len(runs)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out} and {plot}", err=True)
