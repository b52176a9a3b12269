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

from collections.abc import Iterable

from transformers import TrainerCallback

CURVES = ("loss", "grad_norm", "learning_rate")


def logging_interval(wanted: int, save_steps: int) -> int:
    """The largest divisor of `save_steps` that is at most `wanted` (and at least 1).

    Logging every so many steps puts every checkpoint on a logging step, so a run
    resumed from one logs the same loss windows as an uninterrupted run.
    """
    wanted = max(1, min(wanted, save_steps))
    return next(n for n in range(wanted, 0, -1) if save_steps % n == 0)


class CurveLogger(TrainerCallback):
    """Log selected Trainer logs to a dvclive `Live`, keyed by global step."""

    def __init__(self, live, keys: Iterable[str] = CURVES, prefix: str = "train") -> None:
        self.live = live
        self.keys = tuple(keys)
        self.prefix = prefix

    def on_train_begin(self, args, state, control, **kwargs):
        # Resuming: the rows logged before the checkpoint, restored by Trainer.
        if state.is_world_process_zero:
            for entry in state.log_history:
                self._log(entry.get("step", 0), entry)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self._log(state.global_step, logs)

    def _log(self, step: int, logs: dict) -> None:
        values = {k: float(logs[k]) for k in self.keys if k in logs}
        if not values:
            return
        self.live.step = step
        for key, value in values.items():
            self.live.log_metric(f"{self.prefix}/{key}", value)
        self.live.next_step()
