"""The trusted parent: a pool of warm sandbox workers, and the verdicts it alone decides.

`Sandbox` starts `workers` worker processes (see worker.py), feeds each its samples in
turn, one running and the next waiting in its pipe, and turns their reports into
verdicts with `verdicts.decide`. Expected values never leave this process. A worker is
replaced after `recycle_after` samples and after any anomaly (timeout, crash, policy
stop, out-of-memory, a report it could not parse).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import itertools
import json
import logging
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
from codealign.execution.policy import Policy
from codealign.execution.verdicts import decide
from codealign.problems import NO_EXPECTED, Problem, instrument, referenced_names

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
ANOMALIES = frozenset({"timeout", "crashed", "policy", "oom"})
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
    """Per-sample limits. Every knob is enforced by the kernel in the sample's processes."""

    timeout: float = 3.0  # wall-clock seconds for a whole sample (all its tests)
    memory_mb: int = 1024  # address space of each sample process
    file_mb: int = 16  # largest file a sample may write
    disk_mb: int = 256  # tmpfs size of a worker's jail (all its sample dirs)
    open_files: int = 64  # file descriptors per process
    processes: int = 32  # processes and threads of a sample (per private uid)
    output_kb: int = 64  # stdout/stderr kept per sample; the rest is drained and dropped

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise CodealignError(f"sandbox limit {name} must be positive, got {value}")

    def as_wire(self) -> dict:
        return {
            "timeout": float(self.timeout),
            "memory_bytes": int(self.memory_mb) << 20,
            "file_bytes": int(self.file_mb) << 20,
            "open_files": int(self.open_files),
            "processes": int(self.processes),
            "output_bytes": int(self.output_kb) << 10,
        }


@dataclass
class Sample:
    """One program to judge against one problem."""

    problem: Problem
    program: str
    task_id: Any = None
    completion_id: Any = None
    expected: list | None = field(default=None, repr=False)


HEADER_KEYS = ("id", "mode", "entry", "limits", "policy")


def _frames(job: dict, tests: dict) -> bytes:
    """A sample's three frames for a worker: the header it reads (no program, input or
    test in it), then the candidate's part and the tester's, which it passes on unread."""
    header = {key: job[key] for key in HEADER_KEYS}
    payload = {key: value for key, value in job.items() if key not in HEADER_KEYS}
    return wire.frame(header) + wire.frame(payload) + wire.frame(tests)


def _lines(data: bytes) -> list[str]:
    return [line.decode("ascii", "replace") for line in data.split(b"\n") if line]


@dataclass
class _Pending:
    """A sample on its way through `Sandbox.run`."""

    index: int
    sample: Sample
    data: bytes | None = None  # the frames for a worker; None when settled without one
    verdict: tuple | None = None
    sent: bool = False


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
        # Frames sent ahead (see Sandbox.run) stay under a quarter of the pipe's buffer,
        # so two of them always fit and a write never waits on the worker.
        self.ahead_bytes = fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_GETPIPE_SZ) // 4
        hello = self._read(30.0)
        if hello is None or "hello" not in hello:
            self.kill()
            raise CodealignError("the sandbox worker failed to start")
        self.isolation = hello["hello"]

    def _read(self, timeout: float) -> dict | None:
        """The next report: a JSON frame, and for a sample the raw bytes of its streams
        (`sizes`: candidate reports, tester reports, output), split here into lines."""
        deadline = time.monotonic() + timeout
        size = self._read_exact(4, deadline)
        if size is None or int.from_bytes(size, "big") > wire.MAX_FRAME * 2:
            return None
        data = self._read_exact(int.from_bytes(size, "big"), deadline)
        if data is None:
            return None
        message = json.loads(data)
        sizes = message.pop("sizes", None) if type(message) is dict else None
        if sizes is not None:
            if type(sizes) is not list or len(sizes) != 3:
                return None
            streams = []
            for count in sizes:
                if type(count) is not int or not 0 <= count <= wire.MAX_FRAME * 2:
                    return None
                streams.append(self._read_exact(count, deadline))
                if streams[-1] is None:
                    return None
            message["c"], message["t"] = _lines(streams[0]), _lines(streams[1])
            message["out"] = streams[2].decode("utf-8", "replace")
        return message

    def _read_exact(self, count: int, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        chunks, need = [], count
        while need:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, min(need, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            need -= len(chunk)
        return b"".join(chunks)

    def send(self, data: bytes) -> bool:
        """Write a sample's frames (job, then tests); False if the worker is gone."""
        try:
            wire.write_all(self.proc.stdin.fileno(), data)
        except OSError:
            return False
        self.served += 1
        return True

    def receive(self, timeout: float) -> dict | None:
        """The next report, or None on a timeout, a closed pipe or a malformed frame."""
        try:
            return self._read(timeout)
        except (ValueError, OSError):
            return None

    def run(self, job: dict, tests: dict, timeout: float) -> dict | None:
        return self.receive(timeout) if self.send(_frames(job, tests)) else None

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
    """

    def __init__(
        self,
        workers: int = 2,
        limits: Limits | None = None,
        policy: Policy | None = None,
        *,
        namespaces: bool = True,
        recycle_after: int = 2000,
    ) -> None:
        if workers < 1:
            raise CodealignError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.limits = limits or Limits()
        self.policy = policy or Policy()
        self.namespaces = namespaces
        self.recycle_after = recycle_after
        self._jail = tempfile.mkdtemp(prefix="codealign-sandbox-")
        os.chmod(self._jail, 0o755)
        self._ids = itertools.count()
        self._uid_slots = itertools.count()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._oracle: dict[str, list] = {}
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
        worker = _Worker(self._config())
        with self._lock:
            self._all.append(worker)
            self.isolation = worker.isolation
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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.close()
        shutil.rmtree(self._jail, ignore_errors=True)
        if self._uid_block is not None:
            self._uid_block.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # ---- running ---------------------------------------------------------------------------

    def _job(self, sample: Sample, fast: bool, policy_on: bool) -> tuple[dict, dict]:
        problem = sample.problem
        job: dict[str, Any] = {
            "id": next(self._ids),
            "program": sample.program,
            "entry": problem.entry_point,
            "limits": self.limits.as_wire(),
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
            tests = {
                "source": source,
                "prelude": problem.prompt if problem.prompt_prefix else "",
                "names": referenced_names(problem.test),
                "fast": fast,
            }
        return job, tests

    def _prepare(self, index: int, sample: Sample, fast: bool, trusted: bool) -> _Pending:
        reason = None if trusted else self.policy.check(sample.program)
        if reason:
            verdict = ("policy", 0, sample.problem.tests_total, f"policy: {reason}")
            return _Pending(index, sample, verdict=verdict)
        job, tests = self._job(sample, fast, policy_on=self.policy.enabled and not trusted)
        return _Pending(index, sample, data=_frames(job, tests))

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
        if self._closed:
            raise RuntimeError("this sandbox is closed")
        results: list[Any] = [None] * len(samples)
        todo: queue.Queue[int] = queue.Queue()
        for index in range(len(samples)):
            todo.put(index)
        errors: list[BaseException] = []
        timeout = self.limits.timeout + 15.0

        def settle(item: _Pending, verdict: tuple) -> None:
            results[item.index] = verdict
            if on_result is not None:
                on_result(item.index)

        def take() -> _Pending | None:
            """The next sample that needs a worker; policy refusals are settled here."""
            while not errors:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return None
                item = self._prepare(index, samples[index], fast, trusted)
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
                    raw = worker.receive(timeout) if current.sent else None
                    if raw is not None:
                        raw["limit"] = self.limits.timeout
                    problem, expected = current.sample.problem, current.sample.expected
                    verdict = decide(problem, raw, fast=fast, expected=expected)
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
        return results

    def oracle(self, problem: Problem) -> list:
        """Expected values computed by running the canonical solution (HumanEval+ inputs)."""
        if problem.task_id not in self._oracle:
            sample = Sample(problem, problem.canonical_program)
            job, tests = self._job(sample, False, policy_on=False)
            worker = self._checkout()
            raw = worker.run(job, tests, self.limits.timeout * 10 + 15.0)
            self._retire(worker) if raw is None else self._idle.put(worker)
            values = [NO_EXPECTED] * len(problem.cases)
            for line in (raw or {}).get("c", []):
                with contextlib.suppress(ValueError, IndexError, TypeError):
                    m = wire.loads(line)
                    if m[0] == "r" and m[2] == 0:
                        values[m[1]] = wire.decode(m[3])
            self._oracle[problem.task_id] = values
        return self._oracle[problem.task_id]

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
        for sample in prepared:
            if any(c.expected is NO_EXPECTED for c in sample.problem.cases):
                sample.expected = self.oracle(sample.problem)
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
