"""Sections of TinyHelen's pipeline: `refine` (original corpus -> lean corpus) and
`tinyhelen` (base models pretrained on each, compared at equal tokens).

The `hf` and `openai` backends of `refine` are the synth stage's: their endpoint, model,
cache and retry knobs are read from the `synth` section (`codealign.params.synth`).
"""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param
from codealign.params.synth import BACKENDS


@dataclass(frozen=True)
class RefineParams(Section):
    """The original (noisy, varied) English corpus and its refinement into a lean one."""

    backend: str = param(
        "tinyworld",
        choices=BACKENDS,
        doc="who refines: tinyworld (the world's own lean generator), hf or openai "
        "(endpoint and model from the synth section)",
    )
    documents: int = param(8000, ge=1, doc="English documents in the original corpus")
    synonym_rate: float = param(
        0.35, ge=0, le=1, doc="original corpus: share of eligible words replaced by a synonym"
    )
    typo_rate: float = param(
        0.04, ge=0, le=1, doc="original corpus: share of eligible words given a typo"
    )
    filler_rate: float = param(
        0.3, ge=0, le=1, doc="original corpus: share of sentences opened with a filler phrase"
    )
    aside_rate: float = param(
        0.15, ge=0, le=1, doc="original corpus: share of sentences closed by an irrelevant aside"
    )
    join_rate: float = param(
        0.4, ge=0, le=1, doc="original corpus: share of sentence breaks joined into one sentence"
    )
    boilerplate_rate: float = param(
        0.2, ge=0, le=1, doc="original corpus: share of documents given a boilerplate line"
    )
    temperature: float = param(0.0, ge=0, le=2, doc="hf/openai: sampling temperature")
    max_tokens: int = param(256, ge=1, doc="hf/openai: tokens per refined document")
    measure_words: int = param(
        20000,
        ge=100,
        doc="type-token ratio and MTLD are taken over the first N words of each corpus, "
        "so that corpora of different lengths compare",
    )


@dataclass(frozen=True)
class TinyHelenParams(Section):
    """`codealign tinyhelen`: base models pretrained on original vs lean text, equal tokens.

    Architecture, steps, batch, corpus size and code share are `base_model`'s.
    """

    seeds: tuple[int, ...] = param(
        [0, 1, 2], doc="pretraining seeds; each trains one model per corpus"
    )
    tokenizer: str = param(
        "shared",
        choices=("shared", "own"),
        doc="shared: one BPE tokenizer for both corpora (a token is the same unit); "
        "own: each corpus trains its own, as base_model does",
    )
    curve_points: int = param(
        8, ge=1, doc="held-out scorings during training (the loss-vs-tokens curve)"
    )
    heldout_docs: int = param(
        200, ge=1, doc="held-out stories and facts scored, in lean and in original form"
    )
    instructions: int = param(
        200, ge=0, doc="held-out instructions answered greedily, in each form (0: none)"
    )
    eval_tasks: int = param(50, ge=0, doc="tinyeval tasks for code pass@k (0: none)")
    eval_samples: int = param(8, ge=1, doc="samples per task for pass@k")
    eval_temperature: float = param(0.8, gt=0, le=2, doc="sampling temperature of pass@k")
    batch_size: int = param(32, ge=1, doc="sequences per forward pass when scoring")
    salt: str = param("tinyhelen", doc="names the held-out RNG streams")

    def validate(self, prefix: str) -> None:
        if not self.seeds:
            raise CodealignError(f"{prefix}.seeds must list at least one seed")
        if any(s < 0 for s in self.seeds):
            raise CodealignError(f"{prefix}.seeds must be non-negative, got {list(self.seeds)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise CodealignError(f"{prefix}.seeds must not repeat, got {list(self.seeds)}")
        if not self.salt.strip():
            raise CodealignError(f"{prefix}.salt must be a non-empty string")
