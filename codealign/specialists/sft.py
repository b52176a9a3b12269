"""Supervised fine-tuning of one LoRA adapter per cluster: the K specialists.

Each record `question, code` becomes a conversational prompt/completion pair (the
question as the user turn, the code as the assistant turn) rendered with the base
model's chat template, so TRL's `SFTTrainer` computes the loss on the answer only.
With `sft.target: edits` the assistant turn is the record's `target` instead: the
program as a LintSeq edit sequence (`codealign.edits.lintseq`, records of data/lintseq).
Every cluster gets its own adapter over the same frozen base model; K = 1 is plain
fine-tuning on all data (the baseline). The trainer checkpoints every
`sft.save_steps` in a `codealign.lm.checkpoints` directory, evaluates the loss on the
cluster's validation items (validation questions assigned to the nearest centroid)
at each checkpoint and at the end, and keeps the checkpoint with the lowest of them
(`load_best_model_at_end`). A cluster with no validation item keeps its last step.
A killed stage rerun with the same params and data resumes each adapter from its
last checkpoint; adapters that had finished only replay their saved best.

`build_configs` turns the `sft` params section into the three configs (`LoraConfig`,
`BitsAndBytesConfig` or None, `SFTConfig`). With `sft.quantization: nf4` it is the
paper's QLoRA recipe: NF4 4-bit base with `sft.compute_dtype` compute, paged AdamW
32-bit, gradient checkpointing; that path needs CUDA and bitsandbytes, and its
configs still build on CPU (tests do). With `none`, LoRA trains in full precision on
whatever device there is.

The stage writes `models/sft/adapter_<i>/` (each loadable by
`PeftModel.from_pretrained(base, path)`, plus `codealign.json` naming the base model
it was trained on), `centroids.npy` and `router.json`, the manifest
`codealign.specialists.routing.Router` serves from. Training curves of every adapter go to one
dvclive directory as `adapter_<i>/train/{loss,grad_norm,learning_rate}` and
`adapter_<i>/eval/eval_loss`, keyed by step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.evaluation import chat
from codealign.io import canonical_adapter_configs, is_main_process
from codealign.params.specialists import SFTParams
from codealign.specialists.adapters import (
    model_digest,
    write_adapter_meta,
    write_router,
)

log = logging.getLogger(__name__)
# The record field each `sft.target` trains the assistant turn on.
ANSWER_FIELDS = {"code": "code", "edits": "target"}
# The `source` of the seed sets' records (codealign.curation.seed), which synth and dedup keep.
SEED_SOURCES = ("seed_s1", "seed_s2")


# ---------------------------------------------------------------------------- configs


def lora_target(params: SFTParams) -> str | list[str]:
    modules = list(params.target_modules)
    return modules[0] if modules == ["all-linear"] else modules


def build_configs(
    params: SFTParams,
    output_dir: str | os.PathLike,
    seed: int,
    *,
    has_validation: bool = True,
    use_cpu: bool | None = None,
    max_steps: int = -1,
):
    """`(LoraConfig, BitsAndBytesConfig | None, SFTConfig)` for one adapter's run.

    `use_cpu` defaults to "no CUDA here". The QLoRA configs build anywhere; only
    training with them needs CUDA. A positive `max_steps` overrides `sft.epochs`
    (runs compared at an equal number of optimizer steps).
    """
    import torch
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import SFTConfig

    if use_cpu is None:
        use_cpu = not torch.cuda.is_available()
    lora = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=lora_target(params),
        bias="none",
        task_type="CAUSAL_LM",
    )
    compute = getattr(torch, params.compute_dtype)
    quantization = None
    if params.quantization == "nf4":
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute,
            # The method names NF4 with fp16 compute and no nested quantization.
            bnb_4bit_use_double_quant=False,
        )
    model_init: dict[str, Any] = {"dtype": params.compute_dtype}
    if quantization is not None:
        # bitsandbytes places 4-bit weights at load time: one whole copy per process.
        model_init["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    evaluate = "steps" if has_validation else "no"
    config = SFTConfig(
        output_dir=str(output_dir),
        model_init_kwargs=model_init,
        num_train_epochs=params.epochs,
        max_steps=max_steps,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.eval_batch_size,
        gradient_accumulation_steps=params.grad_accum,
        learning_rate=params.learning_rate,
        lr_scheduler_type=params.lr_scheduler,
        warmup_steps=params.warmup_ratio,
        max_grad_norm=params.max_grad_norm,
        weight_decay=params.weight_decay,
        optim=params.optimizer,
        activation_checkpointing=params.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False}
        if params.gradient_checkpointing
        else None,
        fp16=params.compute_dtype == "float16" and not use_cpu,
        bf16=params.compute_dtype == "bfloat16",
        max_length=params.max_length,
        packing=False,
        completion_only_loss=True,
        logging_steps=params.logging_steps,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        eval_strategy=evaluate,
        eval_steps=params.save_steps if has_validation else None,
        load_best_model_at_end=has_validation,
        metric_for_best_model="eval_loss" if has_validation else None,
        greater_is_better=False if has_validation else None,
        seed=seed,
        data_seed=seed,
        use_cpu=use_cpu,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    return lora, quantization, config


# ---------------------------------------------------------------------------- data


def answer_of(record: dict[str, Any], target: str = "code") -> str:
    """The assistant turn of `record` under `sft.target`; one error line when it lacks it."""
    field = ANSWER_FIELDS[target]
    answer = record.get(field)
    if not isinstance(answer, str):
        what = "no" if answer is None else f"a non-string ({type(answer).__name__})"
        hint = " (train on the lintseq stage's records, data/lintseq)" if target == "edits" else ""
        raise CodealignError(
            f"record '{record.get('id')}' has {what} '{field}' field, "
            f"which sft.target: {target} trains on{hint}"
        )
    return answer


def to_conversation(
    record: dict[str, Any], target: str = "code"
) -> dict[str, list[dict[str, str]]]:
    """One SFT record as TRL's conversational prompt/completion example."""
    return {
        "prompt": chat.messages(record["question"]),
        "completion": chat.answer_messages(answer_of(record, target)),
    }


def records_digest(records: Sequence[dict[str, Any]], target: str = "code") -> str:
    """A hash of what training sees of the records (id, question, answer), order included."""
    digest = hashlib.sha256()
    for record in records:
        answer = answer_of(record, target)
        digest.update(json.dumps([str(record["id"]), record["question"], answer]).encode())
    return digest.hexdigest()


def seed_records(records: Sequence[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """The records of the seed sets S1 and S2 (`source` seed_s1 or seed_s2), in order: the
    seed-only arm of `sft_baseline.train_data: seed`. One error line when there are none."""
    kept = [r for r in records if r.get("source") in SEED_SOURCES]
    if not kept:
        raise CodealignError(
            f"{where}: no record with source {' or '.join(SEED_SOURCES)}, which "
            "sft_baseline.train_data: seed trains on"
        )
    return kept


def optimizer_steps(n_items: int, params: SFTParams, world_size: int | None = None) -> int:
    """The optimizer steps `transformers.Trainer` takes over `n_items` at `params.epochs`
    (its `set_initial_training_values`: batches per process, then gradient accumulation),
    on `world_size` processes (default: the launcher's WORLD_SIZE, else 1)."""
    world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    batches = math.ceil(n_items / (params.batch_size * world))
    per_epoch = max(batches // params.grad_accum + int(batches % params.grad_accum > 0), 1)
    return math.ceil(params.epochs * per_epoch)


# ---------------------------------------------------------------------------- training


def build_trainer(
    base_dir: str | os.PathLike,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    params: SFTParams,
    checkpoint_dir: Path,
    seed: int,
    callbacks: Sequence[Any] = (),
    max_steps: int = -1,
    init_adapter: Path | None = None,
):
    """An `SFTTrainer` for one adapter: base model + LoRA, prompt/completion data.

    The LoRA is fresh (`sft`'s LoraConfig), or with `init_adapter` that saved adapter
    loaded trainable (`PeftModel.from_pretrained(..., is_trainable=True)`): training
    continues from its weights, with its own LoRA config.
    """
    from datasets import Dataset
    from transformers import AutoTokenizer, set_seed
    from trl import SFTTrainer

    set_seed(seed)
    lora, quantization, config = build_configs(
        params, checkpoint_dir, seed, has_validation=bool(validation), max_steps=max_steps
    )
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if tokenizer.chat_template is None:
        raise CodealignError(f"{base_dir}: the tokenizer has no chat template")
    train_set = Dataset.from_list([to_conversation(r, params.target) for r in train])
    eval_set = None
    if validation:
        eval_set = Dataset.from_list([to_conversation(r, params.target) for r in validation])
    model: Any = str(base_dir)
    peft_config: Any = lora
    if init_adapter is not None:
        model = load_trainable_adapter(base_dir, init_adapter, config, quantization)
        peft_config = quantization = None
        config.model_init_kwargs = None  # the model is built here, not by the trainer
    return SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=peft_config,
        quantization_config=quantization,
        callbacks=list(callbacks),
    )


def load_trainable_adapter(base_dir, adapter_dir: Path, config, quantization):
    """The base model (as the trainer would load it) with the adapter at `adapter_dir`
    loaded trainable: its LoRA weights are the starting point of further training."""
    from peft import PeftModel, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    kwargs = dict(config.model_init_kwargs or {})
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
    if quantization is not None:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(config.activation_checkpointing)
        )
    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CodealignError(
            f"{adapter_dir}: cannot load the adapter to start from: {first}"
        ) from None


def train_adapter(
    base_dir: str | os.PathLike,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    params: SFTParams,
    out_dir: Path,
    checkpoint_dir: Path,
    seed: int,
    *,
    live: Any = None,
    curve_prefix: str = "",
    callbacks: Sequence[Any] = (),
    max_steps: int = -1,
    init_adapter: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune one LoRA adapter on `train`; save the best checkpoint's adapter to `out_dir`.

    With a dvclive `live`, the training and validation-loss curves are logged to it as
    `<curve_prefix>train/...` and `<curve_prefix>eval/eval_loss`. A positive
    `max_steps` trains that many optimizer steps whatever `params.epochs` says.
    """
    from codealign.lm.checkpoints import last_checkpoint
    from codealign.lm.training import CurveLogger

    class EvalCurveLogger(CurveLogger):
        """The validation-loss curve; a class of its own as Trainer warns on two of one class."""

    if not train:
        raise CodealignError(f"{out_dir.name}: no training items")
    resume = last_checkpoint(checkpoint_dir)
    loggers = []
    if live is not None:
        loggers = [
            CurveLogger(live, prefix=f"{curve_prefix}train"),
            EvalCurveLogger(live, keys=("eval_loss",), prefix=f"{curve_prefix}eval"),
        ]
    trainer = build_trainer(
        base_dir,
        train,
        validation,
        params,
        checkpoint_dir,
        seed,
        [*loggers, *callbacks],
        max_steps=max_steps,
        init_adapter=init_adapter,
    )
    if resume:
        log.info("%s: resuming from %s", out_dir.name, resume)
    result = trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    evals = [(e["step"], e["eval_loss"]) for e in state.log_history if "eval_loss" in e]
    best_step = state.global_step
    if state.best_model_checkpoint:
        best_step = int(Path(state.best_model_checkpoint).name.split("-")[-1])
    trainer.model.save_pretrained(out_dir)
    canonical_adapter_configs(out_dir)
    trainer.processing_class.save_pretrained(out_dir)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {
        "train_items": len(train),
        "validation_items": len(validation),
        "steps": int(state.global_step),
        "best_step": best_step,
        "selected_by": "eval_loss" if evals else "last_step",
        "eval_loss": float(state.best_metric) if state.best_metric is not None else None,
        "eval_losses": {str(step): float(loss) for step, loss in evals},
        # The mean of the logged training losses: the log travels with the checkpoints, so a
        # resumed run reports what an uninterrupted one does (result.training_loss counts
        # only the steps of this process).
        "train_loss": _mean([e["loss"] for e in state.log_history if "loss" in e])
        if any("loss" in e for e in state.log_history)
        else float(result.training_loss),
        "trainable_parameters": int(trainable),
        "resumed_from": Path(resume).name if resume else None,
    }


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def adapter_bytes(adapter_dir: Path) -> int:
    return sum(p.stat().st_size for p in adapter_dir.glob("adapter_model.*"))


def train_specialists(
    base_dir: str | os.PathLike,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    train_labels: Sequence[int],
    validation_labels: Sequence[int],
    centroids: np.ndarray,
    embedder: dict[str, Any],
    params: SFTParams,
    out_dir: Path,
    seed: int,
    *,
    live_root: Path | None = None,
    checkpoint_stage: str = "sft",
    k_requested: int | None = None,
    max_steps: int = -1,
    init_adapter: Path | None = None,
    train_data: str | None = None,
) -> dict[str, Any]:
    """Train one adapter per centroid on the items labelled with it; write the router.

    `out_dir` must not exist; it receives `adapter_<i>/`, `centroids.npy` and
    `router.json`. Returns the metrics of every adapter. A positive `max_steps` trains
    each adapter that many optimizer steps instead of `params.epochs` passes. A
    `train_data` other than None is written into router.json (what evaluate reports). With
    `init_adapter` (a saved PEFT adapter over the same base model: the K = 1 adapter,
    `specialists.init: generalist`) every adapter starts from its weights instead of a
    fresh LoRA, and then trains as a fresh one would (`params.epochs` passes over its
    cluster, same schedule, lowest-validation-loss checkpoint kept).
    """
    from codealign.lm.checkpoints import checkpoint_dir, file_digest

    centroids = np.asarray(centroids, dtype=np.float32)
    k = len(centroids)
    train_labels = np.asarray(train_labels, dtype=np.int64)
    validation_labels = np.asarray(validation_labels, dtype=np.int64)
    if len(train_labels) != len(train) or len(validation_labels) != len(validation):
        raise CodealignError("cluster assignments do not cover the SFT records one to one")
    base = model_digest(base_dir)
    init = None
    if init_adapter is not None:
        init = {"path": str(init_adapter), "sha256": file_digest(Path(init_adapter))}
    out_dir.mkdir(parents=True)
    runs = []
    for cluster in range(k):
        cluster_train = [r for r, c in zip(train, train_labels, strict=True) if c == cluster]
        cluster_val = [
            r for r, c in zip(validation, validation_labels, strict=True) if c == cluster
        ]
        described = params.to_dict()
        if params.target == "code":
            # As before the key existed, so that runs interrupted then still resume.
            del described["target"]
        description = {
            "params": described,
            "seed": seed,
            "base": base["sha256"],
            "train": records_digest(cluster_train, params.target),
            "validation": records_digest(cluster_val, params.target),
        }
        if max_steps > 0:
            description["max_steps"] = max_steps
        if init is not None:
            description["init"] = init["sha256"]
        runs.append((cluster_train, cluster_val, checkpoint_dir(checkpoint_stage, description)))
    live = None
    if live_root is not None and is_main_process():
        from dvclive import Live

        # One Live for all adapters (curves `adapter_<i>/train/...`), so that its plots
        # dir holds only curves; a resumed adapter replays its rows (codealign.lm.training).
        live = Live(str(live_root), dvcyaml=None, save_dvc_exp=False, resume=False)
    adapters, per_adapter = [], []
    try:
        for cluster, (cluster_train, cluster_val, ck_dir) in enumerate(runs):
            name = f"adapter_{cluster}"
            log.info(
                "%s: %d training items, %d validation items",
                name,
                len(cluster_train),
                len(cluster_val),
            )
            stats = train_adapter(
                base_dir,
                cluster_train,
                cluster_val,
                params,
                out_dir / name,
                ck_dir,
                seed,
                live=live,
                curve_prefix=f"{name}/",
                max_steps=max_steps,
                init_adapter=init_adapter,
            )
            write_adapter_meta(out_dir / name, cluster, base_dir, base)
            size = adapter_bytes(out_dir / name)
            adapters.append(
                {
                    "cluster": cluster,
                    "path": name,
                    "train_items": len(cluster_train),
                    "validation_items": len(cluster_val),
                    "bytes": size,
                }
            )
            per_adapter.append({"cluster": cluster, **stats, "bytes": size})
            log.info("%s: %s", name, {k: v for k, v in stats.items() if k != "eval_losses"})
    finally:
        if live is not None:
            live.end()
    if live is not None:
        from codealign.lm.training import overlay_curves

        overlay_curves(live_root)  # every adapter's curve of a metric in one file
    write_router(out_dir, base_dir, base, centroids, embedder, adapters, k_requested, train_data)
    summary: dict[str, Any] = {"k": k}
    if init is not None:
        summary["init"] = init
    return {
        **summary,
        "train_items": len(train),
        "validation_items": len(validation),
        "adapters": per_adapter,
        "mean_eval_loss": _weighted_eval_loss(per_adapter),
    }


def _weighted_eval_loss(per_adapter: Sequence[dict[str, Any]]) -> float | None:
    """Validation loss of the specialists together, weighted by their validation items."""
    pairs = [(a["eval_loss"], a["validation_items"]) for a in per_adapter if a["eval_loss"]]
    total = sum(n for _, n in pairs)
    return sum(loss * n for loss, n in pairs) / total if total else None
