"""One curriculum stage, the shuffled baseline, and their comparison at equal steps.

Outcomes for bad input, the same in every stage: an empty curriculum stage (an empty
bucket, or everything pruned, or no pairs at all because every task tied) is *skipped*:
its out dir is a copy of its input policy, its metrics say `skipped: true` with the
reason, and its step count is unchanged, so later stages and the shuffled baseline line
up. A shuffled run with no pairs at all is skipped the same way.

Every stage dir holds `dpo_state.json` (stage number and cumulative optimizer steps),
so stage i knows where stage i-1 left off and refuses to continue from the wrong stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codealign.dpo.evaluate import evaluate_policy, load_benchmarks
from codealign.dpo.train import (
    LossLog,
    boundaries,
    boundary_saver,
    curve_logger,
    make_trainer,
    pairs_per_step,
    resume_step,
    save_adapter,
    stage_steps,
    train_summary,
)
from codealign.errors import CodealignError
from codealign.evaluation.policy import resolve_policy
from codealign.io import atomic_path, is_main_process, read_json, read_jsonl, write_json
from codealign.lm.checkpoints import checkpoint_dir, file_digest, last_checkpoint
from codealign.params.dpo import DpoParams

log = logging.getLogger(__name__)

STATE_FILE = "dpo_state.json"


@dataclass(frozen=True)
class RunContext:
    """What every DPO stage shares: params, the policy mode, eval data, the seed."""

    params: DpoParams
    mode: str
    seed: int
    seed_dir: Path
    raw_dir: Path
    base_dir: Path | None = None

    def evaluate(self, policy_dir: Path) -> dict[str, float]:
        p = self.params
        benchmarks = load_benchmarks(p.eval_benchmarks, self.seed_dir, self.raw_dir, p.eval_limit)
        return evaluate_policy(
            policy_dir,
            benchmarks,
            mode=self.mode,
            n=p.eval_n,
            temperature=p.eval_temperature,
            max_new_tokens=p.eval_max_new_tokens,
            batch_size=p.eval_batch_size,
            workers=p.eval_workers,
            timeout=p.eval_timeout,
            seed=self.seed,
            base_dir=self.base_dir,
        )


def read_curriculum(curriculum_dir: Path) -> tuple[dict[str, Any], list[list[dict]]]:
    manifest = read_json(curriculum_dir / "manifest.json")
    stages = [
        read_jsonl(curriculum_dir / f"stage_{info['stage']}.jsonl") for info in manifest["stages"]
    ]
    return manifest, stages


def training_key(ctx: RunContext) -> dict[str, Any]:
    """What a DPO checkpoint depends on besides its init and pairs: a run with other
    params or another seed must never resume from it."""
    return {"params": dataclasses.asdict(ctx.params), "seed": ctx.seed, "mode": ctx.mode}


def _copy_policy(init_dir: Path, out: Path) -> None:
    shutil.copytree(init_dir, out, ignore=shutil.ignore_patterns(STATE_FILE, "logs"))


def _train(
    spec, pairs, params: DpoParams, work: Path, out: Path, *, saver=None, curves=None,
    **trainer_args,
):  # fmt: skip
    """Train in `work` (resuming from its last checkpoint), then save the adapter and the
    per-sample loss log into `out`; return the trainer. `curves`: a `curve_logger`."""
    resume = last_checkpoint(work)
    if resume:
        log.info("resuming from %s", resume)
    with contextlib.ExitStack() as stack:
        log_dir = work
        if not is_main_process():
            # A rank > 0 of a distributed run logs its share of the pairs somewhere
            # private, removed when it is done.
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dpo.rank")))
        loss_log = LossLog(log_dir)
        with loss_log.open(resume_step(resume)) as handle:
            trainer = make_trainer(
                spec, pairs, params, work_dir=work, loss_log=handle,
                callbacks=[c for c in (saver, curves) if c], **trainer_args,
            )  # fmt: skip
            trainer.per_sample[:0] = loss_log.rows
            if saver is not None:
                saver.trainer = trainer
            trainer.train(resume_from_checkpoint=resume)
        save_adapter(trainer, out)
        (out / "logs").mkdir()
        shutil.copyfile(loss_log.path, out / "logs" / LossLog.NAME)
    return trainer


def run_stage(
    ctx: RunContext,
    stage: int,
    init_dir: Path,
    curriculum_dir: Path,
    out_dir: Path,
    live_dir: Path | None = None,
) -> dict[str, Any]:
    """Train curriculum stage `stage` (1-based) from `init_dir`; return its metrics.
    With `live_dir`, the DPO curves go there (dvclive), on the curriculum's step axis."""
    manifest, stages = read_curriculum(curriculum_dir)
    if not 1 <= stage <= len(stages):
        raise CodealignError(
            f"{curriculum_dir}: the curriculum has {len(stages)} stages, not a stage {stage}; "
            "dvc.yaml's dpo foreach must list one entry per curriculum stage"
        )
    pairs = stages[stage - 1]
    state_file = init_dir / STATE_FILE
    state = read_json(state_file) if state_file.is_file() else {"stage": 0, "cumulative_steps": 0}
    if state["stage"] != stage - 1:
        raise CodealignError(
            f"{init_dir}: holds the policy after stage {state['stage']}, but stage {stage} "
            f"must start from stage {stage - 1}'s"
        )
    start = int(state["cumulative_steps"])
    info = manifest["stages"][stage - 1]
    metrics: dict[str, Any] = {
        "stage": stage,
        "bucket": info["bucket"],
        "pairs": len(pairs),
        "start_step": start,
        "distance_low": info["low"],
        "distance_high": info["high"],
    }
    if stage == 1:
        metrics["eval_init"] = {"step": 0, **ctx.evaluate(init_dir)}
    spec = resolve_policy(init_dir, ctx.mode, ctx.base_dir)
    with curve_logger(live_dir, start) as curves, atomic_path(out_dir) as tmp:
        if not pairs:
            reason = "empty bucket" if info["pairs_before_pruning"] == 0 else "all pairs pruned"
            if manifest["pairs_in"] == 0:
                reason = "no pairs (every task tied, or no pool)"
            log.warning("stage %d: %s; skipped, the policy is copied unchanged", stage, reason)
            _copy_policy(init_dir, tmp)
            metrics.update(skipped=True, reason=reason, steps=0, end_step=start)
        else:
            steps = stage_steps(len(pairs), ctx.params)
            tmp.mkdir(parents=True)
            work = checkpoint_dir(
                "dpo",
                {
                    "stage": stage,
                    "init": file_digest(init_dir),
                    "pairs": file_digest(curriculum_dir),
                    **training_key(ctx),
                },
            )
            trainer = _train(
                spec, pairs, ctx.params, work, tmp,
                max_steps=steps, max_length=manifest["max_length"], seed=ctx.seed + stage,
                curves=curves,
            )  # fmt: skip
            if not is_main_process():
                return metrics  # rank 0 evaluates and writes
            metrics.update(
                skipped=False, steps=steps, end_step=start + steps, **train_summary(trainer)
            )
            metrics["eval"] = {"step": start + steps, **ctx.evaluate(tmp)}
        write_json(tmp / STATE_FILE, {"stage": stage, "cumulative_steps": metrics["end_step"]})
    return metrics


def run_shuffled(
    ctx: RunContext,
    init_dir: Path,
    curriculum_dir: Path,
    out_dir: Path,
    live_dir: Path | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The union of the curriculum's pairs, shuffled, for the same total steps (with
    `live_dir`, its DPO curves go there).

    Returns the metrics and the per-sample losses of the first epoch (every pair once).
    """
    manifest, stages = read_curriculum(curriculum_dir)
    pairs = [p for stage in stages for p in stage]
    steps_at = boundaries([len(s) for s in stages], ctx.params)
    total = steps_at[-1] if steps_at else 0
    metrics: dict[str, Any] = {"pairs": len(pairs), "steps": total, "boundaries": steps_at}
    epoch: list[dict[str, Any]] = []
    with curve_logger(live_dir) as curves, atomic_path(out_dir) as tmp:
        if not pairs:
            log.warning("no pairs in the curriculum: the shuffled run is skipped")
            _copy_policy(init_dir, tmp)
            metrics.update(skipped=True, reason="no pairs", evals=[])
        else:
            spec = resolve_policy(init_dir, ctx.mode, ctx.base_dir)
            tmp.mkdir(parents=True)
            work = checkpoint_dir(
                "dpo_shuffled",
                {
                    "init": file_digest(init_dir),
                    "pairs": file_digest(curriculum_dir),
                    **training_key(ctx),
                },
            )
            # Boundary adapters are saved in the work dir too, so a resumed run keeps those
            # saved before the kill.
            saver = boundary_saver(steps_at, work / "boundaries")
            trainer = _train(
                spec, pairs, ctx.params, work, tmp,
                max_steps=total, max_length=manifest["max_length"], seed=ctx.seed, saver=saver,
                curves=curves,
            )  # fmt: skip
            if not is_main_process():
                return metrics, []  # rank 0 evaluates and writes
            shutil.copytree(work / "boundaries", tmp / "checkpoints")
            metrics.update(skipped=False, **train_summary(trainer))
            evals = []
            for step in sorted(set(steps_at)):
                if step > 0:
                    evals.append(
                        {"step": step, **ctx.evaluate(tmp / "checkpoints" / f"step_{step}")}
                    )
            metrics["evals"] = evals
            epoch_steps = math.ceil(len(pairs) / pairs_per_step(ctx.params))
            epoch = [e for e in trainer.per_sample if e["step"] <= epoch_steps]
        write_json(tmp / STATE_FILE, {"stage": "shuffled", "cumulative_steps": total})
    return metrics, epoch


def compare(stage_metrics: Sequence[dict[str, Any]], shuffled: dict[str, Any]) -> dict[str, Any]:
    """pass@1 of curriculum and shuffled at the same steps, and their differences.

    A skipped stage's policy is its input's, so its pass@1 is carried from the stage before.
    """
    ordered = sorted(stage_metrics, key=lambda m: m["stage"])
    if not ordered or "eval_init" not in ordered[0]:
        raise CodealignError("the curriculum's stage 1 metrics (with eval_init) are missing")
    start = ordered[0]["eval_init"]
    curriculum = [{"step": 0, "pass@1": start["pass@1"]}]
    for m in ordered:
        value = m["eval"]["pass@1"] if not m["skipped"] else curriculum[-1]["pass@1"]
        curriculum.append(
            {"step": m["end_step"], "pass@1": value, "stage": m["stage"], "carried": m["skipped"]}
        )
    by_step = {e["step"]: e["pass@1"] for e in shuffled.get("evals", [])}
    shuffled_curve = [{"step": 0, "pass@1": start["pass@1"]}]
    for point in curriculum[1:]:
        step = point["step"]
        shuffled_curve.append({"step": step, "pass@1": by_step.get(step, start["pass@1"])})
    diffs = [c["pass@1"] - s["pass@1"] for c, s in zip(curriculum, shuffled_curve, strict=True)]
    return {
        "curriculum": curriculum,
        "shuffled": shuffled_curve,
        "steps": curriculum[-1]["step"],
        "final_curriculum_pass@1": curriculum[-1]["pass@1"],
        "final_shuffled_pass@1": shuffled_curve[-1]["pass@1"],
        "final_difference": diffs[-1],
        "mean_difference_at_boundaries": sum(diffs[1:]) / max(1, len(diffs) - 1),
    }
