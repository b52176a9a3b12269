"""Stage `dpo` (foreach): one curriculum stage of DPO, starting from the previous stage's policy."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.schedule import RunContext, run_stage
from codealign.io import write_json
from codealign.params import load_params

log = logging.getLogger("stages.dpo")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option("--stage", type=int, required=True, help="Curriculum stage, 1 = trained first.")
@click.option(
    "--init",
    "init_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Policy to start from: the K = 1 SFT policy (models/sft_baseline) for stage 1, "
    "else the previous stage's.",
)
@click.option("--base-model", default=None, type=click.Path(path_type=Path))
@click.option(
    "--curriculum",
    "curriculum_dir",
    default="data/curriculum",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option("--seed-dir", default="data/seed", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--metrics", required=True, type=click.Path(path_type=Path))
@click.option(
    "--live-dir",
    default=None,
    type=click.Path(path_type=Path),
    help="dvclive folder for the curves (loss, reward margin, reward accuracy), on the "
    "curriculum's step axis; dvc.yaml: metrics/dpo/stage_<n>.",
)
def main(
    params_file, stage, init_dir, base_model, curriculum_dir, seed_dir, out, metrics, live_dir
) -> None:
    """Train one bucket, save the adapter, and measure pass@1 at the stage boundary."""
    setup_logging()
    params = load_params(params_file)
    ctx = RunContext(
        params["dpo"],
        params["sample"].policy,
        params.train_seed,
        seed_dir,
        Path(params["data"].raw_dir),
        base_model,
    )
    result = run_stage(ctx, stage, init_dir, curriculum_dir, out, live_dir)
    write_json(metrics, result)
    log.info("stage %d: %s", stage, result)


if __name__ == "__main__":
    main()
