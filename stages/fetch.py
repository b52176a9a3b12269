"""Stage `fetch`: the profile's hub models into models/hub, once; every later stage is offline."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.io import atomic_path
from codealign.lm.fetch import fetch_all
from codealign.params import load_params

log = logging.getLogger("stages.fetch")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option("--out", default="models/hub", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--raw-dir",
    default="data/raw",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Vendored data a tiny_from_config tokenizer is trained on.",
)
def main(params_file: str, out: Path, raw_dir: Path) -> None:
    """Download (or, with fetch.tiny_from_config, build) base_model.name, embed.model and
    synth.hf_model when they are hub ids; write models/hub/fetched.json."""
    setup_logging()
    params = load_params(params_file)
    with atomic_path(out) as tmp:
        manifest = fetch_all(params, tmp, raw_dir)
    log.info("fetched: %s", ", ".join(manifest["models"]) or "nothing (no hub model named)")


if __name__ == "__main__":
    main()
