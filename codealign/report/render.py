"""The report as a whole: every section in order, written atomically with its figures."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from codealign.io import atomic_path, write_text
from codealign.params.report import ReportParams
from codealign.report.clusters import section_clusters
from codealign.report.common import Context
from codealign.report.curves import section_curves
from codealign.report.dataset import section_dataset
from codealign.report.dedup import section_dedup
from codealign.report.dpo import section_dpo
from codealign.report.findings import section_findings
from codealign.report.ksweep import section_ksweep
from codealign.report.lintseq import section_lintseq
from codealign.report.mixture import section_mixture
from codealign.report.models import section_models
from codealign.report.timing import section_stage_times

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- report


def render_report(
    metrics_dir: Path,
    figures_dir: Path,
    figures_link: str,
    md_dir: Path,
    params: ReportParams,
    facts: dict[str, Any] | None = None,
) -> tuple[str, list[str]]:
    """The markdown text and the figure names written into `figures_dir` (which must exist)."""
    ctx = Context(Path(metrics_dir), Path(figures_dir), figures_link, Path(md_dir), params)
    sections = [
        section_findings,
        section_dataset,
        section_dedup,
        section_clusters,
        section_models,
        section_ksweep,
        section_dpo,
        section_lintseq,
        section_mixture,
        section_curves,
    ]
    if params.stage_times:
        sections.append(section_stage_times)
    about = ", ".join(f"{key} = {value}" for key, value in (facts or {}).items())
    lines = [
        f"# {params.title}",
        "",
        f"Built by `python stages/report.py` from the files in `{ctx.metrics_dir.name}/`"
        + (f" ({about})" if about else "")
        + ". A section whose input is missing says which stage writes it.",
    ]
    for section in sections:
        lines += ["", *section(ctx)]
    return "\n".join(lines) + "\n", list(ctx.figures)


def write_report(
    metrics_dir: str | os.PathLike,
    out: str | os.PathLike,
    figures_dir: str | os.PathLike,
    params: ReportParams,
    facts: dict[str, Any] | None = None,
) -> list[str]:
    """Write the markdown report `out` and its figures folder `figures_dir`; return the figures.

    Both are replaced atomically, the folder first: an error leaves the previous report
    as it was, and stale figures of an earlier run do not survive.
    """
    out, figures_dir = Path(out), Path(figures_dir)
    link = Path(os.path.relpath(figures_dir, out.parent)).as_posix()
    with atomic_path(figures_dir) as tmp:
        tmp.mkdir()
        text, figures = render_report(Path(metrics_dir), tmp, link, out.parent, params, facts)
    write_text(out, text)
    log.info("wrote %s and %d figures in %s", out, len(figures), figures_dir)
    return figures
