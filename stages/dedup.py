"""Stage `dedup`: merge S1*, S2, S3, S4, S5, decontaminate, dedup, split into data/dedup/."""

import json
import logging

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.curation.dedup import curate, gather_eval_tasks, gather_records, read_eval_jsonl
from codealign.io import atomic_path, write_json, write_jsonl
from codealign.lm.embedding import Embedder
from codealign.params import load_params

log = logging.getLogger("stages.dedup")

INPUTS = (
    "data/synth/s1_star.jsonl",
    "data/synth/s2.jsonl",
    "data/synth/s3.jsonl",
    "data/synth/s4.jsonl",
    "data/synth/s5.jsonl",
)


@click.command(cls=Command)
@click.option(
    "--params",
    "params_file",
    default="params.yaml",
    show_default=True,
    help="Params file (sections: seed, embed, dedup).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    default=INPUTS,
    show_default=True,
    help="SFT JSONL files, merged in this order (earlier records win ties).",
)
@click.option(
    "--eval-file",
    "eval_files",
    multiple=True,
    default=("data/seed/tinyeval.jsonl", "data/seed/tinydev.jsonl"),
    show_default=True,
    help="Eval problems (HumanEval or MBPP JSONL) to decontaminate against.",
)
@click.option(
    "--pool-file",
    default="data/seed/pool.jsonl",
    show_default=True,
    help="The DPO pool, decontaminated against when dedup.against_pool is on.",
)
@click.option(
    "--raw-dir",
    default="data/raw",
    show_default=True,
    help="Vendored datasets for dedup.eval_sets and dedup.extra_datasets.",
)
@click.option("--out", default="data/dedup", show_default=True, help="Output directory.")
@click.option("--metrics", "metrics_file", default="metrics/dedup.json", show_default=True)
@click.option(
    "--cache-dir",
    default=".cache/embeddings",
    show_default=True,
    help="Embedding cache, reused across runs (not a DVC out).",
)
def main(params_file, inputs, eval_files, pool_file, raw_dir, out, metrics_file, cache_dir) -> None:
    """Write train.jsonl, validation.jsonl and removed.jsonl (each removal with its reason)."""
    setup_logging()
    params = load_params(params_file)
    dedup = params["dedup"]
    records = gather_records(inputs, dedup.extra_datasets, raw_dir)
    tasks = gather_eval_tasks(eval_files, dedup.eval_sets, raw_dir)
    if dedup.against_pool:
        tasks += read_eval_jsonl(pool_file, "pool")
    embedder = Embedder(params["embed"], cache_dir)
    result = curate(records, tasks, embedder.embed, dedup, params.seed)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "train.jsonl", result.train)
        write_jsonl(tmp / "validation.jsonl", result.validation)
        write_jsonl(tmp / "removed.jsonl", result.removed)
    write_json(metrics_file, result.metrics)
    log.info("wrote %s: %s", out, json.dumps(result.metrics))


if __name__ == "__main__":
    main()
