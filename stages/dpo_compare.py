"""Stage `dpo_compare`: pass@1 against step, curriculum against shuffled, at equal steps."""

import logging
from pathlib import Path

import click

from codealign.command import Command, setup_logging
from codealign.dpo.plots import pass_curves
from codealign.dpo.schedule import compare
from codealign.io import read_json, write_json
from codealign.lm.checkpoints import file_digest
from codealign.params import load_params

log = logging.getLogger("stages.dpo_compare")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--metrics-dir", default="metrics/dpo", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--out", default="metrics/dpo_compare.json", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--base",
    default="models/base_model",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The base model under both policies; its digest is recorded.",
)
@click.option(
    "--plot",
    default="metrics/dpo_compare/pass_at_1.png",
    show_default=True,
    type=click.Path(path_type=Path),
)
def main(params_file, metrics_dir, out, base, plot) -> None:
    """Read metrics/dpo/stage_*.json and shuffled.json; write the comparison and its plot.

    The comparison records the `train_seed` it was trained with and the digest of the
    base model, so a seed experiment (benchmarks/dpo_seeds.py) knows which seed each
    experiment's difference belongs to, and on which base model.
    """
    setup_logging()
    train_seed = load_params(params_file).train_seed
    stages = [read_json(p) for p in sorted(metrics_dir.glob("stage_*.json"))]
    shuffled = read_json(metrics_dir / "shuffled.json")
    result = {
        "train_seed": train_seed,
        "base_model_digest": file_digest(base),
        **compare(stages, shuffled),
    }
    pass_curves(
        {"curriculum": result["curriculum"], "shuffled": result["shuffled"]},
        [p["step"] for p in result["curriculum"][1:]],
        plot,
    )
    write_json(out, result)
    log.info("curriculum - shuffled at step %d: %+.4f", result["steps"], result["final_difference"])


if __name__ == "__main__":
    main()
