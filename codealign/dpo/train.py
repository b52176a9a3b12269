"""DPO training with TRL's DPOTrainer and PEFT, on stored reference log-probs.

What is trained. The policy is one LoRA adapter. From an SFT policy with one adapter
(K = 1, or any single adapter dir) DPO continues that adapter; from a plain model dir,
or from routed specialists (one adapter cannot start from K of them), DPO trains a new
zero-initialised LoRA on the base model. Each later curriculum stage continues the
adapter the previous stage saved.

The reference. Always the SFT policy: its log-probs were computed once by the `pairs`
stage with TRL's own tokenization and log-prob kernel and travel with each pair as
`ref_chosen_logps` / `ref_rejected_logps`. `StoredReferenceDPOTrainer` runs TRL's
`precompute_ref_log_probs` path but takes those columns instead of recomputing them, so
no stage ever runs a reference forward pass, and a later stage's reference is still the
SFT policy rather than the previous stage's adapter (which TRL's PEFT path would copy).

Per-sample losses. The DPO (sigmoid) loss of every pair is logged at every step with its
pair id, from the policy log-probs of the same forward pass the trainer differentiates
(a forward hook on the model), so logging costs no extra pass.

Resuming. Checkpoints go every `dpo.save_steps` steps to a work dir keyed by everything
the run depends on (codealign.lm.checkpoints); a killed stage resumes from the last one.
The per-sample loss log lives there too (`LossLog`): on resume it keeps the rows of the
steps the checkpoint holds and drops those logged after it, so the log of a resumed run
is that of an uninterrupted one.

Equal steps. A curriculum stage trains `ceil(pairs / (batch_size * grad_accum)) * epochs`
optimizer steps on its bucket; the shuffled baseline trains the sum of those steps on
the union of the same pairs, saving the adapter at the same cumulative step counts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from codealign.dpo.pairs import dpo_example
from codealign.errors import CodealignError
from codealign.evaluation.policy import PolicySpec
from codealign.io import canonical_adapter_configs
from codealign.params.dpo import DpoParams

log = logging.getLogger(__name__)

REF_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


def pairs_per_step(params: DpoParams) -> int:
    """Pairs one optimizer step takes (per process in a distributed run)."""
    return params.batch_size * params.grad_accum


def stage_steps(pairs: int, params: DpoParams) -> int:
    """Optimizer steps of one curriculum stage (0 for an empty bucket)."""
    return math.ceil(pairs / pairs_per_step(params)) * params.epochs if pairs else 0


def boundaries(stage_sizes: Sequence[int], params: DpoParams) -> list[int]:
    """Cumulative step count at the end of each curriculum stage."""
    total, out = 0, []
    for size in stage_sizes:
        total += stage_steps(size, params)
        out.append(total)
    return out


# ---- the trainer ---------------------------------------------------------------------------


def _trainer_class():
    import torch
    import torch.nn.functional as F
    from trl import DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    class PairCollator(DataCollatorForPreference):
        """TRL's preference collator that also carries each row's pair index."""

        def torch_call(self, examples):
            batch = super().torch_call(examples)
            if "pair_index" in examples[0]:
                batch["pair_index"] = torch.tensor([e["pair_index"] for e in examples])
            return batch

    class StoredReferenceDPOTrainer(DPOTrainer):
        """DPOTrainer reading reference log-probs from the dataset and logging per-pair losses.

        `stored_reference=False` keeps TRL's default (a reference pass every step), which
        the benchmark compares against; per-sample losses are logged either way.
        """

        def __init__(
            self,
            *args,
            pair_ids: Sequence[str],
            loss_log=None,
            stored_reference: bool = True,
            **kwargs,
        ):
            self.pair_ids = list(pair_ids)
            self.loss_log = loss_log
            self.stored_reference = stored_reference
            self.per_sample: list[dict[str, Any]] = []
            self._captured: list[tuple[bool, Any]] = []
            super().__init__(*args, **kwargs)
            target = (
                self.model.get_base_model()
                if hasattr(self.model, "get_base_model")
                else (self.model)
            )
            target.register_forward_hook(self._capture)

        def _capture(self, module, args, output):
            log_probs = getattr(output, "log_probs", None)
            if log_probs is not None:
                self._captured.append((torch.is_grad_enabled(), log_probs.detach()))

        def _precompute_ref_logps(self, dataset, name, batch_size):
            missing = [c for c in REF_COLUMNS if c not in dataset.column_names]
            if missing:
                raise CodealignError(
                    f"{name} pairs lack stored reference log-probs ({', '.join(missing)}); "
                    "rerun the pairs stage"
                )
            return dataset

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if "pair_index" not in self._signature_columns:
                self._signature_columns.append("pair_index")

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            index = inputs.pop("pair_index", None)
            self._captured.clear()
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if index is not None and model.training:
                self._record(inputs, index)
            return result

        def _record(self, inputs, index):
            seq_len = inputs["completion_mask"].size(1) - 1
            policy = [lp for grad, lp in self._captured if grad]
            ref = [lp for grad, lp in self._captured if not grad]
            if not policy:
                return
            chosen, rejected = policy[-1][:, -seq_len:].sum(dim=1).chunk(2, dim=0)
            if self.precompute_ref_logps:
                ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
            else:
                ref_chosen, ref_rejected = ref[-1][:, -seq_len:].sum(dim=1).chunk(2, dim=0)
            margin = (chosen - ref_chosen) - (rejected - ref_rejected)
            losses = -F.logsigmoid(self.beta * margin)
            step = self.state.global_step + 1
            for row, i in enumerate(index.tolist()):
                entry = {
                    "step": step,
                    "pair_id": self.pair_ids[i],
                    "loss": float(losses[row]),
                    "reward_margin": float(self.beta * margin[row]),
                }
                self.per_sample.append(entry)
                if self.loss_log is not None:
                    self.loss_log.write(json.dumps(entry) + "\n")

    return StoredReferenceDPOTrainer, PairCollator


def pair_dataset(pairs: Sequence[dict[str, Any]], *, with_reference: bool = True):
    from datasets import Dataset

    rows = []
    for i, pair in enumerate(pairs):
        row = {**dpo_example(pair), "pair_index": i}
        if with_reference:
            for column in REF_COLUMNS:
                if column not in pair:
                    raise CodealignError(f"pair {pair.get('pair_id')}: no '{column}' stored")
                row[column] = float(pair[column])
        rows.append(row)
    return Dataset.from_list(rows)


def load_trainable(spec: PolicySpec, params: DpoParams):
    """(tokenizer, model, peft_config): continue a single adapter, or a new LoRA otherwise."""
    from peft import LoraConfig, PeftModel

    from codealign.lm.generation import load_causal_lm

    tokenizer, model = load_causal_lm(spec.base_dir, params.dtype)
    if len(spec.adapters) == 1:
        model = PeftModel.from_pretrained(
            model, spec.adapters[0], adapter_name="default", is_trainable=True
        )
        return tokenizer, model, None
    config = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=list(params.target_modules),
        task_type="CAUSAL_LM",
    )
    return tokenizer, model, config


def build_config(
    params: DpoParams,
    *,
    work_dir: Path,
    max_steps: int,
    max_length: int,
    seed: int,
    stored_reference: bool = True,
):
    """TRL's DPOConfig for one run: a constant learning rate, the sigmoid loss, every
    step logged, checkpoints every `save_steps`."""
    import torch
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(work_dir),
        beta=params.beta,
        learning_rate=params.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_steps=max_steps,
        per_device_train_batch_size=params.batch_size,
        gradient_accumulation_steps=params.grad_accum,
        max_grad_norm=params.max_grad_norm,
        max_length=max_length,
        precompute_ref_log_probs=stored_reference,
        loss_type=["sigmoid"],
        activation_checkpointing=params.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False}
        if params.gradient_checkpointing
        else None,
        bf16=params.dtype == "bfloat16",
        fp16=params.dtype == "float16",
        use_cpu=not torch.cuda.is_available(),
        logging_steps=1,
        save_strategy="steps" if params.save_steps else "no",
        save_steps=params.save_steps or 500,
        save_total_limit=2,
        report_to=[],
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=False,  # a progress bar on stderr, not a printed dict per step
    )


def make_trainer(
    spec: PolicySpec,
    pairs: Sequence[dict[str, Any]],
    params: DpoParams,
    *,
    max_steps: int,
    max_length: int,
    seed: int,
    work_dir: Path,
    loss_log=None,
    stored_reference: bool = True,
    callbacks: Sequence[Any] = (),
):
    """A ready DPOTrainer over `pairs` (see the module docstring for what it trains)."""
    trainer_cls, collator_cls = _trainer_class()
    tokenizer, model, peft_config = load_trainable(spec, params)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = build_config(
        params, work_dir=work_dir, max_steps=max_steps, max_length=max_length, seed=seed,
        stored_reference=stored_reference,
    )  # fmt: skip
    collator = collator_cls(
        pad_token_id=tokenizer.pad_token_id, max_length=max_length, truncation_mode="keep_start"
    )
    return trainer_cls(
        model=model,
        args=config,
        data_collator=collator,
        train_dataset=pair_dataset(pairs, with_reference=stored_reference),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
        pair_ids=[p["pair_id"] for p in pairs],
        loss_log=loss_log,
        stored_reference=stored_reference,
    )


class LossLog:
    """The per-sample loss log of one run, in its work dir, consistent with its checkpoint.

    `open(resume_step)` keeps the rows of steps `<= resume_step` (all of them are in the
    checkpoint) and drops the rest, then appends; `rows` are the kept rows, for a
    trainer's in-memory `per_sample`.
    """

    NAME = "per_sample_loss.jsonl"

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir) / self.NAME
        self.rows: list[dict[str, Any]] = []

    def open(self, resume_step: int):
        self.rows = []
        if resume_step > 0 and self.path.is_file():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by the kill
                        break
                    if row["step"] <= resume_step:
                        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in self.rows)
        # Line-buffered: a SIGKILL loses at most the row being written, never a step's.
        return open(self.path, "a", encoding="utf-8", buffering=1)


def resume_step(checkpoint: str | None) -> int:
    """The optimizer step a `checkpoint-N` dir holds (0 for None)."""
    return int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0


def save_adapter(trainer, out_dir: Path) -> None:
    """Save only the trained adapter (not TRL's frozen `ref` copy) and the tokenizer."""
    trainer.model.save_pretrained(out_dir, selected_adapters=["default"])
    canonical_adapter_configs(out_dir)
    trainer.processing_class.save_pretrained(out_dir)


def boundary_saver(steps: Sequence[int], out_dir: Path):
    """A callback saving the adapter to `out_dir/step_<n>` at each of `steps`."""
    from transformers import TrainerCallback

    wanted = set(steps)

    class BoundarySaver(TrainerCallback):
        def __init__(self) -> None:
            self.trainer = None
            self.saved: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:  # one writer in a distributed run
                return
            if state.global_step in wanted and state.global_step not in self.saved:
                save_adapter(self.trainer, out_dir / f"step_{state.global_step}")
                self.saved.append(state.global_step)

    return BoundarySaver()


def train_summary(trainer) -> dict[str, Any]:
    history = [e for e in trainer.state.log_history if "loss" in e]
    last = history[-1] if history else {}
    return {
        "processes": trainer.args.world_size,  # > 1 under torchrun / accelerate launch
        "global_step": trainer.state.global_step,
        "final_loss": float(last.get("loss", math.nan)),
        "final_reward_accuracy": float(last.get("rewards/accuracies", math.nan)),
        "final_reward_margin": float(last.get("rewards/margins", math.nan)),
    }


# The DPO curves dvclive logs (TRL's log names -> curve names), as SFT logs its own.
DPO_CURVES = {
    "loss": "loss",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
}


@contextlib.contextmanager
def curve_logger(live_dir: Path | None, step_offset: int = 0) -> Iterator[Any]:
    """A Trainer callback logging `DPO_CURVES` to the dvclive folder `live_dir` (from
    global step `step_offset` on), or None without `live_dir` or on a rank > 0. The folder
    is written whether or not a step is trained (a DVC out); on leaving, its curves are
    also written as one file per metric (`codealign.lm.training.overlay_curves`)."""
    from codealign.io import is_main_process

    if live_dir is None or not is_main_process():
        yield None
        return
    from dvclive import Live

    from codealign.lm.training import CurveLogger, overlay_curves

    # resume=False: a resumed run replays its earlier rows (codealign.lm.training).
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=False) as live:
        yield CurveLogger(live, keys=DPO_CURVES, step_offset=step_offset)
    overlay_curves(live_dir, DPO_CURVES.values())
