"""Section of the evaluate stage: `eval`."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param

# Final benchmarks: read only by the final evaluations (`evaluate`, `lintseq_eval`) and
# the report. Dev benchmarks: what choices are made on (DPO's stage-boundary evaluations,
# the base model's score during pretraining, the profiles' hyperparameters):
# tinydev in the tiny world, MBPP validation with real data (docs/heldout.md).
FINAL_BENCHMARKS = ("tinyeval", "humaneval", "humaneval_plus", "mbpp", "mbpp_plus")
DEV_BENCHMARKS = ("tinydev", "mbpp_validation")
BENCHMARKS = FINAL_BENCHMARKS + DEV_BENCHMARKS


@dataclass(frozen=True)
class EvalParams(Section):
    """The evaluate stage: pass@1 and pass@k of the routed specialists and the baselines."""

    benchmarks: tuple[str, ...] = param(("tinyeval",), doc="any of " + ", ".join(BENCHMARKS))
    limit: int = param(0, ge=0, doc="first N tasks of each benchmark (0: all)")
    n: int = param(10, ge=1, doc="samples per task at each temperature")
    pass1_temperature: float = param(0.2, gt=0, le=2, doc="temperature for pass@1")
    passk_temperature: float = param(0.8, gt=0, le=2, doc="temperature for pass@k, k up to n")
    max_new_tokens: int = param(128, ge=1, doc="answer budget per sample")
    batch_size: int = param(64, ge=1, doc="answers generated per forward pass")
    workers: int = param(2, ge=1, doc="sandbox worker processes")
    timeout: float = param(5.0, gt=0, doc="seconds per sample in the sandbox")

    def validate(self, prefix: str) -> None:
        for name in self.benchmarks:
            if name not in BENCHMARKS:
                raise CodealignError(
                    f"{prefix}.benchmarks: unknown benchmark '{name}' "
                    f"(known: {', '.join(BENCHMARKS)})"
                )
        if not self.benchmarks:
            raise CodealignError(f"{prefix}.benchmarks must name at least one benchmark")
