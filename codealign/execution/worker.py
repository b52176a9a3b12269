"""A warm sandbox worker: pre-imports the allowed modules, then forks one jailed child per sample.

The parent pool starts this file as `python -s -P -S -B worker.py CONFIG` with an
environment of `PYTHONHASHSEED=0` alone; it uses only the standard library and `wire.py`
beside it. It speaks to the parent in length-prefixed JSON frames on its stdin/stdout and
never sees expected results: it receives programs, call arguments and stdin texts, and
sends back exactly what the jailed children reported. The parent alone decides verdicts.

Start-up, in order: new user (when not root), mount, PID, network, IPC and UTS namespaces
where the kernel allows; fork so that the worker is PID 1 of its PID namespace (killing
everything left of a sample is then one `kill(-1)`, and the kernel kills the whole
namespace if the worker dies); a size-capped tmpfs over the jail directory, mounted
nosuid,nodev,noexec; the allowed modules imported; `chroot` into the jail; then what every
sample inherits: an empty environment, umask 077, default signal handlers, an empty
capability bounding set, no_new_privs, and `random` seeded with 0. Without namespaces it
falls back to being a child subreaper that hunts a sample's descendants through /proc.

Per sample: a private directory in the jail as cwd; a child (glibc's fork, without
Python's at-fork hooks) that starts a new session, takes the limits (address space, CPU
seconds, file size, open files, processes, no core dumps), stdin from /dev/null,
stdout/stderr into a capped pipe, drops to an unprivileged uid (or clears its
capabilities inside a user namespace), and only then compiles and runs the program, with
an audit hook watching it when the policy asks. General test code runs in a second child
with another uid that the program can reach only through a socket carrying plain data.
With string hashing and `random` fixed, a sample's result does not depend on which worker
ran it, or when.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import gc
import json
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
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18

POLICY_EXIT = 86
DEBUG = False
HOOK: dict | None = None  # the dormant audit hook's state, set once per worker

_libc = ctypes.CDLL(None, use_errno=True)
_libc_fork = _libc.fork


def _raw_fork() -> int:
    """glibc's fork without Python's at-fork hooks (see Worker._fork); raises on failure."""
    pid = _libc_fork()
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork failed")
    return pid


_write = os.write
_exit = os._exit


def _prctl(option: int, arg: int) -> bool:
    return _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("e", ctypes.c_uint32), ("p", ctypes.c_uint32), ("i", ctypes.c_uint32)]


def _drop_bounding_set() -> None:
    """Empty the capability bounding set: no later execve can grant a capability. It is
    inherited by every child, so the worker drops it once and keeps its own effective
    capabilities for the jail's housekeeping."""
    for cap in range(64):
        _prctl(PR_CAPBSET_DROP, cap)


_CAP_HEADER = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
_CAP_NONE = (_CapData * 2)()


def _clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable capability sets of this process."""
    if _libc.capset(ctypes.byref(_CAP_HEADER), _CAP_NONE) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


class Worker:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.jail = config["jail"]
        self.proto_in = os.dup(0)
        self.proto_out = os.dup(1)
        self.devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(self.devnull, 0)
        os.dup2(self.devnull, 1)
        self.info = {
            "namespaces": False,
            "network_namespace": False,
            "chroot": False,
            "uid_drop": False,
            "userns": False,
            "pid1": False,
        }
        self.real_root = os.geteuid() == 0
        self.uid_candidate = self.uid_tester = None
        self.served = 0

    # ---- start-up ---------------------------------------------------------------------

    def isolate(self) -> None:
        if not self.config.get("namespaces", True):
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
            return
        uid, gid = os.getuid(), os.getgid()
        user = 0 if self.real_root else CLONE_NEWUSER
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | user
        if _libc.unshare(flags) != 0:
            if _libc.unshare(CLONE_NEWNET | user) == 0:
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
        if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            opts = f"size={int(self.config['disk_mb'])}m,mode=0755".encode()
            flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
            if _libc.mount(b"tmpfs", self.jail.encode(), b"tmpfs", flags, opts) == 0:
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
        for name in self.config["preload"]:
            with contextlib.suppress(Exception):
                __import__(name)

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

    def prepare_children(self) -> None:
        """What every sample process would set the same way, set once here and inherited
        through fork: an empty environment, umask 077, default signal dispositions, an
        empty capability bounding set, no_new_privs, and one fixed `random` state."""
        os.environ.clear()
        os.umask(0o077)
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        _drop_bounding_set()
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        # Samples are forked without Python's at-fork hooks (see _fork), so `random` is
        # not reseeded per sample: every sample starts from this state, whichever worker
        # runs it.
        generator = sys.modules.get("random")
        if generator is not None:
            generator.seed(0)

    # ---- the loop ---------------------------------------------------------------------

    def serve(self) -> None:
        self.isolate()
        self.preload()
        self.uid_processes = self._count_uid_processes()
        self.enter_jail()
        self.prepare_children()
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
            header, payload = self.run_job(job)
            self._send_result(header, payload)
            self.served += 1

    def run_job(self, job: dict) -> dict:
        limits = job["limits"]
        sample_dir = os.path.join(self.jail, f"sample-{job['id']}")
        os.mkdir(sample_dir, 0o700)
        if self.uid_candidate is not None:
            os.chown(sample_dir, self.uid_candidate, self.uid_candidate)
        out_r, out_w = os.pipe()
        crep_r, crep_w = os.pipe()
        pids: dict[str, int] = {}
        fds = {crep_r: "c", out_r: "out"}
        sock_c = sock_t = None
        if job["mode"] == "check":
            sock_c, sock_t = socket.socketpair()
        keep = [crep_w] + ([sock_c.fileno()] if sock_c else [])
        pids["c"] = self._fork(
            lambda: self.run_candidate(job, sample_dir, crep_w, sock_c),
            sample_dir,
            self.uid_candidate,
            limits,
            out_w,
            keep,
        )
        # The test payload is read only now, so the candidate's memory never held it.
        tests = wire.read_frame(self.proto_in)
        reporter = "c"
        if job["mode"] == "check":
            trep_r, trep_w = os.pipe()
            fds[trep_r] = "t"
            sock_c.close()
            pids["t"] = self._fork(
                lambda: run_tester(tests, job, trep_w, sock_t),
                self.jail,
                self.uid_tester,
                limits,
                self.devnull,
                [trep_w, sock_t.fileno()],
            )
            os.close(trep_w)
            sock_t.close()
            reporter = "t"
        tests = None  # the worker keeps no test code between samples
        os.close(out_w)
        os.close(crep_w)
        streams, statuses, timed_out = self._collect(fds, pids, reporter, limits)
        reaped = self._kill_everything(pids)
        for key, pid in pids.items():
            if key not in statuses:
                statuses[key] = reaped[pid] if pid in reaped else self._reap(pid)
        for fd in fds:
            os.close(fd)
        self._remove(sample_dir)
        out = streams["out"]
        report_c, report_t = streams["c"], streams.get("t", b"")
        header = {
            "id": job["id"],
            "timeout": timed_out,
            "exit": statuses,
            "sizes": {"c": len(report_c), "t": len(report_t)},
            "dropped": self._dropped,
            "report_cap": REPORT_CAP,
            "out": out[: limits["output_bytes"]].decode("utf-8", "replace"),
            "out_bytes": self._out_total,
        }
        if self._timeout_test is not None:
            header["timeout_test"], header["test_limit"] = self._timeout_test
        return header, (report_c, report_t)

    def _send_result(self, header: dict, payload: tuple) -> None:
        """The header frame, then the raw report streams it announces (see pool._Worker)."""
        head = wire.frame(header)
        if sum(len(part) for part in payload) < 1 << 20:
            wire.write_all(self.proto_out, head + b"".join(payload))
            return
        wire.write_all(self.proto_out, head)
        for part in payload:
            wire.write_all(self.proto_out, part)

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
            (resource.RLIMIT_NOFILE, limits["open_files"]),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, limits["processes"] + (0 if uid else self.uid_processes)),
        ):
            resource.setrlimit(res, (value, value))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        elif self.info["userns"]:
            _clear_capabilities()

    def _collect(self, fds, pids, reporter, limits):
        """Read reports and output until the reporting child exits or the deadline passes."""
        deadline = time.monotonic() + limits["timeout"]
        streams = {name: bytearray() for name in fds.values()}
        self._out_total = 0
        self._dropped = {}
        self._timeout_test = None
        # Per-test limits (value mode): the program's report sends "ready", then one line
        # per call, so its line count says which test runs and since when.
        tests = limits.get("tests")
        self._c_lines, test_index, test_deadline = 0, -1, None
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
            if tests and self._c_lines - 1 != test_index:
                test_index = self._c_lines - 1
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
                elif fd in open_fds and not self._drain(fd, fds[fd], streams, limits):
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
                while self._drain(fd, fds[fd], streams, limits):
                    pass
            except BlockingIOError:
                pass
        for fd in pidfds:
            os.close(fd)
        return {k: bytes(v) for k, v in streams.items()}, statuses, timed_out

    def _drain(self, fd, name, streams, limits) -> bool:
        data = os.read(fd, 1 << 16)
        if not data:
            return False
        buf = streams[name]
        if name == "out":
            self._out_total += len(data)
            room = limits["output_bytes"] - len(buf)
            if room > 0:
                buf += data[:room]
            return True
        room = REPORT_CAP - len(buf)
        if len(data) > room:
            self._dropped[name] = self._dropped.get(name, 0) + len(data) - max(room, 0)
            data = data[: max(room, 0)]
        buf += data
        if name == "c":
            self._c_lines += data.count(b"\n")
        return True

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

    def run_candidate(self, job, sample_dir, report_fd, sock) -> None:
        report = Reporter(report_fd)
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


def _encode_result(value, _encode=wire.encode, _too_large=wire.TooLarge):
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
    entry, decode = job["entry"], wire.decode
    timing = job.get("timing", False)  # the canonical solution's run: time each call
    clock = time.perf_counter
    report.send(["ready"])
    for index, variants in enumerate(job["calls"]):
        for variant, (args, kwargs) in enumerate(variants):
            try:
                args, kwargs = decode(args), decode(kwargs)
                start = clock()
                value = _call(namespace, entry, args, kwargs)
                message = _encode_result(value)
                if timing:  # the call and its encoding: what the worker's test clock sees
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
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        Worker(config).serve()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise


if __name__ == "__main__":
    main()
