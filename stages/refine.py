"""Stage `refine`: TinyHelen's original corpus and its lean refinement into data/refine/."""

import logging

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.io import atomic_path, write_json, write_jsonl
from codealign.params import load_params
from codealign.refine.pipeline import run_refine

log = logging.getLogger("stages.refine")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option("--out", default="data/refine", show_default=True, help="Output directory.")
@click.option("--metrics", "metrics_file", default="metrics/refine.json", show_default=True)
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def main(params_file: str, out: str, metrics_file: str, progress: bool) -> None:
    """Write original.jsonl (noisy, varied English) and lean.jsonl (its refinement).

    The refiner is refine.backend: tinyworld gives back the world's own lean source of
    each document; hf and openai are asked with TinyHelen-style prompts (their endpoint,
    model and cache come from the synth section).
    """
    setup_logging()
    params = load_params(params_file)
    original, lean, metrics = run_refine(params, progress)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_jsonl(tmp / "original.jsonl", original)
        write_jsonl(tmp / "lean.jsonl", lean)
    write_json(metrics_file, metrics)
    before, after = metrics["original"], metrics["lean"]
    log.info(
        "refine (%s): %d -> %d documents; vocabulary %d -> %d; noise rate %.3f -> %.3f",
        metrics["backend"],
        before["documents"],
        after["documents"],
        before["vocabulary"],
        after["vocabulary"],
        before["noise_rate"] or 0.0,
        after["noise_rate"] or 0.0,
    )


if __name__ == "__main__":
    main()
