"""Section "Dataset": the curated set against the reference sets, and synthesis counts."""

from __future__ import annotations

from codealign.errors import CodealignError
from codealign.report.common import NUMBER, OPTIONAL_NUMBER, Context, cell, need, table

DATASET_COLUMNS = {
    "question_mtld": ("Question MTLD", 2),
    "question_spread": ("Question spread", 2),
    "code_spread": ("Code spread", 2),
    "halstead_vocabulary": ("Halstead vocabulary", 2),
    "halstead_length": ("Halstead length", 2),
    "halstead_difficulty": ("Halstead difficulty", 2),
    "cyclomatic_complexity": ("Cyclomatic complexity", 2),
    "data_points": ("Data points", 0),
    "parse_failures": ("Parse failures", 0),
}


def section_dataset(ctx: Context) -> list[str]:
    lines = ["## Dataset", ""]
    name = "dataset_metrics.json"
    data = ctx.load(name)
    if data is None:
        lines += ctx.not_run(name, "dataset_metrics")
    else:
        where = str(ctx.path(name))
        if not isinstance(data, dict) or not data:
            raise CodealignError(f"{where}: expected an object with one entry per dataset")
        names = sorted(data, key=lambda n: (n != "curated", n))
        keys = list(DATASET_COLUMNS)
        keys += sorted({k for n in names for k in need(data, n, where, dict)} - set(keys))
        header = ["Dataset"] + [DATASET_COLUMNS.get(k, (k, 2))[0] for k in keys]
        rows = []
        for dataset in names:
            row = data[dataset]
            cells = [dataset]
            for key in keys:
                value = row.get(key)
                if value is not None:
                    need(row, key, f"{where}: {dataset}", NUMBER)
                cells.append(cell(value, DATASET_COLUMNS.get(key, (key, 2))[1]))
            rows.append(cells)
        lines += [
            f"The curated set against the seed and reference sets ({ctx.shown(name)}).",
            "",
            *table(header, rows),
        ]
    lines += ["", "### Synthesis", ""]
    name = "synth.json"
    synth = ctx.load(name)
    if synth is None:
        return lines + ctx.not_run(name, "synth")
    where = str(ctx.path(name))
    rows = []
    for strategy in sorted(k for k in synth if k not in ("backend", "total")):
        row = need(synth, strategy, where, dict)
        at = f"{where}: {strategy}"
        reasons = need(row, "rejected_by_reason", at, dict)
        rows.append(
            [
                strategy,
                cell(need(row, "requests", at, int)),
                cell(need(row, "accepted", at, int)),
                cell(need(row, "rejected", at, int)),
                cell(need(row, "acceptance_rate", at, OPTIONAL_NUMBER), 3),
                ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "–",
            ]
        )
    header = ["Strategy", "Requests", "Accepted", "Rejected", "Acceptance", "Rejected because"]
    return lines + table(header, rows, "lrrrrl")
