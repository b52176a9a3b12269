"""Sections of the base model: `base_model` (pretraining) and `base_model_eval`."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param


@dataclass(frozen=True)
class Phase:
    """One pretraining phase: its corpus's code share, its optimizer steps and its
    corpus's size in characters."""

    name: str
    code_share: float
    steps: int
    corpus_chars: int
    fraction: float = 1.0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "fraction": self.fraction,
            "code_share": self.code_share,
            "steps": self.steps,
            "corpus_chars": self.corpus_chars,
        }


@dataclass(frozen=True)
class BaseModelParams(Section):
    """The base model: its corpus, its architecture (name: tiny) and its pretraining."""

    name: str = param("tiny", doc="'tiny' pretrains a small Llama here; else a hub id or path")
    code_share: float = param(
        0.25,
        ge=0,
        le=1,
        doc="fraction of corpus characters that are code; 0.25 was chosen on tinyeval before "
        "tinydev existed: re-choose on tinydev",
    )
    continue_fraction: float | None = param(
        None,
        ge=0,
        lt=1,
        doc="share of the steps, after the main phase, that continue on "
        "continue_code_share (null or 0: no continue phase)",
    )
    continue_code_share: float | None = param(
        None,
        ge=0,
        le=1,
        doc="code share of the continue phase's corpus; set exactly when continue_fraction is",
    )
    cooldown_fraction: float | None = param(
        None,
        ge=0,
        lt=1,
        doc="share of the steps at the end (the low-rate tail of the cosine schedule) that "
        "train on cooldown_code_share (null or 0: no cooldown phase)",
    )
    cooldown_code_share: float | None = param(
        None,
        ge=0,
        le=1,
        doc="code share of the cooldown phase's corpus; set exactly when cooldown_fraction is",
    )
    edit_share: float = param(
        0.2, ge=0, le=1, doc="fraction of the code characters written as LintSeq edit sequences"
    )
    corpus_chars: int = param(3_000_000, ge=1000, doc="size of the pretraining corpus")
    vocab_size: int = param(1024, ge=300, le=65536, doc="byte-level BPE vocabulary")
    hidden_size: int = param(128, ge=8, doc="tiny model: width; a multiple of num_heads")
    num_layers: int = param(4, ge=1, doc="tiny model: decoder layers")
    num_heads: int = param(4, ge=1, doc="tiny model: attention heads")
    intermediate_size: int = param(384, ge=8, doc="tiny model: MLP width")
    block_size: int = param(128, ge=16, doc="tokens per packed training sequence")
    steps: int = param(
        1200,
        ge=1,
        doc="optimizer steps (a fixed count, never a time budget); chosen on tinydev greedy "
        "pass@1 over 300/600/1200 (results/tune/base_model.steps.json)",
    )
    batch_size: int = param(32, ge=1, doc="packed sequences per optimizer step")
    learning_rate: float = param(3e-3, gt=0, le=1, doc="peak learning rate")
    warmup_steps: int = param(30, ge=0, doc="steps of linear warm-up to the peak rate")
    weight_decay: float = param(0.01, ge=0, doc="AdamW weight decay")
    save_steps: int = param(
        100,
        ge=1,
        doc="checkpoint interval; a killed run resumes here. The loss is logged about every "
        "steps/100 steps, on a divisor of this",
    )
    eval_tasks: int = param(
        50,
        ge=0,
        doc="tinydev tasks scored after training (0: none); the dev set, so steps are chosen on it",
    )
    eval_samples: int = param(8, ge=1, doc="samples per task for pass@k at eval_temperature")
    eval_temperature: float = param(
        0.8, gt=0, le=2, doc="sampling temperature of the post-training eval"
    )
    max_new_tokens: int = param(96, ge=1, doc="answer budget of the post-training eval")
    dtype: str = param(
        "float32", choices=("float32", "bfloat16", "float16"), doc="weights and training precision"
    )
    seed: int | None = param(
        None,
        ge=0,
        doc="pretraining seed: weights, data order, eval samples (null: the master seed); "
        "the corpus stays the master seed's",
    )

    def validate(self, prefix: str) -> None:
        if self.hidden_size % self.num_heads:
            raise CodealignError(
                f"{prefix}.hidden_size ({self.hidden_size}) must be a multiple of "
                f"{prefix}.num_heads ({self.num_heads})"
            )
        self.phases(prefix)

    def phases(self, prefix: str = "base_model") -> list[Phase]:
        """The pretraining phases in order: `main` at `code_share`, then `continue` and
        `cooldown` where their fraction is above 0. One phase (`main`, all steps) where
        none is set: the schedule is off and pretraining is as it always was.

        Each phase gets round(fraction * steps) steps and the same share of
        `corpus_chars`; `main` gets the rest. Raises CodealignError naming the key of an
        impossible schedule."""
        later = []
        for name in ("continue", "cooldown"):
            fraction = getattr(self, f"{name}_fraction") or 0.0
            share = getattr(self, f"{name}_code_share")
            if fraction > 0 and share is None:
                raise CodealignError(
                    f"{prefix}.{name}_code_share must be set: {prefix}.{name}_fraction is "
                    f"{fraction}"
                )
            if fraction == 0 and share is not None:
                raise CodealignError(
                    f"{prefix}.{name}_code_share is {share} but {prefix}.{name}_fraction is "
                    f"{getattr(self, f'{name}_fraction')}: a phase without steps"
                )
            if fraction > 0:
                later.append((name, fraction, share))
        if not later:
            return [Phase("main", self.code_share, self.steps, self.corpus_chars)]
        if self.name != "tiny":
            raise CodealignError(
                f"{prefix}.{later[0][0]}_fraction: a phase schedule needs {prefix}.name: tiny "
                f"(pretraining here), not '{self.name}'"
            )
        total = sum(fraction for _, fraction, _ in later)
        if total >= 1:
            raise CodealignError(
                f"{prefix}.{later[-1][0]}_fraction: the continue and cooldown fractions sum to "
                f"{total:g}, leaving the main phase no steps (they must sum to less than 1)"
            )
        phases = []
        for name, fraction, share in later:
            steps = round(fraction * self.steps)
            if steps < 1:
                raise CodealignError(
                    f"{prefix}.{name}_fraction ({fraction}) gives no step of {prefix}.steps "
                    f"({self.steps})"
                )
            phases.append(Phase(name, share, steps, round(fraction * self.corpus_chars), fraction))
        main_steps = self.steps - sum(phase.steps for phase in phases)
        if main_steps < 1:
            raise CodealignError(
                f"{prefix}.{later[-1][0]}_fraction leaves the main phase no step of "
                f"{prefix}.steps ({self.steps})"
            )
        main_chars = self.corpus_chars - sum(phase.corpus_chars for phase in phases)
        main = Phase("main", self.code_share, main_steps, main_chars, round(1 - total, 12))
        return [main, *phases]

    @property
    def scheduled(self) -> bool:
        """Whether pretraining runs in more than one phase (a continue or cooldown phase)."""
        return len(self.phases()) > 1


@dataclass(frozen=True)
class BaseModelEvalParams(Section):
    """Held-out scores of the base model: what base_model.code_share moves."""

    english_docs: int = param(500, ge=1, doc="held-out English documents (stories, facts) scored")
    code_docs: int = param(0, ge=0, doc="tinydev canonical solutions scored (0: all)")
    instructions: int = param(200, ge=0, doc="English instructions answered greedily (0: none)")
    batch_size: int = param(32, ge=1, doc="sequences per forward pass or generate call")
    max_new_tokens: int = param(32, ge=1, doc="tokens generated per instruction answer")
    salt: str = param("heldout", doc="names the held-out RNG streams; change it for a fresh draw")

    def validate(self, prefix: str) -> None:
        if not self.salt.strip():
            raise CodealignError(f"{prefix}.salt must be a non-empty string")


@dataclass(frozen=True)
class HeldoutInstructionsParams(Section):
    """The instruction arguments no corpus holds: the held-out instruction test.

    A salted share of each instruction kind's arguments (codealign.tinyworld.text.
    InstructionSplit) is kept out of every English corpus the world writes (base_model's,
    refine's); base_model_eval and tinyhelen ask instructions on those arguments only.
    """

    share: float = param(
        0.25,
        ge=0,
        le=0.5,
        doc="share of each instruction kind's arguments kept out of every corpus and asked "
        "by the held-out instruction test (0: none held out, no held-out test)",
        before=0,
    )
    salt: str = param(
        "instructions", doc="ranks the arguments that are held out; change it for a fresh split"
    )

    def validate(self, prefix: str) -> None:
        if not self.salt.strip():
            raise CodealignError(f"{prefix}.salt must be a non-empty string")
