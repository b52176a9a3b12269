"""The pipeline's report: one markdown file with tables and PNG figures, read from metrics/.

`write_report` reads what the stages left in `metrics/` and writes `metrics/report.md`
plus its figures in `metrics/report/`. It reads only metrics files, never data or
models, so it runs in seconds and can be rerun after any part of the DAG.

What it assumes, and promises:

- Every input is optional. A section whose file is missing says "Not run" and names
  the stage that writes it; users often run only part of the DAG.
- A file that exists but is malformed (invalid JSON, a missing key, a string where a
  number belongs) stops the report with one `CodealignError` naming the file and key.
- The output is a function of the inputs and the params only: no timestamps, no
  absolute paths, sorted iteration, PNGs without a software-version stamp. Rerunning
  on the same inputs gives byte-identical files.
- DVC records no durations, so the wall time per stage comes from
  `metrics/stage_times.json`, which `benchmarks/bench_stage_times.py` writes; the
  times of other profiles, `metrics/stage_times_<profile>.json` (such as
  `stage_times_smoke.json`), become more columns of the same table.
- `metrics/dpo_seeds.json` (optional) holds the curriculum and shuffled pass@1 curves
  of several seeds, `{"base_model_digest": "...", "seeds": [{"seed": 0, "curriculum":
  [{"step": 0, "pass@1": 0.4}, ...], "shuffled": [...]}, ...]}`: each seed's curves are
  those of its `dpo_compare.json`. With it the curve plot shows the mean over seeds and
  a percentile-bootstrap band.
- `metrics/ksweep.json`, `metrics/lintseq_seeds.json` and `metrics/mixture.json`
  (optional) are the aggregates `codealign ksweep`, `codealign lintseq-seeds` and
  `codealign mixture` write from DVC experiments; they are not stage outs, so after
  writing one refresh the report with `dvc repro -f -s report`.
- An aggregate records the base model its runs started from. When that is not this
  pipeline's base model (`base_model_eval.json`'s `model_digest`): another profile,
  such as `params/full.yaml`, or an older run, its section says so, and its seeds are
  not drawn into this run's curves.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import atomic_path, read_json, write_text
from codealign.params.report import ReportParams

log = logging.getLogger(__name__)

STAGE_TIMES = "stage_times.json"
OTHER_STAGE_TIMES = "stage_times_*.json"  # other profiles' times, shown beside this one's
DPO_SEEDS = "dpo_seeds.json"
KSWEEP = "ksweep.json"
LINTSEQ_EVAL = "lintseq_eval.json"
LINTSEQ_SEEDS = "lintseq_seeds.json"
BASE_MODEL_EVAL = "base_model_eval.json"
MIXTURE = "mixture.json"
# metrics/mixture.json's per-share metrics, as the mixture table names them.
MIXTURE_COLUMNS = {
    "english_bits_per_byte": "English bits/byte",
    "code_bits_per_byte": "Code bits/byte",
    "instruction_accuracy": "Instructions",
    "sft_pass@1": "pass@1 after SFT",
}
STAGE_TIMES_HOWTO = (
    "python benchmarks/bench_stage_times.py --profile default --out metrics/stage_times.json"
)


# ---------------------------------------------------------------------------- reading


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "a number", float: "a number", str: "a string", bool: "true or false"}
    names |= {dict: "an object", list: "a list", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def need(obj: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """`obj[key]`, or one error naming the file and key when it is missing or of the wrong type.

    `where` is the file, optionally followed by `: <key path>` of `obj` inside it. Numbers
    are int or float, never bool.
    """
    file, _, parent = where.partition(": ")
    path = f"{parent}.{key}" if parent else key
    if not isinstance(obj, dict) or key not in obj:
        raise CodealignError(f"{file}: missing key '{path}'")
    value = obj[key]
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise CodealignError(
                f"{file}: '{path}' must be {_kind_name(kind)}, got {type(value).__name__}"
            )
    return value


NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))


def _natural(text: str) -> list:
    """Sort key that puts adapter_2 before adapter_10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


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


def read_tsv_series(path: Path) -> tuple[str, list[float], list[float]]:
    """(name, steps, values) of a dvclive `.tsv` file: a `step` column and the metric's column."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise CodealignError(f"{path}: empty file, expected a header with a 'step' column")
    header = lines[0].split("\t")
    columns = [c for c in header if c not in ("step", "timestamp")]
    if "step" not in header or not columns:
        raise CodealignError(f"{path}:1: expected a 'step' column and a metric column")
    name = columns[-1]
    step_at, value_at = header.index("step"), header.index(name)
    steps, values = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            steps.append(float(cells[step_at]))
            values.append(float(cells[value_at]))
        except (ValueError, IndexError):
            raise CodealignError(f"{path}:{lineno}: expected numbers, got {line!r}") from None
    return name, steps, values


# ---------------------------------------------------------------------------- markdown


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    """A markdown table; `align` has one letter per column (l or r), default left then right."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


@dataclass
class Context:
    """Where the report reads and writes, and what it has drawn so far."""

    metrics_dir: Path
    figures_dir: Path  # the staging folder the figures are written to
    figures_link: str  # the figures folder as the markdown links it (relative, posix)
    md_dir: Path  # the folder the markdown file will live in
    params: ReportParams
    figures: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.metrics_dir / name

    def shown(self, name: str) -> str:
        """A metrics file as the report names it: relative, independent of where it runs."""
        return f"`{self.metrics_dir.name}/{name}`"

    def load(self, name: str) -> Any | None:
        path = self.path(name)
        return read_json(path) if path.is_file() else None

    def base_digest(self) -> str | None:
        """sha256 of this pipeline's base model, as the stages that read it recorded it."""
        for name, key in (
            (BASE_MODEL_EVAL, "model_digest"),
            ("dpo_compare.json", "base_model_digest"),
            (LINTSEQ_EVAL, "base_model_digest"),
        ):
            data = self.load(name)
            if isinstance(data, dict) and isinstance(data.get(key), str):
                return data[key]
        return None

    def elsewhere(self, name: str, digests: set[str]) -> list[str]:
        """A note when none of the base models the aggregate `name` ran on is this one's."""
        ours = self.base_digest()
        if ours is None or not digests or ours in digests:
            return []
        theirs = ", ".join(sorted(d[:8] for d in digests))
        return [
            f"*From another base model: the runs in {self.shown(name)} started from base "
            f"model {theirs}, this pipeline's is {ours[:8]} (another profile, such as "
            "params/full.yaml, or an older run). Rerun them to compare on this one.*",
            "",
        ]

    def not_run(self, name: str, stage: str) -> list[str]:
        return [f"*Not run: {self.shown(name)} is missing; it is written by `dvc repro {stage}`.*"]

    def image(self, name: str, alt: str) -> str:
        self.figures.append(name)
        return f"![{alt}]({self.figures_link}/{name})"

    def draw(self, name: str, alt: str, plot: Callable[[Any], None], **figure: Any) -> str:
        """Make a figure with `plot(fig)`, save it as `name`, return its markdown link."""
        plt = _pyplot()
        fig = plt.figure(**figure)
        try:
            plot(fig)
            # No "Software" stamp, so a matplotlib upgrade alone does not change the bytes.
            fig.savefig(
                self.figures_dir / name,
                format="png",
                dpi=self.params.dpi,
                bbox_inches="tight",
                metadata={"Software": None},
            )
        finally:
            plt.close(fig)
        return self.image(name, alt)

    def include(self, source: str, name: str, alt: str) -> str | None:
        """Link a figure another stage drew (copied into the report folder, or in place)."""
        path = self.path(source)
        if not path.is_file():
            return None
        if self.params.copy_figures:
            shutil.copyfile(path, self.figures_dir / name)
            return self.image(name, alt)
        link = Path(os.path.relpath(path, self.md_dir)).as_posix()
        return f"![{alt}]({link})"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------- sections

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
                cells.append(_cell(value, DATASET_COLUMNS.get(key, (key, 2))[1]))
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
                _cell(need(row, "requests", at, int)),
                _cell(need(row, "accepted", at, int)),
                _cell(need(row, "rejected", at, int)),
                _cell(need(row, "acceptance_rate", at, OPTIONAL_NUMBER), 3),
                ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "–",
            ]
        )
    header = ["Strategy", "Requests", "Accepted", "Rejected", "Acceptance", "Rejected because"]
    return lines + table(header, rows, "lrrrrl")


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
    sources = sorted(set(before) | set(after), key=_natural)
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
    rows = [[s, _cell(b), _cell(a), _cell(b - a)] for s, b, a in counts]
    rows.append(
        ["**total**", _cell(total_before), _cell(total_after), _cell(total_before - total_after)]
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
        *table(["Removed because", "Records"], [[r, _cell(removed[r])] for r in reasons]),
        "",
        ctx.draw("dedup_funnel.png", "dedup funnel", plot, figsize=(9, 3.5)),
    ]


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
                _cell(sizes[cluster]),
                f"{sizes[cluster] / total:.1%}",
                _cell(validation[cluster]),
                _cell(adapter.get("steps")),
                _cell(adapter.get("eval_loss")),
            ]
        )
    header = ["Cluster", "Train", "Share", "Validation", "Adapter steps", "Adapter eval loss"]
    facts = (
        f"k = {k} (requested {data.get('k_requested', k)}; dissolved: "
        f"{', '.join(map(str, dissolved)) or 'none'}), silhouette {_cell(silhouette, 3)}"
        f" ({ctx.shown(name)}"
        + (f", adapters from {ctx.shown('sft.json')}" if sft is not None else "")
        + ")."
    )
    lines += [facts, "", *table(header, rows)]
    figure = ctx.include("cluster/projection.png", "cluster_projection.png", "cluster projection")
    lines += ["", figure or f"*No projection: {ctx.shown('cluster/projection.png')} is missing.*"]
    return lines


def _passk_columns(models: dict[str, dict]) -> list[tuple[int, str, str]]:
    found = set()
    for row in models.values():
        for key in row:
            match = re.fullmatch(r"pass@(\d+)_t(.+)", key)
            if match:
                found.add((int(match[1]), match[2], key))
    return sorted(found)


def section_models(ctx: Context) -> list[str]:
    lines = ["## Models", ""]
    name = "evaluate.json"
    data = ctx.load(name)
    if data is None:
        return lines + ctx.not_run(name, "evaluate")
    where = str(ctx.path(name))
    if not isinstance(data, dict) or not data:
        raise CodealignError(f"{where}: expected an object with one entry per benchmark")
    bars: dict[str, dict[str, dict[str, float]]] = {}
    for bench in sorted(data):
        result = need(data, bench, where, dict)
        at = f"{where}: {bench}"
        models = need(result, "models", at, dict)
        passk = _passk_columns(models)
        header = ["Model", "k", "pass@1"] + [f"pass@{k} (T={t})" for k, t, _ in passk]
        header += ["Solved always", "Sometimes", "Never"]
        rows, cluster_rows = [], []
        bars[bench] = {}
        for model in models:
            row = need(models, model, f"{at}.models", dict)
            mat = f"{at}.models.{model}"
            pass1 = need(row, "pass@1", mat, NUMBER)
            cells = [model, _cell(row.get("k", "–")), _cell(float(pass1))]
            for _, _, key in passk:
                cells.append(_cell(need(row, key, mat, NUMBER) if key in row else None))
            for key in ("solved_always", "solved_sometimes", "solved_never"):
                cells.append(_cell(row.get(key), 3))
            rows.append(cells)
            bars[bench][model] = {"pass@1": float(pass1)}
            if passk:
                k, t, key = passk[-1]
                if key in row:
                    bars[bench][model][f"pass@{k} (T={t})"] = float(row[key])
            if "pass@1_by_cluster" in row:
                by_cluster = need(row, "pass@1_by_cluster", mat, dict)
                tasks = row.get("tasks_by_cluster") or []
                for cluster in sorted(by_cluster, key=_natural):
                    value = need(by_cluster, cluster, f"{mat}.pass@1_by_cluster", OPTIONAL_NUMBER)
                    n = (
                        tasks[int(cluster)]
                        if cluster.isdigit() and int(cluster) < len(tasks)
                        else None
                    )
                    cluster_rows.append([model, cluster, _cell(n), _cell(value)])
        tasks = result.get("tasks")
        samples = result.get("samples_per_task")
        lines += [
            f"### {bench}",
            "",
            f"{_cell(tasks)} tasks, {_cell(samples)} samples per task at each temperature "
            f"({ctx.shown(name)}).",
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

    lines.append(
        ctx.draw("models.png", "pass@k per model", plot, figsize=(4.5 * len(bars) + 1, 3.5))
    )
    return lines


def _spread(stats: Any, where: str) -> str:
    """`mean (min–max)` of one metric's stats over seeds, or the value of a single seed."""
    mean = need(stats, "mean", where, (int, float))
    if need(stats, "n", where, int) < 2:
        return _cell(mean)
    low, high = need(stats, "min", where, (int, float)), need(stats, "max", where, (int, float))
    return f"{_cell(mean)} ({_cell(low)}–{_cell(high)})"


def section_ksweep(ctx: Context) -> list[str]:
    """pass@k against K over seeds, from `codealign ksweep` (optional: a sweep is opt-in)."""
    lines = ["## pass@k against K", ""]
    data = ctx.load(KSWEEP)
    if data is None:
        return lines + [
            f"*No K sweep yet: {ctx.shown(KSWEEP)} is written by `codealign ksweep` "
            "after a grid of `dvc exp run --queue -S k=K -S train_seed=S evaluate` (README).*"
        ]
    where = str(ctx.path(KSWEEP))
    metrics = need(data, "metrics", where, list)
    rows = []
    for i, point in enumerate(need(data, "by_k", where, list)):
        at = f"{where}: by_k[{i}]"
        seeds = need(point, "seeds", at, list)
        row = [str(need(point, "k", at, int)), ", ".join(str(s) for s in seeds)]
        rows.append(row + [_spread(need(point, m, at, dict), f"{at}.{m}") for m in metrics])
    bench = need(data, "benchmark", where, str)
    lines += ctx.elsewhere(KSWEEP, _digests(data.get("base_model_digest")))
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


def _passk_first(key: str) -> tuple:
    """pass@1, pass@10, pass@50, then the other metrics by name."""
    k = key.removeprefix("pass@")
    return (0, int(k), "") if k.isdigit() else (1, 0, key)


def section_lintseq(ctx: Context) -> list[str]:
    """Edits against programs: pass@k of both adapters from `lintseq_eval`, and over
    training seeds from `codealign lintseq-seeds` where it has run."""
    lines = ["## Edit sequences against programs (LintSeq)", ""]
    data = ctx.load(LINTSEQ_EVAL)
    if data is None:
        return lines + ctx.not_run(LINTSEQ_EVAL, "lintseq_eval")
    where = str(ctx.path(LINTSEQ_EVAL))
    scores = {t: need(data, t, where, dict) for t in ("code", "edits")}
    ks = sorted(int(key[5:]) for key in scores["code"] if key.startswith("pass@"))
    rows = [
        [
            target,
            *[_cell(need(s, f"pass@{k}", f"{where}: {target}", (int, float))) for k in ks],
            _cell(need(s, "edit_failed_share", f"{where}: {target}", (int, float))),
        ]
        for target, s in scores.items()
    ]
    lines += [
        f"Two K = 1 adapters trained on the same records for the same "
        f"{need(data, 'steps', where, int)} steps, one on programs and one on their edit "
        f"sequences; {need(data, 'samples_per_task', where, int)} samples per task at "
        f"T = {need(data, 'temperature', where, (int, float)):g} on "
        f"{need(data, 'tasks', where, int)} {need(data, 'benchmark', where, str)} tasks "
        f"(train_seed {data.get('train_seed', '?')}).",
        "",
        *table(["Trained on", *[f"pass@{k}" for k in ks], "edit_failed share"], rows),
    ]
    figure = ctx.include("lintseq_eval/pass_at_k.png", "lintseq_pass_at_k.png", "pass@k against k")
    if figure:
        lines += ["", figure]
    seeds = ctx.load(LINTSEQ_SEEDS)
    if seeds is None:
        return lines + [
            "",
            f"*One seed: {ctx.shown(LINTSEQ_SEEDS)} is written by `codealign lintseq-seeds` "
            "after `dvc exp run --queue -S train_seed=S lintseq_eval` runs (README).*",
        ]
    where = str(ctx.path(LINTSEQ_SEEDS))
    by_target = need(seeds, "by_target", where, dict)
    keys = sorted(need(by_target, "code", where, dict), key=_passk_first)
    rows = [
        [
            t,
            *[
                _spread(need(need(by_target, t, where, dict), key, where, dict), where)
                for key in keys
            ],
        ]  # fmt: skip
        for t in ("code", "edits")
    ]
    used = ", ".join(str(s) for s in need(seeds, "seeds", where, list))
    lines += ["", *ctx.elsewhere(LINTSEQ_SEEDS, _digests(seeds.get("base_model_digest")))]
    lines += [
        f"Over train_seed {used}: mean (min–max).",
        "",
        *table(["Trained on", *keys], rows),
    ]
    figure = ctx.include("lintseq_seeds.png", "lintseq_seeds.png", "pass@k against k over seeds")
    if figure:
        lines += ["", figure]
    return lines


def section_mixture(ctx: Context) -> list[str]:
    """What the code share of the pretraining corpus moves: this run's `base_model_eval`
    scores, and the ablation over shares from `codealign mixture` where it has run."""
    lines = ["## Code share of the pretraining mixture", ""]
    data = ctx.load(BASE_MODEL_EVAL)
    if data is None:
        return lines + ctx.not_run(BASE_MODEL_EVAL, "base_model_eval")
    where = str(ctx.path(BASE_MODEL_EVAL))
    english, code = need(data, "english", where, dict), need(data, "code", where, dict)
    instructions = need(data, "instructions", where, dict)
    lines.append(
        f"This run's base model, code share {need(data, 'code_share', where, NUMBER):g}: "
        f"held-out English {_cell(need(english, 'bits_per_byte', where, NUMBER))} bits/byte, "
        f"tinyeval solutions {_cell(need(code, 'bits_per_byte', where, NUMBER))} bits/byte, "
        f"English instructions {need(instructions, 'correct', where, int)} of "
        f"{need(instructions, 'prompts', where, int)} answered exactly."
    )
    grid = ctx.load(MIXTURE)
    if grid is None:
        return lines + [
            "",
            f"*No ablation yet: {ctx.shown(MIXTURE)} is written by `codealign mixture` after "
            "`dvc exp run --queue -S base_model.code_share=S -S train_seed=T "
            "base_model_eval evaluate` and `-S base_model.seed=B base_model_eval` runs "
            "(README).*",
        ]
    where = str(ctx.path(MIXTURE))
    rows = []
    for i, point in enumerate(need(grid, "by_share", where, list)):
        at = f"{where}: by_share[{i}]"
        base_seeds = ", ".join(str(seed) for seed in need(point, "base_seeds", at, list))
        sft_runs = len(need(point, "sft_runs", at, list))
        cells = [
            "–" if point.get(key) is None else _spread(point[key], f"{at}.{key}")
            for key in MIXTURE_COLUMNS
        ]
        share = f"{need(point, 'code_share', at, NUMBER):g}"
        rows.append([share, base_seeds, str(sft_runs), *cells])
    runs = grid.get("runs") if isinstance(grid.get("runs"), list) else []
    digests = _digests(*(run.get("model_digest") for run in runs if isinstance(run, dict)))
    lines += ["", *ctx.elsewhere(MIXTURE, digests)]
    lines += [
        f"Over code shares and seeds ({need(grid, 'benchmark', where, str)}); each cell is "
        "the mean (min–max). The base-model columns count each distinct base model once, "
        "one per pretraining seed (`base_model.seed`; `train_seed` does not change it); "
        "pass@1 after SFT is the K = 1 model's, once per SFT run. Compare shares by bits "
        "per byte: each share trains its own tokenizer.",
        "",
        *table(["Code share", "Pretraining seeds", "SFT runs", *MIXTURE_COLUMNS.values()], rows),
    ]
    figure = ctx.include("mixture.png", "mixture.png", "metrics against code share")
    if figure:
        lines += ["", figure]
    return lines


def _digests(*values: Any) -> set[str]:
    """The base-model digests an aggregate recorded (older files have none)."""
    return {value for value in values if isinstance(value, str)}


def _curve(points: Any, where: str) -> tuple[list[float], list[float]]:
    if not isinstance(points, list) or not points:
        raise CodealignError(f"{where} must be a non-empty list of {{step, pass@1}} points")
    steps, values = [], []
    for i, point in enumerate(points):
        steps.append(float(need(point, "step", f"{where}[{i}]", NUMBER)))
        values.append(float(need(point, "pass@1", f"{where}[{i}]", NUMBER)))
    return steps, values


def read_seed_curves(
    path: Path,
) -> tuple[str | None, list[dict[str, tuple[list[float], list[float]]]]]:
    """The base-model digest and each seed's (steps, pass@1) curves from a
    `dpo_seeds.json` (module docstring)."""
    raw = read_json(path)
    where = str(path)
    runs = need(raw, "seeds", where, list)
    if not runs:
        raise CodealignError(f"{where}: seeds: expected a non-empty list of per-seed curves")
    digest = raw.get("base_model_digest")
    if digest is not None and not isinstance(digest, str):
        raise CodealignError(f"{where}: base_model_digest must be a string")
    seeds = []
    for i, run in enumerate(runs):
        curves = {
            arm: _curve(need(run, arm, f"{where}: seeds[{i}]"), f"{where}: seeds[{i}].{arm}")
            for arm in ("curriculum", "shuffled")
        }
        seeds.append(curves)
    lengths = {len(s[arm][0]) for s in seeds for arm in s}
    if len(lengths) != 1:
        raise CodealignError(
            f"{where}: every seed's curves must have the same number of points "
            f"(one per stage boundary), got {sorted(lengths)}"
        )
    return digest, seeds


def seed_band(
    seeds: list[dict[str, tuple[list[float], list[float]]]], params: ReportParams
) -> dict[str, list[dict[str, float]]]:
    """Per arm (and their difference), per boundary: mean and bootstrap interval over seeds."""
    from codealign.dpo.stats import bootstrap_ci

    arms = {arm: [s[arm][1] for s in seeds] for arm in ("curriculum", "shuffled")}
    arms["difference"] = [
        [c - s for c, s in zip(cur, shu, strict=True)]
        for cur, shu in zip(arms["curriculum"], arms["shuffled"], strict=True)
    ]
    return {
        arm: [
            bootstrap_ci(
                [curve[i] for curve in curves],
                confidence=params.confidence,
                resamples=params.resamples,
                seed=i,
            )
            for i in range(len(curves[0]))
        ]
        for arm, curves in arms.items()
    }


def section_dpo(ctx: Context) -> list[str]:
    lines = ["## Curriculum DPO", "", "### Curriculum", ""]
    name = "curriculum.json"
    data = ctx.load(name)
    if data is None:
        lines += ctx.not_run(name, "curriculum")
    else:
        where = str(ctx.path(name))
        stages = need(data, "stages", where, list)
        pruned = need(data, "pruned", where, dict)
        rows = []
        for i, stage in enumerate(stages):
            at = f"{where}: stages[{i}]"
            low = need(stage, "low", at, OPTIONAL_NUMBER)
            high = need(stage, "high", at, OPTIONAL_NUMBER)
            span = "–" if low is None and high is None else f"{_cell(low, 3)} … {_cell(high, 3)}"
            rows.append(
                [
                    _cell(need(stage, "stage", at, int)),
                    _cell(need(stage, "bucket", at, int)),
                    span,
                    _cell(need(stage, "pairs_before_pruning", at, int)),
                    _cell(need(stage, "pairs", at, int)),
                ]
            )
        pruned_text = ", ".join(f"{r}: {n}" for r, n in sorted(pruned.items())) or "none"
        lines += [
            f"{_cell(need(data, 'pairs_in', where, int))} pairs in, "
            f"{_cell(need(data, 'pairs_kept', where, int))} kept "
            f"(pruned: {pruned_text}); {_cell(data.get('ties'))} of {_cell(data.get('tasks'))} "
            f"tasks tied and gave no pair; order {data.get('order', '?')} "
            f"({ctx.shown(name)}).",
            "",
            *table(["Stage", "Bucket", "Distance", "Pairs before pruning", "Pairs"], rows),
        ]
        figure = ctx.include(
            "curriculum/distance_hist.png", "curriculum_distance_hist.png", "pair distances"
        )
        if figure:
            lines += ["", figure]
    lines += ["", "### Training runs", ""]
    runs = sorted(ctx.metrics_dir.glob("dpo/stage_*.json"), key=lambda p: _natural(p.name))
    shuffled_path = ctx.path("dpo/shuffled.json")
    if not runs and not shuffled_path.is_file():
        lines += ctx.not_run("dpo/stage_1.json", "dpo")
    else:
        rows = []
        for path in [*runs, shuffled_path]:
            if not path.is_file():
                continue
            metrics = read_json(path)
            where = str(path)
            skipped = need(metrics, "skipped", where, bool)
            evals = metrics.get("evals") or []
            final = metrics.get("eval", evals[-1] if evals else {})
            if not isinstance(final, dict):
                raise CodealignError(f"{where}: 'eval' must be an object, got {final!r}")
            rows.append(
                [
                    path.stem,
                    _cell(metrics.get("bucket")),
                    _cell(need(metrics, "pairs", where, int)),
                    _cell(need(metrics, "steps", where, int)),
                    _cell(final.get("pass@1")),
                    str(metrics.get("reason", "")) if skipped else "",
                ]
            )
        header = ["Run", "Bucket", "Pairs", "Steps", "pass@1 at the end", "Skipped because"]
        lines += table(header, rows, "lrrrrl")
    lines += ["", "### Curriculum against shuffled", ""]
    lines += _dpo_curves(ctx)
    figure = ctx.include("dpo/loss_vs_distance.png", "dpo_loss_vs_distance.png", "loss vs distance")
    lines += [
        "",
        "### Per-sample loss against pair distance",
        "",
        figure or ctx.not_run("dpo/loss_vs_distance.png", "dpo_shuffled")[0],
    ]
    return lines


def _dpo_curves(ctx: Context) -> list[str]:
    name = "dpo_compare.json"
    data = ctx.load(name)
    seeds_path = ctx.path(DPO_SEEDS)
    digest, seeds = read_seed_curves(seeds_path) if seeds_path.is_file() else (None, None)
    if data is None and seeds is None:
        return ctx.not_run(name, "dpo_compare")
    lines: list[str] = []
    # Seeds from another base model get their table, never a band over this run's curves.
    foreign = ctx.elsewhere(DPO_SEEDS, _digests(digest)) if seeds else []
    curves: dict[str, tuple[list[float], list[float]]] = {}
    if data is not None:
        where = str(ctx.path(name))
        for arm in ("curriculum", "shuffled"):
            curves[arm] = _curve(need(data, arm, where), f"{where}: {arm}")
        final = {
            key: _cell(need(data, key, where, NUMBER))
            for key in (
                "final_curriculum_pass@1",
                "final_shuffled_pass@1",
                "final_difference",
                "mean_difference_at_boundaries",
            )
        }
        lines += [
            f"Final pass@1: curriculum {final['final_curriculum_pass@1']}, "
            f"shuffled {final['final_shuffled_pass@1']}, "
            f"difference {final['final_difference']}; mean difference at the stage "
            f"boundaries {final['mean_difference_at_boundaries']} ({ctx.shown(name)}).",
            "",
        ]
    table_band = seed_band(seeds, ctx.params) if seeds else None
    band = None if foreign else table_band
    if seeds:
        steps = [s["curriculum"][0] for s in seeds] + [s["shuffled"][0] for s in seeds]
        same_steps = all(s == steps[0] for s in steps)
        xs = steps[0] if same_steps else [float(i) for i in range(len(steps[0]))]
        level = f"{ctx.params.confidence:.0%}"
        rows = []
        for i, x in enumerate(xs):
            rows.append(
                [str(i), _cell(int(x)) if same_steps else "varies"]
                + [
                    f"{b[i]['mean']:.4f} [{b[i]['low']:.4f}, {b[i]['high']:.4f}]"
                    for b in (
                        table_band["curriculum"],
                        table_band["shuffled"],
                        table_band["difference"],
                    )
                ]
            )
        lines += [
            *foreign,
            f"Over {len(seeds)} seeds ({ctx.shown(DPO_SEEDS)}): mean pass@1 and {level} "
            f"percentile-bootstrap interval at each stage boundary.",
            "",
            *table(["Boundary", "Step", "Curriculum", "Shuffled", "Difference"], rows),
            "",
        ]
    else:
        lines += [
            f"*One seed: no confidence band. Write {ctx.shown(DPO_SEEDS)} "
            "(`python benchmarks/dpo_seeds.py`: each seed's `dpo_compare.json` curves) "
            "to draw one.*",
            "",
        ]

    if not band and not curves:
        return lines

    def plot(fig) -> None:
        ax = fig.subplots()
        colors = {"curriculum": "#4c72b0", "shuffled": "#dd8452"}
        for arm, color in colors.items():
            if band:
                mean = [b["mean"] for b in band[arm]]
                ax.plot(xs, mean, marker="o", color=color, label=f"{arm} (mean of {len(seeds)})")
                ax.fill_between(
                    xs,
                    [b["low"] for b in band[arm]],
                    [b["high"] for b in band[arm]],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            elif arm in curves:
                ax.plot(*curves[arm], marker="o", color=color, label=arm)
        boundaries = xs[1:] if band else curves.get("curriculum", ([], []))[0][1:]
        for x in sorted(set(boundaries)):
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("DPO optimizer step" if not band or same_steps else "stage boundary")
        ax.set_ylabel("pass@1")
        ax.legend()

    lines.append(ctx.draw("dpo_pass_at_1.png", "pass@1 against step", plot, figsize=(6, 3.5)))
    return lines


def curve_families(metrics_dir: Path) -> dict[str, dict[str, dict[str, Path]]]:
    """`{family: {metric: {run: tsv}}}` for every dvclive folder `metrics/<family>/plots/metrics`.

    A family with one model has `<split>/<metric>.tsv` (run = the family); one with several
    has `<run>/<split>/<metric>.tsv` (e.g. one run per SFT adapter).
    """
    families: dict[str, dict[str, dict[str, Path]]] = {}
    for root in sorted(metrics_dir.glob("*/plots/metrics")):
        family = root.parent.parent.name
        series: dict[str, dict[str, Path]] = {}
        for tsv in sorted(root.rglob("*.tsv")):
            parts = tsv.relative_to(root).with_suffix("").parts
            run = parts[0] if len(parts) > 2 else family
            metric = "/".join(parts[-2:])
            series.setdefault(metric, {})[run] = tsv
        if series:
            families[family] = series
    return families


def _metric_order(metric: str) -> tuple:
    split, _, name = metric.rpartition("/")
    return ({"train": 0, "eval": 1}.get(split, 2), name != "loss" and "loss" not in name, metric)


def section_curves(ctx: Context) -> list[str]:
    lines = ["## Training curves", ""]
    families = curve_families(ctx.metrics_dir)
    if not families:
        return lines + [
            f"*Not run: no dvclive curves under {ctx.shown('*/plots/metrics')}; they are "
            "written by `dvc repro base_model` and `dvc repro sft`.*"
        ]
    for family, series in families.items():
        metrics = sorted(series, key=_metric_order)
        runs = sorted({run for by_run in series.values() for run in by_run}, key=_natural)
        data = {
            metric: {run: read_tsv_series(path) for run, path in series[metric].items()}
            for metric in metrics
        }

        def plot(fig, metrics=metrics, runs=runs, data=data) -> None:
            cols = min(2, len(metrics))
            rows = math.ceil(len(metrics) / cols)
            axes = fig.subplots(rows, cols, squeeze=False).ravel()
            for ax, metric in zip(axes, metrics, strict=False):
                for run in runs:
                    if run in data[metric]:
                        _, steps, values = data[metric][run]
                        ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=run)
                ax.set_title(metric)
                ax.set_xlabel("step")
                ax.xaxis.get_major_locator().set_params(integer=True)
                if len(runs) > 1:
                    ax.legend(fontsize="small")
            for ax in axes[len(metrics) :]:
                ax.axis("off")
            fig.tight_layout()

        cols = min(2, len(metrics))
        size = (5.0 * cols, 3.0 * math.ceil(len(metrics) / cols))
        lines += [
            f"### {family}",
            "",
            f"{len(runs)} run{'s' if len(runs) > 1 else ''} "
            f"({', '.join(runs)}); {ctx.shown(family + '/plots/metrics')}.",
            "",
            ctx.draw(f"curves_{family}.png", f"{family} training curves", plot, figsize=size),
            "",
        ]
    return lines[:-1]


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
        f" Beside it, profile `{run['profile']}` on {_cell(run['cores'])} cores "
        f"({ctx.shown(name)})."
        for name, run in runs[1:]
    )
    return lines + [
        f"Profile `{times['profile']}` on {_cell(times['cores'])} cores, each stage run alone "
        f"with `dvc repro --single-item` ({ctx.shown(STAGE_TIMES)}).{note}{others}",
        "",
        *table(header, rows),
    ]


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
