"""Stage `seed`: write data/seed/ from the tiny world (default) or vendored real data."""

import logging

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.curation.seed import real_seed_sets, tinyworld_seed_sets, write_seed_sets
from codealign.io import atomic_path, write_json
from codealign.params import load_params

log = logging.getLogger("stages.seed")


@click.command(cls=Command)
@click.option(
    "--params",
    "params_file",
    default="params.yaml",
    show_default=True,
    help="Params file (sections: seed, data).",
)
@click.option("--out", default="data/seed", show_default=True, help="Output directory.")
@click.option("--metrics", "metrics_file", default="metrics/seed.json", show_default=True)
def main(params_file: str, out: str, metrics_file: str) -> None:
    """Build the seed sets S1, S2, the keyword vocabulary, tinyeval, tinydev and the DPO pool."""
    setup_logging()
    params = load_params(params_file)
    data = params["data"]
    build = tinyworld_seed_sets if data.source == "tinyworld" else real_seed_sets
    sets = build(data, params.seed)
    with atomic_path(out) as tmp:
        counts = write_seed_sets(sets, tmp)
    write_json(metrics_file, sets["metrics"])
    for name, count in counts.items():
        log.info("wrote %s/%s: %d records", out, name, count)
    for name, row in sets["metrics"].get("sets", {}).items():
        log.info("%s: %d tasks, %d distinct functions", name, row["tasks"], row["functions"])


if __name__ == "__main__":
    main()
