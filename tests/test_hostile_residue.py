"""No residue between samples: what one sample leaves, a later one cannot find.

Each attack gets the worker's own modules the way a real one did (issue 21): a
`random.Random` subclass whose `_randbelow` is `sys._getframe`, called from random.py so
the audit hook lets it pass, yields a worker frame; its globals disarm the audit hook and
hand over `ctypes`, `gc` and `os` if the worker has them. Every test runs with the
in-Python policy on and off: the guarantees below must hold without it.

- memory: markers planted in earlier samples' tests, programs, inputs, outputs and
  results, scanned for in everything a later sample of the same worker can reach;
- kernel objects: SysV shared memory, semaphores and message queues, POSIX message
  queues and user keyrings made by one sample, looked for by later samples of the same
  worker, of another worker and of a second sandbox;
- uids: two sandboxes never share a uid block, nor does a block with a live process;
- syscalls: each denied family fails with EPERM inside a sample.
"""

from __future__ import annotations

import errno
import os
import platform
import secrets
import signal
import time

import pytest

from codealign.execution import Limits, Policy, Sandbox
from codealign.execution.pool import UidBlock
from codealign.problems import Problem, TestCase

pytestmark = pytest.mark.slow

PREFIX = "codealign-residue-mark-"  # never appears in a program below in one piece
KINDS = ("tests", "program", "result", "output", "args", "stdin", "expected", "prelude")


@pytest.fixture(params=[True, False], ids=["policy", "no-policy"])
def policy(request) -> Policy:
    return Policy(enabled=request.param)


@pytest.fixture(params=[True, False], ids=["jail", "no-namespaces"])
def namespaces(request) -> bool:
    """The full jail, where samples cannot reach ctypes at all, and the fallback without
    namespaces, where the worker keeps ctypes (for the parent-death signal) and so the
    attacks below get to make their syscalls: there the seccomp filter must hold."""
    return request.param


# The attacker's way in: a worker frame through a stdlib callback, then its globals.
GRAB = """
import random, operator, sys
_frames = []
class _Seq:
    def __len__(self):
        return 1
    def __getitem__(self, frame):
        _frames.append(frame)
        return 0
class _R(random.Random):
    _randbelow = operator.attrgetter('_getframe')(sys)
_R().choice(_Seq())
WORKER = {}
_f = _frames[0]
while _f is not None:
    _g = operator.attrgetter('f_globals')(_f)
    if 'Worker' in _g:
        WORKER = _g
        break
    _f = operator.attrgetter('f_back')(_f)
if type(WORKER.get('HOOK')) is dict:
    WORKER['HOOK']['armed'] = False
CTYPES = WORKER.get('ctypes')
LIBC = CTYPES.CDLL(None, use_errno=True) if CTYPES else None
"""


def marker(kind: str) -> str:
    return f"{PREFIX}{kind}:{secrets.token_hex(6)}"


def planted() -> tuple[list[Problem], list[dict]]:
    """Samples whose tests, programs, inputs, outputs and results carry markers."""
    check = Problem(
        task_id="residue/plant-check",
        prompt=f"HELPER = {marker('prelude')!r}\ndef echo(x):\n",
        entry_point="echo",
        test=f"def check(candidate):\n    for s in [{marker('tests')!r}]:\n"
        "        assert candidate(s) == s\n",
    )
    values = Problem(
        task_id="residue/plant-values",
        prompt="def echo(x):\n",
        entry_point="echo",
        cases=(TestCase((((marker("args"),), {}),), marker("expected"), "echo(...) == expected"),),
    )
    stdio = Problem(
        task_id="residue/plant-stdio",
        prompt="Echo the input.",
        entry_point=None,
        prompt_prefix=False,
        stdio=((marker("stdin") + "\n", "x\n"),),
    )
    program = f"    print({marker('output')!r})\n    return x + {marker('result')!r}\n"
    whole = f"# {marker('program')}\nprint(input(), {marker('output')!r})\n"
    samples = [
        {"task_id": check.task_id, "completion": program},
        {"task_id": values.task_id, "completion": program},
        {"task_id": stdio.task_id, "completion": whole, "full_program": True},
    ]
    return [check, values, stdio], samples


SCAN = (
    GRAB
    + f"KINDS = {KINDS!r}\n"
    + """
PREFIX = 'codealign-residue' + '-mark-'
found = set()

def look(data):
    if type(data) is str:
        data = data.encode('utf-8', 'replace')
    needle = PREFIX.encode()
    at = data.find(needle)
    while at >= 0:
        tail = data[at + len(needle): at + len(needle) + 12]
        for kind in KINDS:
            if tail.startswith(kind.encode() + b':'):
                found.add(kind)
        at = data.find(needle, at + 1)

gc = WORKER.get('gc')
if gc is not None:
    consts = operator.attrgetter('co_consts')
    for o in gc.get_objects():
        try:
            if type(o) is dict:
                items = list(o.keys()) + list(o.values())
            elif type(o) in (list, tuple, set, frozenset):
                items = list(o)
            elif type(o).__name__ == 'code':
                items = list(consts(o))
            else:
                continue
            for item in items:
                if type(item) in (str, bytes):
                    look(item)
        except Exception:
            pass

osmod = WORKER.get('os')
if LIBC is not None and osmod is not None:
    # Every page that a write() to a pipe can read is readable memory of this process:
    # the heap up to the break, and every megabyte that holds a live object.
    r, w = osmod.pipe()
    page = 4096
    def readable(address):
        return LIBC.write(w, CTYPES.c_void_p(address), page) == page
    def scan_page(address):
        if readable(address):
            look(osmod.read(r, page))
            return True
        return False
    seen = set()
    LIBC.sbrk.restype = CTYPES.c_void_p
    top = LIBC.sbrk(0) or 0
    address = (top // page - 1) * page
    while address > 0 and scan_page(address):
        seen.add(address)
        address -= page
    blocks = set()
    if gc is not None:
        for o in gc.get_objects():
            blocks.add(id(o) >> 20)
    for block in sorted(blocks):
        for address in range(block << 20, (block + 1) << 20, page):
            if address not in seen:
                seen.add(address)
                scan_page(address)
    osmod.close(r)
    osmod.close(w)
if osmod is not None:
    for base, dirs, files in osmod.walk(osmod.path.dirname(osmod.getcwd())):
        for name in files:
            try:
                with open(osmod.path.join(base, name), 'rb') as handle:
                    look(handle.read(1 << 20))
            except Exception:
                pass

FOUND = sorted(found)
SCANNED = LIBC is not None

def scan():
    return FOUND
"""
)

SCAN_VALUES = Problem(
    task_id="residue/scan",
    prompt="def scan():\n",
    entry_point="scan",
    cases=(TestCase((((), {}),), [], "scan() == []"),),
)
SCAN_CHECK = Problem(
    task_id="residue/scan-check",
    prompt="def scan():\n",
    entry_point="scan",
    test="def check(candidate):\n    for i in range(1):\n        assert candidate() == []\n",
)


def test_a_sample_finds_nothing_of_earlier_samples_in_memory(policy, namespaces):
    """Issue 21, item 2: the heap a sample inherits holds nothing of other samples."""
    problems, samples = planted()
    scans = [
        {"task_id": p.task_id, "completion": SCAN, "full_program": True}
        for p in (SCAN_VALUES, SCAN_CHECK)
    ]
    limits = Limits(timeout=20.0)
    with Sandbox(workers=1, limits=limits, policy=policy, namespaces=namespaces) as box:
        verdicts = box.score(
            problems + [SCAN_VALUES, SCAN_CHECK], samples + scans + samples + scans
        )
    planted_statuses = [v["status"] for v in verdicts[:3] + verdicts[5:8]]
    assert planted_statuses == ["failed"] * 6, verdicts
    for verdict in verdicts[3:5] + verdicts[8:10]:
        assert verdict["status"] == "passed", verdict
        assert PREFIX not in verdict["detail"]


def test_the_scan_finds_markers_of_its_own_sample(policy):
    """The scan is not blind: bytes that only its own heap holds (a bytearray, which the
    `gc` half of the scan skips), it finds, where ctypes is in reach (no namespaces)."""
    own = SCAN.replace(
        "found = set()\n",
        "found = set()\nKEEP = bytearray((PREFIX + 'program:x').encode())\n",
    )
    with Sandbox(workers=1, limits=Limits(timeout=20.0), policy=policy, namespaces=False) as box:
        [verdict] = box.score(
            [SCAN_VALUES],
            [{"task_id": SCAN_VALUES.task_id, "completion": own, "full_program": True}],
        )
    assert verdict["status"] == "failed", verdict
    assert verdict["detail"] == "scan() == []: got ['program']"


def _worker_memory(pid: int) -> list[bytes]:
    """Every mapping of process `pid` that a fork would copy (smaps VmFlags without `dc`),
    read through /proc/PID/mem."""
    regions, current = [], None
    with open(f"/proc/{pid}/smaps") as handle:
        for line in handle:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                current = [start, end, fields[1].startswith("r"), fields[-1]]
                regions.append(current)
            elif fields[0] == "VmFlags:" and current is not None:
                current.append("dc" in fields[1:])
    chunks = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, readable, name, *flags in regions:
            if not readable or (flags and flags[0]) or name in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:
                pass
    return chunks


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_the_forking_worker_holds_nothing_of_a_sample(policy):
    """Read from outside: after samples ran, nothing of their tests, programs, inputs,
    outputs or results is in any memory of the worker that a fork would pass on."""
    problems, samples = planted()
    with Sandbox(workers=1, limits=Limits(timeout=10.0), policy=policy) as box:
        box.score(problems, samples)
        worker = box._idle.get_nowait()
        outer = worker.proc.pid
        with open(f"/proc/{outer}/task/{outer}/children") as handle:
            children = [int(x) for x in handle.read().split()]
        pid = children[0] if children else outer  # PID 1 of its namespace, or itself
        try:
            memory = _worker_memory(pid)
        except PermissionError:
            pytest.skip("this process may not read the worker's memory")
        box._idle.put(worker)
    assert sum(len(chunk) for chunk in memory) > 1 << 20  # the scan saw the heap
    texts = [s["completion"] for s in samples] + [p.test or "" for p in problems]
    texts += [str(p.cases) for p in problems] + [str(p.stdio) for p in problems]
    markers = {m for text in texts for m in _markers(text)}
    assert len(markers) >= 7
    leaked = sorted(m for m in markers if any(m.encode() in chunk for chunk in memory))
    assert leaked == []


def _markers(text: str) -> list[str]:
    found, at = [], text.find(PREFIX)
    while at >= 0:
        end = text.index(":", at + len(PREFIX)) + 13
        found.append(text[at:end])
        at = text.find(PREFIX, at + 1)
    return found


CTYPES_PROBE = (
    GRAB
    + """
reached = []
if CTYPES is not None or WORKER.get('_libc') is not None:
    reached.append('worker globals')
load = operator.attrgetter('__import__')(WORKER['__builtins__'])
for name in ('ctypes', '_ctypes'):
    try:
        load(name)
        reached.append('import ' + name)
    except BaseException:
        pass
try:
    class Spec:
        name = '_ctypes'
        origin = ORIGIN
    load('_imp').create_dynamic(Spec())
    reached.append('extension cache')
except BaseException:
    pass
gc = WORKER.get('gc')
if gc is not None:
    for o in gc.get_objects():
        if 'ctypes' in str(operator.attrgetter('__module__')(type(o))):
            reached.append('a ctypes object')
            break

def probe():
    return reached
"""
)


def test_ctypes_is_out_of_reach_of_a_sample(policy):
    """Stage 2 never loaded ctypes: not in the worker's globals, not importable, not
    revivable from the extension cache (by the path the parent's copy came from), no
    object of it alive."""
    import _ctypes

    problem = Problem(
        task_id="residue/ctypes",
        prompt="def probe():\n",
        entry_point="probe",
        cases=(TestCase((((), {}),), [], "probe() == []"),),
    )
    program = f"ORIGIN = {_ctypes.__file__!r}\n" + CTYPES_PROBE
    sample = {"task_id": problem.task_id, "completion": program, "full_program": True}
    with Sandbox(workers=1, limits=Limits(timeout=5.0), policy=policy) as box:
        [verdict] = box.score([problem], [sample])
        isolation = box.isolation
    assert isolation.get("ctypes_free"), isolation
    assert verdict["status"] == "passed", verdict


# ---- kernel objects ----------------------------------------------------------------------

ARCH_SYSCALLS = {
    "x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
    "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219},
}

KERNEL_OBJECTS = {
    # (make, find): `make` returns 'made' or an error; `find` returns 'found' or 'absent'.
    "sysv_shm": (
        "r = LIBC.shmget(KEY, 4096, 0o1666)\nRESULT = 'made' if r >= 0 else 'denied'",
        "RESULT = 'found' if LIBC.shmget(KEY, 0, 0o666) >= 0 else 'absent'",
    ),
    "sysv_sem": (
        "r = LIBC.semget(KEY, 1, 0o1666)\nRESULT = 'made' if r >= 0 else 'denied'",
        "RESULT = 'found' if LIBC.semget(KEY, 0, 0o666) >= 0 else 'absent'",
    ),
    "sysv_msg": (
        "r = LIBC.msgget(KEY, 0o1666)\nRESULT = 'made' if r >= 0 else 'denied'",
        "RESULT = 'found' if LIBC.msgget(KEY, 0o666) >= 0 else 'absent'",
    ),
    "posix_mqueue": (
        "r = LIBC.mq_open(NAME, 0o100 | 2, 0o666, None)\nRESULT = 'made' if r >= 0 else 'denied'",
        "RESULT = 'found' if LIBC.mq_open(NAME, 2) >= 0 else 'absent'",
    ),
    "user_keyring": (
        "r = LIBC.syscall(NR['add_key'], b'user', NAME, b'payload', 7, -4)\n"  # user keyring
        "RESULT = 'made' if r >= 0 else 'denied'",
        "r = LIBC.syscall(NR['request_key'], b'user', NAME, None, 0)\n"
        "RESULT = 'found' if r >= 0 else 'absent'",
    ),
    "user_session_keyring": (
        "r = LIBC.syscall(NR['add_key'], b'user', NAME, b'payload', 7, -5)\n"
        "RESULT = 'made' if r >= 0 else 'denied'",
        "r = LIBC.syscall(NR['request_key'], b'user', NAME, None, 0)\n"
        "RESULT = 'found' if r >= 0 else 'absent'",
    ),
}


def kernel_program(body: str, key: int, name: bytes) -> str:
    nr = ARCH_SYSCALLS.get(platform.machine(), {})
    return (
        GRAB
        + f"KEY = {key}\nNAME = {name!r}\nNR = {nr!r}\nRESULT = 'no ctypes'\n"
        + "if LIBC is not None:\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
        + "def probe():\n    return RESULT\n"
    )


PROBE = Problem(
    task_id="residue/probe",
    prompt="def probe():\n",
    entry_point="probe",
    cases=(TestCase((((), {}),), "absent", "probe() == 'absent'"),),
)


def _run(box: Sandbox, programs: list[str]) -> list[dict]:
    samples = [{"task_id": PROBE.task_id, "completion": p, "full_program": True} for p in programs]
    return box.score([PROBE], samples)


def _result(verdict: dict) -> str:
    if verdict["status"] == "passed":
        return "absent"
    return verdict["detail"]


@pytest.mark.parametrize("kind", sorted(KERNEL_OBJECTS))
def test_kernel_objects_of_one_sample_are_invisible_to_later_samples(kind, policy, namespaces):
    if "keyring" in kind and platform.machine() not in ARCH_SYSCALLS:
        pytest.skip(f"no keyring syscall numbers for {platform.machine()}")
    make, find = KERNEL_OBJECTS[kind]
    key = 0x5EED0000 + secrets.randbelow(0xFFFF)
    name = f"/codealign-residue-{secrets.token_hex(4)}".encode()
    maker, finder = kernel_program(make, key, name), kernel_program(find, key, name)
    limits = Limits(timeout=5.0)
    found = []
    # the same worker: one worker, samples in turn
    options = {"limits": limits, "policy": policy, "namespaces": namespaces}
    with Sandbox(workers=1, **options) as box:
        found += [_result(v) for v in _run(box, [maker, finder, finder])[1:]]
    # another worker: each worker retires after one sample
    with Sandbox(workers=1, recycle_after=1, **options) as box:
        found += [_result(v) for v in _run(box, [maker, finder])[1:]]
        made = _result(_run(box, [maker])[0])
        isolation = box.isolation
    # a second sandbox, after the first is gone
    with Sandbox(workers=1, **options) as box:
        found += [_result(v) for v in _run(box, [finder])]
    assert not any("found" in result for result in found), (kind, found, made)
    # Either the sample cannot make the call at all (no ctypes in reach) or the kernel
    # refuses it; only without the filter may an IPC object be made, in the sample's
    # own IPC namespace, which dies with it.
    if isolation["ctypes_free"]:
        assert "no ctypes" in made, (kind, made, isolation)
    elif isolation["seccomp"] or "keyring" in kind:
        assert "denied" in made, (kind, made, isolation)
    else:
        assert isolation["ipc_private"], isolation


# ---- uids ----------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="uid blocks are used only when run as root")
def test_concurrent_sandboxes_never_share_a_uid_block():
    with Sandbox(workers=1) as one, Sandbox(workers=1) as two:
        assert set(one.uids).isdisjoint(two.uids)
        assert len(one.uids) == len(two.uids) > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="uid blocks are used only when run as root")
def test_a_uid_block_with_a_live_process_is_skipped():
    free = UidBlock.acquire()
    index, uids = free.index, free.uids
    free.release()
    pid = os.fork()
    if pid == 0:  # a leftover process of that block, as a killed run might leave
        try:
            os.setgid(uids.start)
            os.setuid(uids.start)
            time.sleep(60)
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while uids.start not in _uids_of(pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        block = UidBlock.acquire(start=index)
        try:
            assert block.index != index and not set(block.uids) & set(uids)
        finally:
            block.release()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    again = UidBlock.acquire(start=index)  # with nothing of it alive, it is free again
    again.release()
    assert again.index == index


def _uids_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as handle:
        line = next(x for x in handle if x.startswith("Uid:"))
    return [int(uid) for uid in line.split()[1:]]


# ---- denied syscalls -------------------------------------------------------------------------

DENIED = {
    "ptrace": ["ptrace"],
    "process_vm": ["process_vm_readv", "process_vm_writev"],
    "keyrings": ["add_key", "keyctl", "request_key"],
    "memfd": ["memfd_create"],
    "exec": ["execve", "execveat"],
    "sysv_ipc": ["shmget", "msgget", "semget"],
    "posix_mqueue": ["mq_open"],
    "namespaces": ["unshare", "setns", "mount"],
    "bpf": ["bpf"],
    "perf": ["perf_event_open"],
    "userfaultfd": ["userfaultfd"],
    "io_uring": ["io_uring_setup"],
    "personality": ["personality"],
}


@pytest.mark.parametrize("family", sorted(DENIED))
def test_denied_syscalls_fail_with_eperm(family, policy):
    """Run where ctypes is in reach of a sample (no namespaces), so that each call is
    really made; in the jail no sample can make them at all (test above)."""
    pyseccomp = pytest.importorskip("pyseccomp")
    numbers = {
        name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in DENIED[family]
    }
    # Each call with arguments that would make it fail harmlessly (or, for personality,
    # succeed as a query) without the filter; with it, every one is refused first.
    program = (
        GRAB
        + f"NUMBERS = {numbers!r}\nRESULT = 'no ctypes'\n"
        + "if LIBC is not None:\n"
        + "    codes = []\n"
        + "    for name, nr in sorted(NUMBERS.items()):\n"
        + "        args = [0xffffffff] if name == 'personality' else [-1, 0, 0, 0, 0]\n"
        + "        r = LIBC.syscall(nr, *args)\n"
        + "        codes.append(CTYPES.get_errno() if r == -1 else 0)\n"
        + "    RESULT = codes\n"
        + "def probe():\n    return RESULT\n"
    )
    expected = [errno.EPERM] * len(numbers)
    problem = Problem(
        task_id="residue/syscalls",
        prompt="def probe():\n",
        entry_point="probe",
        cases=(TestCase((((), {}),), expected, "probe() == [EPERM, ...]"),),
    )
    with Sandbox(workers=1, limits=Limits(timeout=5.0), policy=policy, namespaces=False) as box:
        [verdict] = box.score(
            [problem], [{"task_id": problem.task_id, "completion": program, "full_program": True}]
        )
        isolation = box.isolation
    if not isolation.get("seccomp"):
        pytest.skip(f"no seccomp filter here: {isolation.get('seccomp_reason')}")
    assert verdict["status"] == "passed", verdict
