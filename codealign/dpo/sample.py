"""On-policy best-of-N sampling on the DPO prompt pool.

Before anything is sampled, `check_disjoint` proves that no pool problem is also an
evaluation problem: every statement text (HumanEval prompt, instruction, MBPP text, APPS
description) is normalised (case, whitespace) and hashed, and one shared hash fails the
stage naming the tasks. `pool_problems` refuses a pool task without unit tests, since
its samples could not be scored.

Sampling is `codealign.evaluation.policy.Policy.sample`, the same as evaluation's: N
completions per prompt at a temperature, batched and seeded, each the raw answer up to
the end-of-sequence token. With routed specialists, rows are sorted by adapter and each
row goes through its own adapter over the one base model. The `vllm` backend (CUDA
only) does the same with vLLM's multi-LoRA engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from codealign.errors import CodealignError
from codealign.evaluation import chat
from codealign.evaluation.policy import Policy, PolicySpec, SamplingSpec

log = logging.getLogger(__name__)


# ---- the pool ------------------------------------------------------------------------------


def statement_texts(record: dict[str, Any]) -> list[str]:
    """The texts that state a problem, whatever its format."""
    keys = ("prompt", "instruction", "text", "description", "question")
    return [str(record[k]) for k in keys if isinstance(record.get(k), str) and record[k].strip()]


def check_disjoint(pool: Sequence[dict], eval_sets: dict[str, Sequence[dict]]) -> dict[str, int]:
    """Raise CodealignError if a pool problem states the same text as an evaluation problem.

    Returns the number of evaluation problems checked per set.
    """
    from codealign.tinyworld.world import text_hash

    owner: dict[str, tuple[str, str]] = {}
    for name, records in eval_sets.items():
        for record in records:
            for text in statement_texts(record):
                owner.setdefault(text_hash(text), (name, str(record.get("task_id"))))
    clashes = []
    for record in pool:
        for text in statement_texts(record):
            hit = owner.get(text_hash(text))
            if hit:
                clashes.append(f"{record.get('task_id')} = {hit[0]}:{hit[1]}")
                break
    if clashes:
        shown = ", ".join(clashes[:5]) + (" ..." if len(clashes) > 5 else "")
        raise CodealignError(
            f"the DPO pool overlaps the evaluation sets in {len(clashes)} problems: {shown}"
        )
    return {name: len(records) for name, records in eval_sets.items()}


def pool_problems(records: Sequence[dict], where: str) -> dict[str, Any]:
    """Problems by task id; a record without tests is an error naming it."""
    from codealign.problems import problem_from_record

    problems = {}
    for line, record in enumerate(records, start=1):
        problem = problem_from_record(record, f"{where}:{line}")
        if problem.tests_total == 0:
            raise CodealignError(
                f"{where}:{line}: task {problem.task_id} has no unit tests; "
                "DPO pairs are judged by tests, so every pool task needs them"
            )
        problems[problem.task_id] = problem
    if not problems:
        raise CodealignError(f"{where}: the DPO pool is empty")
    return problems


# ---- sampling ------------------------------------------------------------------------------


def sample_completions(
    policy: Policy,
    questions: Sequence[str],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    progress: bool = True,
) -> tuple[list[list[str]], list[int]]:
    """N answers per question and the adapter index that wrote them (`Policy.sample`)."""
    sampling = SamplingSpec(n, temperature, max_new_tokens, batch_size, seed)
    routes, answers = policy.sample(questions, sampling, progress=progress, desc="sampling")
    return answers, routes


# LoRA ranks vLLM's punica kernels are built for (vllm.config.LoRAConfig.max_lora_rank).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_args(adapters: Sequence[Any]) -> dict[str, Any]:
    """vLLM engine arguments for these adapter dirs: LoRA on, `max_lora_rank` the smallest
    supported rank >= every adapter's `r`, `max_loras` one slot per adapter (K)."""
    import json
    from pathlib import Path

    if not adapters:
        return {"enable_lora": False}
    ranks = []
    for adapter in adapters:
        config = Path(adapter) / "adapter_config.json"
        try:
            ranks.append(int(json.loads(config.read_text(encoding="utf-8"))["r"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CodealignError(f"{config}: cannot read the LoRA rank 'r': {exc}") from None
    top = max(ranks)
    fitting = [rank for rank in VLLM_LORA_RANKS if rank >= top]
    if not fitting:
        raise CodealignError(
            f"{adapters[ranks.index(top)]}: LoRA r = {top} exceeds vLLM's largest rank "
            f"{VLLM_LORA_RANKS[-1]}; use sample.backend hf or a smaller sft.lora_r"
        )
    return {"enable_lora": True, "max_lora_rank": fitting[0], "max_loras": len(adapters)}


def sample_with_vllm(
    spec: PolicySpec,
    questions: Sequence[str],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    dtype: str,
) -> tuple[list[list[str]], list[int]]:
    """The same as `sample_completions` on vLLM with one LoRA request per adapter."""
    try:
        import torch
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise CodealignError(
            "sample.backend 'vllm' needs vllm: make install GPU=1 (the gpu extra)"
        ) from None
    if not torch.cuda.is_available():
        raise CodealignError("sample.backend 'vllm' needs a CUDA GPU; use backend 'hf' here")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.base_dir)
    prompts = chat.render_all(tokenizer, questions)
    routes = [0] * len(questions)
    if spec.routed:
        from codealign.specialists.routing import Router

        routes = Router(spec.router_dir, base_model=spec.base_dir).route(questions)
    llm = LLM(str(spec.base_dir), dtype=dtype, seed=seed, **vllm_lora_args(spec.adapters))
    sampling = SamplingParams(n=n, temperature=temperature, max_tokens=max_new_tokens, seed=seed)
    requests = [
        LoRARequest(f"cluster_{routes[i]}", routes[i] + 1, str(spec.adapters[routes[i]]))
        if spec.adapters
        else None
        for i in range(len(prompts))
    ]
    outputs = llm.generate(prompts, sampling, lora_request=requests if spec.adapters else None)
    return [[c.text for c in out.outputs] for out in outputs], routes


def add_references(
    records: Sequence[dict], answers: Sequence[Sequence[str]], where: str
) -> list[list[str]]:
    """Each task's answers plus its reference solution, as a whole program, last
    (`sample.add_reference`: a rehearsal on random weights still mines pairs)."""
    problems = pool_problems(records, where)
    out = []
    for record, texts in zip(records, answers, strict=True):
        problem = problems[str(record["task_id"])]
        if not problem.canonical_solution.strip():
            raise CodealignError(f"{where}: task {problem.task_id} has no reference solution")
        out.append([*texts, problem.canonical_program])
    return out


def sample_records(
    records: Sequence[dict], answers: Sequence[Sequence[str]], routes: Sequence[int]
) -> Iterable[dict[str, Any]]:
    """One sample record per completion: `task_id, completion_id, completion` + provenance."""
    for record, texts, adapter in zip(records, answers, routes, strict=True):
        question = chat.question(record)
        for i, text in enumerate(texts):
            yield {
                "task_id": str(record["task_id"]),
                "completion_id": i,
                "completion": text,
                "question": question,
                "adapter": adapter,
            }
