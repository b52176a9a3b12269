"""Pieces every training stage shares: deterministic training curves with dvclive.

`CurveLogger` logs only the curves a run is judged by (loss, gradient norm, learning
rate, and any extra keys), one row per logging step. Wall-clock figures such as
`train_runtime` or samples per second are left out on purpose: they differ between
two runs of the same params and seed, and the curves are stage outs whose hashes must
not change when nothing else did.
"""

from __future__ import annotations

from collections.abc import Iterable

from transformers import TrainerCallback

CURVES = ("loss", "grad_norm", "learning_rate")


class CurveLogger(TrainerCallback):
    """Log selected Trainer logs to a dvclive `Live`, keyed by global step."""

    def __init__(self, live, keys: Iterable[str] = CURVES, prefix: str = "train") -> None:
        self.live = live
        self.keys = tuple(keys)
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        values = {k: float(logs[k]) for k in self.keys if k in logs}
        if not values:
            return
        self.live.step = state.global_step
        for key, value in values.items():
            self.live.log_metric(f"{self.prefix}/{key}", value)
        self.live.next_step()
