"""Sections of the specialists: `cluster` (K-means), `sft` (LoRA adapters) and
`sft_baseline` (what the K = 1 adapter trains on)."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param

DTYPES = ("float32", "float16", "bfloat16")
TARGETS = ("code", "edits")
TRAIN_DATA = ("curated", "seed")


@dataclass(frozen=True)
class ClusterParams(Section):
    """K-means knobs; the number of clusters is the top-level `k`, the seed `seed`."""

    min_size: int = param(
        20, ge=1, doc="clusters with fewer training items are dissolved into their neighbours"
    )
    n_init: int = param(10, ge=1, doc="K-means restarts; the lowest inertia wins")
    max_iter: int = param(300, ge=1, doc="Lloyd iterations per restart")
    silhouette_sample: int = param(
        5000, ge=10, doc="points the silhouette score is estimated on (it is quadratic)"
    )
    plot_points: int = param(5000, ge=10, doc="at most this many points in the projection plot")


@dataclass(frozen=True)
class SFTParams(Section):
    """LoRA/QLoRA fine-tuning of the specialists; defaults are the default profile's (CPU)."""

    quantization: str = param(
        "none", choices=("none", "nf4"), doc="nf4: 4-bit QLoRA base (CUDA + bitsandbytes only)"
    )
    compute_dtype: str = param(
        "float32", choices=DTYPES, doc="4-bit compute dtype and mixed precision (float32: none)"
    )
    lora_r: int = param(32, ge=1, doc="LoRA rank")
    lora_alpha: int = param(64, ge=1, doc="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = param(0.05, ge=0, lt=1, doc="dropout on the LoRA input")
    target_modules: tuple[str, ...] = param(
        ("all-linear",), doc="module names to adapt; 'all-linear' is every linear but the head"
    )
    learning_rate: float = param(2e-3, gt=0, le=1, doc="peak learning rate")
    epochs: float = param(
        6.0,
        gt=0,
        doc="passes over each cluster's items (fewer leave the tiny model copying names wrong)",
    )
    batch_size: int = param(16, ge=1, doc="per-device batch")
    grad_accum: int = param(1, ge=1, doc="gradient accumulation steps")
    eval_batch_size: int = param(64, ge=1, doc="batch of the validation-loss pass")
    max_length: int = param(256, ge=16, doc="tokens per example; longer ones are truncated")
    optimizer: str = param("adamw_torch", doc="transformers optim name (paper: paged_adamw_32bit)")
    lr_scheduler: str = param("cosine", doc="transformers scheduler name")
    warmup_ratio: float = param(0.05, ge=0, lt=1, doc="share of steps in linear warm-up")
    max_grad_norm: float = param(0.3, gt=0, doc="gradient clipping norm")
    weight_decay: float = param(0.001, ge=0, doc="AdamW weight decay")
    gradient_checkpointing: bool = param(False, doc="trade compute for memory (paper: true)")
    save_steps: int = param(
        50,
        ge=1,
        doc="checkpoint and validation-loss interval; the lowest-loss checkpoint is kept",
    )
    save_total_limit: int = param(2, ge=1, doc="checkpoints kept besides the best one")
    logging_steps: int = param(5, ge=1, doc="loss-logging interval; must divide save_steps")
    target: str = param(
        "code",
        choices=TARGETS,
        doc="assistant turn: the program (code) or its LintSeq edit sequence (edits, "
        "the record's `target` field, as data/lintseq holds)",
    )

    def validate(self, prefix: str) -> None:
        if self.quantization == "nf4" and self.compute_dtype == "float32":
            raise CodealignError(
                f"{prefix}.compute_dtype must be float16 or bfloat16 with quantization nf4"
            )
        if not self.target_modules:
            raise CodealignError(f"{prefix}.target_modules must name at least one module")
        if self.save_steps % self.logging_steps:
            raise CodealignError(
                f"{prefix}.logging_steps ({self.logging_steps}) must divide {prefix}.save_steps "
                f"({self.save_steps}): a run resumed from a checkpoint would log other loss "
                "windows than an uninterrupted one"
            )


INITS = ("base", "generalist")


@dataclass(frozen=True)
class SpecialistsParams(Section):
    """Two ideas that might let K specialists beat one adapter (docs/specialists.md)."""

    init: str = param(
        "base",
        choices=INITS,
        doc="where each cluster's LoRA adapter starts: base (a fresh adapter on the base "
        "model) | generalist (the K = 1 adapter's weights, models/sft_baseline, then "
        "sft.epochs passes over the cluster's items)",
        before="base",
    )
    fallback_margin: float = param(
        0.0,
        ge=0,
        le=2,
        doc="a question whose cosine to its best centroid exceeds that to the second best by "
        "less than this is answered by the K = 1 adapter (0: never); choose it on tinydev "
        "with `codealign fallback-margin`",
        before=0.0,
    )


@dataclass(frozen=True)
class SFTBaselineParams(Section):
    """The K = 1 adapter (stage `sft_baseline`): which data it trains on. Every training knob
    is `sft`'s; this section is apart so that the K specialists do not depend on it."""

    train_data: str = param(
        "curated",
        choices=TRAIN_DATA,
        doc="curated: every curated item (data/dedup) | seed: only the curated set's S1 and "
        "S2 items, for as many optimizer steps as the curated set takes at sft.epochs "
        "(the seed-only arm of curated-beats-seed)",
        before="curated",
    )
