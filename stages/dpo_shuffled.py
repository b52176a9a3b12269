"""Stage `dpo_shuffled`: the curriculum's pairs shuffled, for the same total steps."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.plots import loss_vs_distance
from codealign.dpo.schedule import RunContext, read_curriculum, run_shuffled
from codealign.io import is_main_process, write_json
from codealign.params import load_params

log = logging.getLogger("stages.dpo_shuffled")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--init",
    "init_dir",
    default="models/sft_baseline",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The K = 1 SFT policy, as curriculum stage 1 starts from.",
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
@click.option(
    "--out", default="models/dpo_shuffled", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--metrics",
    default="metrics/dpo/shuffled.json",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option(
    "--plot",
    default="metrics/dpo/loss_vs_distance.png",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option(
    "--live-dir",
    default="metrics/dpo/shuffled",
    show_default=True,
    type=click.Path(path_type=Path),
    help="dvclive folder for the curves (loss, reward margin, reward accuracy).",
)
def main(
    params_file, init_dir, base_model, curriculum_dir, seed_dir, out, metrics, plot, live_dir
) -> None:
    """Train, save adapters at the curriculum's stage boundaries, and score each."""
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
    result, epoch = run_shuffled(ctx, init_dir, curriculum_dir, out, live_dir)
    if not is_main_process():
        return  # a rank > 0 of a distributed run: rank 0 writes the outs
    _, stages = read_curriculum(curriculum_dir)
    distance = {p["pair_id"]: p["distance"] for stage in stages for p in stage}
    points = [(distance[e["pair_id"]], e["loss"]) for e in epoch]
    loss_vs_distance(points, plot, f"shuffled DPO, first epoch ({len(points)} pairs)")
    write_json(metrics, result)
    log.info("shuffled: %s", result)


if __name__ == "__main__":
    main()
