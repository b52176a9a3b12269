"""Section "Deduplication": records per source before and after, and removals by reason."""

from __future__ import annotations

from codealign.report.common import Context, cell, natural, need, table


def section_dedup(ctx: Context) -> list[str]:
    lines = ["## Deduplication", ""]
    name = "dedup.json"
    data = ctx.load(name)
    if data is None:
        return lines + ctx.not_run(name, "dedup")
    where = str(ctx.path(name))
    before = need(data, "before", where, dict)
    after = need(data, "after", where, dict)
    removed = need(data, "removed", where, dict)
    sources = sorted(set(before) | set(after), key=natural)
    counts = []
    for source in sources:
        b = need(before, source, f"{where}: before", int) if source in before else 0
        a = need(after, source, f"{where}: after", int) if source in after else 0
        counts.append((source, b, a))
    reasons = sorted(removed)
    for reason in reasons:
        need(removed, reason, f"{where}: removed", int)
    total_before = need(data, "records_before", where, int)
    total_after = need(data, "records_after", where, int)
    rows = [[s, cell(b), cell(a), cell(b - a)] for s, b, a in counts]
    rows.append(
        ["**total**", cell(total_before), cell(total_after), cell(total_before - total_after)]
    )
    split = ""
    if "train" in data and "validation" in data:
        train = need(data, "train", where, int)
        validation = need(data, "validation", where, int)
        split = (
            f" The {total_after:,} kept records split into {train:,} train"
            f" and {validation:,} validation."
        )

    def plot(fig) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        y = list(range(len(counts)))[::-1]
        left.barh(y, [b for _, b, _ in counts], color="#c7d2e0", label="before")
        left.barh(y, [a for _, _, a in counts], color="#4c72b0", height=0.5, label="after")
        left.set_yticks(y, [s for s, _, _ in counts])
        left.set_xlabel("records")
        left.set_title(f"per source: {total_before:,} → {total_after:,}")
        left.legend(loc="best", fontsize="small")
        ry = list(range(len(reasons)))[::-1]
        right.barh(ry, [removed[r] for r in reasons], color="#c44e52")
        right.set_yticks(ry, reasons)
        right.set_xlabel("records removed")
        right.set_title("removed, by reason")
        right.xaxis.get_major_locator().set_params(integer=True)
        left.xaxis.get_major_locator().set_params(integer=True)
        fig.tight_layout()

    return lines + [
        f"Records per source before and after deduplication and decontamination "
        f"({ctx.shown(name)}).{split}",
        "",
        *table(["Source", "Before", "After", "Removed"], rows),
        "",
        *table(["Removed because", "Records"], [[r, cell(removed[r])] for r in reasons]),
        "",
        ctx.draw("dedup_funnel.png", "dedup funnel", plot, figsize=(9, 3.5)),
    ]
