"""The generated parts of the docs: the README's results block and the pipeline diagram.

Both live in markdown files between a pair of markers, `<!-- NAME:start -->` and
`<!-- NAME:end -->`, and are written only by `codealign docs`:

- `results` (README.md): the headline figures, read from the committed metrics of the
  default profile (`metrics/`) and of the full profile (`results/full/`, written by
  `codealign snapshot`, whose top-level `provenance` key is no figure), each labelled
  with its profile. A file that is missing gives "not run", never a stale number.
- `dag` (README.md and docs/pipeline.md): the stage graph of `dvc.yaml` as a mermaid
  flowchart, DVC's own graph with every edge that a longer path already implies left
  out, so that it stays readable.

`codealign docs --check` writes nothing and exits 1 when a block differs from what the
files give; a test runs the same check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.io import read_json, write_text
from codealign.params.report import ReportParams
from codealign.report.common import NUMBER, need
from codealign.report.dpo import read_seed_curves, seed_band

DEFAULT_DIR = "metrics"
FULL_DIR = "results/full"
PROVENANCE = "provenance"  # the key `codealign snapshot` adds to every JSON it copies
# Which generated block goes into which file, relative to the repository root.
TARGETS = {"README.md": ("results", "dag"), "docs/pipeline.md": ("dag",)}


def _f(value: float) -> str:
    return f"{value:.3f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−")


def _passk_key(row: dict) -> str | None:
    """The pass@k column with the largest k (`pass@10_t0.8`), as the report's table ends."""
    keys = [k for k in row if re.fullmatch(r"pass@\d+_t[\d.]+", k)]  # not its `_ci`
    return max(keys, key=lambda k: int(k[5:].split("_")[0]), default=None)


# The final evaluations' metrics: `evaluate` (base, k1, routed), then `evaluate_dpo`.
EVALUATIONS = ("evaluate.json", "evaluate_dpo.json")


def _evaluated(root: Path, d: str) -> tuple[dict | None, dict[tuple[str, str], str]]:
    """The benchmarks of a profile's final evaluations, their models together, and where
    each model's row lies (`<file>: <bench>.models.<model>`); None where none ran."""
    merged: dict[str, Any] = {}
    where: dict[tuple[str, str], str] = {}
    found = False
    for name in EVALUATIONS:
        data = _load(root / d / name)
        if data is None:
            continue
        found = True
        at = f"{d}/{name}"
        if not isinstance(data, dict):
            raise CodealignError(f"{at}: expected an object with one entry per benchmark")
        data.pop(PROVENANCE, None)  # how the file was made (`codealign snapshot`), not a benchmark
        for bench in data:
            result = need(data, bench, at, dict)
            models = need(result, "models", f"{at}: {bench}", dict)
            into = merged.setdefault(bench, {**result, "models": {}})
            for model, row in models.items():  # a later source wins, as in the report
                into["models"].pop(model, None)
                into["models"][model] = row
                where[bench, model] = f"{at}: {bench}.models.{model}"
    return (merged if found else None), where


def _model_rows(root: Path, dirs: dict[str, str]) -> list[list[str]]:
    """Per benchmark: its size, then pass@1 / pass@k of each model, one column per profile."""
    loaded = {p: _evaluated(root, d) for p, d in dirs.items()}
    data = {p: merged for p, (merged, _) in loaded.items()}
    benches = sorted({b for d in data.values() if d for b in d})
    rows = []
    for bench in benches:
        models = {}
        for profile, d in data.items():
            if d and bench in d:
                models[profile] = d[bench]["models"]
        sizes = []
        for d in data.values():
            result = d.get(bench) if d else None
            sizes.append(
                "not run"
                if result is None
                else f"{result.get('tasks', '?')} tasks × "
                f"{result.get('samples_per_task', '?')} samples"
            )
        rows.append([f"{bench}: tasks × samples per task", *sizes])
        for name in dict.fromkeys(m for by_name in models.values() for m in by_name):
            found = {p: by_name[name] for p, by_name in models.items() if name in by_name}
            ks = {row.get("k") for row in found.values()}
            keys = {_passk_key(row) for row in found.values()}
            label = name + (f" (K = {next(iter(ks))})" if ks != {None} and len(ks) == 1 else "")
            shown = "pass@1 [95% interval over tasks, where measured]" + (
                f" / {_key_name(next(iter(keys)))}" if len(keys) == 1 else ""
            )
            cells = []
            for profile in dirs:
                row = found.get(profile)
                if row is None:
                    cells.append("not run")
                    continue
                where = loaded[profile][1][bench, name]
                key = _passk_key(row)
                cell = _f(need(row, "pass@1", where, NUMBER))
                ci = row.get("pass@1_ci")
                if isinstance(ci, dict) and {"low", "high"} <= set(ci):
                    cell += f" [{_f(ci['low'])}, {_f(ci['high'])}]"
                if key:
                    cell += f" / {_f(need(row, key, where, NUMBER))}"
                if len(keys) > 1 and key:
                    cell += f" ({_key_name(key)})"
                if len(ks) > 1 and row.get("k") is not None:
                    cell = f"K = {row['k']}: {cell}"
                cells.append(cell)
            rows.append([f"{bench}, {label}: {shown}", *cells])
    return rows


def _key_name(key: str | None) -> str:
    """`pass@10_t0.8` as the table names it: `pass@10 (T = 0.8)`."""
    if key is None:
        return "–"
    k, _, temperature = key.partition("_t")
    return f"{k} (T = {temperature})"


def _ksweep_rows(root: Path, dirs: dict[str, str]) -> list[list[str]]:
    data = {p: _load(root / d / "ksweep.json") for p, d in dirs.items()}
    ks = sorted(
        {
            need(point, "k", f"{dirs[p]}/ksweep.json: by_k", int)
            for p, sweep in data.items()
            if sweep
            for point in need(sweep, "by_k", f"{dirs[p]}/ksweep.json", list)
        }
    )
    rows = []
    for k in ks:
        cells, seeds = [], set()
        for profile, d in dirs.items():
            sweep = data[profile]
            point = next((pt for pt in sweep["by_k"] if pt["k"] == k), None) if sweep else None
            if point is None:
                cells.append("not run")
                continue
            stats = need(point, "pass@1", f"{d}/ksweep.json: by_k", dict)
            seeds.update(point["seeds"])
            cells.append(f"{_f(stats['mean'])} [{_f(stats['min'])}, {_f(stats['max'])}]")
        label = "K = 1 (one adapter)" if k == 1 else f"K = {k} (routed)"
        seed_list = ", ".join(str(s) for s in sorted(seeds))
        rows.append([f"{label}: pass@1, mean [min, max] over train_seed {seed_list}", *cells])
    return rows


def _dedup_rows(root: Path, dirs: dict[str, str]) -> list[list[str]]:
    counts, removed = [], []
    reasons: list[str] = []
    data = {p: _load(root / d / "dedup.json") for p, d in dirs.items()}
    for d in data.values():
        reasons += [r for r in (d or {}).get("removed", {}) if r not in reasons]
    for profile, d in dirs.items():
        dedup = data[profile]
        if dedup is None:
            counts.append("not run")
            removed.append("not run")
            continue
        where = f"{d}/dedup.json"
        before = need(dedup, "records_before", where, int)
        after = need(dedup, "records_after", where, int)
        split = ""
        if "train" in dedup and "validation" in dedup:
            split = f" ({dedup['train']:,} + {dedup['validation']:,})"
        counts.append(f"{before:,} → {after:,}{split}")
        removed.append(" / ".join(f"{dedup['removed'].get(r, 0):,}" for r in reasons))
    return [
        ["dedup: records in → kept (train + validation)", *counts],
        [f"dedup: removed as {' / '.join(reasons)}", *removed],
    ]


def _dpo_rows(root: Path, dirs: dict[str, str], params: ReportParams) -> list[list[str]]:
    finals, over = [], []
    for d in dirs.values():
        compare = _load(root / d / "dpo_compare.json")
        if compare is None:
            finals.append("not run")
        else:
            where = f"{d}/dpo_compare.json"
            seed = f"train_seed {compare.get('train_seed', '?')}"
            row = (compare.get("final_evaluation") or {}).get("tinyeval")
            if isinstance(row, dict):
                diff, low, high = (
                    need(row, key, where, NUMBER) for key in ("mean_difference", "low", "high")
                )
                finals.append(
                    f"{_signed(diff)} [{_signed(low)}, {_signed(high)}] "
                    f"over {row.get('tasks', '?')} tasks ({seed})"
                )
            else:
                diff = need(compare, "final_difference", where, NUMBER)
                finals.append(f"{_signed(diff)} ({seed}; no interval: measured before the split)")
        path = root / d / "dpo_seeds.json"
        if not path.is_file():
            over.append("not run")
            continue
        _, seeds = read_seed_curves(path)
        final = seed_band(seeds, params)["difference"][-1]
        numbers = [s.get("seed") for s in read_json(path)["seeds"]]
        over.append(
            f"{_signed(final['mean'])} [{_signed(final['low'])}, {_signed(final['high'])}] "
            f"(train_seed {', '.join(str(n) for n in numbers)})"
        )
    level = f"{params.confidence:.0%}"
    return [
        [
            f"DPO: curriculum − shuffled, tinyeval pass@1 [{level} interval over tasks], one run",
            *finals,
        ],
        [f"DPO: the same over seeds, mean [{level} bootstrap interval]", *over],
    ]


def _load(path: Path) -> Any | None:
    return read_json(path) if path.is_file() else None


def results_block(root: str | Path, params: ReportParams | None = None) -> str:
    """The README's results-at-a-glance table, from the committed metrics files."""
    root = Path(root)
    params = params or ReportParams()
    dirs = {"default": DEFAULT_DIR, "full": FULL_DIR}
    rows = [
        *_model_rows(root, dirs),
        *_ksweep_rows(root, dirs),
        *_dedup_rows(root, dirs),
        *_dpo_rows(root, dirs, params),
    ]
    header = ["", *(f"{p} profile (`{d}/`)" for p, d in dirs.items())]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|" + "---|" * len(dirs),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def _node(stage: str) -> str:
    """A mermaid node: the stage's name, with a label where the name is not a valid id."""
    node = re.sub(r"\W", "_", stage)
    return node if node == stage else f'{node}["{stage}"]'


def pipeline_mermaid(root: str | Path) -> str:
    """The stage graph of `root/dvc.yaml` as a mermaid flowchart, transitively reduced."""
    import networkx as nx
    from dvc.repo import Repo

    # uninitialized: the graph needs only dvc.yaml and its params, not a .dvc directory
    with Repo(str(root), uninitialized=True) as repo:
        graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
        flow = nx.DiGraph()
        for stage in graph.nodes:
            flow.add_node(stage.name)
        for stage, upstream in graph.edges:
            flow.add_edge(upstream.name, stage.name)
    flow = nx.transitive_reduction(flow)
    lines = ["```mermaid", "flowchart LR"]
    for stage in nx.lexicographical_topological_sort(flow):
        after = sorted(flow.successors(stage))
        if after:
            lines.append(f"  {_node(stage)} --> {' & '.join(_node(s) for s in after)}")
        elif not flow.in_degree(stage):
            lines.append(f"  {_node(stage)}")  # a stage with no edges at all
    return "\n".join(lines) + "\n```\n"


def replace_block(text: str, name: str, body: str, where: str) -> str:
    """`text` with what lies between the `name` markers replaced by `body`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise CodealignError(f"{where}: expected one '{start}' followed by one '{end}'")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    note = f"<!-- written by `codealign docs` from {_SOURCES[name]}; do not edit by hand -->"
    return f"{head}{start}\n{note}\n\n{body}\n{end}{tail}"


_SOURCES = {"results": f"{DEFAULT_DIR}/ and {FULL_DIR}/", "dag": "dvc.yaml"}


def generated(root: str | Path, params: ReportParams | None = None) -> dict[str, str]:
    """Each target file's text with its blocks as the files give them now."""
    root = Path(root)
    blocks: dict[str, Callable[[], str]] = {
        "results": lambda: results_block(root, params),
        "dag": lambda: pipeline_mermaid(root),
    }
    made: dict[str, str] = {}
    out = {}
    for target, names in TARGETS.items():
        path = root / target
        if not path.is_file():
            raise CodealignError(f"{target}: missing; it holds the blocks {', '.join(names)}")
        text = path.read_text(encoding="utf-8")
        for name in names:
            if name not in made:
                made[name] = blocks[name]()
            text = replace_block(text, name, made[name], target)
        out[target] = text
    return out


@click.command("docs", cls=Command)
@click.option(
    "--root",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The repository: its dvc.yaml, metrics/, results/full/, README.md and docs/.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a block is out of date.")
def docs_command(root: Path, check: bool) -> None:
    """Rewrite the README's results block and the pipeline diagram from the files.

    The results block reads metrics/*.json (default profile) and results/full/ (full
    profile); the diagram reads dvc.yaml. Run it after committing new metrics.
    """
    from codealign.params import load_params

    params_file = root / "params.yaml"
    params = load_params(params_file)["report"] if params_file.is_file() else None
    stale = []
    for target, text in generated(root, params).items():
        path = root / target
        if path.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not check:
            write_text(path, text)
    if check and stale:
        click.echo(f"out of date: {', '.join(stale)} (run `codealign docs`)", err=True)
        raise SystemExit(1)
    click.echo(f"wrote {', '.join(stale)}" if stale else f"up to date: {', '.join(TARGETS)}")
