"""Stage `score`: every sampled completion through the sandbox; score = tests passed / total."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.sample import pool_problems
from codealign.dpo.score import score_samples, score_summary
from codealign.io import atomic_path, read_jsonl, write_json, write_jsonl
from codealign.params import load_params

log = logging.getLogger("stages.score")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--pool", default="data/seed/pool.jsonl", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--samples",
    "samples_dir",
    default="data/sample",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option("--out", default="data/score", show_default=True, type=click.Path(path_type=Path))
def main(params_file, pool, samples_dir, out) -> None:
    """Score data/sample/samples.jsonl against the pool's unit tests."""
    setup_logging()
    p = load_params(params_file)["score"]
    samples = read_jsonl(samples_dir / "samples.jsonl")
    wanted = {s["task_id"] for s in samples}
    records = [r for r in read_jsonl(pool) if str(r["task_id"]) in wanted]
    scored = score_samples(pool_problems(records, str(pool)), samples, p)
    summary = score_summary(scored)
    with atomic_path(out) as tmp:
        write_jsonl(tmp / "scored.jsonl", scored)
        write_json(tmp / "summary.json", summary)
    log.info("scored %d samples: %s", len(scored), summary)


if __name__ == "__main__":
    main()
