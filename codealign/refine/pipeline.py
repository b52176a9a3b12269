"""The `refine` stage's work: the original corpus, its refinement, and both measured."""

from __future__ import annotations

from collections import Counter
from typing import Any

from codealign.errors import CodealignError
from codealign.refine.measure import measure
from codealign.refine.refine import make_refiner, refine
from codealign.tinyworld.original import NOISE_KINDS, lexicon, original_corpus
from codealign.tinyworld.text import InstructionSplit


def run_refine(params: Any, progress: bool = True) -> tuple[list[dict], list[dict], dict]:
    """(original documents, lean documents, metrics) for a whole params file
    (sections `refine`, `heldout_instructions` and, for hf/openai, `synth`; the master
    `seed`)."""
    p, heldout = params["refine"], params["heldout_instructions"]
    split = InstructionSplit(heldout.share, heldout.salt)
    original = list(original_corpus(p.documents, params.seed, p, split))
    backend = make_refiner(p.backend, params["synth"], split)
    try:
        lean, stats = refine(
            original,
            backend,
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            seed=params.seed,
            progress=progress,
        )
    finally:
        backend.close()
    if not lean:
        reasons = ", ".join(f"{k}: {v}" for k, v in stats["rejected"].items())
        raise CodealignError(
            f"refine.backend {p.backend}: none of the {len(original)} answers parsed as a "
            f"refinement ({reasons}); the prompts ask for 'EDITED: ... <end>' and "
            "'... <split> ... <end>' (docs/tinyhelen.md)"
        )
    words = lexicon()
    injected: Counter = Counter()
    for document in original:
        injected.update(document["noise"])
    before = measure(original, words, p.measure_words)
    after = measure(lean, words, p.measure_words)
    metrics = {
        "backend": p.backend,
        "seed": params.seed,
        "lexicon": len(words),
        "noise_injected": {kind: injected[kind] for kind in NOISE_KINDS},
        "original": before,
        "lean": after,
        "vocabulary_ratio": after["vocabulary"] / before["vocabulary"]
        if before["vocabulary"]
        else None,
        "refine": stats,
    }
    return original, lean, metrics
