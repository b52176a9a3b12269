"""Section "Models": pass@k of every model the final evaluations scored, per benchmark and
per cluster, each with its bootstrap interval over tasks (`<key>_ci`) where recorded:
`evaluate` (evaluate.json: base, k1, routed), then `evaluate_dpo` (evaluate_dpo.json: the
DPO stages' final models and the shuffled run's), one table per benchmark."""

from __future__ import annotations

import re

from codealign.errors import CodealignError
from codealign.report.common import NUMBER, OPTIONAL_NUMBER, Context, cell, natural, need, table


def _passk_columns(models: dict[str, dict]) -> list[tuple[int, str, str]]:
    found = set()
    for row in models.values():
        for key in row:
            match = re.fullmatch(r"pass@(\d+)_t(.+)", key)
            if match and not key.endswith("_ci"):
                found.add((int(match[1]), match[2], key))
    return sorted(found)


def _with_interval(row: dict, key: str, where: str) -> str:
    """`0.4500 [0.3000, 0.6000]`: the score and its interval over tasks, when recorded."""
    value = cell(float(need(row, key, where, NUMBER)))
    ci = row.get(f"{key}_ci")
    if ci is None:
        return value
    if not isinstance(ci, dict):
        raise CodealignError(f"{where}.{key}_ci: expected an object with low and high")
    low = need(ci, "low", f"{where}.{key}_ci", NUMBER)
    high = need(ci, "high", f"{where}.{key}_ci", NUMBER)
    return f"{value} [{cell(float(low))}, {cell(float(high))}]"


# The final evaluations' metrics files and the stages that write them, in table order.
SOURCES = {"evaluate.json": "evaluate", "evaluate_dpo.json": "evaluate_dpo"}


def _benchmarks(ctx: Context) -> tuple[dict[str, dict], dict[str, str], list[str]]:
    """Per benchmark: its result (tasks, functions, ...) with the models of every source
    together, each model's location (`<file>: <bench>.models.<model>`), and the sources
    present."""
    merged: dict[str, dict] = {}
    where_of: dict[str, str] = {}
    present = []
    for name in SOURCES:
        data = ctx.load(name)
        if data is None:
            continue
        present.append(name)
        where = str(ctx.path(name))
        if not isinstance(data, dict) or not data:
            raise CodealignError(f"{where}: expected an object with one entry per benchmark")
        for bench in sorted(data):
            result = need(data, bench, where, dict)
            models = need(result, "models", f"{where}: {bench}", dict)
            into = merged.setdefault(bench, {**result, "models": {}})
            for model, row in models.items():
                # A later source wins: a pre-split evaluate.json's DPO rows give way to
                # evaluate_dpo.json's.
                into["models"].pop(model, None)
                into["models"][model] = row
                where_of[f"{bench}/{model}"] = f"{where}: {bench}.models"
    return merged, where_of, present


def section_models(ctx: Context) -> list[str]:
    lines = ["## Models", ""]
    data, where_of, present = _benchmarks(ctx)
    if not present:
        return lines + [
            line for name, stage in SOURCES.items() for line in ctx.not_run(name, stage)
        ]
    bars: dict[str, dict[str, dict[str, float]]] = {}
    for bench in sorted(data):
        result = data[bench]
        models = result["models"]
        passk = _passk_columns(models)
        header = ["Model", "k", "pass@1"] + [f"pass@{k} (T={t})" for k, t, _ in passk]
        header += ["Solved always", "Sometimes", "Never"]
        rows, cluster_rows = [], []
        bars[bench] = {}
        for model in models:
            row = need(models, model, where_of[f"{bench}/{model}"], dict)
            mat = f"{where_of[f'{bench}/{model}']}.{model}"
            pass1 = need(row, "pass@1", mat, NUMBER)
            cells = [model, cell(row.get("k", "–")), _with_interval(row, "pass@1", mat)]
            for _, _, key in passk:
                cells.append(_with_interval(row, key, mat) if key in row else cell(None))
            for key in ("solved_always", "solved_sometimes", "solved_never"):
                cells.append(cell(row.get(key), 3))
            rows.append(cells)
            bars[bench][model] = {"pass@1": float(pass1)}
            if passk:
                k, t, key = passk[-1]
                if key in row:
                    bars[bench][model][f"pass@{k} (T={t})"] = float(row[key])
            if "pass@1_by_cluster" in row:
                by_cluster = need(row, "pass@1_by_cluster", mat, dict)
                tasks = row.get("tasks_by_cluster") or []
                for cluster in sorted(by_cluster, key=natural):
                    value = need(by_cluster, cluster, f"{mat}.pass@1_by_cluster", OPTIONAL_NUMBER)
                    n = (
                        tasks[int(cluster)]
                        if cluster.isdigit() and int(cluster) < len(tasks)
                        else None
                    )
                    cluster_rows.append([model, cluster, cell(n), cell(value)])
        tasks = result.get("tasks")
        samples = result.get("samples_per_task")
        functions = result.get("functions")
        held = f" holding {cell(functions)} distinct functions" if functions is not None else ""
        noise = (
            f" In brackets: the {result.get('confidence', 0.95):.0%} bootstrap interval over "
            "tasks (resampling tasks, not samples: more samples per task do not narrow it)."
            if any(f"{key}_ci" in row for row in models.values() for key in ("pass@1",))
            else ""
        )
        lines += [
            f"### {bench}",
            "",
            f"{cell(tasks)} tasks{held}, {cell(samples)} samples per task at each temperature "
            f"({' and '.join(ctx.shown(name) for name in present)}).{noise}",
            "",
            *table(header, rows),
            "",
        ]
        if cluster_rows:
            lines += [
                "pass@1 of the tasks the router sent to each cluster:",
                "",
                *table(["Model", "Cluster", "Tasks", "pass@1"], cluster_rows, "llrr"),
                "",
            ]

    def plot(fig) -> None:
        axes = fig.subplots(1, len(bars), squeeze=False)[0]
        for ax, (bench, models) in zip(axes, bars.items(), strict=True):
            metrics = list(dict.fromkeys(m for row in models.values() for m in row))
            width = 0.8 / max(1, len(metrics))
            for i, metric in enumerate(metrics):
                xs = [j + i * width for j in range(len(models))]
                ax.bar(xs, [row.get(metric, 0.0) for row in models.values()], width, label=metric)
            ax.set_xticks([j + width * (len(metrics) - 1) / 2 for j in range(len(models))])
            ax.set_xticklabels(list(models))
            ax.set_ylim(0, 1)
            ax.set_title(bench)
            ax.set_ylabel("pass rate")
            ax.legend(loc="upper left")
        fig.tight_layout()

    for name, stage in SOURCES.items():
        if name not in present:
            lines += [*ctx.not_run(name, stage), ""]
    lines.append(
        ctx.draw("models.png", "pass@k per model", plot, figsize=(4.5 * len(bars) + 1, 3.5))
    )
    return lines
