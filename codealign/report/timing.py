"""Section "Wall time per stage": `metrics/stage_times.json` and other profiles' times beside it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import read_json
from codealign.report.common import NUMBER, Context, cell, need, table

STAGE_TIMES = "stage_times.json"
OTHER_STAGE_TIMES = "stage_times_*.json"  # other profiles' times, shown beside this one's
STAGE_TIMES_HOWTO = (
    "python benchmarks/bench_stage_times.py --profile default --out metrics/stage_times.json"
)


def stage_times(metrics_dir: str | os.PathLike, name: str = STAGE_TIMES) -> dict[str, Any] | None:
    """The wall time per stage from `metrics_dir/name`, or None when absent.

    The file is what `benchmarks/bench_stage_times.py --out` writes: `profile`, `stages`
    (`{name: seconds}`), `order` (the names in the order they ran; optional), `total_s`,
    `cores`. The result has the same keys with `order` always filled in.
    """
    path = Path(metrics_dir) / name
    if not path.is_file():
        return None
    raw = read_json(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise CodealignError(f"{where}: expected a JSON object")
    stages = need(raw, "stages", where, dict)
    for name, seconds in stages.items():
        need(stages, name, f"{where}: stages", NUMBER)
        if seconds < 0:
            raise CodealignError(f"{where}: stages.{name} must be >= 0, got {seconds}")
    order = raw.get("order", list(stages))
    if not isinstance(order, list) or sorted(order) != sorted(stages):
        raise CodealignError(f"{where}: order must list exactly the names in stages")
    total = need(raw, "total_s", where, NUMBER)
    return {
        "profile": str(raw.get("profile", "?")),
        "stages": {name: float(stages[name]) for name in order},
        "order": list(order),
        "total_s": float(total),
        "cores": raw.get("cores"),
        "dvc_overhead_s": raw.get("dvc_overhead_s"),
    }


def section_stage_times(ctx: Context) -> list[str]:
    lines = ["## Wall time per stage", ""]
    times = stage_times(ctx.metrics_dir)
    if times is None:
        return lines + [
            f"*Not measured: DVC records no durations. Run `{STAGE_TIMES_HOWTO}` (it runs "
            f"the pipeline stage by stage in a scratch copy of the repository and writes "
            f"{ctx.shown(STAGE_TIMES)}), then `dvc repro --force report` (the file is "
            "optional, so it is not a DVC dependency).*"
        ]
    runs = [(STAGE_TIMES, times)]
    for path in sorted(ctx.metrics_dir.glob(OTHER_STAGE_TIMES)):
        runs.append((path.name, stage_times(ctx.metrics_dir, path.name)))
    names = list(times["order"])
    for _, run in runs[1:]:
        names += [name for name in run["order"] if name not in names]
    header = ["Stage"]
    for _, run in runs:
        header += [f"`{run['profile']}` (s)", "Share"]
    rows = []
    for name in [*names, None]:
        row = [name or "**total**"]
        for _, run in runs:
            seconds = run["total_s"] if name is None else run["stages"].get(name)
            if seconds is None:
                row += ["–", "–"]  # a stage that profile does not have
            else:
                row += [f"{seconds:.1f}", f"{seconds / (run['total_s'] or 1.0):.1%}"]
        rows.append(row)
    overhead = times["dvc_overhead_s"]
    note = (
        f" Each time includes DVC's own start-up, about {overhead:.1f} s per stage."
        if isinstance(overhead, int | float) and not isinstance(overhead, bool)
        else ""
    )
    others = "".join(
        f" Beside it, profile `{run['profile']}` on {cell(run['cores'])} cores ({ctx.shown(name)})."
        for name, run in runs[1:]
    )
    return lines + [
        f"Profile `{times['profile']}` on {cell(times['cores'])} cores, each stage run alone "
        f"with `dvc repro --single-item` ({ctx.shown(STAGE_TIMES)}).{note}{others}",
        "",
        *table(header, rows),
    ]
