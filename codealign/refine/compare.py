"""Base models pretrained on original vs lean text at equal tokens (TinyHelen's claim).

For each seed, two tiny Llamas with `base_model`'s architecture, batch and steps are
pretrained, one on each corpus: the English documents of the `refine` stage (original,
or lean) mixed with the same tiny-world code at `base_model.code_share` (no edit
sequences), so the only difference is the English. Both see the same number of training
tokens (steps x batch x block size). With `tinyhelen.tokenizer: shared` (the default) both
use one BPE tokenizer trained on the two corpora together, so a token is the same unit
for both and the untrained models score the same; with `own` each trains its own on its
corpus, as `base_model` does, and the lean corpus's tokenizer, fitted to fewer words,
packs more bytes into a token (so at equal tokens the lean model reads more text, and
even its untrained model scores lower). Scores are in bits per byte either way.

Measured per model:

- learning efficiency: bits per byte on held-out text at `curve_points` points during
  training (and before it), against training tokens seen. The held-out text is scored in
  two forms: lean (stories and facts from the world's generator, on a stream of their own,
  none of which occurs in the lean training corpus), so that both models are scored on
  the same target, and original (the same documents with the original corpus's noise);
- instruction following: held-out instructions answered greedily, exact match of the
  answer (`codealign.pretraining.base_model_eval`), asked in the lean form and in the
  original form (synonyms and filler in the question; the answer is the same). They are
  on arguments that neither corpus holds (`heldout_instructions` params: the refine
  stage writes both corpora under that split), so they test the rule, not recall;
- code: greedy pass@1 and sampled pass@k on the first `eval_tasks` tinyeval tasks,
  per task.

Per-item scores (bits per byte per held-out document, correctness per instruction, pass
rate per task) are kept so that a paired comparison can resample seeds and items.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError

log = logging.getLogger(__name__)

CORPORA = ("original", "lean")


def mix(code: Sequence[str], english: Sequence[str], code_share: float, seed: int) -> list[str]:
    """Every English document in order, with code documents (drawn with replacement,
    seeded) put in whenever the code share of the characters so far is at most
    `code_share`, as `codealign.tinyworld.corpus.make_corpus` mixes."""
    if code_share > 0 and not code:
        raise CodealignError("a corpus with code needs at least one code document")
    rng = random.Random(seed)
    documents: list[str] = []
    code_chars = total = 0
    remaining = list(english)
    remaining.reverse()
    while remaining:
        if code_share > 0 and (code_share == 1.0 or code_chars <= code_share * total):
            text = rng.choice(code)
            code_chars += len(text)
        else:
            text = remaining.pop()
        documents.append(text)
        total += len(text)
    return documents


def shared_tokenizer(code: Sequence[str], corpora: Sequence[Sequence[str]], params: Any):
    """One BPE tokenizer for both corpora: trained on their documents together, each mixed
    with its code as it will be pretrained on."""
    from codealign.pretraining.base_model import train_tokenizer

    base = params["base_model"]
    texts = [t for english in corpora for t in mix(code, english, base.code_share, params.seed)]
    return train_tokenizer(texts, base.vocab_size)


def heldout_targets(
    lean_corpus: Sequence[str], n: int, salt: str, rates: Any, split: Any = None
) -> dict[str, list[str]]:
    """`n` held-out stories and facts in lean form (none in `lean_corpus`, drawn under the
    corpora's instruction `split`) and the same documents in original form."""
    from codealign.pretraining.base_model_eval import heldout_english
    from codealign.tinyworld.original import original_of

    lean, _skipped = heldout_english(n, 0, salt, frozenset(lean_corpus), split)
    original = [
        original_of(doc, random.Random(f"{salt}/noise/{i}"), rates)[0] for i, doc in enumerate(lean)
    ]
    return {"lean": lean, "original": original}


def heldout_instructions(n: int, salt: str, rates: Any, split: Any) -> list[dict[str, str]]:
    """`n` held-out instructions, on arguments `split` (an InstructionSplit) keeps out of
    both corpora: the lean question, the original question, the answer."""
    from codealign.pretraining.base_model_eval import heldout_instructions as pairs
    from codealign.tinyworld.original import original_instruction

    return [
        {
            "lean": question,
            "original": original_instruction(question, random.Random(f"{salt}/ask/{i}"), rates),
            "answer": answer,
        }
        for i, (question, answer) in enumerate(pairs(n, 0, salt, split))
    ]


def per_document_bpb(model, tokenizer, texts: Sequence[str], batch_size: int) -> list[float]:
    """Bits per byte of each held-out document, read as a corpus document."""
    from codealign.pretraining.base_model_eval import score_texts

    return [
        score_texts(model, tokenizer, [("", text)], batch_size)["bits_per_byte"] for text in texts
    ]


def curve_callback(tokenizer, targets: dict[str, list[str]], steps: set[int], tokens_per_step, bs):
    """A TrainerCallback that scores the held-out targets at each of `steps` (and at 0)."""
    from transformers import TrainerCallback

    from codealign.pretraining.base_model_eval import score_texts

    class HeldoutCurve(TrainerCallback):
        def __init__(self) -> None:
            self.points: list[dict[str, Any]] = []

        def score(self, model, step: int) -> None:
            was_training = model.training
            model.eval()
            point: dict[str, Any] = {"step": step, "tokens": step * tokens_per_step}
            for name, texts in targets.items():
                items = [("", text) for text in texts]
                point[name] = score_texts(model, tokenizer, items, bs)["bits_per_byte"]
            self.points.append(point)
            if was_training:
                model.train()

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.score(model, 0)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in steps:
                self.score(model, state.global_step)

    return HeldoutCurve()


def curve_steps(total: int, points: int) -> set[int]:
    """`points` steps spread evenly up to `total`, the last one included."""
    return {max(1, round(total * (i + 1) / points)) for i in range(points)}


def pretrain_scored(
    base: Any,
    documents: Sequence[str],
    out_dir: Path,
    seed: int,
    targets: dict[str, list[str]],
    points: int,
    batch_size: int,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """`base_model`'s pretraining (tokenizer, packing, model, Trainer) with the held-out
    curve; saves the model and tokenizer to `out_dir`. Without `tokenizer`, one is
    trained on `documents`."""
    import torch
    from datasets import Dataset
    from transformers import (
        DataCollatorForLanguageModeling,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from codealign.pretraining.base_model import build_model, pack, train_tokenizer

    set_seed(seed)
    if tokenizer is None:
        tokenizer = train_tokenizer(documents, base.vocab_size)
    blocks = pack(tokenizer, documents, base.block_size)
    if not blocks:
        raise CodealignError(
            f"the corpus is too small for one block of {base.block_size} tokens (refine.documents)"
        )
    model = build_model(base, tokenizer, seed)
    tokens_per_step = base.batch_size * base.block_size
    curve = curve_callback(
        tokenizer, targets, curve_steps(base.steps, points), tokens_per_step, batch_size
    )
    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        max_steps=base.steps,
        per_device_train_batch_size=base.batch_size,
        learning_rate=base.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=base.warmup_steps,
        weight_decay=base.weight_decay,
        logging_steps=max(1, base.steps // 20),
        save_strategy="no",
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"input_ids": blocks}),
        data_collator=DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False),
        callbacks=[curve],
    )
    trainer.remove_callback(PrinterCallback)  # the loss goes to the record, not stdout
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    tokens_seen = base.steps * tokens_per_step
    return {
        "tokens_seen": tokens_seen,
        "corpus_tokens": len(blocks) * base.block_size,
        "epochs": tokens_seen / (len(blocks) * base.block_size),
        "final_train_loss": float(losses[-1]) if losses else math.nan,
        "curve": curve.points,
    }


def code_scores(
    model_dir: Path, problems: Sequence[dict], n: int, temperature: float, max_new: int, seed: int
) -> dict[str, Any]:
    """Greedy pass@1, sampled pass@k (k = 1 and n) and each task's sampled pass rate."""
    from collections import defaultdict

    from codealign.evaluation.evaluate import Benchmark, evaluate
    from codealign.evaluation.policy import SamplingSpec, load_policy, resolve_policy
    from codealign.execution import Limits, Sandbox

    benchmark = Benchmark("tinyeval", list(problems), [p["prompt"] for p in problems], False)
    policy = load_policy(resolve_policy(model_dir, plain="base"))
    with Sandbox(workers=2, limits=Limits(timeout=5.0)) as sandbox:
        greedy = evaluate(
            policy, benchmark, SamplingSpec(1, 0.0, max_new, 64, seed), sandbox, progress=False
        )
        sampled = evaluate(
            policy,
            benchmark,
            SamplingSpec(n, temperature, max_new, 64, seed),
            sandbox,
            ks=sorted({1, n}),
            progress=False,
        )
    per_task: dict[str, list[bool]] = defaultdict(list)
    for verdict in sampled.verdicts:
        per_task[verdict["task_id"]].append(bool(verdict["passed"]))
    return {
        "pass@1_greedy": greedy.metrics["pass@1"],
        **{k: v for k, v in sampled.metrics.items() if k.startswith("pass@")},
        "tasks": [p["task_id"] for p in problems],
        "task_pass_rate": [sum(per_task[p["task_id"]]) / n for p in problems],
    }


def run_one(
    corpus: str,
    english: Sequence[str],
    code: Sequence[str],
    params: Any,
    seed: int,
    targets: dict[str, list[str]],
    instructions: Sequence[dict[str, str]],
    problems: Sequence[dict],
    work_dir: Path,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Pretrain and score one model on one corpus at one seed (with `tokenizer`, or its own)."""
    from codealign.lm.generation import load_causal_lm
    from codealign.pretraining.base_model_eval import answer_instructions, answer_of

    base, th = params["base_model"], params["tinyhelen"]
    documents = mix(code, english, base.code_share, params.seed)
    log.info("%s, seed %d: %d documents", corpus, seed, len(documents))
    out_dir = work_dir / f"{corpus}-{seed}"
    result = pretrain_scored(
        base, documents, out_dir, seed, targets, th.curve_points, th.batch_size, tokenizer
    )
    result["english_chars"] = sum(len(t) for t in english)
    tokenizer, model = load_causal_lm(out_dir / "model")
    result["heldout_bpb"] = {
        name: per_document_bpb(model, tokenizer, texts, th.batch_size)
        for name, texts in targets.items()
    }
    if instructions:
        answers = {}
        for form in CORPORA:
            completions = answer_instructions(
                model, tokenizer, [i[form] for i in instructions], params["base_model_eval"]
            )
            answers[form] = [
                int(answer_of(c) == i["answer"])
                for i, c in zip(instructions, completions, strict=True)
            ]
        result["instructions_correct"] = answers
    if problems:
        result["code"] = code_scores(
            out_dir / "model",
            problems,
            th.eval_samples,
            th.eval_temperature,
            base.max_new_tokens,
            seed,
        )
    return result
