"""Stage `dataset_metrics`: diversity and complexity of the curated, seed and reference sets."""

import logging

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.curation.dataset_metrics import (
    dataset_metrics,
    parse_dataset_spec,
    render_markdown,
    table_order,
)
from codealign.curation.dedup import load_named_dataset, read_sft_jsonl
from codealign.io import write_json, write_text
from codealign.lm.embedding import Embedder
from codealign.params import load_params

log = logging.getLogger("stages.dataset_metrics")

DATASETS = (
    "curated=data/dedup/train.jsonl,data/dedup/validation.jsonl",
    "seed_s1=data/seed/s1.jsonl",
    "seed_s2=data/synth/s2.jsonl",
)


@click.command(cls=Command)
@click.option(
    "--params",
    "params_file",
    default="params.yaml",
    show_default=True,
    help="Params file (sections: seed, embed, dataset_metrics).",
)
@click.option(
    "--dataset",
    "specs",
    multiple=True,
    default=DATASETS,
    show_default=True,
    help="NAME=PATH[,PATH...]: SFT JSONL files measured as one dataset (repeatable).",
)
@click.option(
    "--raw-dir",
    default="data/raw",
    show_default=True,
    help="Vendored datasets for dataset_metrics.references.",
)
@click.option("--out", default="metrics/dataset_metrics.json", show_default=True)
@click.option(
    "--table",
    default="metrics/dataset_metrics.md",
    show_default=True,
    help="Markdown table, one row per dataset.",
)
@click.option(
    "--cache-dir",
    default=".cache/embeddings",
    show_default=True,
    help="Embedding cache, reused across runs (not a DVC out).",
)
def main(params_file, specs, raw_dir, out, table, cache_dir) -> None:
    """Measure MTLD, spreads, Halstead and cyclomatic complexity per dataset."""
    setup_logging()
    params = load_params(params_file)
    section = params["dataset_metrics"]
    datasets = {}
    for spec in specs:
        name, paths = parse_dataset_spec(spec)
        datasets[name] = [r for path in paths for r in read_sft_jsonl(path)]
    for name in section.references:
        datasets[name] = load_named_dataset(name, raw_dir)

    embedder = Embedder(params["embed"], cache_dir)
    results = {}
    for name in table_order(list(datasets), section.references):
        log.info("measuring %s (%d records)", name, len(datasets[name]))
        results[name] = dataset_metrics(datasets[name], embedder.embed, section, params.seed)
        log.info("%s: %s", name, results[name])
    write_json(out, results)
    write_text(table, render_markdown(results))
    log.info("wrote %s and %s", out, table)


if __name__ == "__main__":
    main()
