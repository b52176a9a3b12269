"""Stage `lintseq`: rewrite each curated program as linter-clean insertion edits (LintSeq)."""

import json
import logging
from collections import Counter

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.edits import distribution
from codealign.edits.lintseq import build_split, merge_metrics
from codealign.errors import CodealignError
from codealign.io import atomic_path, iter_jsonl, require_fields, write_json, write_jsonl
from codealign.params import load_params

log = logging.getLogger("stages.lintseq")

FIELDS = {"id": (str, int), "question": str, "code": str}


def read_programs(path: str) -> list[dict]:
    """Records with at least id, question and code; errors name `file:line`."""
    records = []
    for lineno, record in enumerate(iter_jsonl(path), start=1):
        require_fields(record, FIELDS, f"{path}:{lineno}")
        records.append(record)
    return records


def compose(params, curated: dict[str, list[dict]]) -> tuple[dict, list[dict], dict]:
    """Composed programs in place of the curated ones (as many per split), the composed
    eval tasks (HumanEval-format records) and what to record of them in the metrics."""
    from codealign.tinyworld.composed import compose_sets

    lintseq = params["lintseq"]
    sets = compose_sets(
        params.seed,
        params.seed_of("lintseq"),
        lintseq.compose,
        len(curated["train"]),
        len(curated["validation"]),
        lintseq.compose_tasks,
        lintseq.compose_shape,
    )
    if sets.shortfall:
        raise CodealignError(
            f"lintseq.compose {lintseq.compose} ({lintseq.compose_shape}): the tiny world "
            f"cannot compose enough distinct programs, short by {sets.shortfall}"
        )
    programs = {
        "train": [t.to_sft("lintseq_composed") for t in sets.train],
        "validation": [t.to_sft("lintseq_composed") for t in sets.validation],
    }
    info = {
        "compose": lintseq.compose,
        "compose_shape": lintseq.compose_shape,
        "eval_tasks": len(sets.eval),
        "eval_dropped_for_training_twins": sets.dropped_twins,
    }
    log.info("composed programs: %s", json.dumps(info))
    return programs, [t.to_problem() for t in sets.eval], info


@click.command(cls=Command)
@click.option(
    "--params",
    "params_file",
    default="params.yaml",
    show_default=True,
    help="Params file (sections: seed, lintseq).",
)
@click.option("--train", "train_file", default="data/dedup/train.jsonl", show_default=True)
@click.option(
    "--validation", "validation_file", default="data/dedup/validation.jsonl", show_default=True
)
@click.option("--out", default="data/lintseq", show_default=True, help="Output directory.")
@click.option("--metrics", "metrics_file", default="metrics/lintseq.json", show_default=True)
@click.option(
    "--plot",
    "plot_file",
    default="metrics/lintseq/edits.png",
    show_default=True,
    help="Histogram of edits per sequence (PNG).",
)
def main(params_file, train_file, validation_file, out, metrics_file, plot_file) -> None:
    """Write train.jsonl and validation.jsonl (one record per edit sequence: the input
    record plus `edits`, `target` and `sample`) and skipped.jsonl (id, reason, detail).

    Each program yields up to lintseq.samples distinct sequences of unified diffs that
    rebuild it from nothing, every intermediate program free of new linter errors.
    Programs that are empty, too long or do not compile are skipped and counted.

    With lintseq.compose > 1 the programs are composed from the tiny world's templates
    instead (as many as the curated train and validation programs; the curated files
    give only their sizes), and tasks.jsonl holds lintseq.compose_tasks composed eval
    tasks, which lintseq_eval then samples on instead of its benchmark.
    """
    setup_logging()
    params = load_params(params_file)
    lintseq = params["lintseq"]
    seed = params.seed_of("lintseq")
    inputs = {"train": read_programs(train_file), "validation": read_programs(validation_file)}
    tasks, composed_info = None, None
    if lintseq.compose > 1:
        inputs, tasks, composed_info = compose(params, inputs)
    results = {}
    for split, records in inputs.items():
        log.info("read %s: %d programs", split, len(records))
        results[split] = build_split(records, lintseq, seed, desc=f"lintseq {split}")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for split, result in results.items():
            write_jsonl(tmp / f"{split}.jsonl", result.records)
        write_jsonl(
            tmp / "skipped.jsonl",
            [{**s, "split": split} for split, r in results.items() for s in r.skipped],
        )
        if tasks is not None:
            write_jsonl(tmp / "tasks.jsonl", tasks)
    counts = {split: distribution.edit_counts(r.records) for split, r in results.items()}
    metrics = merge_metrics({split: r.metrics for split, r in results.items()})
    for split, count in counts.items():
        metrics["splits"][split]["edits_per_sequence"] = distribution.summary(count)
    metrics["edits_per_sequence"] = distribution.summary(sum(counts.values(), Counter()))
    metrics["programs_from"] = "curated" if tasks is None else composed_info
    write_json(metrics_file, metrics)
    what = "curated" if tasks is None else f"composed ({lintseq.compose}, {lintseq.compose_shape})"
    distribution.plot(counts, plot_file, f"LintSeq: edits per sequence, {what} programs")
    log.info("wrote %s: %s", out, json.dumps({k: v for k, v in metrics.items() if k != "splits"}))


if __name__ == "__main__":
    main()
