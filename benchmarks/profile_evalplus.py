"""Where codealign's HumanEval+ time goes: phases, CPU by process, and the parent's profile.

Judges the samples `bench_evalplus.py` builds (canonical solutions, `return None`,
mutants, plus-only mutants; read from its --cache) the way `codealign check` does, in
this process, and prints one JSON object:

- `phases`: wall seconds and this process's CPU seconds (user + system) for loading the
  problems, preparing the samples, loading the expected values (cache warm), and judging;
- `cpu`: CPU seconds of the parent (this process, all threads) and of the sandbox (the
  workers and every sample process, reaped), user and system apart, and per sample;
- `by_kind`: wall seconds per kind of sample, summed over samples (each sample's time
  from the previous verdict of the same pool thread until its own);
- `parent_top`: the parent's functions by own time, every thread profiled with
  cProfile (`--no-profile` to leave it out: cProfile slows the parent about 2x);
- `exec_floor` (`--floor`): CPU seconds of the programs' own calls, every test of every
  sample, in this process without isolation, encoding or comparison.

The expected values are loaded here before judging, to time that phase apart;
`codealign check` reads them while the workers run.

CPU time is what to compare on a shared machine; wall time moves with the load.

    python benchmarks/profile_evalplus.py [--limit 0] [--tasks 15,130] [--cache DIR] [--workers 2]
        [--fast] [--no-profile] [--floor] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_evalplus  # noqa: E402

from codealign.execution import Sandbox  # noqa: E402
from codealign.execution.pool import Limits, prepare_samples  # noqa: E402
from codealign.problems import NO_EXPECTED, load_problems  # noqa: E402


def _cpu(usage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


class _Phases:
    def __init__(self) -> None:
        self.out: dict[str, dict] = {}

    def __call__(self, name: str):
        phases = self

        class _Timer:
            def __enter__(self):
                self.wall = time.perf_counter()
                self.cpu = time.process_time()

            def __exit__(self, *exc):
                phases.out[name] = {
                    "wall_s": round(time.perf_counter() - self.wall, 3),
                    "parent_cpu_s": round(time.process_time() - self.cpu, 3),
                }

        return _Timer()


def _profile_threads(profiles: list) -> None:
    """Profile every thread started from now on (the pool's loops run in threads)."""
    run = threading.Thread.run

    def profiled(self):
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled


class _Late(Exception):
    pass


def _late(signum, frame):
    raise _Late


def exec_floor(tasks: list[dict], samples: list[dict]) -> dict:
    """CPU seconds of the programs' own calls, every test of every sample, run in this
    process with no isolation, no encoding and no comparison: what any judge pays."""
    import contextlib
    import copy
    import signal

    by_id = {t["task_id"]: t for t in tasks}
    signal.signal(signal.SIGALRM, _late)
    sys.setrecursionlimit(10_000)
    seconds: dict[str, float] = {}
    for s in samples:
        task = by_id[s["task_id"]]
        program = s.get("program") or task["prompt"] + s["completion"]
        spent = 0.0
        signal.setitimer(signal.ITIMER_REAL, 60)
        try:
            namespace: dict = {}
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(program, "<program>", "exec"), namespace)
                fn = namespace[task["entry_point"]]
                for args in task["base_input"] + task["plus_input"]:
                    args = copy.deepcopy(args)
                    start = time.process_time()
                    try:
                        fn(*args)
                    except _Late:
                        raise
                    except BaseException:
                        pass
                    spent += time.process_time() - start
        except BaseException:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds[s["kind"]] = seconds.get(s["kind"], 0.0) + spent
    return {"cpu_s": round(sum(seconds.values()), 2)} | {k: round(v, 2) for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="first N tasks; 0 = all 164")
    parser.add_argument("--tasks", default="", help="only these task numbers, e.g. 15,130")
    parser.add_argument("--mutants", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="judge as `codealign check --fast`")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--floor", action="store_true", help="also the programs' own calls, in-process"
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "codealign-bench-evalplus"
    )
    parser.add_argument("--cache-dir", default=None, help="codealign's expected-value cache")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    tasks = bench_evalplus.load_tasks(args.limit, args.tasks)
    text = "".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    subset = args.cache / f"HumanEvalPlus-{digest}.jsonl"
    if not subset.exists():
        subset.write_text(text)
    samples, _ = bench_evalplus.build_samples(tasks, args.mutants, args.cache, digest)
    records = []
    for s in samples:
        record = {"task_id": s["task_id"], "completion": s.get("program") or s["completion"]}
        if "program" in s:
            record["full_program"] = True
        records.append(record)

    profiles: list[cProfile.Profile] = []
    main_profile = None
    if not args.no_profile:
        _profile_threads(profiles)
        main_profile = cProfile.Profile()
        main_profile.enable()
    phase = _Phases()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    begun: dict[int, float] = {}
    ended: dict[int, float] = {}
    with Sandbox(workers=args.workers, limits=Limits(), cache_dir=args.cache_dir) as box:
        with phase("load_problems"):
            problems = load_problems(subset)
        with phase("prepare_samples"):
            prepared = prepare_samples(problems, records)
        with phase("expected_values"):
            needed = {
                s.problem.task_id: s.problem
                for s in prepared
                if any(c.expected is NO_EXPECTED for c in s.problem.cases)
            }
            box.oracles(needed.values())
            for sample in prepared:
                if sample.problem.task_id in needed:
                    sample.expected, sample.times = box._oracle[sample.problem.task_id]
        last: dict[int, float] = {}

        def on_result(index: int) -> None:
            # a sample's cost: from its thread's previous verdict (or the start) to its own
            now, thread = time.perf_counter(), threading.get_ident()
            begun[index], ended[index] = last.get(thread, start), now
            last[thread] = now

        with phase("judge"):
            start = time.perf_counter()
            verdicts = box.run(prepared, fast=args.fast, on_result=on_result)
        self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - wall0
    if main_profile is not None:
        main_profile.disable()

    by_kind: dict[str, dict] = {}
    for index, (sample, verdict) in enumerate(zip(samples, verdicts, strict=True)):
        k = by_kind.setdefault(sample["kind"], {"samples": 0, "passed": 0, "seconds": 0.0})
        k["samples"] += 1
        k["passed"] += verdict[0] == "passed"
        k["seconds"] += ended[index] - begun[index]
    for k in by_kind.values():
        k["seconds"] = round(k["seconds"], 2)
    slowest = sorted(
        ((ended[i] - begun[i], samples[i]["task_id"], samples[i]["kind"]) for i in ended),
        reverse=True,
    )[:10]
    pu, ps = (a - b for a, b in zip(_cpu(self1), _cpu(self0), strict=True))
    ku, ks = (a - b for a, b in zip(_cpu(kids1), _cpu(kids0), strict=True))
    n = len(samples)
    result = {
        "tasks": len(tasks),
        "samples": n,
        "passed": sum(v[0] == "passed" for v in verdicts),
        "wall_s": round(wall, 2),
        "load_avg_start": os.getloadavg()[0],
        "phases": phase.out,
        "cpu": {
            "parent_user_s": round(pu, 2),
            "parent_sys_s": round(ps, 2),
            "sandbox_user_s": round(ku, 2),
            "sandbox_sys_s": round(ks, 2),
            "parent_ms_per_sample": round((pu + ps) * 1000 / n, 2),
            "sandbox_ms_per_sample": round((ku + ks) * 1000 / n, 2),
        },
        "by_kind": by_kind,
        "slowest": [[round(s, 3), t, k] for s, t, k in slowest],
        "profiled": not args.no_profile,
    }
    if main_profile is not None:
        buffer = io.StringIO()
        stats = pstats.Stats(main_profile, stream=buffer)
        for profile in profiles:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        result["parent_top"] = [
            line.strip() for line in buffer.getvalue().splitlines() if line.strip()
        ][-args.top - 1 :]
    if args.floor:
        result["exec_floor"] = exec_floor(tasks, samples)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
