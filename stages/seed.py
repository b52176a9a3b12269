"""Stage `seed`: write data/seed/ from the tiny world (default) or vendored real data."""

import logging

import click

from codealign.command import Command, setup_logging
from codealign.curation.seed import real_seed_sets, tinyworld_seed_sets, write_seed_sets
from codealign.io import atomic_path
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
def main(params_file: str, out: str) -> None:
    """Build the seed sets S1, S2, the keyword vocabulary, tinyeval and the DPO pool."""
    setup_logging()
    params = load_params(params_file)
    data = params["data"]
    build = tinyworld_seed_sets if data.source == "tinyworld" else real_seed_sets
    sets = build(data, params.seed)
    with atomic_path(out) as tmp:
        counts = write_seed_sets(sets, tmp)
    for name, count in counts.items():
        log.info("wrote %s/%s: %d records", out, name, count)


if __name__ == "__main__":
    main()
