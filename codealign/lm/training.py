"""Pieces every training stage shares: deterministic training curves with dvclive.

`CurveLogger` logs only the curves a run is judged by (loss, gradient norm, learning
rate, and any extra keys), one row per logging step. Wall-clock figures such as
`train_runtime` or samples per second are left out on purpose: they differ between
two runs of the same params and seed, and the curves are stage outs whose hashes must
not change when nothing else did.

A resumed run rebuilds its curves from the checkpoint: Trainer restores `log_history`
from the checkpoint's `trainer_state.json` before training begins, and `CurveLogger`
replays those rows then. DVC deletes a stage's outs before it runs, so the rows an
interrupted run had written to dvclive are gone; the replay is what makes the curves of
a killed-and-resumed stage the same as those of an uninterrupted one. Open the `Live`
with `resume=False`.

The replay alone is not enough: Trainer logs the mean loss since its last log, and a
resumed run opens a new window at the checkpoint's step. So checkpoints must fall on
logging steps (`logging_interval`), or the first loss logged after a resume averages
fewer steps than the uninterrupted run's did.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from transformers import TrainerCallback

CURVES = ("loss", "grad_norm", "learning_rate")
OVERLAY = "curves"  # the folder of overlay curves inside a dvclive folder (`overlay_curves`)


def logging_interval(wanted: int, save_steps: int) -> int:
    """The largest divisor of `save_steps` that is at most `wanted` (and at least 1).

    Logging every so many steps puts every checkpoint on a logging step, so a run
    resumed from one logs the same loss windows as an uninterrupted run.
    """
    wanted = max(1, min(wanted, save_steps))
    return next(n for n in range(wanted, 0, -1) if save_steps % n == 0)


class CurveLogger(TrainerCallback):
    """Log selected Trainer logs to a dvclive `Live`, keyed by global step.

    `keys` names the Trainer logs to keep; a mapping renames them (TRL's
    `rewards/margins` as `reward_margin`). `step_offset` is added to every step, so the
    runs of consecutive stages continue one step axis."""

    def __init__(
        self,
        live,
        keys: Iterable[str] | Mapping[str, str] = CURVES,
        prefix: str = "train",
        step_offset: int = 0,
    ) -> None:
        self.live = live
        self.names = dict(keys) if isinstance(keys, Mapping) else {key: key for key in keys}
        self.keys = tuple(self.names)
        self.prefix = prefix
        self.step_offset = step_offset

    def on_train_begin(self, args, state, control, **kwargs):
        # Resuming: the rows logged before the checkpoint, restored by Trainer.
        if state.is_world_process_zero:
            for entry in state.log_history:
                self._log(entry.get("step", 0), entry)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self._log(state.global_step, logs)

    def _log(self, step: int, logs: dict) -> None:
        values = {self.names[k]: float(logs[k]) for k in self.keys if k in logs}
        if not values:
            return
        self.live.step = step + self.step_offset
        for key, value in values.items():
            self.live.log_metric(f"{self.prefix}/{key}", value)
        self.live.next_step()


def overlay_curves(live_dir: str | os.PathLike, expected: Iterable[str] = ()) -> list[Path]:
    """Write one long-format TSV per metric (`step`, `run`, the metric) into
    `<live_dir>/curves/`, from the dvclive curves under `<live_dir>/plots/metrics`.

    dvclive writes one file per run and metric (`adapter_3/train/loss.tsv`); `dvc plots
    show` draws one plot per file. These files put every run of a metric in one table,
    which dvc.yaml's `plots:` draw as one plot, a line per run (template `runs`). The run
    is the folder's name and the part of the path before `<group>/<metric>`
    (`sft/adapter_3`), or the folder's name alone (`base_model`, `stage_2`). A metric of
    `expected` that no run logged (a stage with nothing to train) gets a file with the
    header only, so that `plots:` finds every file it names. Returns the files written,
    sorted."""
    live_dir = Path(live_dir)
    source = live_dir / "plots" / "metrics"
    rows: dict[str, list[tuple[int, str, str]]] = {}
    for tsv in sorted(source.rglob("*.tsv")):
        parts = tsv.relative_to(source).with_suffix("").parts
        run = "/".join((live_dir.name, *parts[:-2])) if parts[:-2] else live_dir.name
        metric = parts[-1]
        with tsv.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                rows.setdefault(metric, []).append((int(row["step"]), run, row[metric]))
    for metric in expected:
        rows.setdefault(metric, [])
    out = live_dir / OVERLAY
    written = []
    if rows:
        out.mkdir(parents=True, exist_ok=True)
    for metric, values in sorted(rows.items()):
        path = out / f"{metric}.tsv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["step", "run", metric])
            writer.writerows(sorted(values, key=lambda v: (v[1], v[0])))
        written.append(path)
    return written
