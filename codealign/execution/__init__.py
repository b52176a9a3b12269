"""Running model-written code: a sandbox whose verdicts the code cannot forge.

Threat model. The programs judged here are untrusted: written by a model that may have
learned to cheat, or by anyone. What is defended:

- The verdict. Expected results live only in the parent process, which decides every
  verdict. For tests shaped `assert f(args) == expected` the program's process receives
  the arguments and returns each result as plain data (wire.py: exact builtin types, no
  pickle); the parent compares with exact types. General test code (HumanEval `check`
  with loops, helpers) runs in a separate tester process under another uid, which reaches
  the program only as proxy functions over a socket carrying plain data, and reports
  per-assertion results on a pipe the program does not hold. The test's namespace is its
  own (`problems.check_namespace`): the real builtins, the prompt's helpers and imports
  as trusted copies run from the problem's text (HumanEval/32's `poly`, /38's
  `encode_cyclic`), the canonical solution's imports that the test relies on, and
  proxies for exactly the entry point (`candidate`) and the names the test uses that
  only the canonical solution defines (MBPP/601's `Pair`). A program that defines `abs`,
  `range`, `zip` or `poly` changes only its own process. Whatever a call raises in the
  program (`StopIteration`, `GeneratorExit`, `KeyboardInterrupt`, `SystemExit`, any
  `BaseException`) reaches the test as one `ProgramError(Exception)` carrying the type's
  name and message, never as the program's exception, so it cannot end the test's loops
  (`zip(map(candidate, ...))`, `all(...)`) early or escape its `except Exception`; a
  call during which the program's process dies or leaves the protocol raises
  `ProgramGone`, a `ProgramError` too. Exiting early (`sys.exit`,
  `os._exit`, `atexit`, `__del__`), printing, always-equal objects, subclasses of the
  expected type, patched builtins or harness modules, and reading the harness's frames
  all change at most what the program itself returns, never what it was expected to
  return: a result that is missing, malformed or duplicated is a failure. Results are
  compared with Python's `==` on that plain data (`0 == False`, `1 == 1.0`, but
  `10**17 + 1 != 1e17`); floats within a tolerance only where the benchmark sets one
  (HumanEval+/MBPP+ `atol`, evalplus's 1e-6 default), never for an expected int.
- The run. Nothing a program returns, raises or prints can crash or flood the parent:
  huge ints, values nested or sized past the wire's limits, lone surrogates, line
  separators, exceptions whose `__str__` misbehaves, forged or endless report lines all
  end as that sample's status with a one-line `detail` of at most 300 characters
  (escaped, always valid UTF-8), and every other sample is still judged. The parent
  reads a report line by line as it arrives, holding at most one line (64 MiB) and
  parsing no more messages than the sample may send; a worker keeps at most 256 MiB of
  report per sample. A limit tripped gets a status that names it: `too_large` (a
  program over `Limits.program_mb`, never sent to a worker), `output_limit` (a result
  or report over its limit), `timeout` (the sample's or one test's time), `oom`.
  Every limit is sized so that HumanEval+'s canonical solutions pass; per-test time
  limits come from the canonical solution's own time (evalplus's rule).
- The host. Each worker runs in new mount, PID, network, IPC and UTS namespaces (inside a
  new user namespace when not root), chrooted into a size-capped noexec tmpfs, so a
  sample sees no host file, no network (only a down loopback) and no other process.
  Each sample runs in a fresh forked child with a private directory as cwd (wiped after),
  an empty environment, stdin from /dev/null, stdout/stderr captured with a size cap,
  rlimits on address space, CPU seconds, file size, open files, processes and core
  dumps, a dropped uid (or no capabilities), no_new_privs, and a wall-clock timeout after
  which the whole namespace except the worker is SIGKILLed, setsid daemons included.
  Samples cannot see each other: each is a fresh fork, and a worker is replaced after any
  anomaly. Each starts from the same interpreter state (string hashing and `random`
  seeded 0), so its result does not depend on the worker that ran it. The parent and
  the workers run no program code.
- Defence in depth, configurable with `Policy`: an AST check (import allowlist; no
  exec/eval/compile, no introspection dunders or frame attributes; Unicode-normalised
  names) and a runtime audit hook (no processes, sockets, ctypes, signals, writes outside
  the sample dir, dynamic code from the program's own frames). A hit is status `policy`.

What is not defended: kernel exploits and side channels; CPU time stolen from other
samples within the limits; a program that computes the right answer by reading the
problem's canonical solution where no chroot is possible. Where the kernel refuses
namespaces (some containers), the sandbox degrades to rlimits, a child subreaper that
kills a sample's descendants found in /proc, the audit hook, and file permissions; then
a program can read host files, reach the network if the policy is off, and fill the disk
up to the file-size limit per file within its timeout. `Sandbox().isolation` reports what
the kernel allowed. Test code itself (the benchmark's `check`) is trusted.

Not defended in the tester: a value the program returns is its answer, and test code
that treats a truthy, empty or equal value as success accepts it as Python would
(`assert candidate(x)` passes on any non-empty list). Objects that are not plain data do
not cross: a proxy returns an opaque marker for them, and test code that builds its own
objects (MBPP/367's tree of `Node`s) or hands back what a proxy returned (MBPP/601's
`Pair`s) cannot pass them to the program, so those tasks fail for every program. Test
code that expects a particular exception type from the program sees `ProgramError` and
must compare its `type_name` instead. A test that uses a name only the canonical
solution defines gets the program's version of it, by the benchmark's design.
"""

from __future__ import annotations

from collections.abc import Iterable

from codealign.execution.cache import ExpectedCache, default_cache_dir
from codealign.execution.policy import DEFAULT_MODULES, Policy
from codealign.execution.pool import Limits, Sandbox, prepare_samples
from codealign.execution.verdicts import STATUSES, same_value
from codealign.passk import estimate_pass_at_k, pass_at_k
from codealign.problems import Problem

__all__ = [
    "DEFAULT_MODULES",
    "STATUSES",
    "ExpectedCache",
    "Limits",
    "Policy",
    "Problem",
    "Sandbox",
    "default_cache_dir",
    "estimate_pass_at_k",
    "pass_at_k",
    "prepare_samples",
    "same_value",
    "score",
]


def score(
    problems: dict[str, Problem] | Iterable[Problem],
    samples: Iterable[dict],
    *,
    workers: int = 2,
    timeout: float = 3.0,
    fast: bool = False,
    progress: bool = True,
    full_program: bool = False,
    sandbox: Sandbox | None = None,
) -> list[dict]:
    """Judge samples `{task_id, completion[, completion_id][, full_program]}` in the sandbox.

    Returns one verdict per sample, in order: `task_id, completion_id, passed, status,
    tests_passed, tests_total, detail`, status one of STATUSES, detail one line of at
    most 300 characters. For HumanEval-format
    problems the program is `prompt + completion` unless `full_program` (argument or
    per-sample key) says the completion is a whole program. `fast` stops at the first
    failing test (tests_passed then counts the tests before it). Pass a `sandbox` to reuse
    warm workers across calls; `workers` and `timeout` then come from it.
    """
    if sandbox is not None:
        return sandbox.score(
            problems, samples, fast=fast, progress=progress, full_program=full_program
        )
    with Sandbox(workers=workers, limits=Limits(timeout=timeout)) as own:
        return own.score(problems, samples, fast=fast, progress=progress, full_program=full_program)
