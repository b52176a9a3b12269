"""Section "Clusters": cluster sizes, silhouette, the adapters' steps and the projection."""

from __future__ import annotations

from codealign.errors import CodealignError
from codealign.report.common import OPTIONAL_NUMBER, Context, cell, need, table


def section_clusters(ctx: Context) -> list[str]:
    lines = ["## Clusters", ""]
    name = "cluster.json"
    data = ctx.load(name)
    if data is None:
        return lines + ctx.not_run(name, "cluster")
    where = str(ctx.path(name))
    k = need(data, "k", where, int)
    sizes = need(data, "sizes", where, list)
    validation = data.get("validation_sizes") or [None] * len(sizes)
    if len(sizes) != k or len(validation) != k:
        raise CodealignError(f"{where}: sizes and validation_sizes must have k = {k} entries")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in sizes):
        raise CodealignError(f"{where}: 'sizes' must be a list of integers")
    dissolved = data.get("dissolved") or []
    silhouette = need(data, "silhouette", where, OPTIONAL_NUMBER)
    adapters: dict[int, dict] = {}
    sft = ctx.load("sft.json")
    if sft is not None:
        sft_where = str(ctx.path("sft.json"))
        for i, adapter in enumerate(need(sft, "adapters", sft_where, list)):
            at = f"{sft_where}: adapters[{i}]"
            adapters[need(adapter, "cluster", at, int)] = adapter
    total = sum(sizes) or 1
    rows = []
    for cluster in range(k):
        adapter = adapters.get(cluster, {})
        rows.append(
            [
                str(cluster),
                cell(sizes[cluster]),
                f"{sizes[cluster] / total:.1%}",
                cell(validation[cluster]),
                cell(adapter.get("steps")),
                cell(adapter.get("eval_loss")),
            ]
        )
    header = ["Cluster", "Train", "Share", "Validation", "Adapter steps", "Adapter eval loss"]
    facts = (
        f"k = {k} (requested {data.get('k_requested', k)}; dissolved: "
        f"{', '.join(map(str, dissolved)) or 'none'}), silhouette {cell(silhouette, 3)}"
        f" ({ctx.shown(name)}"
        + (f", adapters from {ctx.shown('sft.json')}" if sft is not None else "")
        + ")."
    )
    lines += [facts, "", *table(header, rows)]
    figure = ctx.include("cluster/projection.png", "cluster_projection.png", "cluster projection")
    lines += ["", figure or f"*No projection: {ctx.shown('cluster/projection.png')} is missing.*"]
    return lines
