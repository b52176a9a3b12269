"""The base model: a tiny Llama pretrained on the tiny world, or any existing causal LM.

With `base_model.name: tiny`, the stage trains a byte-level BPE tokenizer on the
corpus, builds a small `LlamaForCausalLM` from a config and pretrains it with
transformers' Trainer for a fixed number of steps (never a time budget), so the same
params and seed give the same weights on CPU. Documents are packed into blocks of
`block_size` tokens separated by the end-of-sequence token. The saved dir is an
ordinary HF model dir with a chat template, loadable by `AutoModelForCausalLM`.

Any other name (a hub id or a local path) is loaded and saved as it is; a hub id loads
from the directory the `fetch` stage filled (models/hub/<org>--<name>), never the network.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.params.pretraining import BaseModelParams

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>")

# The `{% generation %}` markers let TRL compute the loss on the answer only.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n"
    "{% generation %}{{ message['content'] }}<|eos|>{% endgeneration %}\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    # A newline is always its own token. Merged with the next line's indentation, a
    # HumanEval prompt (which ends in a newline) would end in a token never seen
    # mid-function, and the model would predict the end of the document.
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def pack(tokenizer, documents: Sequence[str], block_size: int) -> list[list[int]]:
    """Token blocks of exactly `block_size`: documents joined by EOS, the tail dropped."""
    stream: list[int] = []
    for ids in tokenizer(list(documents), add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(tokenizer.eos_token_id)
    usable = len(stream) - len(stream) % block_size
    return [stream[i : i + block_size] for i in range(0, usable, block_size)]


def phase_rows(
    blocks: Sequence[Sequence[list[int]]],
    steps: Sequence[int],
    batch_size: int,
    seed: int,
) -> list[list[int]]:
    """The training rows of a phase schedule, in the order they are trained on: for each
    phase, `steps * batch_size` of its own `blocks`, epoch after epoch of a seeded
    permutation (so every block is seen before any repeats). Row r is trained on at step
    r // batch_size: the first phase's steps see only its blocks, and so on."""
    import random

    rows: list[list[int]] = []
    for index, (phase_blocks, phase_steps) in enumerate(zip(blocks, steps, strict=True)):
        rng = random.Random(f"{seed}/phase{index}")
        need = phase_steps * batch_size
        taken: list[list[int]] = []
        while len(taken) < need:
            order = list(range(len(phase_blocks)))
            rng.shuffle(order)
            taken.extend(phase_blocks[i] for i in order[: need - len(taken)])
        rows.extend(taken)
    return rows


def build_model(params: BaseModelParams, tokenizer, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads,
        max_position_embeddings=max(512, params.block_size),
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def pretrain(
    params: BaseModelParams,
    documents: Sequence[str],
    out_dir: Path,
    checkpoint_dir: Path,
    live_dir: Path,
    seed: int,
    phase_documents: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Train tokenizer and model on `documents`; save both to `out_dir`; return stats.

    With `phase_documents` (the documents of each of `params.phases()`, in order; their
    concatenation is `documents`), the tokenizer is trained on all of them, each phase
    is packed on its own, and its steps train on its blocks alone, in the order of
    `phase_rows` (no shuffling across phases); stats gain `phases`."""
    import torch
    from datasets import Dataset
    from dvclive import Live
    from transformers import (
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from codealign.lm.checkpoints import last_checkpoint
    from codealign.lm.training import CurveLogger, logging_interval, overlay_curves

    set_seed(seed)
    tokenizer = train_tokenizer(documents, params.vocab_size)
    phases = params.phases() if phase_documents is not None else []
    if phase_documents is not None:
        per_phase = [pack(tokenizer, docs, params.block_size) for docs in phase_documents]
        for phase, phase_blocks in zip(phases, per_phase, strict=True):
            if not phase_blocks:
                raise CodealignError(
                    f"base_model.corpus_chars is too small for one block of "
                    f"{params.block_size} tokens in the {phase.name} phase"
                )
        blocks = [block for phase_blocks in per_phase for block in phase_blocks]
    else:
        blocks = pack(tokenizer, documents, params.block_size)
    if not blocks:
        raise CodealignError(
            f"base_model.corpus_chars is too small for one block of {params.block_size} tokens"
        )
    log.info(
        "corpus: %d documents -> %d blocks of %d tokens",
        len(documents),
        len(blocks),
        params.block_size,
    )
    model = build_model(params, tokenizer, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model: %.2fM parameters", n_params / 1e6)
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=params.steps,
        per_device_train_batch_size=params.batch_size,
        learning_rate=params.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=params.warmup_steps,
        weight_decay=params.weight_decay,
        logging_steps=logging_interval(params.steps // 100, params.save_steps),
        save_steps=params.save_steps,
        save_total_limit=2,
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer_class = Trainer
    if phase_documents is not None:
        rows = phase_rows(per_phase, [phase.steps for phase in phases], params.batch_size, seed)
        dataset = Dataset.from_dict({"input_ids": rows})
        trainer_class = _in_order_trainer()
    else:
        dataset = Dataset.from_dict({"input_ids": blocks})
    collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False)
    resume = last_checkpoint(checkpoint_dir)
    # resume=False: a resumed run replays its earlier rows (codealign.lm.training).
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=False) as live:
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=collator,
            callbacks=[CurveLogger(live)],
        )
        if resume:
            log.info("resuming from %s", resume)
        result = trainer.train(resume_from_checkpoint=resume)
    overlay_curves(live_dir)  # the curves as dvc.yaml's `plots:` draw them
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    tokens_seen = params.steps * params.batch_size * params.block_size
    stats: dict[str, Any] = {
        "final_loss": float(losses[-1]) if losses else math.nan,
        "train_runtime_s": float(result.metrics.get("train_runtime", math.nan)),
        "tokens_seen": tokens_seen,
        "parameters": n_params,
        "epochs": tokens_seen / (len(blocks) * params.block_size),
        "resumed_from": Path(resume).name if resume else None,
    }
    if phase_documents is not None:
        stats["phases"] = [
            {
                **phase.to_dict(),
                "blocks": len(phase_blocks),
                "epochs": phase.steps * params.batch_size / len(phase_blocks),
            }
            for phase, phase_blocks in zip(phases, per_phase, strict=True)
        ]
    return stats


class _InOrder:
    """A Trainer that takes its rows in dataset order: a phase schedule orders them."""

    def _get_train_sampler(self, train_dataset=None):
        from torch.utils.data import SequentialSampler

        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)


def _in_order_trainer():
    from transformers import Trainer

    return type("InOrderTrainer", (_InOrder, Trainer), {})


def save_existing(name: str, out_dir: Path, dtype: str = "float32") -> dict[str, Any]:
    """Load a hub id or local path and save it as an ordinary model dir in `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codealign.lm.hub import local_model

    path = local_model(name, "base_model.name")  # a hub id: the fetch stage's directory
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, dtype), local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise CodealignError(f"base_model.name: cannot load '{name}': {exc}") from None
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"parameters": sum(p.numel() for p in model.parameters())}
