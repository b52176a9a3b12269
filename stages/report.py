"""Stage `report`: metrics/report.md with tables and figures from everything in metrics/."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.params import load_params
from codealign.params.report import ReportParams
from codealign.report import write_report
from codealign.report.headline import headlines, write_headlines

log = logging.getLogger("stages.report")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--metrics-dir",
    default="metrics",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the stages wrote their metrics; missing files give 'Not run' sections.",
)
@click.option(
    "--out",
    default="metrics/report.md",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The markdown report.",
)
@click.option(
    "--figures",
    default="metrics/report",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder of the report's PNG figures (replaced as a whole).",
)
@click.option(
    "--headline",
    default=None,
    type=click.Path(path_type=Path),
    help="Folder of the headline metrics, the files `dvc metrics show` reads (replaced as "
    "a whole)  [default: <metrics-dir>/headline]",
)
def main(
    params_file: str, metrics_dir: Path, out: Path, figures: Path, headline: Path | None
) -> None:
    """Write the report: dataset, dedup, clusters, models, curriculum DPO, curves, stage times.

    Also writes the headline metrics (a few numbers per stage, docs/pipeline.md) from the
    same files. Reads only files under --metrics-dir, so it can run after any part of the
    DAG; reruns on the same inputs give byte-identical files.
    """
    setup_logging()
    params = load_params(params_file)
    p: ReportParams = params["report"]
    found = headlines(metrics_dir)  # checked before anything is written
    written = write_report(
        metrics_dir,
        out,
        figures,
        p,
        {"k": params.k, "seed": params.seed, "train_seed": params.train_seed},
    )
    log.info("report: %s, figures: %s", out, ", ".join(written) or "none")
    headline = metrics_dir / "headline" if headline is None else headline
    names = write_headlines(headline, found)
    log.info("headline metrics in %s: %s", headline, ", ".join(names) or "none")


if __name__ == "__main__":
    main()
