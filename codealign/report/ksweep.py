"""Section "pass@k against K": the aggregate `codealign ksweep` writes."""

from __future__ import annotations

from codealign.report.common import KSWEEP, Context, base_digests, need, spread, table


def section_ksweep(ctx: Context) -> list[str]:
    """pass@k against K over seeds, from `codealign ksweep` (optional: a sweep is opt-in)."""
    lines = ["## pass@k against K", ""]
    data = ctx.load(KSWEEP)
    if data is None:
        return lines + [
            f"*No K sweep yet: {ctx.shown(KSWEEP)} is written by `codealign ksweep` "
            "after a grid of `dvc exp run --queue -S k=K -S train_seed=S evaluate` "
            "(docs/specialists.md).*"
        ]
    where = str(ctx.path(KSWEEP))
    metrics = need(data, "metrics", where, list)
    rows = []
    for i, point in enumerate(need(data, "by_k", where, list)):
        at = f"{where}: by_k[{i}]"
        seeds = need(point, "seeds", at, list)
        row = [str(need(point, "k", at, int)), ", ".join(str(s) for s in seeds)]
        rows.append(row + [spread(need(point, m, at, dict), f"{at}.{m}") for m in metrics])
    bench = need(data, "benchmark", where, str)
    lines += ctx.elsewhere(KSWEEP, base_digests(data.get("base_model_digest")))
    lines += [
        f"Routed specialists on {bench}; K = 1 is plain fine-tuning. Each cell is the mean "
        "over seeds with the range in brackets.",
        "",
        *table(["K", "Seeds", *metrics], rows),
    ]
    figure = ctx.include("ksweep.png", "ksweep.png", "pass@k against K")
    if figure:
        lines += ["", figure]
    return lines
