"""The pretraining corpus: tiny-world code mixed with English, `code_share` code by characters.

Code documents are whole functions of the *train* split, in HumanEval form (signature,
docstring, body), drawn with replacement from the `code` given; English documents come from
`codealign.tinyworld.text`. The pool and eval splits never enter the corpus.

A share of the code characters (`edit_share`) is the same functions written as LintSeq
edit sequences: unified diffs joined by the separator line, as `codealign.edits.lintseq` renders
training targets. Real pretraining data holds patches and a real base model has seen
diff syntax; without them the tiny model's `@`, `+` and separator tokens keep their
random initial embeddings, and a LoRA adapter, which leaves the embeddings frozen, cannot
make them likely enough for sampling: an edits model tuned on such a base decodes
greedily but fails nearly every sample at T = 0.8.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from codealign.io import read_jsonl, require_fields
from codealign.tinyworld.text import InstructionSplit, english_document

# The lintseq params that shape an edit-sequence document (and so the corpus).
EDIT_FORMAT = ("separator", "context", "linter", "max_lines")


def make_corpus(
    code: Sequence[str],
    code_share: float,
    n_chars: int,
    seed: int | str,
    edits: Sequence[str] = (),
    edit_share: float = 0.0,
    split: InstructionSplit | None = None,
) -> list[dict[str, str]]:
    """Documents `{"kind": "code"|"edits"|"text", "text": ...}` of about `n_chars` characters.

    Each next document is code when the code share so far is below `code_share`, so the
    mixture is exact up to one document at any prefix, and 0 and 1 give pure corpora. A
    code document is an edit sequence from `edits` while the edit characters are at most
    `edit_share` of the code characters so far (the same rule one level down). No English
    document states an instruction computation that `split` holds out.
    """
    if not 0.0 <= code_share <= 1.0:
        raise ValueError(f"code_share must be in [0, 1], got {code_share}")
    if not 0.0 <= edit_share <= 1.0:
        raise ValueError(f"edit_share must be in [0, 1], got {edit_share}")
    if code_share > 0 and not code:
        raise ValueError("a corpus with code needs at least one code document")
    if code_share > 0 and edit_share > 0 and not edits:
        raise ValueError("a corpus with edit sequences needs at least one of them")
    rng = random.Random(seed)
    documents: list[dict[str, str]] = []
    code_chars = edit_chars = total = 0
    while total < n_chars:
        kind = "text"
        if code_share > 0 and (code_share == 1.0 or code_chars <= code_share * total):
            kind = "code"
            if edit_share > 0 and (edit_share == 1.0 or edit_chars <= edit_share * code_chars):
                kind = "edits"
        if kind == "text":
            text = english_document(rng, split)
        else:
            text = rng.choice(edits if kind == "edits" else code)
            code_chars += len(text)
            edit_chars += len(text) if kind == "edits" else 0
        documents.append({"kind": kind, "text": text})
        total += len(text)
    return documents


def edit_documents(code: Sequence[str], lintseq: Any, seed: int) -> list[str]:
    """Each distinct program of `code` as one LintSeq edit sequence in `lintseq`'s format
    (separator, context, linter, max_lines); programs it cannot sample are left out."""
    from codealign.edits.lintseq import build_split

    records = [{"id": f"corpus/{i}", "code": p} for i, p in enumerate(dict.fromkeys(code))]
    one = replace(lintseq, samples=1)
    return [r["target"] for r in build_split(records, one, seed, "corpus", progress=False).records]


def pretraining_corpus(
    code: Sequence[str],
    base: Any,
    lintseq: Any,
    seed: int,
    split: InstructionSplit | None = None,
) -> list[dict]:
    """The corpus `base_model` pretrains on, from its params (`base_model`, the edit
    format of `lintseq`, and `split` from `heldout_instructions`): the one place that
    builds it, so that `base_model_eval` holds out exactly what training did not see.

    With a phase schedule (`base_model.continue_fraction`, `cooldown_fraction`), the
    corpus is one `make_corpus` per phase, in phase order, each of its phase's share of
    `corpus_chars` at its phase's code share, from the same code and the same English
    generator on its own random stream (`<seed>/<phase>`); every document names its
    `phase`. Without one, it is the single corpus it always was."""
    phases = base.phases()
    if len(phases) == 1:
        edits = edit_documents(code, lintseq, seed) if base.code_share and base.edit_share else []
        return make_corpus(
            code, base.code_share, base.corpus_chars, seed, edits, base.edit_share, split
        )
    with_code = any(phase.code_share for phase in phases)
    edits = edit_documents(code, lintseq, seed) if with_code and base.edit_share else []
    documents = []
    for phase in phases:
        part = make_corpus(
            code,
            phase.code_share,
            phase.corpus_chars,
            f"{seed}/{phase.name}",
            edits,
            base.edit_share,
            split,
        )
        documents.extend({**d, "phase": phase.name} for d in part)
    return documents


def read_code(path: str | Path) -> list[tuple[str, str]]:
    """(prompt, canonical_solution) of every task of a tiny-world/HumanEval JSONL file."""
    pairs = []
    for lineno, record in enumerate(read_jsonl(path), start=1):
        require_fields(record, {"prompt": str, "canonical_solution": str}, f"{path}:{lineno}")
        pairs.append((record["prompt"], record["canonical_solution"]))
    return pairs


def corpus_from_file(
    train_file: str | Path,
    base: Any,
    lintseq: Any,
    seed: int,
    held_out: Sequence[str | Path] = (),
    split: InstructionSplit | None = None,
) -> list[dict]:
    """`pretraining_corpus` of the functions of a train split file (prompt + solution).

    Raises CodealignError when one of them is a renamed copy (AST key) of a task of the
    `held_out` files (tinyeval, tinydev): every code and edit document of the corpus is one
    of these functions, and a held-out function must never be pretrained on. It fails
    rather than filters: the tiny world is disjoint by construction, so a twin is a bug
    in the split, and dropping it silently would change the corpus under the same params.
    """
    from codealign.curation.dedup import read_eval_jsonl, require_no_twins

    code = [prompt + solution for prompt, solution in read_code(train_file)]
    tasks = [task for path in held_out for task in read_eval_jsonl(path)]
    require_no_twins(code, tasks, f"{train_file} (the pretraining corpus's code)")
    return pretraining_corpus(code, base, lintseq, seed, split)
