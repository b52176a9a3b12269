"""Sections of the LintSeq stages: `lintseq` and `lintseq_eval`."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param
from codealign.params.evaluation import BENCHMARKS

DEFAULT_SEPARATOR = "<|diff|>"


def check_separator(separator: str, key: str = "separator") -> None:
    """A separator must be one line that no diff line can be mistaken for."""
    if not separator.strip() or "\n" in separator or "\r" in separator:
        raise CodealignError(f"{key} must be a non-empty single line, got {separator!r}")
    if separator != separator.strip():
        raise CodealignError(f"{key} must not start or end with whitespace, got {separator!r}")
    if separator[0] in " +-@\\":
        raise CodealignError(
            f"{key} must not start with ' ', '+', '-', '@' or '\\' (diff lines do), "
            f"got {separator!r}"
        )


@dataclass(frozen=True)
class LintseqParams(Section):
    """Knobs of the lintseq stage (programs -> synthetic edit sequences)."""

    samples: int = param(2, ge=1, doc="edit sequences drawn per program (identical ones kept once)")
    linter: str = param("pyflakes", choices=("pyflakes",), doc="what decides that a state is clean")
    max_lines: int = param(200, ge=1, doc="programs with more lines are skipped (cost ~ lines^2)")
    context: int = param(0, ge=0, doc="context lines per diff hunk; 0 is the paper's format")
    separator: str = param(DEFAULT_SEPARATOR, doc="line between two edits in a training target")
    seed: int | None = param(None, ge=0, doc="sampling seed; null uses the top-level seed")
    compose: int = param(
        1,
        ge=1,
        doc="tiny-world templates joined into each program (codealign.tinyworld.composed); "
        "1: the curated programs as they are; more: composed training programs (as many as "
        "curated ones) and composed eval tasks (data/lintseq/tasks.jsonl) for lintseq_eval",
        before=1,
    )
    compose_shape: str = param(
        "chain",
        choices=("chain", "parallel"),
        doc="chain: each template reads the one before; parallel: each reads the argument, "
        "the function returns the list of their values (independent lines: more edits)",
        before="chain",
    )
    compose_tasks: int = param(100, ge=1, doc="composed eval tasks (with compose > 1)", before=100)

    def validate(self, prefix: str) -> None:
        check_separator(self.separator, f"{prefix}.separator")


@dataclass(frozen=True)
class LintseqEvalParams(Section):
    """Knobs of the lintseq_eval stage (edits against programs, pass@k on one benchmark)."""

    benchmark: str = param(
        "tinyeval", choices=BENCHMARKS, doc="tasks to sample on (tinyeval is empty with real data)"
    )
    limit: int = param(20, ge=0, doc="first N tasks of the benchmark (0: all)")
    n: int = param(20, ge=1, doc="samples per task and model; at least the largest k")
    ks: tuple[int, ...] = param(
        (1, 10, 20),
        ge=1,
        doc="the pass@k in metrics/lintseq_eval.json (the plot has every k <= n)",
    )
    temperature: float = param(0.8, gt=0, le=2, doc="sampling temperature of both models")
    max_new_tokens: int = param(
        192,
        ge=1,
        doc="answer budget of both models; an edit sequence spends ~1.6x the tokens of its "
        "program, and one cut off by the budget is edit_failed",
    )
    batch_size: int = param(64, ge=1, doc="answers generated per forward pass")
    workers: int = param(2, ge=1, doc="sandbox worker processes")
    timeout: float = param(5.0, gt=0, doc="seconds per sample in the sandbox")
    epochs: float | None = param(
        2.0,
        gt=0,
        doc="passes over the records for the code run; the edits run takes as many steps "
        "(null: sft.epochs)",
    )

    def validate(self, prefix: str) -> None:
        if not self.ks:
            raise CodealignError(f"{prefix}.ks must name at least one k")
        if self.n < max(self.ks):
            raise CodealignError(
                f"{prefix}.n must be >= the largest of {prefix}.ks ({max(self.ks)}), got {self.n}"
            )
