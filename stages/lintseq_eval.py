"""Stage `lintseq_eval`: train on edits vs on programs, same data and steps; pass@k against k."""

import dataclasses
import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.edits import distribution
from codealign.edits.lintseq_eval import (
    answer_lengths,
    evaluate_pair,
    plot_pass_at_k,
    read_edit_records,
    train_pair,
)
from codealign.evaluation.evaluate import Benchmark, load_benchmark
from codealign.io import atomic_path, read_jsonl, write_json, write_jsonl
from codealign.lm.checkpoints import file_digest
from codealign.params import load_params

log = logging.getLogger("stages.lintseq_eval")

PathType = click.Path(path_type=Path)


COMPOSED = "lintseq_composed"


def composed_tasks(data_dir: Path, limit: int) -> Benchmark | None:
    """The composed eval tasks the lintseq stage wrote (lintseq.compose > 1), first
    `limit` of them (0: all), or None where it wrote none."""
    path = data_dir / "tasks.jsonl"
    if not path.exists():
        return None
    records = read_jsonl(path)
    if limit:
        records = records[:limit]
    log.info("%s: %d composed eval tasks in place of lintseq_eval.benchmark", path, len(records))
    return Benchmark(COMPOSED, records, [r["prompt"] for r in records], False)


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option("--data-dir", default="data/lintseq", show_default=True, type=PathType)
@click.option("--seed-dir", default="data/seed", show_default=True, type=PathType)
@click.option("--base", default="models/base_model", show_default=True, type=PathType)
@click.option("--models-out", default="models/lintseq_eval", show_default=True, type=PathType)
@click.option("--out", default="data/lintseq_eval", show_default=True, type=PathType)
@click.option("--metrics", default="metrics/lintseq_eval.json", show_default=True)
@click.option(
    "--plots",
    default="metrics/lintseq_eval",
    show_default=True,
    type=PathType,
    help="pass_at_k.png and the dvclive training curves of both runs.",
)
def main(params_file, data_dir, seed_dir, base, models_out, out, metrics, plots) -> None:
    """Train a K = 1 adapter on programs (sft.target code) and one on their LintSeq edit
    sequences (edits) from the same records with the same sft params and optimizer steps;
    sample lintseq_eval.n answers per benchmark task from each (the composed tasks of
    --data-dir's tasks.jsonl where the lintseq stage wrote one, else
    lintseq_eval.benchmark), rebuild the edits model's programs by applying its diffs
    (a diff that does not apply counts as edit_failed), and
    report pass@k for k = 1..n with the plot of pass@k against k.
    """
    setup_logging()
    params = load_params(params_file)
    p, sft = params["lintseq_eval"], params["sft"]
    if p.epochs is not None:
        sft = dataclasses.replace(sft, epochs=p.epochs)
    train = read_edit_records(data_dir / "train.jsonl")
    validation = read_edit_records(data_dir / "validation.jsonl")
    log.info("read %s: %d train, %d validation programs", data_dir, len(train), len(validation))
    benchmark = composed_tasks(data_dir, p.limit) or load_benchmark(
        p.benchmark, seed_dir, Path(params["data"].raw_dir), p.limit
    )
    lengths = {t: answer_lengths(base, train, t, sft.max_length) for t in ("code", "edits")}
    with atomic_path(models_out) as tmp:
        training = train_pair(base, train, validation, sft, tmp, params.train_seed, live_dir=plots)
    separator = params["lintseq"].separator
    results = evaluate_pair(models_out, benchmark, p, separator, params.train_seed)
    with atomic_path(out) as tmp:
        for target, result in results.items():
            write_jsonl(tmp / target / "samples.jsonl", result.samples)
            write_jsonl(tmp / target / "verdicts.jsonl", result.verdicts)
        write_json(tmp / "pass_at_k.json", {t: r.curve for t, r in results.items()})
    plot_pass_at_k(
        {t: r.curve for t, r in results.items()},
        plots / "pass_at_k.png",
        f"{benchmark.name} ({len(benchmark.records)} tasks, n = {p.n}, T = {p.temperature:g})",
    )
    summary = {
        "benchmark": benchmark.name,
        "train_seed": params.train_seed,  # training and sampling; the collector groups by it
        "base_model_digest": file_digest(base),  # which base model both start from
        "tasks": len(benchmark.records),
        "samples_per_task": p.n,
        "temperature": p.temperature,
        "train_items": len(train),
        # How long the edits adapter's training sequences are (findings' caveat reads it).
        "edits_per_sequence": distribution.summary(distribution.edit_counts(train)),
        "validation_items": len(validation),
        "steps": training["code"]["steps"],
        **{t: {**r.metrics, "train": {**training[t], **lengths[t]}} for t, r in results.items()},
    }
    write_json(metrics, summary)
    log.info("wrote %s, %s, %s and %s", models_out, out, metrics, plots / "pass_at_k.png")


if __name__ == "__main__":
    main()
