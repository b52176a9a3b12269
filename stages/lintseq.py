"""Stage `lintseq`: rewrite each curated program as linter-clean insertion edits (LintSeq)."""

import json
import logging

import click

from codealign.command import Command, setup_logging
from codealign.edits.lintseq import build_split, merge_metrics
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
def main(params_file, train_file, validation_file, out, metrics_file) -> None:
    """Write train.jsonl and validation.jsonl (one record per edit sequence: the input
    record plus `edits`, `target` and `sample`) and skipped.jsonl (id, reason, detail).

    Each program yields up to lintseq.samples distinct sequences of unified diffs that
    rebuild it from nothing, every intermediate program free of new linter errors.
    Programs that are empty, too long or do not compile are skipped and counted.
    """
    setup_logging()
    params = load_params(params_file)
    lintseq = params["lintseq"]
    seed = params.seed_of("lintseq")
    inputs = {"train": read_programs(train_file), "validation": read_programs(validation_file)}
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
    metrics = merge_metrics({split: r.metrics for split, r in results.items()})
    write_json(metrics_file, metrics)
    log.info("wrote %s: %s", out, json.dumps({k: v for k, v in metrics.items() if k != "splits"}))


if __name__ == "__main__":
    main()
