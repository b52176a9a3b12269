"""Wall time of each pipeline stage: the whole DAG, one stage at a time, in a scratch copy.

DVC records no durations, so this runs them: it copies the working tree (tracked and
untracked, not ignored, files, as `git ls-files` lists them) into a temporary folder,
installs the profile as params.yaml, commits it to a fresh git repository, links the
.venv, and runs `dvc repro --single-item --force <stage>` for each stage, upstream
first (the order of `dvc dag`), timing each. Nothing in the working tree is touched.

Each time includes DVC's own start-up and hashing; `dvc_overhead_s` is the time of the
same call on a stage that is up to date, to read the small stages against. The stage
`report` reads the output (`--out metrics/stage_times.json`) for its "Wall time per
stage" table.

Prints one JSON object: profile, stages ({name: seconds}), order, total_s, cores,
dvc_overhead_s, and provenance {command, commit, dirty, profile}: this checkout's commit
and whether its code differed from it (the scratch copy is of the working tree).

    python benchmarks/bench_stage_times.py                       # smoke profile, ~3 min
    python benchmarks/bench_stage_times.py --out metrics/stage_times_smoke.json
    python benchmarks/bench_stage_times.py --profile default --out metrics/stage_times.json
    python benchmarks/bench_stage_times.py --profile full      # the research scale, ~31 min
    python benchmarks/bench_stage_times.py --in-place --out metrics/stage_times.json

`--in-place` runs in this repository with its own params.yaml (whichever profile it
equals: `codealign profile`) instead of a scratch copy: every stage is forced, so the
run also leaves a complete, fresh dvc.lock and outs here. The report shows
`metrics/stage_times.json` and, as more columns, every `metrics/stage_times_<profile>.json`
beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codealign.profiles import current, profiles
from codealign.sweeps.records import provenance

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROFILES = profiles(ROOT)  # params/<name>.yaml


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        sys.exit(f"{' '.join(cmd)} failed with status {result.returncode}:\n{tail}")
    return result.stdout + result.stderr


def scratch_copy(work: Path, profile: Path, env: dict[str, str]) -> None:
    """The working tree as git sees it, the profile as params.yaml, committed, .venv linked."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], ROOT, env)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    shutil.copy2(profile, work / "params.yaml")
    if (ROOT / ".venv").exists():
        (work / ".venv").symlink_to(ROOT / ".venv")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    run([*git, "init", "-q"], work, env)
    run([*git, "add", "-A"], work, env)
    run([*git, "commit", "-qm", "bench_stage_times"], work, env)


def stage_order(work: Path, env: dict[str, str]) -> list[str]:
    """Every stage (foreach items as name@key), upstream first, ties in dvc.yaml's order.

    `dvc repro --dry` cannot give the order in a fresh copy: it stops at the first stage
    whose inputs do not exist yet. So: the stages as `dvc stage list` declares them and
    the edges of `dvc dag --dot`, sorted topologically.
    """
    import heapq

    names = run(["dvc", "stage", "list", "--name-only"], work, env).split()
    rank = {name: i for i, name in enumerate(names)}
    dot = run(["dvc", "dag", "--dot"], work, env)
    edges = re.findall(r'^"([^"]+)" -> "([^"]+)";', dot, flags=re.MULTILINE)
    after: dict[str, list[str]] = {name: [] for name in names}
    waiting = dict.fromkeys(names, 0)
    for upstream, downstream in edges:
        after[upstream].append(downstream)
        waiting[downstream] += 1
    ready = [(rank[n], n) for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for downstream in after[name]:
            waiting[downstream] -= 1
            if waiting[downstream] == 0:
                heapq.heappush(ready, (rank[downstream], downstream))
    if len(order) != len(names):
        sys.exit("dvc dag: the stages do not form a DAG")
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--out", type=Path, help="also write the JSON here (stage_times.json)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy and print it")
    parser.add_argument(
        "--in-place", action="store_true", help="run here, with this repository's params.yaml"
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if args.in_place:
        # The profile params.yaml equals (None: hand-edited, named "params.yaml" below).
        tmp, work, profile = None, ROOT, current(ROOT)
    else:
        tmp = tempfile.mkdtemp(prefix="bench_stage_times.")
        work, profile = Path(tmp) / "repo", args.profile
        work.mkdir()
        env["CODEALIGN_CACHE"] = str(work / ".cache")
    try:
        if tmp is not None:
            scratch_copy(work, PROFILES[args.profile], env)
        order = stage_order(work, env)
        stages: dict[str, float] = {}
        for name in order:
            start = time.perf_counter()
            run(["dvc", "repro", "--single-item", "--force", "--no-run-cache", name], work, env)
            stages[name] = round(time.perf_counter() - start, 2)
            print(f"{name}: {stages[name]:.1f} s", file=sys.stderr, flush=True)
        # The same call on a stage that is now up to date: DVC's start-up and hashing alone.
        start = time.perf_counter()
        run(["dvc", "repro", "--single-item", order[0]], work, env)
        overhead = round(time.perf_counter() - start, 2)
    finally:
        if tmp is not None and args.keep:
            print(f"scratch copy kept in {work}", file=sys.stderr)
        elif tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    command = shlex.join(["python", "benchmarks/bench_stage_times.py", *sys.argv[1:]])
    result = {
        "profile": profile or "params.yaml",
        "provenance": provenance(command, ROOT, profile),
        "in_place": args.in_place,
        "stages": stages,
        "order": order,
        "total_s": round(sum(stages.values()), 2),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "dvc_overhead_s": overhead,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        from codealign.io import write_json

        write_json(args.out, result)


if __name__ == "__main__":
    main()
