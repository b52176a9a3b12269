"""A warm sandbox worker: pre-imports the allowed modules, then forks one jailed child per sample.

The parent pool starts this file as `python -s -P -S -B worker.py CONFIG` with an
environment of `PYTHONHASHSEED=0` alone; it uses only the standard library, `wire.py`
beside it and, where installed, the `pyseccomp` binding of libseccomp. It speaks to the
parent in length-prefixed frames on its stdin/stdout and never sees expected results.
Nor does it hold any sample's data: of each sample it reads only a header (id, mode,
entry point, limits, policy); the program, its inputs and its tests follow as frames it
moves into the sample's processes' pipes with splice(2) unread, and what those processes
report goes back to the parent through MADV_DONTFORK mappings. So a sample forked from
the worker inherits nothing of any earlier sample, live or freed.

Start-up, stage 1: new user (when not root), mount, PID, network, IPC and UTS namespaces
where the kernel allows; fork so that the worker is PID 1 of its PID namespace (killing
everything left of a sample is then one `kill(-1)`, and the kernel kills the whole
namespace if the worker dies); a size-capped tmpfs over the jail directory, mounted
nosuid,nodev,noexec; no_new_privs and the seccomp filter (DENIED_SYSCALLS); then an exec
of a fresh interpreter through a descriptor only the filter's one exception admits.
Stage 2, which never loads ctypes unless a fallback needs it: the allowed modules
imported without at-fork hooks; `chroot` into the jail; then what every sample inherits:
an empty environment, umask 077, default signal handlers (SIGPIPE ignored, as in any
Python program), and `random` seeded with 0. Without namespaces it falls back to being a
child subreaper that hunts a sample's descendants through /proc.

Per sample: a private directory in the jail as cwd; a child that starts a new session,
takes the limits (address space, CPU seconds, file size, open files, processes, no core
dumps), stdin from /dev/null, stdout/stderr into a capped pipe, drops to an unprivileged
uid (or clears its capabilities inside a user namespace), reads its own job from its
pipe, and only then compiles and runs the program, with an audit hook watching it when
the policy asks. General test code runs in a second child with another uid, which reads
the tests from a pipe of its own; the program reaches it only through a socket carrying
plain data. With string hashing and `random` fixed, a sample's result does not depend on
which worker ran it, or when.
"""

from __future__ import annotations

import builtins
import errno
import gc
import json
import math
import mmap
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contextlib

import policy as static_policy  # noqa: E402
import wire  # noqa: E402

REPORT_CAP = wire.REPORT_CAP  # bytes of each report stream kept per sample

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWCGROUP = 0x02000000
NAMESPACE_FLAGS = (
    CLONE_NEWNS,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
    CLONE_NEWCGROUP,
)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18

POLICY_EXIT = 86
# Refused with EPERM to every sample (and to the worker once it has set up): nothing a
# program, a test or the harness needs them. Reading or steering other processes
# (ptrace, process_vm_*, kcmp), kernel objects that outlive a process (keyrings, SysV
# and POSIX IPC), running anything but the program's Python (exec*, memfd_create),
# changing namespaces or mounts (unshare, setns, clone with CLONE_NEW*, the mount
# family, pivot_root), and attack surface no program needs (bpf, perf_event_open,
# userfaultfd, io_uring, personality, kernel modules, kexec, handles to host files).
# chroot stays allowed, for stage 2's own; it needs a capability no sample holds.
DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "add_key",
    "keyctl",
    "request_key",
    "memfd_create",
    "memfd_secret",
    "execve",
    "shmget",
    "shmat",
    "msgget",
    "semget",
    "mq_open",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "personality",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "name_to_handle_at",
)
DEBUG = False
HOOK: dict | None = None  # the dormant audit hook's state, set once per worker

EXEC_FD = 1023  # the interpreter's file, open only from stage 1's filter to its execveat
AT_EMPTY_PATH = 0x1000

# ctypes is loaded only where a step needs a libc call that Python lacks: always in stage
# 1, and in stage 2 only for what the kernel's setup left to do per sample (see
# Worker.serve). Where stage 2 never loads it, no sample can reach it: not as a module,
# not through the worker's globals, not revived from the interpreter's extension cache.
ctypes = None
_libc = None
_CAPS = None


def _load_libc():
    global ctypes, _libc
    if _libc is None:
        import ctypes as module

        ctypes = module
        _libc = module.CDLL(None, use_errno=True)
    return _libc


def _raw_fork() -> int:
    """os.fork, which runs no at-fork hooks in a worker: none were registered (see
    Worker.preload), so `random` keeps its fixed state and no page is touched for them."""
    return os.fork()


_write = os.write
_exit = os._exit


def _prctl(option: int, arg: int) -> bool:
    return _load_libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0


def _drop_bounding_set() -> None:
    """Empty the capability bounding set: no later execve can grant a capability. It is
    inherited by every child, so the worker drops it once and keeps its own effective
    capabilities for the jail's housekeeping."""
    for cap in range(64):
        _prctl(PR_CAPBSET_DROP, cap)


def _clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable capability sets of this process."""
    global _CAPS
    libc = _load_libc()
    if _CAPS is None:

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("e", ctypes.c_uint32), ("p", ctypes.c_uint32), ("i", ctypes.c_uint32)]

        # _LINUX_CAPABILITY_VERSION_3, this process; two empty sets of 32 bits each
        _CAPS = (Header(0x20080522, 0), (Data * 2)())
    if libc.capset(ctypes.byref(_CAPS[0]), _CAPS[1]) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


class _Buffer:
    """Bytes that a sample's processes sent, kept in an anonymous mapping that no fork
    inherits (MADV_DONTFORK) and that is emptied (MADV_DONTNEED) once passed on: the
    worker relays them to the parent without a copy in its heap."""

    def __init__(self, size: int) -> None:
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.map.madvise(mmap.MADV_DONTFORK)
        self.view = memoryview(self.map)
        self.size, self.used, self.total = size, 0, 0
        self.cap = size  # bytes kept for the current sample, at most `size`
        self.lines, self._line_limit = 0, 0

    def count_lines(self, limit: int) -> None:
        """Count the line breaks kept from now on, up to `limit` (0: none), searched in
        the mapping itself; per-test limits need only the first few."""
        self.lines, self._line_limit = 0, limit

    def fill(self, fd: int, scratch: memoryview) -> bool:
        """Read what `fd` has; past `cap` bytes it is counted and dropped. False at EOF."""
        if self.used < self.cap:
            got = os.readv(fd, [self.view[self.used : self.cap]])
            start, self.used = self.used, self.used + got
            find = self.map.find
            while self.lines < self._line_limit:
                start = find(b"\n", start, self.used) + 1
                if not start:
                    break
                self.lines += 1
        else:
            got = os.readv(fd, [scratch])
        self.total += got
        return got > 0

    def clear(self) -> None:
        if self.used:
            self.map.madvise(mmap.MADV_DONTNEED, 0, self.used)
        self.used = self.total = 0
        self.lines = self._line_limit = 0

    def close(self) -> None:
        self.view.release()
        self.map.close()


def _write_parts(fd: int, parts: list) -> None:
    """Write `parts` (bytes or views of a mapping) in order to a blocking descriptor,
    with as few system calls as the pipe allows and no copy of them in the heap."""
    parts = [memoryview(part) for part in parts if len(part)]
    while parts:
        written = os.writev(fd, parts[:1024])
        while written:
            if written >= len(parts[0]):
                written -= len(parts.pop(0))
            else:
                parts[0] = parts[0][written:]
                written = 0


def _own_frame(fd: int, object_hook=None):
    """In a sample's process: read the frame the worker passed on for it, then close fd."""
    try:
        return wire.read_frame(fd, object_hook)
    finally:
        os.close(fd)


class Worker:
    """Stage 1 (`start`) sets up what needs libc calls: namespaces, PID 1, the tmpfs, the
    seccomp filter; then it execs a fresh interpreter, stage 2 (`serve`), which never
    saw ctypes, to preload the allowed modules, chroot and fork the samples."""

    def __init__(self, config: dict, info: dict | None = None) -> None:
        self.config = config
        self.jail = config["jail"]
        self.info = info or {
            "namespaces": False,
            "network_namespace": False,
            "chroot": False,
            "uid_drop": False,
            "userns": False,
            "pid1": False,
            "heap_clean": True,
            "seccomp": False,
            "ipc_private": False,
            "keyrings_private": False,
            "ctypes_free": False,
        }
        self.real_root = os.geteuid() == 0 and not self.info["userns"]
        self.uid_candidate = self.uid_tester = None
        self.served = 0
        self.buffers: dict[str, _Buffer] = {}

    def start(self) -> None:
        """Stage 1: isolate, build and load the filter, then exec stage 2 in place."""
        _load_libc()
        self.isolate()
        rules = self.build_seccomp()
        fd = os.open(sys.executable, os.O_RDONLY | os.O_CLOEXEC)
        os.dup2(fd, EXEC_FD, inheritable=False)
        os.close(fd)
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        self.load_seccomp(rules)
        argv = [sys.executable, "-s", "-P", "-S", "-B", os.path.abspath(__file__)]
        argv += [json.dumps(self.config), json.dumps(self.info)]
        os.execve(EXEC_FD, argv, {"PYTHONHASHSEED": "0"})

    # ---- start-up ---------------------------------------------------------------------

    def isolate(self) -> None:
        if not self.config.get("namespaces", True):
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
            return
        uid, gid = os.getuid(), os.getgid()
        user = 0 if self.real_root else CLONE_NEWUSER
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | user
        libc = _load_libc()
        if libc.unshare(flags) != 0:
            if libc.unshare(CLONE_NEWNET | user) == 0:
                self.info["network_namespace"] = True
                self.info["userns"] = bool(user)
                if user:
                    self._map_ids(uid, gid)
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
            return
        if user:
            self._map_ids(uid, gid)
            self.info["userns"] = True
        pid = os.fork()
        if pid:
            # The original process only waits; if the parent kills it, PDEATHSIG takes
            # down PID 1 and with it the whole namespace.
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                    break
                except InterruptedError:
                    continue
            _exit(os.waitstatus_to_exitcode(status) & 0xFF)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        self.info.update(namespaces=True, network_namespace=True, pid1=os.getpid() == 1)
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            opts = f"size={int(self.config['disk_mb'])}m,mode=0755".encode()
            flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
            if libc.mount(b"tmpfs", self.jail.encode(), b"tmpfs", flags, opts) == 0:
                self.info["tmpfs"] = True

    @staticmethod
    def _map_ids(uid: int, gid: int) -> None:
        for name, text in (
            ("uid_map", f"0 {uid} 1"),
            ("setgroups", "deny"),
            ("gid_map", f"0 {gid} 1"),
        ):
            try:
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
            except OSError:
                pass

    def preload(self) -> None:
        # Modules register at-fork hooks as they are imported (`random` reseeds from the
        # OS in every child, `threading` resets its state); none are needed here, where
        # every sample must start from the same `random` state and no thread runs. They
        # are not registered, so os.fork runs none.
        register = os.register_at_fork
        os.register_at_fork = lambda **hooks: None
        try:
            for name in self.config["preload"]:
                with contextlib.suppress(Exception):
                    __import__(name)
        finally:
            os.register_at_fork = register

    def enter_jail(self) -> None:
        if self.info["namespaces"] and self.info.get("tmpfs"):
            try:
                os.chroot(self.jail)
                os.chdir("/")
                self.jail = "/"
                self.info["chroot"] = True
            except OSError:
                pass
        if self.real_root:
            base = int(self.config["uid"])
            self.uid_candidate, self.uid_tester = base, base + 1
            self.info["uid_drop"] = True

    def build_seccomp(self):
        """The syscall filter every sample inherits (see DENIED_SYSCALLS), built with
        libseccomp through `pyseccomp` before the chroot hides the library; None, with
        the reason in `isolation["seccomp_reason"]`, where either is missing."""
        path = self.config.get("seccomp_module")
        if not path:
            self.info["seccomp_reason"] = "the pyseccomp package is not installed"
            return None
        try:
            import importlib.util

            spec = importlib.util.spec_from_file_location("pyseccomp", path)
            seccomp = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(seccomp)
            rules = seccomp.SyscallFilter(seccomp.ALLOW)
            deny = seccomp.ERRNO(errno.EPERM)
            # exec is refused, but for stage 1's own exec of stage 2: execveat of the
            # interpreter's descriptor, a number no sample can hold (RLIMIT_NOFILE), and
            # closed by that exec.
            rules.add_rule(deny, "execveat", seccomp.Arg(0, seccomp.NE, EXEC_FD))
            rules.add_rule(deny, "execveat", seccomp.Arg(4, seccomp.NE, AT_EMPTY_PATH))
            for name in DENIED_SYSCALLS:
                # a name this architecture or libseccomp version does not know is skipped
                with contextlib.suppress(OSError, ValueError, RuntimeError):
                    rules.add_rule(deny, name)
            # clone(2) may still fork, but not into new namespaces; clone3's flags sit
            # in memory a filter cannot read, so it reports ENOSYS and libc falls back.
            for flag in NAMESPACE_FLAGS:
                rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
            rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        except Exception as exc:  # no libseccomp, or one too old: degrade, say why
            self.info["seccomp_reason"] = f"{type(exc).__name__}: {exc}"[:200]
            return None
        return rules

    def load_seccomp(self, rules) -> None:
        if rules is not None:
            try:
                rules.load()
            except OSError as exc:
                self.info["seccomp_reason"] = f"seccomp_load failed: {exc}"[:200]
            else:
                self.info.update(seccomp=True, ipc_private=True, keyrings_private=True)
        if not self.info["seccomp"] and self.info["namespaces"]:
            # Without the filter each sample gets an IPC namespace of its own instead
            # (see _enter_sandbox); keyrings then stay shared per uid.
            self.info["ipc_private"] = True

    def prepare_children(self) -> None:
        """What every sample process would set the same way, set once here and inherited
        through fork: an empty environment, umask 077, default signal dispositions, an
        empty capability bounding set, no_new_privs, and one fixed `random` state."""
        os.environ.clear()
        os.umask(0o077)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        # A write to a pipe whose reader is gone fails with EPIPE instead of killing the
        # writer, as in any Python program: the worker passes frames to sample processes
        # that may already be dead.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        # no_new_privs came from stage 1 (execve keeps it): no exec gains a capability
        # or a uid, so the bounding set matters only where capabilities stay in reach.
        if _libc is not None:
            _drop_bounding_set()
        # Samples are forked without Python's at-fork hooks (see _fork), so `random` is
        # not reseeded per sample: every sample starts from this state, whichever worker
        # runs it.
        generator = sys.modules.get("random")
        if generator is not None:
            generator.seed(0)

    # ---- the loop ---------------------------------------------------------------------

    def serve(self) -> None:
        """Stage 2: everything after the exec, then the loop over samples."""
        self.proto_in = os.dup(0)
        self.proto_out = os.dup(1)
        self.devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(self.devnull, 0)
        os.dup2(self.devnull, 1)
        self.scratch = _Buffer(1 << 16).view
        info = self.info
        # What still needs libc per sample: without a PID namespace, the parent-death
        # signal (and the subreaper); in a user namespace, dropping capabilities; without
        # the filter, an IPC namespace per sample.
        if not info["pid1"] or info["userns"] or (info["ipc_private"] and not info["seccomp"]):
            _load_libc()
            if not info["pid1"]:
                _prctl(PR_SET_CHILD_SUBREAPER, 1)
        self.preload()
        self.uid_processes = self._count_uid_processes()
        self.enter_jail()
        self.prepare_children()
        info["ctypes_free"] = _libc is None and "ctypes" not in sys.modules
        global HOOK
        _purge_modules(set(self.config["modules"]))
        HOOK = install_audit_hook(self.config["modules"])
        wire.write_frame(self.proto_out, {"hello": self.info, "pid": os.getpid()})
        while True:
            try:
                job = wire.read_frame(self.proto_in)
            except (EOFError, OSError):
                return
            if job.get("op") == "exit":
                return
            self.run_job(job)
            self.served += 1

    def run_job(self, job: dict) -> dict:
        """Run one sample. `job` is its header (id, mode, limits, policy): the program,
        its inputs and its tests follow on the pipe as two frames that this process
        passes on to the sample's processes with splice(2) without ever reading them, and
        what the sample's processes report comes back through mappings no fork inherits
        (`_Buffer`). So nothing of one sample is ever in this process's heap, and a later
        sample, forked from it, cannot find it there, freed or not."""
        limits = job["limits"]
        sample_dir = os.path.join(self.jail, f"sample-{job['id']}")
        os.mkdir(sample_dir, 0o700)
        if self.uid_candidate is not None:
            os.chown(sample_dir, self.uid_candidate, self.uid_candidate)
        out_r, out_w = os.pipe()
        crep_r, crep_w = os.pipe()
        job_r, job_w = os.pipe()
        pids: dict[str, int] = {}
        fds = {crep_r: "c", out_r: "out"}
        sock_c = sock_t = None
        if job["mode"] == "check":
            sock_c, sock_t = socket.socketpair()
        keep = [crep_w, job_r] + ([sock_c.fileno()] if sock_c else [])
        pids["c"] = self._fork(
            lambda: self.run_candidate(job, job_r, sample_dir, crep_w, sock_c),
            sample_dir,
            self.uid_candidate,
            limits,
            out_w,
            keep,
        )
        os.close(job_r)
        self._pass_frame(job_w)
        reporter = "c"
        if job["mode"] == "check":
            trep_r, trep_w = os.pipe()
            tests_r, tests_w = os.pipe()
            fds[trep_r] = "t"
            sock_c.close()
            pids["t"] = self._fork(
                lambda: run_tester(_own_frame(tests_r), job, trep_w, sock_t),
                self.jail,
                self.uid_tester,
                limits,
                self.devnull,
                [trep_w, tests_r, sock_t.fileno()],
            )
            os.close(trep_w)
            os.close(tests_r)
            sock_t.close()
            self._pass_frame(tests_w)
            reporter = "t"
        else:
            self._pass_frame(None)  # no tester: the (empty) tests frame goes nowhere
        os.close(out_w)
        os.close(crep_w)
        buffers = {
            "c": self._buffer("c", REPORT_CAP),
            "out": self._buffer("out", limits["output_bytes"]),
        }
        if "t" in fds.values():
            buffers["t"] = self._buffer("t", REPORT_CAP)
        timed_out, statuses = self._collect(fds, pids, reporter, limits, buffers)
        reaped = self._kill_everything(pids)
        for key, pid in pids.items():
            if key not in statuses:
                statuses[key] = reaped[pid] if pid in reaped else self._reap(pid)
        for fd in fds:
            os.close(fd)
        self._remove(sample_dir)
        sent = {name: buffers[name] for name in ("c", "t", "out") if name in buffers}
        header = {
            "id": job["id"],
            "timeout": timed_out,
            "exit": statuses,
            "sizes": {name: buffer.used for name, buffer in sent.items()},
            "dropped": {
                name: buffer.total - buffer.used
                for name, buffer in sent.items()
                if name != "out" and buffer.total > buffer.used
            },
            "report_cap": REPORT_CAP,
            "out_bytes": buffers["out"].total,
        }
        if self._timeout_test is not None:
            header["timeout_test"], header["test_limit"] = self._timeout_test
        # The header, then the raw streams it announces, straight from the mappings: the
        # parent judges them line by line as they arrive (see pool._Worker.receive).
        streams = [buffer.view[: buffer.used] for buffer in sent.values()]
        _write_parts(self.proto_out, [wire.frame(header), *streams])
        for buffer in sent.values():
            buffer.clear()
        return header

    def _buffer(self, name: str, size: int) -> _Buffer:
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < size:
            if buffer is not None:
                buffer.close()
            buffer = self.buffers[name] = _Buffer(max(size, 1))
        buffer.cap = size
        return buffer

    def _pass_frame(self, dst: int | None) -> None:
        """Move the next frame on the protocol pipe into `dst` (a pipe a sample's process
        reads; None: nowhere) in the kernel, then close `dst`. If the reader is gone, the
        rest of the frame is dropped so the next one starts where it should."""
        header = wire.read_exact(self.proto_in, 4)
        size = int.from_bytes(header, "big")
        if size > wire.MAX_FRAME:
            raise EOFError("a frame over the limit")
        target = self.devnull if dst is None else dst
        try:
            if dst is not None:
                wire.write_all(dst, header)
        except OSError:
            target = self.devnull
        while size:
            try:
                moved = os.splice(self.proto_in, target, size)
            except OSError:
                if target == self.devnull:
                    raise
                target = self.devnull
                continue
            if not moved:
                raise EOFError("pipe closed")
            size -= moved
        if dst is not None:
            os.close(dst)

    def _fork(self, body, cwd, uid, limits, out_fd, keep) -> int:
        # Frozen objects are never traversed by a collection in the child, so their pages
        # stay shared instead of being copied on the child's first collection.
        gc.freeze()
        # glibc's fork, not os.fork: Python's at-fork hooks (reseeding `random`, resetting
        # `threading`) cost each sample process about 70 copy-on-write page faults, and
        # a single-threaded worker whose children never return to it needs none of them.
        pid = _raw_fork()
        if pid:
            return pid
        try:
            self._enter_sandbox(cwd, uid, limits, out_fd, keep)
            body()
        except BaseException:
            if DEBUG:
                traceback.print_exc()
                _flush()
        _exit(0)

    def _enter_sandbox(self, cwd, uid, limits, out_fd, keep) -> None:
        os.setsid()
        if not self.info["pid1"]:
            # Without a PID namespace nothing else takes a sample down with its worker.
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.dup2(self.devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        keep = sorted(set(keep))
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 65536)
        os.chdir(cwd)
        cpu = int(limits["timeout"]) + 1
        mem = limits["memory_bytes"]
        for res, value in (
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_DATA, mem),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, limits["file_bytes"]),
            # below EXEC_FD, so that no sample can hold the one descriptor the filter
            # lets execveat use
            (resource.RLIMIT_NOFILE, min(limits["open_files"], EXEC_FD)),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, limits["processes"] + (0 if uid else self.uid_processes)),
        ):
            resource.setrlimit(res, (value, value))
        # no filter to refuse IPC objects: whatever this sample makes dies with it
        ipc_namespace = self.info["ipc_private"] and not self.info["seccomp"]
        if ipc_namespace and _libc.unshare(CLONE_NEWIPC) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWIPC) failed")
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        elif self.info["userns"]:
            _clear_capabilities()

    def _collect(self, fds, pids, reporter, limits, buffers):
        """Read reports and output until the reporting child exits or the deadline passes."""
        deadline = time.monotonic() + limits["timeout"]
        self._timeout_test = None
        # Per-test limits (value mode): the program's report sends "ready", then one line
        # per call, so its line count says which test runs and since when.
        tests = limits.get("tests")
        test_index, test_deadline = -1, None
        lines = buffers["c"]
        lines.count_lines(len(tests["each"]) + 1 if tests else 0)
        statuses: dict[str, int] = {}
        poller = select.poll()
        open_fds = set(fds)
        for fd in fds:
            poller.register(fd, select.POLLIN)
        pidfds = {}
        for name, pid in pids.items():
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            pidfds[pidfd] = name
            poller.register(pidfd, select.POLLIN)
        timed_out = False
        while reporter not in statuses:
            now = time.monotonic()
            if tests and lines.lines - 1 != test_index:
                test_index = lines.lines - 1
                test_deadline = None
                if 0 <= test_index < len(tests["each"]):
                    test_deadline = now + tests["each"][test_index]
            remaining = deadline - now
            if test_deadline is not None and test_deadline - now < remaining:
                remaining = test_deadline - now
                if remaining <= 0:
                    self._timeout_test = (test_index, tests["each"][test_index])
            if remaining <= 0:
                timed_out = True
                break
            wait_ms = remaining * 1000 if pidfds else min(remaining * 1000, 20)
            for fd, _ in poller.poll(max(1, int(wait_ms))):
                if fd in pidfds:
                    name = pidfds.pop(fd)
                    poller.unregister(fd)
                    os.close(fd)
                    statuses[name] = self._reap(pids[name])
                elif fd in open_fds and not buffers[fds[fd]].fill(fd, self.scratch):
                    poller.unregister(fd)
                    open_fds.discard(fd)
            if not pidfds:
                for name, pid in pids.items():
                    if name not in statuses:
                        status = self._reap(pid, block=False)
                        if status is not None:
                            statuses[name] = status
        for fd in list(open_fds):
            os.set_blocking(fd, False)
            try:
                while buffers[fds[fd]].fill(fd, self.scratch):
                    pass
            except BlockingIOError:
                pass
        for fd in pidfds:
            os.close(fd)
        return timed_out, statuses

    @staticmethod
    def _reap(pid: int, block: bool = True):
        try:
            got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return -999
        if got == 0:
            return None
        return os.waitstatus_to_exitcode(status)

    def _kill_everything(self, pids: dict[str, int]) -> dict[int, int]:
        """Kill every process a sample left behind, setsid daemons included, and reap them."""
        if self.info["pid1"]:
            with contextlib.suppress(ProcessLookupError):  # nothing left to kill
                os.kill(-1, signal.SIGKILL)
            reaped = {}
            while True:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                reaped[pid] = os.waitstatus_to_exitcode(status)
            return reaped
        for pid in pids.values():
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)
        for _ in range(100):
            found = self._descendants()
            for pid in found:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
            if not found:
                break
            time.sleep(0.001)
        return {}

    @staticmethod
    def _count_uid_processes() -> int:
        """Tasks the real uid runs now; RLIMIT_NPROC counts them all, not just a sample's."""
        uid, count = os.getuid(), 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry}/task"))
                except OSError:
                    pass
        return count + 64

    @staticmethod
    def _descendants() -> list[int]:
        me = os.getpid()
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        found, stack = [], list(children.get(me, []))
        while stack:
            pid = stack.pop()
            found.append(pid)
            stack.extend(children.get(pid, []))
        return found

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.rmdir(path)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)

    # ---- inside the children ------------------------------------------------------------

    def run_candidate(self, header, job_fd, sample_dir, report_fd, sock) -> None:
        report = Reporter(report_fd)
        try:
            # the arguments decoded as the frame is parsed, at C speed
            job = {**_own_frame(job_fd, wire.untag), **header}
        except MemoryError:
            report.send(["oom", "loading"])
            return
        program = job["program"]
        try:
            code = compile(program, "<program>", "exec", dont_inherit=True)
        except MemoryError:
            report.send(["oom", "compiling"])
            return
        except BaseException as exc:
            report.send(["load_error", _exc_name(exc), _exc_text(exc)])
            if sock is not None:
                _send_line(sock, ["load_error", _exc_name(exc), _exc_text(exc)])
            return
        mode = job["mode"]
        if mode == "stdio":
            run_stdio(job, code, report, self.config, sample_dir)
            return
        namespace = load_program(code, job, report, self.config, sample_dir, sock)
        if namespace is None:
            return
        if mode == "check":
            serve_calls(namespace, report, sock)
        else:
            run_calls(namespace, job, report)


# ---- child-side helpers (module level so that they never close over worker state) ------


class Reporter:
    """Writes one JSON line per message to the report pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.dumps = wire.dumps

    def send(self, message, _write=_write) -> None:
        data = memoryview(self.dumps(message))
        while data:
            data = data[_write(self.fd, data) :]


def _exc_name(exc, _type=type, _str=str) -> str:
    try:
        name = _type(exc).__name__
        return name[:80] if _type(name) is _str else "Exception"
    except BaseException:
        return "Exception"


def _exc_text(exc, _str=str) -> str:
    try:
        text = _str(exc)
        return text[:300] if type(text) is _str else ""
    except BaseException:
        return ""


def _purge_modules(allowed: set[str]) -> None:
    keep = allowed | {"builtins", "sys", "encodings", "codecs", "io", "abc", "_io", "_abc"}
    for name in list(sys.modules):
        if name.split(".")[0].lstrip("_") not in keep and name.split(".")[0] not in keep:
            del sys.modules[name]


RUNTIME_DENIED_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "socket",
        "_socket",
        "ctypes",
        "_ctypes",
        "importlib",
        "gc",
        "inspect",
        "pickle",
        "_pickle",
        "marshal",
        "shutil",
        "signal",
        "threading",
        "_thread",
        "multiprocessing",
        "_posixsubprocess",
        "pty",
        "fcntl",
        "resource",
        "mmap",
        "builtins",
        "code",
        "codeop",
        "pathlib",
        "tempfile",
        "glob",
        "select",
        "selectors",
        "asyncio",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "webbrowser",
        "wire",
        "__main__",
    }
)


def install_audit_hook(modules) -> dict:
    """Install a dormant audit hook; `arm_audit_hook` turns it on in a sample's child.

    Once armed it stops the program (status `policy`) at the first forbidden event.

    Events that stdlib code raises on the program's behalf (`namedtuple` reading its
    caller's frame, `dataclasses` compiling its methods) are allowed; the same events
    raised directly by the program's own frames are not.
    """
    blocked_prefixes = (
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "os.putenv",
        "os.unsetenv",
        "os.chroot",
        "os.chmod",
        "os.chown",
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.symlink",
        "os.link",
        "os.truncate",
        "os.setuid",
        "os.setgid",
        "os.setsid",
        "os.setpgid",
        "subprocess.",
        "socket.",
        "ctypes.",
        "mmap.",
        "marshal.",
        "pickle.",
        "shutil.",
        "sys._current_frames",
        "sys.settrace",
        "sys.setprofile",
        "sys.addaudithook",
        "_thread.start_new_thread",
        "gc.",
        "code.__new__",
        "function.__new__",
        "resource.setrlimit",
        "signal.",
        "pty.",
        "fcntl.",
        "os.listdir",
        "os.scandir",
        "glob.",
        "cpython.run_",
        "sys.unraisablehook",
        "os.add_dll_directory",
    )
    own_frame_only = (
        "sys._getframe",
        "object.__getattr__",
        "sys._getframemodulename",
        "sys.setrecursionlimit",
    )
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    realpath, join, sep, fsdecode = os.path.realpath, os.path.join, os.sep, os.fsdecode
    getframe, startswith = sys._getframe, str.startswith
    state = {"armed": False, "exec": None, "busy": False, "report": None, "dir": "", "root": ""}
    check_source = static_policy.Policy(modules=tuple(modules)).check

    def deny(event, detail):
        try:
            state["report"].send(["policy", event, str(detail)[:200]])
        finally:
            _exit(POLICY_EXIT)

    def check(event, args):
        if startswith(event, blocked_prefixes):
            deny(event, args[:1] if args else "")
        elif event == "exec" and args and args[0] is state["exec"]:
            state["exec"] = None
        elif event == "compile":
            # eval() of a string: the same static policy judges the string
            if getframe(2).f_code.co_filename == "<program>":
                source = args[0] if args else None
                if type(source) is bytes:
                    source = source.decode("utf-8", "replace")
                reason = check_source(source) if type(source) is str else "compile of non-text"
                if reason:
                    deny(event, reason)
        elif event == "exec":
            if getframe(2).f_code.co_filename == "<program>":
                filename = getattr(args[0], "co_filename", None) if args else None
                if filename != "<string>":
                    deny(event, "exec of a code object")
        elif event in own_frame_only:
            if getframe(2).f_code.co_filename == "<program>":
                deny(event, args[:1] if event == "object.__getattr__" else "")
        elif event == "import":
            name = args[0] if args else ""
            if type(name) is str and name.split(".")[0] in RUNTIME_DENIED_MODULES:
                deny(event, name)
        elif event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            writing = (type(mode) is str and any(c in mode for c in "wax+")) or (
                type(flags) is int and flags & write_flags
            )
            if writing and not isinstance(path, int):
                target = realpath(join(state["dir"], fsdecode(path)))
                if not startswith(target + sep, state["root"]):
                    deny(event, path)

    def hook(event, args):
        if not state["armed"] or state["busy"]:
            return
        state["busy"] = True
        try:
            check(event, args)
        finally:
            state["busy"] = False

    sys.addaudithook(hook)
    return state


def arm_audit_hook(state: dict, report: Reporter, code, sample_dir: str) -> None:
    state.update(
        report=report,
        exec=code,
        dir=sample_dir,
        root=os.path.realpath(sample_dir) + os.sep,
        armed=True,
    )


def sandbox_program(code, job, report, config, sample_dir) -> None:
    """The last step before the program's first instruction: arm the audit hook."""
    if job["policy"] and HOOK is not None:
        arm_audit_hook(HOOK, report, code, sample_dir)


def load_program(code, job, report, config, sample_dir, sock):
    """Run the program's top level in a fresh namespace; None if it could not load."""
    sandbox_program(code, job, report, config, sample_dir)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    failure = None
    try:
        exec(code, namespace)
    except MemoryError:
        failure = ["oom", "loading"]
    except BaseException as exc:
        failure = ["load_error", _exc_name(exc), _exc_text(exc)]
    _flush()
    if failure is not None:
        try:
            report.send(failure)
            if sock is not None:
                _send_line(sock, failure)
        except BaseException:
            pass
        return None
    return namespace


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _call(namespace, name, args, kwargs, _callable=callable):
    fn = namespace.get(name)
    if not _callable(fn):
        raise NameError(f"name '{name}' is not defined")
    return fn(*args, **kwargs)


def _encode_result(
    value,
    _encode=wire.encode,
    _too_large=wire.TooLarge,
    _type=type,
    _small=wire._SMALL_INT,
    _isfinite=math.isfinite,
):
    # the scalars most results are, without `encode`'s set-up (exact types, by identity)
    t = _type(value)
    if value is None or t is str or t is bool:
        return ["r", value]
    if (t is int and -_small < value < _small) or (t is float and _isfinite(value)):
        return ["r", value]
    try:
        return ["r", _encode(value)]
    except _too_large as exc:
        return ["limit", str(exc)[:200]]
    except wire.Unencodable as exc:
        return ["r", {"t": "opaque", "v": f"unencodable: {exc}"[:80]}]
    except BaseException as exc:
        return ["r", {"t": "opaque", "v": f"unencodable: {_exc_name(exc)}"}]


def run_calls(namespace, job, report) -> None:
    """Value mode: call the entry point on each argument tuple, report plain-data results."""
    entry = job["entry"]
    timing = job.get("timing", False)  # the canonical solution's run: time each call
    clock = time.perf_counter
    report.send(["ready"])
    for index, variants in enumerate(job["calls"]):
        for variant, (args, kwargs) in enumerate(variants):
            try:
                start = clock()
                value = _call(namespace, entry, args, kwargs)
                message = _encode_result(value)
                if timing:
                    # What the worker's test clock sees: the call, encoding and the
                    # report line's serialisation (done once more here to time it).
                    report.dumps([message[0], index, variant, *message[1:]])
                    message.append(clock() - start)
            except MemoryError:
                message = ["oom"]
            except BaseException as exc:
                message = ["x", _exc_name(exc), _exc_text(exc)]
            report.send([message[0], index, variant, *message[1:]])
    _flush()
    report.send(["done"])


def _send_line(sock, message) -> None:
    sock.sendall(wire.dumps(message))


def serve_calls(namespace, report, sock) -> None:
    """Check mode: answer the tester's call requests with plain data until it hangs up."""
    names = [k for k, v in list(namespace.items()) if callable(v) and not k.startswith("__")]
    _send_line(sock, ["ready", names[:1000]])
    reader = sock.makefile("rb")
    decode = wire.decode
    while True:
        line = reader.readline(wire.MAX_FRAME)
        if not line:
            return
        try:
            _, name, args, kwargs = wire.loads(line)
            value = _call(namespace, name, decode(args), decode(kwargs))
            message = _encode_result(value)
            if message[0] == "limit":
                report.send(message)
                message = ["r", {"t": "opaque", "v": "too large"}]
        except MemoryError:
            report.send(["oom", "call"])
            message = ["x", "MemoryError", ""]
        except BaseException as exc:
            message = ["x", _exc_name(exc), _exc_text(exc)]
        _flush()
        _send_line(sock, message)


def run_stdio(job, code, report, config, sample_dir) -> None:
    """Standard-input mode: run the whole program once per input in a fresh child."""
    report.send(["ready"])
    deadline = time.monotonic() + job["limits"]["timeout"]
    cap = job["limits"]["output_bytes"]
    for index, text in enumerate(job["inputs"]):
        path = os.path.join(sample_dir, f".stdin-{index}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        out_r, out_w = os.pipe()
        pid = _raw_fork()  # like the sample's own fork: `random` keeps its fixed state
        if pid == 0:
            status = 1
            try:
                fd = os.open(path, os.O_RDONLY)
                os.dup2(fd, 0)
                os.dup2(out_w, 1)
                os.close(fd)
                os.close(out_r)
                sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                sandbox_program(code, job, report, config, sample_dir)
                namespace = {"__name__": "__main__", "__builtins__": builtins}
                try:
                    exec(code, namespace)
                    status = 0
                except SystemExit as exc:
                    status = exc.code if type(exc.code) is int else int(exc.code is not None)
                except MemoryError:
                    report.send(["oom", "stdio"])
                except BaseException as exc:
                    print(f"{_exc_name(exc)}: {_exc_text(exc)}", file=sys.stderr)
            except BaseException:
                pass
            _flush()
            _exit(status & 0xFF)
        os.close(out_w)
        chunks, size = [], 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([out_r], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                break
            data = os.read(out_r, 1 << 16)
            if not data:
                break
            if size < cap:
                chunks.append(data[: cap - size])
            size += len(data)
        os.close(out_r)
        _, status = os.waitpid(pid, 0)
        text = b"".join(chunks).decode("utf-8", "replace")
        report.send(["o", index, text, os.waitstatus_to_exitcode(status), size > cap])
        if time.monotonic() >= deadline:
            return
    report.send(["done"])


class ProgramError(Exception):
    """What test code sees when a call into the program does not return a value.

    The program's own exception never reaches the test: whatever it raised
    (`StopIteration`, `GeneratorExit`, `KeyboardInterrupt`, `SystemExit`, a
    `BaseException` subclass of its own) arrives as this one `Exception` subclass, so it
    cannot end the test's loops early (`zip(map(candidate, ...))`, `all(...)`), escape the
    test's `except Exception`, or stop the tester. `type_name` is the name of the type the
    program raised, `text` its message (both cut short).
    """

    def __init__(self, type_name: str, text: str) -> None:
        super().__init__(f"{type_name}: {text}")
        self.type_name = type_name
        self.text = text


class ProgramGone(ProgramError):
    """The program's process died, hung up or broke the protocol during a call."""

    def __init__(self, text: str) -> None:
        super().__init__("ProgramGone", text)


def _proxy_for(name, sock, reader):
    """A trusted function that calls the program's `name` with plain data.

    Arguments are encoded by the tester (a test passing something that is not plain data
    gets a TypeError of its own); the reply is plain data decoded by `wire`, or a
    `ProgramError`. Nothing the program sends is called, raised or returned as it is.
    """

    def proxy(*args, **kwargs):
        try:
            request = ["call", name, wire.encode(list(args)), wire.encode(dict(kwargs))]
        except wire.Unencodable as exc:
            raise TypeError(f"test arguments are not plain data: {exc}") from None
        try:
            sock.sendall(wire.dumps(request), socket.MSG_NOSIGNAL)  # EPIPE, not SIGPIPE
            line = reader.readline(wire.MAX_FRAME)
        except OSError:
            line = b""
        if not line:
            raise ProgramGone("the program's process is gone")
        try:
            reply = wire.loads(line)
            kind = reply[0] if type(reply) is list and len(reply) in (2, 3) else None
            if kind == "r" and len(reply) == 2:
                value, failure = wire.decode(reply[1]), None
            elif kind == "x" and len(reply) == 3:
                failure = (str(reply[1])[:80], str(reply[2])[:300])
            else:
                raise ValueError("unexpected reply")
        except Exception:
            raise ProgramGone("the program's process broke the protocol") from None
        if failure is not None:
            raise ProgramError(*failure)
        return value

    proxy.__name__ = proxy.__qualname__ = name
    return proxy


def run_tester(tests, job, report_fd, sock) -> None:
    """Check mode, trusted side: run the test code in a namespace of its own.

    The namespace holds the real builtins, the trusted prelude (the prompt's helpers and
    imports, from the problem's text) and proxies for exactly the names the parent chose
    (`tests["names"]`: the entry point and what only the canonical solution defines), with
    `candidate` the entry point's. What the program defines otherwise, and the names it
    announces, are never bound here.
    """
    report = Reporter(report_fd)
    if _libc is not None:  # elsewhere the uid switch already made it non-dumpable
        _prctl(PR_SET_DUMPABLE, 0)
    reader = sock.makefile("rb")
    line = reader.readline(wire.MAX_FRAME)
    if not line:
        report.send(["peer_gone"])
        return
    try:
        hello = wire.loads(line)
    except ValueError:
        report.send(["protocol", "bad hello"])
        return
    if type(hello) is not list or not hello or hello[0] != "ready":
        report.send(["peer_failed"])
        return
    fast = bool(tests.get("fast"))

    class StopTests(BaseException):
        pass

    def report_unit(index, ok, exc=None):
        if ok:
            detail = ""
        elif isinstance(exc, ProgramError):
            detail = str(exc)[:300]
        else:
            detail = f"{_exc_name(exc)}: {_exc_text(exc)}"[:300]
        report.send(["u", index, bool(ok), detail])
        if fast and not ok:
            raise StopTests

    namespace = {"__name__": "__test__", "__builtins__": builtins}
    prelude = tests.get("prelude") or ""
    if prelude:
        try:
            exec(compile(prelude, "<prompt>", "exec"), namespace)
        except BaseException as exc:
            report.send(["test_error", _exc_name(exc), f"in the prompt: {_exc_text(exc)}"])
            namespace = {"__name__": "__test__", "__builtins__": builtins}
    for name in tests.get("names", []):
        if type(name) is str:
            namespace[name] = _proxy_for(name, sock, reader)
    entry = job["entry"]
    namespace["candidate"] = _proxy_for(entry, sock, reader) if entry else None
    namespace["__report"] = report_unit
    try:
        exec(compile(tests["source"], "<test>", "exec"), namespace)
    except StopTests:
        pass
    except BaseException as exc:
        report.send(["test_error", _exc_name(exc), _exc_text(exc)])
    report.send(["done"])


def main() -> None:
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if len(sys.argv) < 3:
        Worker(config).start()  # does not return: it execs stage 2
        return
    try:
        Worker(config, json.loads(sys.argv[2])).serve()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise


if __name__ == "__main__":
    main()
