"""`codealign fallback-margin`: choose `specialists.fallback_margin` on the dev set.

The routed specialists fall back to the K = 1 adapter (the generalist) where a question's
cosine margin between its best and second-best centroid is below the threshold
(`codealign.specialists.routing.Router`). The threshold is a hyperparameter, so it is
chosen on tinydev, never on tinyeval (docs/heldout.md): every tinydev task is answered
`eval.n` times at `eval.pass1_temperature` by its specialist and by the generalist, once
each, and a threshold's pass@1 is the mean over tasks of the generalist's pass rate where
the task's margin is below it and the specialist's elsewhere. The threshold with the
highest pass@1 is chosen (ties: the smallest, which falls back least); 0 (never fall
back) is always on the grid, so the choice is never worse on tinydev than no fallback.

Answers drawn once per adapter stand for the answers of any threshold: the evaluate
stage draws its own (other batches, so other random streams), so a threshold's tinydev
pass@1 here is an estimate, not the number evaluate would print on tinydev.

    codealign fallback-margin --routed models/sft --generalist models/sft_baseline
    dvc exp run -S specialists.fallback_margin=<chosen> evaluate

The result (`--out`, default results/specialists/fallback_margin.json) records every
threshold's pass@1 and fallback share, the chosen margin, and the command, commit and
profile that made it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError

log = logging.getLogger(__name__)

DEV = "tinydev"
MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)


def task_pass_rates(verdicts: list[dict[str, Any]]) -> dict[str, float]:
    """Each task's share of passing samples (its unbiased pass@1)."""
    passed: dict[str, list[bool]] = {}
    for verdict in verdicts:
        passed.setdefault(str(verdict["task_id"]), []).append(bool(verdict["passed"]))
    return {task: sum(runs) / len(runs) for task, runs in passed.items()}


def sweep(
    margins: dict[str, float],
    specialist: dict[str, float],
    generalist: dict[str, float],
    thresholds: list[float],
) -> list[dict[str, float]]:
    """pass@1 and the share of tasks that fall back, per threshold."""
    tasks = sorted(margins)
    rows = []
    for threshold in thresholds:
        falls = [margins[t] < threshold for t in tasks]
        scores = [generalist[t] if f else specialist[t] for t, f in zip(tasks, falls, strict=True)]
        rows.append(
            {
                "fallback_margin": threshold,
                "pass@1": sum(scores) / len(scores),
                "fallback_share": sum(falls) / len(falls),
            }
        )
    return rows


def choose(rows: list[dict[str, float]]) -> float:
    """The threshold with the highest pass@1; of equal ones the smallest."""
    best = max(row["pass@1"] for row in rows)
    return min(row["fallback_margin"] for row in rows if row["pass@1"] >= best - 1e-12)


def answers(router, benchmark, clusters: list[int], sampling, sandbox) -> list[dict[str, Any]]:
    """Verdicts of `sampling.n` answers per task, task i answered by adapter clusters[i]."""
    from codealign.evaluation import chat
    from codealign.evaluation.evaluate import (
        benchmark_problems,
        benchmark_questions,
        score_decoded,
    )

    _, texts = router.sample(
        benchmark_questions(benchmark),
        n=sampling.n,
        temperature=sampling.temperature,
        max_new_tokens=sampling.max_new_tokens,
        batch_size=sampling.batch_size,
        seed=sampling.seed,
        clusters=clusters,
    )
    samples = []
    for record, task_texts in zip(benchmark.records, texts, strict=True):
        for j, text in enumerate(task_texts):
            samples.append(
                {"task_id": record["task_id"], "completion_id": j, "completion": chat.program(text)}
            )
    return score_decoded(sandbox, benchmark_problems(benchmark), samples)


def _margins(value: str) -> list[float]:
    try:
        found = sorted({float(v) for v in value.split(",") if v.strip()} | {0.0})
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of numbers") from None
    if any(not math.isfinite(m) or not 0 <= m <= 2 for m in found):
        raise click.BadParameter("every margin must lie in [0, 2] (a cosine difference)")
    return found


@click.command("fallback-margin", cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--routed",
    default="models/sft",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The sft dir of the K specialists.",
)
@click.option(
    "--generalist",
    default="models/sft_baseline",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The K = 1 sft dir they fall back to.",
)
@click.option("--seed-dir", default="data/seed", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--margins",
    default=",".join(f"{m:g}" for m in MARGINS),
    show_default=True,
    help="Thresholds to try (0 is always added).",
)
@click.option(
    "--out",
    default="results/specialists/fallback_margin.json",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option(
    "--embed-cache-dir",
    default=".cache/embeddings",
    show_default=True,
    help="Embedding cache for routing.",
)
def fallback_margin_command(
    params_file: str,
    routed: Path,
    generalist: Path,
    seed_dir: Path,
    margins: str,
    out: Path,
    embed_cache_dir: str,
) -> None:
    """Choose specialists.fallback_margin on tinydev; write every threshold's pass@1.

    Answers every tinydev task with its specialist and with the generalist (eval.n
    samples at eval.pass1_temperature, seed train_seed, eval's token budget and batch),
    scores both, and picks the threshold with the best pass@1. Then run the evaluation
    with it: `dvc exp run -S specialists.fallback_margin=<chosen> evaluate`.
    """
    from codealign.evaluation.evaluate import benchmark_questions, load_benchmark
    from codealign.evaluation.policy import SamplingSpec
    from codealign.execution import Limits, Sandbox
    from codealign.io import write_json
    from codealign.params import load_params
    from codealign.profiles import current
    from codealign.specialists.routing import Router
    from codealign.sweeps.records import command_line, provenance

    thresholds = _margins(margins)
    params = load_params(params_file)
    p = params["eval"]
    benchmark = load_benchmark(DEV, seed_dir, Path(params["data"].raw_dir))
    # The largest threshold loads the generalist; routing itself is read per task below.
    router = Router(
        routed,
        embed_cache_dir=embed_cache_dir,
        fallback=generalist,
        fallback_margin=max(thresholds[-1], 1e-9),
    )
    if router.k == 1:
        raise CodealignError(f"{routed}: K = 1, nothing to fall back from")
    labels, task_margins = router.nearest(benchmark_questions(benchmark))
    sampling = SamplingSpec(
        p.n, p.pass1_temperature, p.max_new_tokens, p.batch_size, params.train_seed
    )
    with Sandbox(workers=p.workers, limits=Limits(timeout=p.timeout)) as sandbox:
        own = task_pass_rates(answers(router, benchmark, labels, sampling, sandbox))
        general = task_pass_rates(
            answers(router, benchmark, [router.k] * len(labels), sampling, sandbox)
        )
    ids = [str(r["task_id"]) for r in benchmark.records]
    by_task = dict(zip(ids, task_margins, strict=True))
    rows = sweep(by_task, own, general, thresholds)
    chosen = choose(rows)
    result = {
        "benchmark": DEV,
        "tasks": len(ids),
        "routed": str(routed),
        "generalist": str(generalist),
        "k": router.k,
        "samples_per_task": p.n,
        "temperature": p.pass1_temperature,
        "train_seed": params.train_seed,
        "sweep": rows,
        "chosen": chosen,
        "margins": {t: round(by_task[t], 6) for t in ids},
        "provenance": provenance(
            command_line(click.get_current_context()),
            Path("."),
            current(Path("."), Path(params_file)),
        ),
    }
    write_json(out, result)
    click.echo("fallback_margin\tpass@1\tfallback share")
    for row in rows:
        click.echo(f"{row['fallback_margin']:g}\t{row['pass@1']:.4f}\t{row['fallback_share']:.3f}")
    click.echo(f"chosen: {chosen:g} (tinydev); wrote {out}")
