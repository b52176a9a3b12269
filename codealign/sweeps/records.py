"""Run records and sweep summaries, each with the provenance that makes it a result.

A DVC experiment ref lives in one clone's `.git`: it does not survive a move to another
machine, so it cannot be the record of a finding. Every sweep command writes, beside its
summary, one JSON file per run it counted, `results/runs/<sweep>/<run-id>.json`, which is
committed with the summary:

- `params`: the run's full resolved params (params.yaml as the experiment ran it);
- `seeds`: `seed`, `train_seed` and `base_model.seed` as the run used them (null:
  the master seed), and `varies`: the seed params that take more than one value among
  the runs the sweep counted;
- `commit`: the commit the run is based on, `dirty`: whether code differed from it
  (files other than params.yaml, dvc.lock, metrics/ and results/; null where unknown),
  `experiment`: its DVC rev and name;
- `profile`: the profile (`params/<name>.yaml`) the run's params equal but for the
  swept keys; null for none;
- `command`: the command line that collected it;
- `metrics`: what the run measured, and `tasks`: per-task outcomes
  (`{arm: {task_id: [passed, samples]}}`, read from the run's verdict files) so that a
  finding can resample tasks; `tasks_missing` says which arm's file could not be read.

Every summary a sweep command writes carries the same `provenance` (command, commit,
dirty, profile). Nothing here knows a sweep's metrics: the sweep modules say what goes
into each record.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from codealign.errors import CodealignError
from codealign.io import atomic_path, iter_jsonl, write_json

SCHEMA = "codealign.run/1"
RUNS_DIR = Path("results/runs")
SEED_KEYS = ("seed", "train_seed", "base_model.seed")
# Files an experiment changes by design: not code, so they do not make a run dirty.
BOOKKEEPING = ("params.yaml", "dvc.lock", "metrics/", "results/", ".dvc/", ".gitignore")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def flat(params: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`."""
    if not isinstance(params, dict):
        return {prefix: params}
    out: dict[str, Any] = {}
    for key, value in params.items():
        out.update(flat(value, f"{prefix}{key}."))
    return {key.rstrip("."): value for key, value in out.items()}


def value_before(key: str) -> Any:
    """The value of params key `key` (`section.field`) that behaves as runs made before the
    key existed (its `param(before=...)`); None where the key declares none, so that such
    a run matches only null."""
    import dataclasses

    from codealign.params import SECTIONS

    section, _, name = key.partition(".")
    cls = SECTIONS.get(section)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls is not None else {}
    return fields[name].metadata.get("before") if name in fields else None


def same_value(params: Mapping[str, Any], other: Mapping[str, Any], key: str) -> bool:
    """Whether two flat params dicts agree on `key`; where one lacks it (a run from before
    the key existed), the other must hold null or the key's `before` value."""
    if key in params and key in other:
        return params[key] == other[key]
    present = params.get(key, other.get(key))
    return present is None or present == value_before(key)


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def head_commit(repo: Path = Path(".")) -> str | None:
    out = _git(repo, "rev-parse", "HEAD")
    return out.strip() if out else None


def _code_changed(names: str | None) -> bool | None:
    if names is None:
        return None
    changed = [n for n in names.splitlines() if n.strip()]
    return any(not n.startswith(BOOKKEEPING) for n in changed)


def workspace_dirty(repo: Path = Path(".")) -> bool | None:
    """Whether tracked code in `repo` differs from HEAD (bookkeeping files aside)."""
    return _code_changed(_git(repo, "diff", "--name-only", "HEAD"))


def experiment_dirty(repo: Path, baseline: str, rev: str) -> bool | None:
    """Whether an experiment's commit changed code against its baseline (it was queued
    from a workspace with uncommitted changes); None where git cannot tell."""
    return _code_changed(_git(repo, "diff", "--name-only", baseline, rev))


def profile_of(params: Mapping[str, Any], swept: Sequence[str], root: Path) -> str | None:
    """The profile under `root`/params/ whose params equal `params` in every key but the
    `swept` ones (a key one side lacks counts as equal when the other holds null)."""
    import yaml

    from codealign.profiles import profiles

    wanted = flat(dict(params))
    for name, path in profiles(root).items():
        try:
            known = flat(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError):
            continue
        keys = (set(wanted) | set(known)) - set(swept)
        if all(same_value(wanted, known, key) for key in keys):
            return name
    return None


def command_line(ctx: click.Context) -> str:
    """The command as a user would type it: `codealign <name>` and every option given
    on the command line (defaults left out), in a stable order."""
    import shlex

    name = ctx.command.name or ctx.info_name or "?"
    words = ["codealign", name]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue
        value = ctx.params.get(param.name)
        flag = param.opts[0] if isinstance(param, click.Option) else None
        values = value if isinstance(value, tuple | list) else [value]
        for item in values:
            if flag is None:
                words.append(str(item))
            elif isinstance(param, click.Option) and param.is_flag:
                if item:
                    words.append(flag)
            else:
                words.extend([flag, str(item)])
    return shlex.join(words)


def provenance(command: str, repo: Path = Path("."), profile: str | None = None) -> dict:
    """What a file under results/ records about how it was made."""
    return {
        "command": command,
        "commit": head_commit(repo),
        "dirty": workspace_dirty(repo),
        "profile": profile,
    }


def seeds_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """The seed params as the run used them: a null section seed is the master seed; a
    seed the params lack altogether is null (the run had no such seed)."""
    params_flat = flat(dict(params))
    master = params_flat.get("seed")
    used = {}
    for key in SEED_KEYS:
        if key not in params_flat:
            used[key] = None
        else:
            used[key] = master if params_flat[key] is None else params_flat[key]
    return used


def varying_seeds(seed_sets: Iterable[Mapping[str, Any]]) -> list[str]:
    """The seed keys that take more than one value among the runs."""
    seen: dict[str, set] = {}
    for seeds in seed_sets:
        for key, value in seeds.items():
            seen.setdefault(key, set()).add(json.dumps(value))
    return [key for key in SEED_KEYS if len(seen.get(key, ())) > 1]


def per_task_counts(lines: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """`{task_id: [passed, samples]}` from verdict records."""
    counts: dict[str, list[int]] = {}
    for verdict in lines:
        entry = counts.setdefault(str(verdict["task_id"]), [0, 0])
        entry[0] += bool(verdict["passed"])
        entry[1] += 1
    return dict(sorted(counts.items()))


def read_verdicts(repo: Path, rev: str, path: str) -> dict[str, list[int]]:
    """Per-task counts of a DVC-tracked verdicts file as experiment `rev` left it (the
    workspace's file for rev `workspace`). Raises CodealignError when it cannot be read."""
    try:
        if rev == "workspace":
            return per_task_counts(iter_jsonl(repo / path))
        import dvc.api

        with dvc.api.open(path, repo=str(repo), rev=rev) as handle:
            text = handle.read()
        return per_task_counts(json.loads(line) for line in text.splitlines() if line.strip())
    except CodealignError:
        raise
    except Exception as exc:  # dvc raises many kinds: missing cache, path, rev
        raise CodealignError(f"{path} at {rev[:7]}: {type(exc).__name__}: {exc}") from None


def collect_tasks(
    repo: Path | None, rev: str, files: Mapping[str, str]
) -> tuple[dict[str, dict[str, list[int]]], dict[str, str]]:
    """Per-task counts of each arm's verdicts file, and why the missing ones are missing
    (`repo` None: the runs came from a saved `dvc exp show` dump, which holds no files)."""
    tasks: dict[str, dict[str, list[int]]] = {}
    missing: dict[str, str] = {}
    for arm, path in files.items():
        if repo is None:
            missing[arm] = "read from a saved `dvc exp show` dump: no verdict files"
            continue
        try:
            tasks[arm] = read_verdicts(repo, rev, path)
        except CodealignError as exc:
            missing[arm] = str(exc)
    return tasks, missing


def run_id(parts: Mapping[str, Any], rev: str, name: str | None) -> str:
    """A file name for a run: its swept values and seeds, then the experiment's name or
    short rev, so that a run collected twice lands in the same file."""
    label = "-".join(f"{key}={value}" for key, value in parts.items())
    tail = name or (rev[:10] if rev != "workspace" else "workspace")
    return _UNSAFE.sub("_", f"{label}-{tail}" if label else tail)


def build_record(
    *,
    sweep: str,
    run: str,
    command: str,
    commit: str | None,
    dirty: bool | None,
    experiment: Mapping[str, Any],
    profile: str | None,
    params: Mapping[str, Any],
    swept: Mapping[str, Any],
    varies: Sequence[str],
    metrics: Any,
    tasks: Mapping[str, Any] | None,
    tasks_missing: Mapping[str, str] | None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "sweep": sweep,
        "run_id": run,
        "command": command,
        "commit": commit,
        "dirty": dirty,
        "experiment": dict(experiment),
        "profile": profile,
        "params": dict(params),
        "swept": dict(swept),
        "seeds": seeds_of(params),
        "varies": list(varies),
        "metrics": metrics,
        "tasks": dict(tasks or {}),
        "tasks_missing": dict(tasks_missing or {}),
    }


def write_records(directory: Path, records: Sequence[dict[str, Any]]) -> list[Path]:
    """Write each record to `directory/<run_id>.json`; a record already there for the
    same run is replaced. Nothing else in the directory is touched."""
    paths = []
    for record in records:
        path = directory / f"{record['run_id']}.json"
        write_json(path, record)
        paths.append(path)
    return paths


def write_summary(out: Path, summary: dict[str, Any], prov: Mapping[str, Any]) -> None:
    """The summary JSON with its provenance under `provenance`."""
    write_json(out, {**summary, "provenance": dict(prov)})


def write_outputs(
    out: Path, plot: Path | None, summary: dict[str, Any], png: bytes | None, prov: Mapping
) -> None:
    """The summary JSON, with its provenance under `provenance`, and its PNG. The PNG is
    rendered before anything is written, so a failure leaves neither file half-made."""
    write_json(out, {**summary, "provenance": dict(prov)})
    if plot is not None and png is not None:
        with atomic_path(plot) as tmp:
            tmp.write_bytes(png)


def row_records(
    sweep: str,
    rows: Sequence[Any],
    *,
    repo: Path | None,
    command: str,
    swept_keys: Sequence[str],
    swept_of: Callable[[Any], Mapping[str, Any]],
    metrics_of: Callable[[Any], Any],
    task_files_of: Callable[[Any], Mapping[str, str]],
    profile_root: Path,
) -> list[dict[str, Any]]:
    """One record per experiment row (`ExperimentRow`) a sweep counted. `repo` None: the
    rows came from a saved dump, so commit is the dump's baseline rev, `dirty` unknown
    and no per-task file can be read."""
    varies = varying_seeds(seeds_of(row.params) for row in rows)
    head = head_commit(repo) if repo is not None else None
    records = []
    for row in rows:
        baseline = row.baseline
        if baseline == "workspace":
            commit = head
            dirty = workspace_dirty(repo) if repo is not None else None
        else:
            commit = baseline
            if repo is None:
                dirty = None
            elif row.rev == baseline:
                dirty = False
            else:
                dirty = experiment_dirty(repo, baseline, row.rev)
        tasks, missing = collect_tasks(repo, row.rev, task_files_of(row))
        swept = dict(swept_of(row))
        records.append(
            build_record(
                sweep=sweep,
                run=run_id(swept, row.rev, row.name),
                command=command,
                commit=commit,
                dirty=dirty,
                experiment={"rev": row.rev, "name": row.name, "timestamp": row.timestamp},
                profile=profile_of(row.params, swept_keys, profile_root),
                params=row.params,
                swept=swept,
                varies=varies,
                metrics=metrics_of(row),
                tasks=tasks,
                tasks_missing=missing,
            )
        )
    return records


def runs_dir_option(sweep: str):
    return click.option(
        "--runs-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=RUNS_DIR / sweep,
        show_default=True,
        help="Where to write one record per run counted (commit them with the summary).",
    )
