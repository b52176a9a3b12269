"""The code-share ablation: what code in the pretraining mixture does to English and to code.

`measure` scores one base model dir on four things that `base_model.code_share` may move:

- English: held-out tiny-world stories and facts (`english_document`), scored as they
  appear in the corpus (after the end-of-sequence token that separates documents).
- Code: the canonical solutions of tinydev (the dev set), each given its prompt
  (signature and docstring), so the score is that of the function body alone. tinydev
  never enters the corpus, which draws its code from the train split.
- English instruction following, held out: instructions on arguments that no corpus
  holds (`heldout_instructions` params, codealign.tinyworld.text.InstructionSplit: a
  salted share of each instruction kind's arguments, kept out of the corpus generator's
  instructions and of every story or fact that states the same computation), so a model
  can answer only by applying the instruction's rule. Written as the corpus writes them
  (`Instruction: ...\\nAnswer:`), answered greedily; a hit is an exact match of the first
  line of the answer. `instructions_heldout.in_corpus` counts prompts whose pair occurs
  in the corpus: 0 by construction. `instructions_seen` scores the same way instructions
  drawn as the corpus draws them, nearly all of which occur in it: recall, kept beside
  the held-out score to show the gap; findings use the held-out one.
- Code pass@1 after SFT is not measured here: `evaluate` already scores the K = 1 model,
  and the collector (`codealign mixture`, in codealign.sweeps.mixture) reads it from
  metrics/evaluate.json.

Perplexity is per token, but every code share trains its own BPE tokenizer, so tokens
differ between the models compared; bits per byte (the same summed NLL over the UTF-8
bytes of the text) does not depend on the tokenizer, and is what the plot shows.

Held out, and what that means here. The held-out English and instructions come from
`random.Random` streams seeded with the string `"<salt>/english/<seed>"` (and
`.../instructions/...`). The corpus seeds its stream with the integer `seed`, and a
string seed is hashed (SHA-512) into the generator's key, so the two streams are
unrelated. A separate stream does not make documents new, though: the tiny world's
English comes from few templates. So any held-out English document that occurs verbatim
in the training corpus is skipped and counted (the stage rebuilds the corpus, which is
deterministic), and instruction documents are left out of the English score altogether,
since nearly every instruction the corpus may hold (165 argument keys over the five
kinds, less the held-out ones) occurs in a corpus of any useful size. The held-out
English is drawn under the same instruction split as the corpus, so it states no
held-out computation either.

Scoring runs on the CPU, like the rest of base-model evaluation (codealign.evaluation.evaluate).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.params.pretraining import BaseModelEvalParams, HeldoutInstructionsParams
from codealign.tinyworld.corpus import corpus_from_file
from codealign.tinyworld.text import (
    InstructionSplit,
    english_document,
    heldout_instruction,
    instruction_kind_key,
    instruction_pair,
)

log = logging.getLogger(__name__)

INSTRUCTION_PREFIX = "Instruction: "


# --- The held-out sets ------------------------------------------------------------------


def _stream(salt: str, what: str, seed: int) -> random.Random:
    # A string seed is hashed into the key: never the stream of the corpus's integer seed.
    return random.Random(f"{salt}/{what}/{seed}")


def instruction_prompt(question: str) -> str:
    """An instruction as the corpus writes it, up to where the answer starts."""
    # The corpus has "Answer: <answer>"; ending at the colon keeps the space with the
    # answer's first token, as the tokenizer saw it in training.
    return f"{INSTRUCTION_PREFIX}{question}\nAnswer:"


def heldout_english(
    n: int,
    seed: int,
    salt: str,
    seen: Collection[str] = frozenset(),
    split: InstructionSplit | None = None,
) -> tuple[list[str], int]:
    """`n` English documents (no instruction documents) not in `seen`, and how many were
    skipped; drawn under the corpus's instruction `split`.

    Raises CodealignError if the draws keep landing in `seen` (a corpus that holds
    nearly all of the tiny world's English).
    """
    rng = _stream(salt, "english", seed)
    documents: list[str] = []
    skipped = 0
    while len(documents) < n:
        document = english_document(rng, split)
        if document.startswith(INSTRUCTION_PREFIX):
            continue
        if document in seen:
            skipped += 1
            if skipped > 10 * n + 1000:
                raise CodealignError(
                    f"cannot draw {n} held-out English documents: "
                    f"{skipped} of the draws so far occur in the training corpus"
                )
            continue
        documents.append(document)
    return documents, skipped


def heldout_instructions(
    n: int, seed: int, salt: str, split: InstructionSplit
) -> list[tuple[str, str]]:
    """`n` (instruction, answer) pairs on arguments `split` holds out of every corpus.

    Raises CodealignError when `split` holds nothing out and `n` asks for some.
    """
    if n and not split.share:
        raise CodealignError(
            "heldout_instructions.share is 0: no instruction argument is held out of the "
            "corpus, so there is no held-out instruction test (ask for 0 instructions)"
        )
    rng = _stream(salt, "heldout-instructions", seed)
    return [heldout_instruction(rng, split) for _ in range(n)]


def seen_instructions(
    n: int, seed: int, salt: str, split: InstructionSplit | None = None
) -> list[tuple[str, str]]:
    """`n` (instruction, answer) pairs drawn as the corpus draws them (under `split`):
    nearly all occur in a corpus of any useful size, so they measure recall."""
    rng = _stream(salt, "instructions", seed)
    return [instruction_pair(rng, split) for _ in range(n)]


def corpus_documents(
    train_file: str | Path,
    base: Any,
    lintseq: Any,
    seed: int,
    split: InstructionSplit | None = None,
):
    """The set of documents of the corpus `base_model` pretrains on (same inputs, same corpus)."""
    corpus = corpus_from_file(train_file, base, lintseq, seed, split=split)
    return frozenset(d["text"] for d in corpus)


# --- Scoring ----------------------------------------------------------------------------


def score_texts(
    model, tokenizer, items: Sequence[tuple[str, str]], batch_size: int, desc: str = "scoring"
) -> dict[str, Any]:
    """Summed NLL of each `text` given `context`, for (context, text) items.

    Each item is read as a corpus document: end-of-sequence token, context, text, and
    the closing end-of-sequence token, which is scored with the text. Returns perplexity
    (exp of the token-weighted mean NLL), bits per byte of the text, and the counts.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    eos = tokenizer.eos_token_id
    if eos is None:
        raise CodealignError("the tokenizer has no end-of-sequence token to start documents with")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    limit = getattr(model.config, "max_position_embeddings", None)
    rows = []
    for context, text in items:
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        prefix = [eos, *context_ids]
        target = tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
        if limit and len(prefix) + len(target) > limit:
            raise CodealignError(
                f"a document of {len(prefix) + len(target)} tokens exceeds the model's "
                f"{limit} positions: {text[:40]!r}..."
            )
        rows.append((prefix, target))
    total_nll, n_tokens = 0.0, 0
    with torch.no_grad():
        for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", leave=False):
            batch = rows[start : start + batch_size]
            width = max(len(p) + len(t) for p, t in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (prefix, target) in enumerate(batch):
                ids = prefix + target
                input_ids[i, : len(ids)] = torch.tensor(ids)
                labels[i, len(prefix) : len(ids)] = torch.tensor(target)
                attention[i, : len(ids)] = 1
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            total_nll += F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
                reduction="sum",
            ).item()
            n_tokens += int((labels[:, 1:] != -100).sum())
    n_bytes = sum(len(text.encode("utf-8")) for _, text in items)
    return {
        "perplexity": math.exp(total_nll / n_tokens) if n_tokens else None,
        "bits_per_byte": total_nll / math.log(2) / n_bytes if n_bytes else None,
        "documents": len(items),
        "tokens": n_tokens,
        "bytes": n_bytes,
    }


def answer_of(completion: str) -> str:
    """The answer a greedy continuation gives: its first line, stripped."""
    return completion.split("\n", 1)[0].strip()


def instruction_accuracy(
    pairs: Sequence[tuple[str, str]],
    completions: Sequence[str],
    seen: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """Exact-match accuracy of `completions` against the answers of `pairs`, by
    instruction kind too, and `in_corpus`: how many of the pairs occur in `seen` as the
    corpus writes them."""
    hits = [
        answer_of(completion) == answer
        for (_, answer), completion in zip(pairs, completions, strict=True)
    ]
    by_kind: dict[str, dict[str, int]] = {}
    for (question, _), hit in zip(pairs, hits, strict=True):
        kind = by_kind.setdefault(instruction_kind_key(question)[0], {"correct": 0, "prompts": 0})
        kind["correct"] += hit
        kind["prompts"] += 1
    return {
        "accuracy": sum(hits) / len(pairs) if pairs else None,
        "correct": sum(hits),
        "prompts": len(pairs),
        "in_corpus": sum(f"{instruction_prompt(q)} {a}" in seen for q, a in pairs),
        "by_kind": dict(sorted(by_kind.items())),
    }


def answer_instructions(model, tokenizer, questions: Sequence[str], params: BaseModelEvalParams):
    """Greedy continuations of the instruction prompts, each started as a corpus document."""
    from codealign.lm.generation import generate

    start = tokenizer.eos_token or ""
    prompts = [start + instruction_prompt(q) for q in questions]
    outputs = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=params.max_new_tokens,
        batch_size=params.batch_size,
        desc="instructions",
    )
    return [texts[0] for texts in outputs]


def measure(
    model_dir: str | Path,
    code: Sequence[tuple[str, str]],
    params: BaseModelEvalParams,
    seed: int,
    seen: Collection[str] = frozenset(),
    split: InstructionSplit | None = None,
) -> dict[str, Any]:
    """English and code perplexity and English instruction accuracy of a base model dir.

    `code` holds (prompt, canonical_solution) pairs, the first `params.code_docs` of
    which are scored (all when 0); `seen` is the set of training-corpus documents: held-out
    English and code found in it are skipped and counted. `split` is the instruction split
    the corpus was written under (`heldout_instructions` params); the held-out instructions
    are on its held-out arguments (the default params' split when None).
    """
    if split is None:
        default = HeldoutInstructionsParams()
        split = InstructionSplit(default.share, default.salt)
    from codealign.lm.generation import load_causal_lm

    tokenizer, model = load_causal_lm(model_dir)
    english, english_seen = heldout_english(params.english_docs, seed, params.salt, seen, split)
    code_items = [(p, s) for p, s in code if p + s not in seen]
    code_seen = len(code) - len(code_items)
    if params.code_docs:
        code_items = code_items[: params.code_docs]
    if not code_items:
        raise CodealignError(
            f"no held-out code to score ({code_seen} of {len(code)} tasks occur in the corpus)"
        )
    log.info("scoring %d English and %d code documents", len(english), len(code_items))
    result: dict[str, Any] = {
        "english": {
            **score_texts(model, tokenizer, [("", d) for d in english], params.batch_size),
            "skipped_in_corpus": english_seen,
        },
        "code": {
            **score_texts(model, tokenizer, code_items, params.batch_size),
            "skipped_in_corpus": code_seen,
        },
    }
    heldout = heldout_instructions(params.instructions, seed, params.salt, split)
    seen_pairs = seen_instructions(params.instructions, seed, params.salt, split)
    leaked = sum(f"{instruction_prompt(q)} {a}" in seen for q, a in heldout)
    if leaked:
        raise CodealignError(
            f"{leaked} held-out instructions occur in the training corpus: it was not "
            "written under this instruction split (heldout_instructions params)"
        )
    completions = answer_instructions(
        model, tokenizer, [q for q, _ in heldout + seen_pairs], params
    )
    result["instructions_heldout"] = instruction_accuracy(
        heldout, completions[: len(heldout)], seen
    )
    result["instructions_seen"] = instruction_accuracy(
        seen_pairs, completions[len(heldout) :], seen
    )
    return result
