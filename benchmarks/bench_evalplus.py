"""HumanEval+ side by side with evalplus: verdict agreement, who is right, and wall time.

Prints one JSON object. Both tools judge the same samples of the vendored HumanEval+
(data/raw/evalplus/HumanEvalPlus.jsonl.gz; evalplus is pointed at it with
HUMANEVAL_OVERRIDE_PATH and a cache directory of its own, so it downloads nothing):

- `canonical`: each task's canonical solution (right by definition);
- `return_none`: `return None` as the completion;
- `mutant`: the canonical solution with one operator or constant changed (`ast`), kept
  only if it gives another result than the canonical solution on some base input;
- `plus_only`: such mutants that give the canonical result on every base input and
  another on some plus input (the bugs only HumanEval+ catches).

Mutants are generated deterministically (every site in `ast.walk` order, the first
`--mutants` of each kind per task kept) and classified by running them beside the
canonical solution in a child process, with evalplus's comparison (exact, or within
`atol` (1e-6 for floats) and HumanEval/32's "is a root" oracle); mutants that behave
the same on every input, or do not finish, are dropped. So every kept mutant is wrong,
and the reference verdict of every sample is known: each disagreement says which side
is right. evalplus's HumanEval/32 oracle (`find_zero`) `continue`s past the line that
records a passing input, so no program passes it there; that disagreement is evalplus's.

Timing: evalplus (`python -m evalplus.evaluate --parallel P`, its ground-truth cache
warmed first and not timed) against `codealign check --workers W`, each a fresh process
over the same samples, in alternating rounds; the medians and every round are printed.
`speedup` is evalplus's seconds over codealign's (above 1: codealign is faster).
evalplus is timed until it has written its results: its watchdog thread, not a daemon,
then holds the process in a 20 s sleep that is no work of judging.

    python benchmarks/bench_evalplus.py [--limit 20] [--tasks 15,130] [--mutants 1]
        [--rounds 1] [--workers 2] [--parallel 2] [--timeout S] [--cache DIR]

`--limit 0` runs all 164 tasks; `--tasks` picks some by number. Besides wall time, each
tool's CPU seconds (user + system, all its processes) and `cpu_speedup` are printed, with
the load average before and after each run: on a shared machine wall time moves with
the load. codealign runs every test of every sample (its score counts them); evalplus
stops a sample's base or plus inputs at their first failure.
The classification of mutants and evalplus's ground truth are cached in --cache (default:
a directory in the system's temp dir), keyed by the content of the task file, so a
second run pays only for the two tools.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import gzip
import hashlib
import io
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import evalplus

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "raw" / "evalplus" / "HumanEvalPlus.jsonl.gz"
FORMAT = 1  # bump when the mutants or their classification change

# ---- mutants ------------------------------------------------------------------------------

BINOPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Div: ast.Mult,
}
CMPOPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BOOLOPS = {ast.And: ast.Or, ast.Or: ast.And}
MAX_SITES = 40


def _sites(tree: ast.Module, first_line: int) -> list[tuple[int, str]]:
    """(node index in ast.walk order, description) of every mutable site of the solution."""
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if getattr(node, "lineno", 0) < first_line:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
            found.append((index, type(node.op).__name__))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in CMPOPS:
            found.append((index, type(node.ops[0]).__name__))
        elif isinstance(node, ast.BoolOp):
            found.append((index, type(node.op).__name__))
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and not isinstance(node.value, bool)
        ):
            found.append((index, f"const {node.value}"))
    return found[:MAX_SITES]


def _mutate(program: str, site: int) -> str:
    tree = ast.parse(program)
    node = list(ast.walk(tree))[site]
    if isinstance(node, ast.BinOp):
        node.op = BINOPS[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops[0] = CMPOPS[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp):
        node.op = BOOLOPS[type(node.op)]()
    else:
        node.value = node.value + 1
    return ast.unparse(tree) + "\n"


def mutants(task: dict) -> list[dict]:
    program = task["prompt"] + task["canonical_solution"]
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return []
    first_line = len(task["prompt"].splitlines()) + 1
    out = []
    for site, what in _sites(tree, first_line):
        mutated = _mutate(program, site)
        if mutated != ast.unparse(tree) + "\n":
            out.append({"site": site, "what": what, "program": mutated})
    return out


# ---- classification (in a child process: `bench_evalplus.py _classify`) ------------------


def _poly(xs, x):
    return sum(coeff * x**i for i, coeff in enumerate(xs))


def _is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def _same(entry: str, inp: list, out, exp, atol: float) -> bool:
    """evalplus's comparison of one output with the canonical one."""
    import numpy as np

    if isinstance(out, BaseException) or isinstance(exp, BaseException):
        return type(out) is type(exp)
    if entry == "find_zero":
        try:
            return abs(_poly(*inp, out)) <= 1e-6
        except Exception:
            return False
    try:
        if out == exp:
            return True
    except Exception:
        return False
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    if not atol or type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    try:
        return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
    except Exception:
        return False


class _Late(Exception):
    pass


def _alarm(signum, frame):
    raise _Late


def _outputs(program: str, entry: str, inputs: list, budget: float) -> list | None:
    """The program's result (or exception) per input; None if it does not finish in time."""
    signal.setitimer(signal.ITIMER_REAL, budget)
    results = []
    try:
        namespace: dict = {}
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(program, "<program>", "exec"), namespace)
            fn = namespace[entry]
            for inp in inputs:
                try:
                    results.append(fn(*copy.deepcopy(inp)))
                except _Late:
                    raise
                except RecursionError as exc:
                    results.append(exc)
                except Exception as exc:
                    results.append(exc)
    except _Late:
        return None
    except Exception as exc:
        return [exc] * len(inputs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return results


def classify_child() -> None:
    """Read {task, programs, quota} on stdin; write [kind per program] on stdout.

    A kind is `base` (differs on a base input), `plus_only`, `same` or `slow`; programs
    after both quotas are filled get None.
    """
    job = json.load(sys.stdin)
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(10_000)
    task, quota = job["task"], job["quota"]
    entry, atol = task["entry_point"], float(task.get("atol") or 0)
    base, plus = task["base_input"], task["plus_input"]
    canonical = task["prompt"] + task["canonical_solution"]
    started = time.perf_counter()
    want_base = _outputs(canonical, entry, base, 600)
    want_plus = _outputs(canonical, entry, plus, 600)
    budget = max(2.0, 4 * (time.perf_counter() - started))
    kinds, filled = [], {"base": 0, "plus_only": 0}
    for program in job["programs"]:
        if program.get("always") is None and all(filled[k] >= quota for k in filled):
            kinds.append(None)
            continue
        got = _outputs(program["program"], entry, base, budget)
        if got is None:
            kinds.append("slow")
            continue
        if not all(
            _same(entry, i, o, e, atol) for i, o, e in zip(base, got, want_base, strict=True)
        ):
            kind = "base"
        else:
            got = _outputs(program["program"], entry, plus, budget)
            if got is None:
                kinds.append("slow")
                continue
            same = all(
                _same(entry, i, o, e, atol) for i, o, e in zip(plus, got, want_plus, strict=True)
            )
            kind = "same" if same else "plus_only"
        if kind in filled and program.get("always") is None:
            if filled[kind] >= quota:
                kind = None
            else:
                filled[kind] += 1
        kinds.append(kind)
    sys.__stdout__.write(json.dumps(kinds))


def classify(task: dict, programs: list[dict], quota: int) -> list:
    job = json.dumps({"task": task, "programs": programs, "quota": quota})
    try:
        done = subprocess.run(
            [sys.executable, __file__, "_classify"],
            input=job,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return json.loads(done.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError):
        return [None] * len(programs)


# ---- samples ----------------------------------------------------------------------------


def load_tasks(limit: int, only: str = "") -> list[dict]:
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        tasks = [json.loads(line) for line in handle if line.strip()]
    if only:
        wanted = {f"HumanEval/{n.strip()}" for n in only.split(",") if n.strip()}
        return [t for t in tasks if t["task_id"] in wanted]
    return tasks[:limit] if limit else tasks


def build_samples(tasks: list[dict], quota: int, cache: Path, digest: str) -> tuple[list, float]:
    """Samples {task_id, kind, program, completion?, reference} and the seconds it took."""
    path = cache / f"samples-{digest}-m{quota}-v{FORMAT}.json"
    if path.exists():
        return json.loads(path.read_text()), 0.0
    start = time.perf_counter()

    def one(task: dict) -> list[dict]:
        none = task["prompt"] + "    return None\n"
        candidates = [{"program": none, "always": "return_none"}] + mutants(task)
        kinds = classify(task, candidates, quota)
        out = [
            {
                "task_id": task["task_id"],
                "kind": "canonical",
                "completion": task["canonical_solution"],
                "reference": True,
            }
        ]
        if kinds[0] is not None:
            out.append(
                {
                    "task_id": task["task_id"],
                    "kind": "return_none",
                    "completion": "    return None\n",
                    "reference": kinds[0] == "same",
                }
            )
        for candidate, kind in zip(candidates[1:], kinds[1:], strict=True):
            if kind in ("base", "plus_only"):
                out.append(
                    {
                        "task_id": task["task_id"],
                        "kind": "mutant" if kind == "base" else "plus_only",
                        "program": candidate["program"],
                        "mutation": f"{candidate['what']} at node {candidate['site']}",
                        "reference": False,
                    }
                )
        return out

    with ThreadPoolExecutor(2) as pool:
        samples = [s for group in pool.map(one, tasks) for s in group]
    path.write_text(json.dumps(samples))
    return samples, time.perf_counter() - start


# ---- the two tools ------------------------------------------------------------------------


def evalplus_env(cache: Path, subset: Path) -> dict:
    env = dict(os.environ)
    env.update(HUMANEVAL_OVERRIDE_PATH=str(subset), XDG_CACHE_HOME=str(cache / "xdg"))
    return env


def warm_evalplus(cache: Path, subset: Path) -> float:
    """Compute (or load) evalplus's ground truth for the subset; not part of the timing."""
    code = (
        "from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash\n"
        "from evalplus.evaluate import get_groundtruth\n"
        "get_groundtruth(get_human_eval_plus(), get_human_eval_plus_hash(), [])\n"
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        env=evalplus_env(cache, subset),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _children_cpu() -> float:
    """CPU seconds (user + system) of every reaped child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_evalplus(samples, cache, subset, parallel, work: Path) -> tuple[float, float, list[bool]]:
    path = work / "evalplus_samples.jsonl"
    with path.open("w") as handle:
        for s in samples:
            key = "solution" if "program" in s else "completion"
            handle.write(
                json.dumps({"task_id": s["task_id"], key: s.get("program") or s["completion"]})
                + "\n"
            )
    result = work / "evalplus_samples_eval_results.json"
    result.unlink(missing_ok=True)
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evalplus.evaluate",
            "--dataset",
            "humaneval",
            "--samples",
            str(path),
            "--parallel",
            str(parallel),
            "--i_just_wanna_run",
        ],
        env=evalplus_env(cache, subset),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Timed until the results are written: evalplus's watchdog thread (`stucking_checker`,
    # not a daemon) then keeps the process alive for up to 20 s of sleep, which is not work.
    results = None
    while results is None:
        time.sleep(0.02)
        with contextlib.suppress(OSError, ValueError):
            results = json.loads(result.read_text())["eval"]
        if results is None and proc.poll() is not None:
            raise SystemExit(f"evalplus exited with {proc.returncode} and no results")
    seconds = time.perf_counter() - start
    proc.kill()
    proc.wait()
    # its pool's processes were reaped before it wrote the results: all counted here
    cpu = _children_cpu() - cpu
    cursor: dict[str, int] = {}
    passed = []
    for s in samples:
        i = cursor.get(s["task_id"], 0)
        cursor[s["task_id"]] = i + 1
        r = results[s["task_id"]][i]
        passed.append(r["base_status"] == "pass" and r["plus_status"] == "pass")
    return seconds, cpu, passed


def run_codealign(samples, subset, workers, timeout, work: Path) -> tuple[float, float, list[dict]]:
    path = work / "codealign_samples.jsonl"
    with path.open("w") as handle:
        for s in samples:
            record = {"task_id": s["task_id"], "completion": s.get("program") or s["completion"]}
            if "program" in s:
                record["full_program"] = True
            handle.write(json.dumps(record) + "\n")
    out = work / "codealign_verdicts.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from codealign.cli import main; main()",
            "check",
            str(subset),
            str(path),
            "--out",
            str(out),
            "--workers",
            str(workers),
            # No --timeout: each test's limit comes from the canonical solution's time, as
            # evalplus sizes it; given, --timeout would cap every sample.
            *(["--timeout", str(timeout)] if timeout is not None else []),
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu  # the parent, its workers and every sample process
    if done.returncode != 0:
        raise SystemExit(f"codealign check failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds, cpu, [json.loads(line) for line in out.read_text().splitlines()]


# ---- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="first N tasks; 0 = all 164")
    parser.add_argument("--tasks", default="", help="only these task numbers, e.g. 15,130")
    parser.add_argument("--mutants", type=int, default=1, help="mutants of each kind per task")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="codealign workers")
    parser.add_argument("--parallel", type=int, default=2, help="evalplus --parallel")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="codealign --timeout (default: none, per-test limits from canonical times)",
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "codealign-bench-evalplus"
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    tasks = load_tasks(args.limit, args.tasks)
    text = "".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    subset = args.cache / f"HumanEvalPlus-{digest}.jsonl"
    if not subset.exists():
        subset.write_text(text)

    samples, generation_s = build_samples(tasks, args.mutants, args.cache, digest)
    warm_s = warm_evalplus(args.cache, subset)

    times: dict[str, list[float]] = {"codealign": [], "evalplus": []}
    cpu: dict[str, list[float]] = {"codealign": [], "evalplus": []}
    loads = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.rounds):
            seconds, used, verdicts = run_codealign(
                samples, subset, args.workers, args.timeout, work
            )
            times["codealign"].append(round(seconds, 2))
            cpu["codealign"].append(round(used, 2))
            loads.append(round(os.getloadavg()[0], 2))
            seconds, used, ep_passed = run_evalplus(
                samples, args.cache, subset, args.parallel, work
            )
            times["evalplus"].append(round(seconds, 2))
            cpu["evalplus"].append(round(used, 2))
            loads.append(round(os.getloadavg()[0], 2))

    kinds: dict[str, dict] = {}
    disagreements, both_wrong = [], []
    right = {"codealign": 0, "evalplus": 0}
    for s, v, ep in zip(samples, verdicts, ep_passed, strict=True):
        ca = v["passed"]
        k = kinds.setdefault(
            s["kind"], {"samples": 0, "codealign_passed": 0, "evalplus_passed": 0, "agree": 0}
        )
        k["samples"] += 1
        k["codealign_passed"] += ca
        k["evalplus_passed"] += ep
        k["agree"] += ca == ep
        right["codealign"] += ca == s["reference"]
        right["evalplus"] += ep == s["reference"]
        if ca == ep != s["reference"]:
            both_wrong.append(
                {"task_id": s["task_id"], "kind": s["kind"], "codealign": v["status"]}
            )
        if ca != ep:
            disagreements.append(
                {
                    "task_id": s["task_id"],
                    "kind": s["kind"],
                    **({"mutation": s["mutation"]} if "mutation" in s else {}),
                    "codealign": v["status"],
                    "codealign_detail": v["detail"][:160],
                    "evalplus": "passed" if ep else "failed",
                    "right": "codealign" if ca == s["reference"] else "evalplus",
                }
            )
    ca_s, ep_s = statistics.median(times["codealign"]), statistics.median(times["evalplus"])
    ca_cpu, ep_cpu = statistics.median(cpu["codealign"]), statistics.median(cpu["evalplus"])
    statuses: dict[str, int] = {}
    for v in verdicts:
        statuses[v["status"]] = statuses.get(v["status"], 0) + 1
    print(
        json.dumps(
            {
                "tasks": len(tasks),
                "samples": len(samples),
                "by_kind": kinds,
                "canonical_passed": {
                    "codealign": kinds.get("canonical", {}).get("codealign_passed", 0),
                    "evalplus": kinds.get("canonical", {}).get("evalplus_passed", 0),
                    "of": kinds.get("canonical", {}).get("samples", 0),
                },
                "codealign_statuses": statuses,
                "agree": len(samples) - len(disagreements),
                "agreement": round(1 - len(disagreements) / len(samples), 4),
                "right": right,
                "disagreements": disagreements,
                "both_wrong": both_wrong,
                "seconds": {
                    "codealign": ca_s,
                    "evalplus": ep_s,
                    "rounds": times,
                    "mutant_generation": round(generation_s, 2),
                    "evalplus_ground_truth_warmup": round(warm_s, 2),
                },
                "speedup": round(ep_s / ca_s, 3),
                # CPU seconds (user + system) of each tool and all its processes: on a
                # shared machine, steadier than wall time
                "cpu_seconds": {"codealign": ca_cpu, "evalplus": ep_cpu, "rounds": cpu},
                "cpu_speedup": round(ep_cpu / ca_cpu, 3),
                # 1-minute load average before the first round and after each run
                "load_average": loads,
                "settings": {
                    "codealign_workers": args.workers,
                    "codealign_timeout": args.timeout,
                    "tasks_only": args.tasks or None,
                    "evalplus_parallel": args.parallel,
                    "evalplus_version": evalplus.__version__,
                    "mutants_per_kind": args.mutants,
                    "cpus": os.cpu_count(),
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["_classify"]:
        classify_child()
    else:
        main()
