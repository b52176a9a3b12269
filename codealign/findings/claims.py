"""The claims of the source works, each declared once: what it says, which runs measure it.

A claim compares arm `a` against arm `b` (or, for an optimum, `a` against each of its
`neighbours`) on one measure, paired by the seeds in `pair_by`. `direction` is the sign
the source claims for mean(a - b): +1 where higher is better (pass@k, accuracy), -1
where lower is (bits per byte). A claim whose arms match no record is `not measured`,
and its row shows `command`, the runs that would measure it.

Sources (docs/method.md): A K specialists, B curriculum DPO from execution feedback,
C TinyHelen (a lean world for tiny models), D LintSeq (edit sequences), E "To code or
not to code" (code in the pretraining mixture).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measure:
    """A number a record holds: `path` into its `metrics` (an int indexes a list;
    `pass@max` is the largest pass@N under that key), and where per-task outcomes exist,
    the record's `tasks` arm whose verdict counts give the per-task value (the unbiased
    pass@k of the same k)."""

    path: tuple[str | int, ...]
    task_arm: str | None = None
    label: str = ""


OFF = "<off>"  # an `Arm.where` value: the param is missing, null or 0 (a phase not run)


@dataclass(frozen=True)
class Arm:
    """The records of sweep `sweep` whose params equal `where` (flattened keys; `OFF`:
    missing, null or 0)."""

    sweep: str
    where: dict[str, Any]
    measure: Measure


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    sentence: str
    a: Arm | None
    b: Arm | None = None
    neighbours: tuple[Arm, ...] = ()
    direction: int = 1
    pair_by: tuple[str, ...] = ("train_seed",)
    command: str = ""
    note: str = ""
    kind: str = field(default="pair")  # "pair" or "optimum"
    # A caveat computed from the records of arm a (and the claim), added to `note`.
    caveat: Callable[[Sequence[dict], Claim], str] | None = field(default=None, compare=False)


def _eval(model: str, metric: str = "pass@1") -> Measure:
    tag = "pass1" if metric == "pass@1" else "passk"
    return Measure(("models", model, metric), f"{model}/{tag}", f"{model} {metric}")


# Single-mixture runs: no continue and no cooldown phase (docs/code-share.md#phases).
SINGLE = {"base_model.continue_fraction": OFF, "base_model.cooldown_fraction": OFF}


def _share(share: float, key: tuple[str, ...], label: str, **phases: Any) -> Arm:
    """Mixture-sweep runs at `share`, single-mixture unless `phases` sets the schedule
    (`cooldown_fraction=0.2` for `base_model.cooldown_fraction`, and so on)."""
    where = {"base_model.code_share": share, **SINGLE}
    where.update({f"base_model.{name}": value for name, value in phases.items()})
    path = key if key[0] == "base_model" else ("base_model_eval", *key)
    return Arm("mixture", where, Measure(path, None, label))


ENGLISH = ("english", "bits_per_byte")
# Instructions on arguments no corpus holds (heldout_instructions params), not recall.
INSTRUCTIONS = ("instructions_heldout", "accuracy")
# The base model's own tinydev score after pretraining (metrics/base_model.json), at the
# default profile's eval_temperature.
TINYDEV = ("base_model", "pass@1_t0.8")
_KSWEEP = (
    "for seed in 0 1 2; do for k in 1 5; do dvc exp run --queue -S k=$k -S train_seed=$seed "
    "evaluate; done; done; dvc queue start -j 1; codealign ksweep"
)
_EQUAL_STEPS = (
    "for seed in 0 1 2; do dvc exp run --queue -S k=5 -S sft.epochs=30 -S train_seed=$seed "
    "evaluate; done; dvc queue start -j 1; codealign equal-steps --k 5 --epochs 30; "
    "codealign ksweep"
)
TRAIN_DATA = "sft_baseline.train_data"
_TRAIN_DATA_RUNS = (
    "for seed in 0 1 2; do for d in curated seed; do dvc exp run --queue "
    f"-S {TRAIN_DATA}=$d -S train_seed=$seed evaluate; done; done; dvc queue start -j 1; "
    "codealign train-data"
)
_GENERALIST_INIT = (
    "for seed in 0 1 2; do dvc exp run --queue -S k=5 -S specialists.init=generalist "
    "-S train_seed=$seed evaluate; done; dvc queue start -j 1; codealign specialist-ideas --k 5"
)
_FALLBACK = (
    "dvc repro sft sft_baseline; codealign fallback-margin; "
    'M=$(python -c "import json; print(json.load(open('
    "'results/specialists/fallback_margin.json'))['chosen'])\"); "
    "for seed in 0 1 2; do dvc exp run --queue -S k=5 -S specialists.fallback_margin=$M "
    "-S train_seed=$seed evaluate; done; dvc queue start -j 1; codealign specialist-ideas --k 5"
)


def _idea(init: str, model: str, **where: object) -> Arm:
    return Arm("specialist_ideas", {"k": 5, "specialists.init": init, **where}, _eval(model))


_DPO = "python benchmarks/dpo_seeds.py --seeds 0 1 2"
_MIXTURE = (
    "for s in 0 0.25 0.5; do for seed in 0 1 2; do dvc exp run --queue "
    "-S base_model.code_share=$s -S base_model.seed=$seed base_model_eval; done; done; "
    "dvc queue start -j 1; codealign mixture"
)

_TINYHELEN = "dvc repro refine seed; codealign tinyhelen"
_LINTSEQ = (
    "for seed in 0 1 2; do dvc exp run --queue -S train_seed=$seed lintseq_eval; "
    "done; dvc queue start -j 1; codealign lintseq-seeds"
)
# Composed answers run to ~200 tokens (edits; up to ~260): longer examples and budgets.
_LINTSEQ_COMPOSED = (
    "for seed in 0 1 2; do dvc exp run --queue -S lintseq.compose=4 "
    "-S lintseq.compose_shape=parallel -S sft.max_length=448 "
    "-S lintseq_eval.max_new_tokens=320 -S train_seed=$seed lintseq_eval; done; "
    "dvc queue start -j 1; codealign lintseq-seeds --compose 4 --compose-shape parallel "
    "--out metrics/lintseq_seeds_composed.json --plot metrics/lintseq_seeds_composed.png"
)


def _lintseq(compose: int, shape: str | None, target: str) -> Arm:
    where: dict[str, Any] = {"lintseq.compose": compose}
    if shape is not None:
        where["lintseq.compose_shape"] = shape
    measure = Measure((target, "pass@max"), target, f"{target} pass@k")
    return Arm("lintseq_seeds", where, measure)


def edits_caveat(records: Sequence[dict], claim: Claim) -> str:
    """How long the training edit sequences of the measured runs are, from their records
    (`edits_per_sequence` of metrics/lintseq_eval.json), else what the arm's params say."""
    means = sorted(
        float(stats["mean"])
        for record in records
        if isinstance(stats := record["metrics"].get("edits_per_sequence"), dict)
        and isinstance(stats.get("mean"), int | float)
    )
    if means:
        spread = f"{means[0]:.2f}" if means[0] == means[-1] else f"{means[0]:.2f}-{means[-1]:.2f}"
        short = " (under 2: too few edits for sequences to mean much)" if means[-1] < 2 else ""
        return f"Training sequences average {spread} edits{short}, over {len(means)} runs."
    compose = claim.a.where.get("lintseq.compose", 1) if claim.a else 1
    if compose == 1:
        return (
            "Programs are single tiny-world templates (lintseq.compose 1); no record gives "
            "its edit count (metrics/lintseq.json edits_per_sequence does)."
        )
    return (
        f"Programs join {compose} templates (lintseq.compose {compose}); no record gives "
        "its edit count (metrics/lintseq.json edits_per_sequence does)."
    )


# Phase schedules, at equal steps and corpus size (docs/code-share.md#phases).
COOLDOWN = {"cooldown_fraction": 0.2}
BALANCED_THEN_TEXT = {"continue_fraction": 0.5, "continue_code_share": 0.1}
_COOLDOWN = (
    "for seed in 0 1 2; do for c in 0 0.25; do dvc exp run --queue "
    "-S base_model.cooldown_fraction=0.2 -S base_model.cooldown_code_share=$c "
    "-S base_model.seed=$seed base_model_eval; done; done; dvc queue start -j 1; "
    "codealign mixture"
)
_BALANCED_THEN_TEXT = (
    "for seed in 0 1 2; do dvc exp run --queue -S base_model.code_share=0.5 "
    "-S base_model.continue_fraction=0.5 -S base_model.continue_code_share=0.1 "
    "-S base_model.seed=$seed base_model_eval; done; " + _MIXTURE
)


def _corpus(corpus: str, key: tuple[str, ...], label: str) -> Arm:
    return Arm("tinyhelen", {"tinyhelen.corpus": corpus}, Measure(key, None, label))


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="specialists-equal-epochs",
        source="A",
        sentence="K = 5 routed specialists score a higher pass@1 than one adapter trained "
        "for the same epochs.",
        a=Arm("ksweep", {"k": 5}, _eval("routed")),
        b=Arm("ksweep", {"k": 5, TRAIN_DATA: "curated"}, _eval("k1")),
        command=_KSWEEP,
    ),
    Claim(
        id="specialists-equal-steps",
        source="A",
        sentence="K = 5 routed specialists, each trained for as many steps as the single "
        "adapter (5x the epochs), score a higher pass@1 than that adapter.",
        a=Arm("k_equal_steps", {"k": 5}, _eval("routed")),
        b=Arm("ksweep", {TRAIN_DATA: "curated"}, _eval("k1")),
        command=_EQUAL_STEPS,
        note="b is the single adapter at the profile's epochs, from the K sweep's runs.",
    ),
    Claim(
        id="specialists-from-generalist",
        source="A",
        sentence="Idea beside the K claim: K = 5 specialists that start from the single "
        "adapter's weights and are fine-tuned on their cluster score a higher pass@1 than "
        "that adapter.",
        a=_idea("generalist", "routed", **{"specialists.fallback_margin": 0.0}),
        b=_idea("generalist", "k1", **{"specialists.fallback_margin": 0.0}),
        command=_GENERALIST_INIT,
        note="default profile (the K claim's own runs are there); each specialist then "
        "trains sft.epochs passes over its cluster, 1/K of the single adapter's steps; "
        "b is the single adapter scored in the same evaluate run.",
    ),
    Claim(
        id="specialists-with-fallback",
        source="A",
        sentence="Idea beside the K claim: K = 5 routed specialists that hand questions "
        "with a small routing margin to the single adapter score a higher pass@1 than "
        "that adapter.",
        a=_idea("base", "routed"),
        b=_idea("base", "k1"),
        command=_FALLBACK,
        note="default profile; the margin is chosen on tinydev (codealign fallback-margin, "
        "results/specialists/fallback_margin.json), never on tinyeval; b is the single "
        "adapter scored in the same evaluate run.",
    ),
    Claim(
        id="curated-beats-seed",
        source="A",
        sentence="SFT on the curated synthetic data scores a higher pass@1 than SFT on the "
        "seed sets S1 + S2 alone.",
        a=Arm("train_data", {TRAIN_DATA: "curated"}, _eval("k1")),
        b=Arm("train_data", {TRAIN_DATA: "seed"}, _eval("k1")),
        command=_TRAIN_DATA_RUNS,
        note="K = 1 adapters at equal optimizer steps: the seed arm trains on the curated "
        "set's S1 + S2 items for the steps the whole set takes, and both pick their "
        "checkpoint on the same validation items.",
    ),
    Claim(
        id="curriculum-descending-vs-shuffled",
        source="B",
        sentence="DPO on curriculum buckets in descending distance order (far pairs first) "
        "ends with a higher pass@1 than the same pairs shuffled, at equal steps.",
        a=Arm(
            "dpo_seeds",
            {"curriculum.order": "descending"},
            Measure(("final_curriculum_pass@1",), None, "curriculum pass@1"),
        ),
        b=Arm(
            "dpo_seeds",
            {"curriculum.order": "descending"},
            Measure(("final_shuffled_pass@1",), None, "shuffled pass@1"),
        ),
        command=_DPO,
        note="run-level only: the DPO stages keep no per-task verdicts.",
    ),
    Claim(
        id="curriculum-ascending-vs-shuffled",
        source="B",
        sentence="DPO on curriculum buckets in ascending distance order (near pairs first) "
        "ends with a higher pass@1 than the same pairs shuffled, at equal steps.",
        a=Arm(
            "dpo_seeds",
            {"curriculum.order": "ascending"},
            Measure(("final_curriculum_pass@1",), None, "curriculum pass@1"),
        ),
        b=Arm(
            "dpo_seeds",
            {"curriculum.order": "ascending"},
            Measure(("final_shuffled_pass@1",), None, "shuffled pass@1"),
        ),
        command=_DPO + " --set curriculum.order=ascending",
        note="run-level only: the DPO stages keep no per-task verdicts.",
    ),
    Claim(
        id="dpo-improves-pass1",
        source="B",
        sentence="DPO on execution-feedback pairs raises pass@1 above the SFT policy it "
        "starts from.",
        a=Arm(
            "dpo_seeds",
            {"curriculum.order": "descending"},
            Measure(("final_curriculum_pass@1",), None, "after DPO"),
        ),
        b=Arm(
            "dpo_seeds",
            {"curriculum.order": "descending"},
            Measure(("curriculum", 0, "pass@1"), None, "before DPO (step 0)"),
        ),
        command=_DPO,
        note="run-level only: the DPO stages keep no per-task verdicts.",
    ),
    Claim(
        id="lintseq-pass-at-large-k",
        source="D",
        sentence="A model trained on edit sequences scores a higher pass@k at the largest k "
        "than one trained on the same programs.",
        a=_lintseq(1, None, "edits"),
        b=_lintseq(1, None, "code"),
        command=_LINTSEQ,
        caveat=edits_caveat,
    ),
    Claim(
        id="lintseq-pass-at-large-k-composed",
        source="D",
        sentence="On longer programs (4 tiny-world templates each, lintseq.compose 4, "
        "parallel), a model trained on edit sequences scores a higher pass@k at the largest "
        "k than one trained on the same programs.",
        a=_lintseq(4, "parallel", "edits"),
        b=_lintseq(4, "parallel", "code"),
        command=_LINTSEQ_COMPOSED,
        note="Scored on composed eval tasks made of tinyeval's functions, not on tinyeval; "
        "its answers (~200 tokens) run past the base model's pretraining blocks "
        "(base_model.block_size).",
        caveat=edits_caveat,
    ),
    Claim(
        id="code-helps-english",
        source="E",
        sentence="A quarter of code in pretraining lowers held-out English bits per byte "
        "against no code.",
        a=_share(0.25, ENGLISH, "English bits/byte at 0.25"),
        b=_share(0.0, ENGLISH, "English bits/byte at 0"),
        direction=-1,
        pair_by=("base_model.seed",),
        command=_MIXTURE,
    ),
    Claim(
        id="code-helps-instructions",
        source="E",
        sentence="A quarter of code in pretraining raises instruction following against no "
        "code (held-out instructions: arguments no corpus holds, exact match).",
        a=_share(0.25, INSTRUCTIONS, "held-out instructions at 0.25"),
        b=_share(0.0, INSTRUCTIONS, "held-out instructions at 0"),
        pair_by=("base_model.seed",),
        command=_MIXTURE,
        note="the instructions are the corpus's five kinds on arguments held out of every "
        "corpus (heldout_instructions), so they test the rule, not recall; the prompts "
        "repeat few distinct held-out arguments (41 at the default share 0.25).",
    ),
    Claim(
        id="quarter-code-best",
        source="E",
        sentence="About 25% code is the best share for non-code skill (English bits per "
        "byte), against its neighbours on the grid.",
        kind="optimum",
        a=_share(0.25, ENGLISH, "English bits/byte at 0.25"),
        neighbours=(
            _share(0.0, ENGLISH, "English bits/byte at 0"),
            _share(0.5, ENGLISH, "English bits/byte at 0.5"),
        ),
        direction=-1,
        pair_by=("base_model.seed",),
        command=_MIXTURE,
        note="a grid of 0, 0.25, 0.5 cannot place an optimum between its points.",
    ),
    Claim(
        id="code-in-cooldown",
        source="E",
        sentence="Code in a final cooldown phase of pretraining adds to non-code skill: "
        "a quarter of code in the last 20% of the steps (the tail of the cosine schedule) "
        "lowers held-out English bits per byte against a text-only cooldown of the same "
        "steps, both after the same main phase at a quarter of code.",
        a=_share(0.25, ENGLISH, "cooldown with code", **COOLDOWN, cooldown_code_share=0.25),
        b=_share(0.25, ENGLISH, "text-only cooldown", **COOLDOWN, cooldown_code_share=0.0),
        direction=-1,
        pair_by=("base_model.seed",),
        command=_COOLDOWN,
        note="the source compares cooldown with code against cooldown without code, so b "
        "is the text-only cooldown; both arms train the same steps on corpora of the same "
        "size.",
    ),
    Claim(
        id="balanced-then-text",
        source="E",
        sentence="A balanced code/text mix continued mostly on text is best overall, "
        "on non-code skill: half code for the first half of the steps, then a tenth of code, "
        "gives lower held-out English bits per byte than every single mixture of the grid.",
        kind="optimum",
        a=_share(0.5, ENGLISH, "balanced then text", **BALANCED_THEN_TEXT),
        neighbours=(
            _share(0.0, ENGLISH, "English bits/byte at 0"),
            _share(0.25, ENGLISH, "English bits/byte at 0.25"),
            _share(0.5, ENGLISH, "English bits/byte at 0.5"),
        ),
        direction=-1,
        pair_by=("base_model.seed",),
        command=_BALANCED_THEN_TEXT,
        note="'overall' holds only where this row and balanced-then-text-code both "
        "support; the single mixtures train the same steps on a corpus of the same size.",
    ),
    Claim(
        id="balanced-then-text-code",
        source="E",
        sentence="A balanced code/text mix continued mostly on text is best overall, "
        "on code: the same schedule gives a higher tinydev pass@1 of the base model than "
        "every single mixture of the grid.",
        kind="optimum",
        a=_share(0.5, TINYDEV, "balanced then text", **BALANCED_THEN_TEXT),
        neighbours=(
            _share(0.0, TINYDEV, "tinydev pass@1 at 0"),
            _share(0.25, TINYDEV, "tinydev pass@1 at 0.25"),
            _share(0.5, TINYDEV, "tinydev pass@1 at 0.5"),
        ),
        pair_by=("base_model.seed",),
        command=_BALANCED_THEN_TEXT,
        note="run-level only: base_model keeps no per-task verdicts (base_model.eval_tasks "
        "tasks, eval_samples samples at T = 0.8).",
    ),
    Claim(
        id="lean-beats-original",
        source="C",
        sentence="Pretraining on lean (refined) text gives lower held-out loss at equal "
        "tokens than the original text (held-out lean text, bits per byte).",
        a=_corpus("lean", ("heldout_bpb", "lean_text"), "lean-trained, lean text bits/byte"),
        b=_corpus("original", ("heldout_bpb", "lean_text"), "original-trained, lean text"),
        direction=-1,
        pair_by=("base_model.seed",),
        command=_TINYHELEN,
        note="offline, the lean text is the world's own generator: this tests lean data, "
        "not an LLM's refinement; it is scored on lean text, the lean model's own kind of "
        "text: results/tinyhelen/ also scores held-out original text.",
    ),
    Claim(
        id="lean-follows-instructions",
        source="C",
        sentence="A tiny model pretrained on lean text follows instructions better than one "
        "pretrained on the original text (held-out instructions, lean form, exact match).",
        a=_corpus(
            "lean", ("instructions_heldout", "lean_form"), "lean-trained, held-out instructions"
        ),
        b=_corpus(
            "original",
            ("instructions_heldout", "lean_form"),
            "original-trained, held-out instructions",
        ),
        direction=1,
        pair_by=("base_model.seed",),
        command=_TINYHELEN,
        note="the instructions are on arguments kept out of both corpora "
        "(heldout_instructions), so they test the rule, not recall.",
    ),
)

SOURCES = {
    "A": "K specialists",
    "B": "curriculum DPO",
    "C": "TinyHelen",
    "D": "LintSeq",
    "E": "To code or not to code",
}
