"""Stage `curriculum`: distance percentiles -> buckets, pruning, training order."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.curriculum import build_curriculum
from codealign.dpo.plots import distance_histogram
from codealign.io import atomic_path, read_json, read_jsonl, write_json, write_jsonl
from codealign.params import load_params

log = logging.getLogger("stages.curriculum")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--pairs", "pairs_dir", default="data/pairs", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--out", default="data/curriculum", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--metrics",
    default="metrics/curriculum.json",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option(
    "--plot",
    default="metrics/curriculum/distance_hist.png",
    show_default=True,
    type=click.Path(path_type=Path),
)
def main(params_file, pairs_dir, out, metrics, plot) -> None:
    """Write data/curriculum/stage_<i>.jsonl (training order), pruned.jsonl and a summary."""
    setup_logging()
    p = load_params(params_file)["curriculum"]
    pairs = read_jsonl(pairs_dir / "pairs.jsonl")
    meta = read_json(pairs_dir / "meta.json")
    result = build_curriculum(pairs, p)
    summary = {
        **result["summary"],
        "max_length": meta["max_length"],
        "ties": meta.get("ties", 0),
        "tasks": meta.get("tasks", 0),
    }
    with atomic_path(out) as tmp:
        for number, stage in enumerate(result["stages"], start=1):
            write_jsonl(tmp / f"stage_{number}.jsonl", stage)
        write_jsonl(tmp / "pruned.jsonl", result["pruned"])
        write_json(tmp / "manifest.json", summary)
    distance_histogram([x["distance"] for x in pairs], summary["edges"], plot)
    write_json(metrics, summary)
    for info in summary["stages"]:
        log.info("stage %(stage)d = bucket %(bucket)d: %(pairs)d pairs", info)
    log.info("pruned: %s", summary["pruned"])


if __name__ == "__main__":
    main()
