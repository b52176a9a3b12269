"""Section of the report stage: `report`."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.params.core import Section, param


@dataclass(frozen=True)
class ReportParams(Section):
    """What the report shows and how its figures look."""

    title: str = param("codealign pipeline report", doc="the report's first heading")
    stage_times: bool = param(
        True, doc="include the wall time per stage (metrics/stage_times.json) section"
    )
    copy_figures: bool = param(
        True,
        doc="copy the figures other stages drew into the report's folder (self-contained); "
        "false links to them where they are",
    )
    dpi: int = param(100, ge=50, le=600, doc="resolution of the figures the report draws")
    confidence: float = param(
        0.95, gt=0, lt=1, doc="level of the bootstrap band over seeds (metrics/dpo_seeds.json)"
    )
    resamples: int = param(10_000, ge=100, doc="bootstrap resamples for that band")
