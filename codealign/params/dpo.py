"""Sections of the DPO stages: `sample`, `score`, `pairs`, `curriculum`, `dpo`."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param
from codealign.params.evaluation import DEV_BENCHMARKS, FINAL_BENCHMARKS

POLICY_MODES = ("single", "routed")
ORDERS = ("descending", "ascending")


@dataclass(frozen=True)
class SampleParams(Section):
    """The sample stage: on-policy completions of the DPO prompt pool."""

    n: int = param(8, ge=2, doc="completions per pool prompt (best-of-N needs at least 2)")
    temperature: float = param(0.8, gt=0, le=2, doc="sampling temperature")
    max_new_tokens: int = param(128, ge=1, doc="answer budget per completion")
    batch_size: int = param(64, ge=1, doc="rows per generate call")
    policy: str = param(
        "single",
        choices=POLICY_MODES,
        doc="single: the K = 1 policy (models/sft_baseline, as dvc.yaml passes); "
        "routed: the K specialists",
    )
    backend: str = param("hf", choices=("hf", "vllm"), doc="vllm needs CUDA and the vllm extra")
    limit: int = param(0, ge=0, doc="first N pool prompts (0: all)")
    dtype: str = param(
        "float32", choices=("float32", "bfloat16", "float16"), doc="precision the policy samples in"
    )
    add_reference: bool = param(
        False,
        doc="add each pool task's reference solution to its N samples, so a random tiny model "
        "still yields pairs (CPU rehearsal only; needs fetch.tiny_from_config)",
    )


@dataclass(frozen=True)
class ScoreParams(Section):
    """The score stage: every completion run against its task's tests in the sandbox."""

    workers: int = param(2, ge=1, doc="sandbox worker processes")
    timeout: float = param(3.0, gt=0, doc="seconds per completion")


@dataclass(frozen=True)
class PairsParams(Section):
    """The pairs stage: chosen/rejected pairs and their reference log-probabilities."""

    batch_size: int = param(16, ge=1, doc="pairs per reference forward pass")
    max_length: int = param(
        512,
        ge=16,
        doc="tokens per prompt+answer; dpo reads it from data/pairs so both truncate alike",
    )


@dataclass(frozen=True)
class CurriculumParams(Section):
    """The curriculum stage: pairs bucketed by the reference's log-prob distance."""

    percentiles: tuple[float, ...] = param(
        (10.0, 50.0, 90.0), gt=0, lt=100, doc="distance percentiles that cut the buckets"
    )
    order: str = param("descending", choices=ORDERS, doc="descending: high distance (easy) first")
    prune_low_incorrect: bool = param(True, doc="lowest bucket: drop pairs whose chosen fails")
    prune_high_comment_only: bool = param(True, doc="highest bucket: drop comment-only pairs")

    def validate(self, prefix: str) -> None:
        if not self.percentiles:
            raise CodealignError(f"{prefix}.percentiles must name at least one percentile")
        if list(self.percentiles) != sorted(set(self.percentiles)):
            raise CodealignError(f"{prefix}.percentiles must be strictly increasing")

    @property
    def stages(self) -> int:
        return len(self.percentiles) + 1


@dataclass(frozen=True)
class DpoParams(Section):
    """The DPO stages: one adapter trained bucket by bucket, and the shuffled control."""

    beta: float = param(0.1, gt=0, doc="DPO temperature: higher stays closer to the reference")
    learning_rate: float = param(
        5e-5,
        gt=0,
        le=1,
        doc="constant, so stages compare fairly; 5e-5 was chosen on tinyeval before tinydev "
        "existed (5e-4 collapsed pass@1 from 0.63 to 0.14 in 53 steps, 1e-4 drifted down to "
        "0.60): re-choose on tinydev",
    )
    epochs: int = param(1, ge=1, doc="passes over each curriculum bucket")
    batch_size: int = param(
        8, ge=1, doc="pairs per forward pass; an optimizer step takes batch_size × grad_accum"
    )
    grad_accum: int = param(
        1, ge=1, doc="forward passes per optimizer step: the same step with less memory"
    )
    gradient_checkpointing: bool = param(
        False, doc="recompute activations in the backward pass: less memory, more compute"
    )
    lora_r: int = param(16, ge=1, doc="LoRA rank of a new adapter")
    lora_alpha: int = param(32, ge=1, doc="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = param(0.0, ge=0, lt=1, doc="dropout on the LoRA input")
    target_modules: tuple[str, ...] = param(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        doc="LoRA targets for a new adapter (never lm_head: TRL scores with it directly)",
    )
    max_grad_norm: float = param(1.0, gt=0, doc="gradient clipping norm")
    save_steps: int = param(
        10, ge=0, doc="checkpoint interval in optimizer steps; a killed stage resumes (0: none)"
    )
    dtype: str = param(
        "float32", choices=("float32", "bfloat16", "float16"), doc="training precision"
    )
    eval_benchmarks: tuple[str, ...] = param(
        ("tinydev",),
        doc="dev sets scored after every curriculum stage and at the same steps of the "
        "shuffled run: " + ", ".join(DEV_BENCHMARKS) + " (the final benchmarks are "
        "the evaluate stage's)",
    )
    eval_limit: int = param(64, ge=0, doc="first N tasks per benchmark (0: all)")
    eval_n: int = param(4, ge=1, doc="samples per task for pass@1")
    eval_temperature: float = param(0.2, gt=0, le=2, doc="sampling temperature of those evals")
    eval_max_new_tokens: int = param(128, ge=1, doc="answer budget per sample")
    eval_batch_size: int = param(64, ge=1, doc="answers generated per forward pass")
    eval_workers: int = param(2, ge=1, doc="sandbox worker processes")
    eval_timeout: float = param(3.0, gt=0, doc="seconds per sample in the sandbox")

    def validate(self, prefix: str) -> None:
        if not self.eval_benchmarks:
            raise CodealignError(f"{prefix}.eval_benchmarks must name at least one dev set")
        for name in self.eval_benchmarks:
            if name in FINAL_BENCHMARKS:
                raise CodealignError(
                    f"{prefix}.eval_benchmarks: '{name}' is a final benchmark, read only by "
                    f"the evaluate stage; DPO's stage boundaries are scored on a dev set "
                    f"({', '.join(DEV_BENCHMARKS)})"
                )
            if name not in DEV_BENCHMARKS:
                raise CodealignError(
                    f"{prefix}.eval_benchmarks: unknown dev set '{name}' "
                    f"(known: {', '.join(DEV_BENCHMARKS)})"
                )
