"""The trusted parent: a pool of warm sandbox workers, and the verdicts it alone decides.

`Sandbox` starts `workers` worker processes (see worker.py), feeds each its samples in
turn, one running and the next waiting in its pipe, and turns their reports into
verdicts with `verdicts.Judge`, line by line as they arrive, so a report's size bounds
neither the parent's memory nor its time. Expected values never leave this process.
A worker is replaced after `recycle_after` samples and after any anomaly (timeout,
crash, policy stop, out-of-memory, a report it could not parse, a limit tripped).

Expected values that come from running a canonical solution (HumanEval+/MBPP+ inputs)
are computed once, in parallel, with each input's time, and kept in an on-disk cache
keyed by the problem's content (see cache.py). Those times size each test's limit as
evalplus does: max(`test_min_s`, `test_factor` x the canonical time), and the sample's
as their sum (plus 1 s), at most `timeout_cap`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import itertools
import json
import logging
import math
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.execution import wire
from codealign.execution.cache import ExpectedCache
from codealign.execution.policy import Policy
from codealign.execution.verdicts import Judge, clean
from codealign.problems import NO_EXPECTED, Problem, check_namespace, instrument

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
ANOMALIES = frozenset({"timeout", "crashed", "policy", "oom", "output_limit"})
MAX_TIMEOUT = 24 * 3600.0  # no limit in seconds may be longer than a day
READ_STALL = 60.0  # seconds a worker may pause in the middle of a report
UID_SLOTS = 64  # workers a pool starts before its uids come round again; 2 uids each
UID_BASE = 3_000_000
UID_BLOCKS = 10_000


def _lock_dir() -> Path:
    """Where uid blocks are claimed: one directory for every process on the machine."""
    shared = Path("/run/lock")
    base = shared if shared.is_dir() and os.access(shared, os.W_OK) else None
    directory = (base or Path(tempfile.gettempdir())) / "codealign-uid-blocks"
    directory.mkdir(mode=0o755, exist_ok=True)
    return directory


def _live_uids() -> set[int]:
    """Every real, effective, saved and filesystem uid of every process on the machine."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", "rb") as handle:
                    for line in handle:
                        if line.startswith(b"Uid:"):
                            found.update(int(v) for v in line.split()[1:])
                            break
            except (OSError, ValueError):
                pass
    return found


class UidBlock:
    """The 2 * UID_SLOTS uids one Sandbox runs samples as (candidate and tester per
    worker slot), held for the Sandbox's life by an exclusive lock on the block's file.

    A block is taken only if no other holder has it locked (concurrent runs, in this
    process or any other) and no process on the machine has one of its uids (what a
    killed run left). Blocks are handed out round-robin, so successive runs move on to
    the next block instead of taking the one just released.
    """

    def __init__(self, index: int, fd: int) -> None:
        self.index, self.fd = index, fd
        start = UID_BASE + index * 2 * UID_SLOTS
        self.uids = range(start, start + 2 * UID_SLOTS)

    @classmethod
    def acquire(cls, start: int | None = None) -> UidBlock:
        """Claim a block: the first free one from `start` (default: the one after the
        block last handed out on this machine)."""
        directory = _lock_dir()
        turn = os.open(directory / "next.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)
            try:
                first = int(os.pread(turn, 16, 0) or b"0") % UID_BLOCKS
            except ValueError:
                first = 0
            if start is not None:
                first = start % UID_BLOCKS
            live = _live_uids()
            for step in range(UID_BLOCKS):
                index = (first + step) % UID_BLOCKS
                block = cls._take(directory, index, live)
                if block is not None:
                    os.ftruncate(turn, 0)
                    os.pwrite(turn, str((index + 1) % UID_BLOCKS).encode(), 0)
                    return block
        finally:
            os.close(turn)
        raise CodealignError("every sandbox uid block is in use")

    @classmethod
    def _take(cls, directory: Path, index: int, live: set[int]) -> UidBlock | None:
        block = cls(index, -1)
        if not live.isdisjoint(block.uids):
            return None
        path = directory / f"block-{index}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        block.fd = fd
        return block

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the lock goes with the descriptor
            self.fd = -1


PRELOAD_EXTRA = (
    "encodings.utf_16",
    "encodings.utf_32",
    "encodings.latin_1",
    "encodings.ascii",
    "encodings.idna",
    "_strptime",
    "shutil",
)


@dataclass(frozen=True)
class Limits:
    """Per-sample limits, enforced by the kernel and the worker around the sample.

    `timeout` is a sample's wall-clock limit where its problem has no canonical
    timings; where it has (expected values computed from the canonical solution), each
    test may take max(`test_min_s`, `test_factor` x the canonical time) and the sample
    the sum of those plus 1 s, at most `timeout_cap`.
    """

    timeout: float = 3.0  # wall-clock seconds for a whole sample (all its tests)
    memory_mb: int = 1024  # address space of each sample process
    file_mb: int = 16  # largest file a sample may write
    disk_mb: int = 256  # tmpfs size of a worker's jail (all its sample dirs)
    open_files: int = 64  # file descriptors per process
    processes: int = 32  # processes and threads of a sample (per private uid)
    output_kb: int = 64  # stdout/stderr kept per sample; the rest is drained and dropped
    timeout_cap: float = 60.0  # most seconds for a sample with per-test limits (evalplus's)
    test_min_s: float = 1.0  # shortest per-test limit (evalplus's min_time_limit)
    test_factor: float = 4.0  # per-test limit over the canonical time (evalplus's)
    program_mb: int = 16  # largest program text; a larger one is `too_large`, not sent

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CodealignError(f"sandbox limit {name} must be a number, got {value!r}")
            if not math.isfinite(value) or not value > 0:
                raise CodealignError(f"sandbox limit {name} must be positive, got {value}")
        for name in ("timeout", "timeout_cap", "test_min_s"):
            if getattr(self, name) > MAX_TIMEOUT:
                raise CodealignError(
                    f"sandbox limit {name} must be at most {MAX_TIMEOUT:.0f} s, "
                    f"got {getattr(self, name)}"
                )

    def sample_timeout(self, times: list | None) -> tuple[float, list[float] | None]:
        """(the sample's wall-clock limit, each test's limit or None) given canonical times."""
        if not times:
            return float(self.timeout), None
        each = [max(self.test_min_s, self.test_factor * float(t)) for t in times]
        return min(float(self.timeout_cap), sum(each) + 1.0), each

    def as_wire(self, timeout: float | None = None, tests: list[float] | None = None) -> dict:
        wired = {
            "timeout": float(self.timeout if timeout is None else timeout),
            "memory_bytes": int(self.memory_mb) << 20,
            "file_bytes": int(self.file_mb) << 20,
            "open_files": int(self.open_files),
            "processes": int(self.processes),
            "output_bytes": int(self.output_kb) << 10,
        }
        if tests:
            wired["tests"] = {"each": [round(t, 4) for t in tests]}
        return wired


@dataclass
class Sample:
    """One program to judge against one problem."""

    problem: Problem
    program: str
    task_id: Any = None
    completion_id: Any = None
    expected: list | None = field(default=None, repr=False)
    times: list | None = field(default=None, repr=False)  # the canonical solution's, per test


HEADER_KEYS = ("id", "mode", "entry", "limits", "policy")


def _frames(job: dict, tests: dict) -> tuple[bytes, bytes, bytes]:
    """A sample's three frames for a worker: the header it reads (no program, input or
    test in it), then the candidate's part and the tester's, which it passes on unread."""
    header = {key: job[key] for key in HEADER_KEYS}
    payload = {key: value for key, value in job.items() if key not in HEADER_KEYS}
    return wire.frame(header), wire.frame(payload), wire.frame(tests)


@dataclass
class _Pending:
    """A sample on its way through `Sandbox.run`."""

    index: int
    sample: Sample
    data: bytes | None = None  # the frames for a worker; None when settled without one
    verdict: tuple | None = None
    sent: bool = False
    timeout: float = 0.0  # the sample's wall-clock limit


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, config: dict) -> None:
        self.proc = subprocess.Popen(
            # -s -P -S with an environment of one variable: isolated like -I, but with
            # string hashing fixed, so set and dict orders do not depend on the worker.
            [sys.executable, "-s", "-P", "-S", "-B", str(WORKER_SCRIPT), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PYTHONHASHSEED": "0"},
            close_fds=True,
            start_new_session=True,
        )
        self.served = 0
        self._buf = bytearray()
        # Frames sent ahead (see Sandbox.run) stay under a quarter of the pipe's buffer,
        # so two of them always fit and a write never waits on the worker.
        self.ahead_bytes = fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_GETPIPE_SZ) // 4
        hello = self._read(30.0)
        if hello is None or "hello" not in hello:
            self.kill()
            raise CodealignError("the sandbox worker failed to start")
        self.isolation = hello["hello"]

    def _fill(self, deadline: float) -> bool:
        """Read what the worker has written so far into the buffer; False on EOF/timeout."""
        fd = self.proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _read(self, timeout: float) -> dict | None:
        """The next header frame: a length-prefixed JSON object."""
        deadline = time.monotonic() + timeout
        while len(self._buf) < 4:
            if not self._fill(deadline):
                return None
        need = int.from_bytes(self._buf[:4], "big")
        if need > wire.MAX_FRAME:
            return None
        while len(self._buf) < 4 + need:
            if not self._fill(deadline):
                return None
        body = bytes(self._buf[4 : 4 + need])
        del self._buf[: 4 + need]
        header = json.loads(body)
        return header if type(header) is dict else None

    def _stream(self, size: int, name: str, judge) -> bool:
        """Feed `size` bytes of report stream `name` to `judge`, one line at a time.

        At most one line (`wire.LINE_CAP`) is held: a longer line is dropped and the
        judge told; once the judge needs no more messages the rest is read and dropped.
        """
        line = bytearray()
        skipping = False
        left = size
        while left > 0:
            if not self._buf and not self._fill(time.monotonic() + READ_STALL):
                return False
            take = min(left, len(self._buf))
            chunk = bytes(self._buf[:take])
            del self._buf[:take]
            left -= take
            if judge.full(name):
                continue
            start = 0
            while start < len(chunk) and not judge.full(name):
                end = chunk.find(b"\n", start)
                stop = len(chunk) if end < 0 else end
                if not skipping:
                    if len(line) + stop - start > wire.LINE_CAP:
                        judge.overflow(name, f"a report line over {wire.LINE_CAP >> 20} MiB")
                        line.clear()
                        skipping = True
                    else:
                        line += chunk[start:stop]
                if end < 0:
                    break
                if line and not skipping:
                    judge.feed(name, bytes(line))
                line.clear()
                skipping = False
                start = end + 1
        if line and not skipping and not judge.full(name):
            judge.feed(name, bytes(line))
        return True

    def _take(self, size: int, keep: int) -> bytes | None:
        """Read `size` bytes of a raw stream, keeping the first `keep`; None on EOF."""
        kept = bytearray()
        left = size
        while left > 0:
            if not self._buf and not self._fill(time.monotonic() + READ_STALL):
                return None
            take = min(left, len(self._buf))
            if len(kept) < keep:
                kept += self._buf[: min(take, keep - len(kept))]
            del self._buf[:take]
            left -= take
        return bytes(kept)

    def send(self, data: bytes) -> bool:
        """Write a sample's frames (job, then tests); False if the worker is gone."""
        try:
            wire.write_all(self.proc.stdin.fileno(), data)
        except OSError:
            return False
        self.served += 1
        return True

    def receive(self, timeout: float, judge) -> dict | None:
        """The next report's header, its streams fed to `judge`; None on a timeout, a
        closed pipe or a malformed frame."""
        try:
            header = self._read(timeout)
            if header is None:
                return None
            sizes = header.get("sizes")
            if type(sizes) is not dict:
                return None
            for name in ("c", "t"):
                size = sizes.get(name, 0)
                if type(size) is not int or not 0 <= size <= wire.REPORT_CAP:
                    return None
                if not self._stream(size, name, judge):
                    return None
            # The sample's stdout/stderr (at most its Limits.output_kb): kept for reading,
            # never judged.
            size = sizes.get("out", 0)
            if type(size) is not int or not 0 <= size <= wire.MAX_FRAME:
                return None
            out = self._take(size, size)
            if out is None:
                return None
            header["out"] = out.decode("utf-8", "replace")
            return header
        except (ValueError, OSError, RecursionError):
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                wire.write_frame(self.proc.stdin.fileno(), {"op": "exit"})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()


class Sandbox:
    """A pool of warm workers; use as a context manager to reuse them across calls.

    with Sandbox(workers=2) as sandbox:
        verdicts = sandbox.score(problems, samples)

    `cache_dir` holds expected values computed from canonical solutions (default: the
    user cache, see `cache.default_cache_dir`); `cache_dir=False` keeps them in memory.
    """

    def __init__(
        self,
        workers: int = 2,
        limits: Limits | None = None,
        policy: Policy | None = None,
        *,
        namespaces: bool = True,
        recycle_after: int = 2000,
        cache_dir: str | os.PathLike | bool | None = None,
    ) -> None:
        if workers < 1:
            raise CodealignError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.limits = limits or Limits()
        self.policy = policy or Policy()
        self.namespaces = namespaces
        self.recycle_after = recycle_after
        self.cache = None if cache_dir is False else ExpectedCache(cache_dir or None)
        self._jail = tempfile.mkdtemp(prefix="codealign-sandbox-")
        os.chmod(self._jail, 0o755)
        self._ids = itertools.count()
        self._uid_slots = itertools.count()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._oracle: dict[str, tuple[list, list | None]] = {}
        self._closed = False
        self.isolation: dict = {}
        # Only a root parent's workers switch uids; elsewhere samples keep the worker's.
        self._uid_block = UidBlock.acquire() if os.geteuid() == 0 else None
        self.uids = self._uid_block.uids if self._uid_block else range(0)

    # ---- worker lifecycle ----------------------------------------------------------------

    def _config(self) -> dict:
        slot = next(self._uid_slots) % UID_SLOTS
        return {
            "jail": self._jail,
            "preload": list(self.policy.modules) + list(PRELOAD_EXTRA),
            "modules": list(self.policy.modules),
            "namespaces": self.namespaces,
            "disk_mb": self.limits.disk_mb,
            "uid": self.uids[slot * 2] if self.uids else None,
            "seccomp_module": _seccomp_module(),
        }

    def _spawn(self) -> _Worker:
        if self._closed:
            raise RuntimeError("this sandbox is closed")
        worker = _Worker(self._config())
        with self._lock:
            closed = self._closed
            if not closed:
                self._all.append(worker)
                self.isolation = worker.isolation
        warn_shortfall(worker.isolation, self.namespaces)
        if closed:  # closed while it started (an interrupt): never leave it running
            worker.kill()
            raise RuntimeError("this sandbox is closed")
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def _checkout(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._spawn()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # Leaving on an exception (an interrupt, SIGTERM): kill, do not wait for samples.
        self.close(kill=exc_type is not None)

    def close(self, kill: bool = False) -> None:
        """Stop every worker (and with it every sample process) and remove the jail.
        `kill` does not let running samples finish."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.kill() if kill else worker.close()
        shutil.rmtree(self._jail, ignore_errors=True)
        if self._uid_block is not None:
            self._uid_block.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close(kill=True)

    # ---- running ---------------------------------------------------------------------------

    def _job(
        self, sample: Sample, fast: bool, policy_on: bool, timeout: float, tests_s: list | None
    ) -> tuple[dict, dict]:
        problem = sample.problem
        job: dict[str, Any] = {
            "id": next(self._ids),
            "program": sample.program,
            "entry": problem.entry_point,
            "limits": self.limits.as_wire(timeout, tests_s),
            "policy": policy_on,
        }
        tests: dict[str, Any] = {}
        if problem.stdio:
            job["mode"] = "stdio"
            job["inputs"] = [stdin for stdin, _ in problem.stdio]
        elif problem.cases:
            job["mode"] = "calls"
            job["calls"] = _encoded_calls(problem)
        else:
            job["mode"] = "check"
            source, _ = instrument(problem)
            plan = check_namespace(problem)
            tests = {
                "source": source,
                "prelude": plan.prelude,
                "names": list(plan.proxied),
                "fast": fast,
            }
        return job, tests

    def _prepare(
        self, index: int, sample: Sample, fast: bool, trusted: bool, timing: bool = False
    ) -> _Pending:
        total = sample.problem.tests_total
        limit = self.limits.program_mb << 20
        if len(sample.program) > limit or len(sample.program.encode("utf-8", "replace")) > limit:
            size = len(sample.program.encode("utf-8", "replace"))
            verdict = (
                "too_large",
                0,
                total,
                f"program of {size:,} bytes is over the {self.limits.program_mb} MiB limit",
            )
            return _Pending(index, sample, verdict=verdict)
        reason = None if trusted else self.policy.check(sample.program)
        if reason:
            verdict = ("policy", 0, total, clean(f"policy: {reason}"))
            return _Pending(index, sample, verdict=verdict)
        if timing:
            timeout, tests_s = max(60.0, 10 * self.limits.timeout), None
        else:
            timeout, tests_s = self.limits.sample_timeout(sample.times)
        job, tests = self._job(sample, fast, self.policy.enabled and not trusted, timeout, tests_s)
        if timing:
            job["timing"] = True
        frames = _frames(job, tests)
        size = max(len(frame) for frame in frames)
        if size > wire.MAX_FRAME:
            why = f"sample and its test inputs take {size:,} bytes, over the frame limit"
            return _Pending(index, sample, verdict=("too_large", 0, total, why))
        return _Pending(index, sample, data=b"".join(frames), timeout=timeout)

    def _execute(
        self,
        samples: list[Sample],
        *,
        fast: bool,
        trusted: bool,
        timing: bool = False,
        judge_for: Callable[[Sample], Any],
        on_result: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int, int, str]]:
        if self._closed:
            raise RuntimeError("this sandbox is closed")
        results: list[Any] = [None] * len(samples)
        todo: queue.Queue[int] = queue.Queue()
        for index in range(len(samples)):
            todo.put(index)
        errors: list[BaseException] = []

        def settle(item: _Pending, verdict: tuple) -> None:
            results[item.index] = verdict
            if on_result is not None:
                on_result(item.index)

        def take() -> _Pending | None:
            """The next sample that needs a worker; refusals are settled here."""
            while not errors and not self._closed:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return None
                item = self._prepare(index, samples[index], fast, trusted, timing)
                if item.data is not None:
                    return item
                settle(item, item.verdict)
            return None

        def loop() -> None:
            worker: _Worker | None = None
            try:
                current = take()
                while current is not None:
                    if worker is None:
                        worker = self._checkout()
                    if not current.sent:
                        current.sent = worker.send(current.data)
                    ahead = take()
                    if (
                        ahead is not None
                        and current.sent
                        and len(ahead.data) <= worker.ahead_bytes
                        and worker.served < self.recycle_after
                    ):
                        ahead.sent = worker.send(ahead.data)
                    judge = judge_for(current.sample)
                    raw = worker.receive(current.timeout + 15.0, judge) if current.sent else None
                    if raw is not None:
                        raw["limit"] = current.timeout
                    verdict = judge.verdict(raw)
                    spent = worker.served >= self.recycle_after and not (ahead and ahead.sent)
                    if raw is None or verdict[0] in ANOMALIES or spent:
                        self._retire(worker)
                        worker = None
                        if ahead is not None:
                            ahead.sent = False  # gone with the worker: send it again
                    settle(current, verdict)
                    current = ahead
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                if worker is not None:
                    self._retire(worker)
                return
            if worker is not None:
                self._idle.put(worker)

        threads = [
            threading.Thread(target=loop, daemon=True)
            for _ in range(min(self.workers, len(samples)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        if self._closed:
            raise RuntimeError("this sandbox was closed while it ran")
        return results

    def run(
        self,
        samples: list[Sample],
        *,
        fast: bool = False,
        trusted: bool = False,
        on_result: Callable[[int], None] | None = None,
    ) -> list[tuple[str, int, int, str]]:
        """Verdict tuples for `samples`, in order, using up to `workers` workers at once.

        Each worker is kept one sample ahead: the next sample's frames wait in its pipe
        while it runs the current one, so it starts the next as soon as it has reported,
        without waiting for the parent to judge the report. Only frames well within the
        pipe's buffer are sent ahead, so neither side can block the other.
        """
        return self._execute(
            samples,
            fast=fast,
            trusted=trusted,
            on_result=on_result,
            judge_for=lambda s: Judge(s.problem, fast=fast, expected=s.expected),
        )

    def oracles(self, problems: Iterable[Problem]) -> None:
        """Compute (or load from the cache) the canonical solution's results and times
        for each problem whose expected values come from running it; in parallel."""
        todo = []
        for problem in problems:
            if problem.task_id in self._oracle:
                continue
            cached = self.cache.load(problem) if self.cache is not None else None
            if cached is not None:
                self._oracle[problem.task_id] = cached
            else:
                todo.append(problem)
        if not todo:
            return
        samples = [Sample(p, p.canonical_program) for p in todo]
        judges: dict[int, _OracleJudge] = {}

        def judge_for(sample: Sample) -> _OracleJudge:
            judges[id(sample)] = judge = _OracleJudge(sample.problem)
            return judge

        verdicts = self._execute(
            samples, fast=False, trusted=True, timing=True, judge_for=judge_for
        )
        for sample, verdict in zip(samples, verdicts, strict=True):
            judge = judges.get(id(sample))
            problem = sample.problem
            if judge is None:
                values, times = [NO_EXPECTED] * len(problem.cases), None
            else:
                values, times = judge.values, judge.times
            if verdict[0] != "passed":
                log.warning(
                    "%s: the canonical solution did not run to the end (%s: %s)",
                    problem.task_id,
                    verdict[0],
                    verdict[3],
                )
                times = None  # no per-test limits from an incomplete run
            elif self.cache is not None:
                self.cache.store(problem, values, times)
            self._oracle[problem.task_id] = (values, times)

    def oracle(self, problem: Problem) -> list:
        """Expected values computed by running the canonical solution (HumanEval+ inputs)."""
        self.oracles([problem])
        return self._oracle[problem.task_id][0]

    def score(
        self,
        problems: dict[str, Problem] | Iterable[Problem],
        samples: Iterable[dict],
        *,
        fast: bool = False,
        progress: bool = False,
        full_program: bool = False,
    ) -> list[dict]:
        """One verdict dict per sample, in order (see `codealign.execution.score`)."""
        problems = _by_id(problems)
        prepared = prepare_samples(problems, samples, full_program=full_program)
        needed = {
            s.problem.task_id: s.problem
            for s in prepared
            if any(c.expected is NO_EXPECTED for c in s.problem.cases)
        }
        self.oracles(needed.values())
        for sample in prepared:
            if sample.problem.task_id in needed:
                sample.expected, sample.times = self._oracle[sample.problem.task_id]
        bar = _progress(len(prepared), progress)
        try:
            results = self.run(prepared, fast=fast, on_result=lambda _: bar.update(1))
        finally:
            bar.close()
        return [
            {
                "task_id": sample.task_id,
                "completion_id": sample.completion_id,
                "passed": status == "passed",
                "status": status,
                "tests_passed": passed,
                "tests_total": total,
                "detail": detail,
            }
            for sample, (status, passed, total, detail) in zip(prepared, results, strict=True)
        ]


class _OracleJudge(Judge):
    """Keeps the canonical solution's results and per-call times instead of judging them."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        self.values: list = [NO_EXPECTED] * len(problem.cases)
        self.times: list[float] = [0.0] * len(problem.cases)

    def _call(self, m: list) -> None:
        index, variant = m[1], m[2]
        if variant != 0 or type(index) is not int or not 0 <= index < len(self.values):
            return
        if m[0] != "r" or self.values[index] is not NO_EXPECTED:
            self.results[index] = (True, "")  # raised: this input has no expected value
            return
        with contextlib.suppress(ValueError, IndexError):
            self.values[index] = wire.decode(m[3])
            if len(m) > 4 and type(m[4]) is float and math.isfinite(m[4]) and m[4] >= 0:
                self.times[index] = m[4]
        self.results[index] = (True, "")


def isolation_shortfall(isolation: dict, namespaces: bool = True) -> list[str]:
    """What a worker's `isolation` lacks of the threat model (docs/sandbox.md): namespaces
    the kernel refused (not those turned off with `namespaces=False`), the seccomp filter,
    a root parent (uids per sample)."""
    short = []
    if namespaces and not isolation.get("namespaces", True):
        short.append("the kernel refused namespaces (no chroot: host files are readable)")
    if not isolation.get("seccomp", True):
        why = isolation.get("seccomp_reason")
        short.append("no seccomp filter" + (f" ({why})" if why else ""))
    if isolation.get("userns"):
        short.append("not root (samples share one uid inside a user namespace)")
    return short


_WARNED: set[str] = set()


def warn_shortfall(isolation: dict, namespaces: bool = True) -> None:
    """One warning line on stderr, once per process, when workers run with less isolation
    than the threat model states."""
    short = isolation_shortfall(isolation, namespaces)
    line = "; ".join(short)
    if short and line not in _WARNED:
        _WARNED.add(line)
        print(f"warning: the sandbox runs with less isolation: {line}", file=sys.stderr)


@functools.lru_cache(maxsize=1)
def _seccomp_module() -> str | None:
    """The file of the `pyseccomp` binding for workers to load by path (they run without
    site-packages); None if it is not installed, and workers then say so in `isolation`."""
    spec = importlib.util.find_spec("pyseccomp")
    return spec.origin if spec is not None and spec.origin else None


@functools.lru_cache(maxsize=4096)
def _encoded_calls(problem: Problem) -> list:
    return [
        [[wire.encode(list(args)), wire.encode(kwargs)] for args, kwargs in case.variants]
        for case in problem.cases
    ]


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        disable=not enabled,
        file=sys.stderr,
        unit="sample",
        desc="check",
        dynamic_ncols=True,
    )


def _by_id(problems: dict[str, Problem] | Iterable[Problem]) -> dict[str, Problem]:
    if isinstance(problems, dict):
        return {str(k): v for k, v in problems.items()}
    return {p.task_id: p for p in problems}


def prepare_samples(
    problems: dict[str, Problem], samples: Iterable[dict], *, full_program: bool = False
) -> list[Sample]:
    """Validate sample dicts and build their programs; number missing completion_ids per task.

    A sample may carry `full_program: true` to say its completion is a whole program.
    A sample's `where` key (e.g. `file:line`), if present, prefixes error messages.
    """
    prepared: list[Sample] = []
    counters: dict[str, Iterator[int]] = {}
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict):
            kind = type(sample).__name__
            raise CodealignError(f"sample {index + 1}: expected an object, got {kind}")
        where = sample.get("where") or f"sample {index + 1}"
        if "task_id" not in sample:
            raise CodealignError(f"{where}: missing field 'task_id'")
        if "completion" not in sample:
            raise CodealignError(f"{where}: missing field 'completion'")
        if not isinstance(sample["completion"], str):
            raise CodealignError(f"{where}: field 'completion' must be a string")
        key = str(sample["task_id"])
        problem = problems.get(key)
        if problem is None:
            raise CodealignError(f"{where}: unknown task_id {sample['task_id']!r}")
        counter = counters.setdefault(key, itertools.count())
        completion_id = sample.get("completion_id")
        if completion_id is None:
            completion_id = next(counter)
        whole = bool(sample.get("full_program", full_program))
        prepared.append(
            Sample(
                problem,
                problem.program(sample["completion"], full_program=whole),
                sample["task_id"],
                completion_id,
            )
        )
    if not prepared:
        raise CodealignError("no samples to check")
    return prepared
