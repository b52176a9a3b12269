"""The floor of any sandbox that gives each sample a fresh process: fork, run, exit.

Run by `bench_execution.py` as `python -s -P -S -B fork_floor.py CONFIG` (the sandbox
workers' interpreter flags) with a JSON list of programs on stdin. CONFIG is a JSON
object: `preload` (the modules the sandbox workers import), `workers`, and `compile_in`:
"child" (each sample process compiles its program, as the sandbox's do) or "worker"
(programs are compiled before timing, as the exec floor's are).

It starts `workers` processes that import the same modules as a sandbox worker and hand
out programs from one shared queue; per program a worker forks a child (glibc's fork,
as the sandbox's), which compiles if asked, execs the program and reports one byte, and
the worker waits for it. Nothing else: no namespaces, limits, uid drop, private
directory, audit hook, output capture or second process for the test code, and the
program's own process decides its verdict. So it is not safe; it is what those layers
come on top of. Prints one JSON object: `seconds` (from the first program handed out to
the last worker done), `passed`, `programs`.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import struct
import sys
import time

RECORD = struct.Struct("i")


def serve(programs: list, compile_in_child: bool, queue_fd: int, done_fd: int) -> None:
    fork = ctypes.CDLL(None).fork
    devnull = os.open(os.devnull, os.O_WRONLY)
    gc.collect()
    gc.freeze()
    passed = 0
    while True:
        (index,) = RECORD.unpack(os.read(queue_fd, RECORD.size))
        if index < 0:
            break
        program = programs[index]
        verdict_r, verdict_w = os.pipe()
        pid = fork()
        if pid == 0:
            os.dup2(devnull, 1)  # this process's stdout carries the result
            ok = b"0"
            try:
                code = compile(program, "<program>", "exec") if compile_in_child else program
                exec(code, {"__name__": "__main__"})
                ok = b"1"
            except BaseException:
                pass
            os.write(verdict_w, ok)
            os._exit(0)
        os.close(verdict_w)
        passed += os.read(verdict_r, 1) == b"1"
        os.close(verdict_r)
        os.waitpid(pid, 0)
    os.write(done_fd, RECORD.pack(passed))
    os._exit(0)


def main() -> None:
    config = json.loads(sys.argv[1])
    sources = json.loads(sys.stdin.read())
    for name in config["preload"]:
        with contextlib.suppress(Exception):
            __import__(name)
    compile_in_child = config["compile_in"] == "child"
    programs = sources if compile_in_child else [compile(s, "<program>", "exec") for s in sources]
    queue_r, queue_w = os.pipe()
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    for _ in range(config["workers"]):
        if os.fork() == 0:
            os.close(queue_w)
            os.write(ready_w, b".")
            serve(programs, compile_in_child, queue_r, done_w)
    os.close(done_w)
    for _ in range(config["workers"]):
        os.read(ready_r, 1)
    # Records of 4 bytes are read whole (pipe reads under PIPE_BUF are atomic), so the
    # workers share one queue, as the sandbox's loop threads do.
    queue = list(range(len(programs))) + [-1] * config["workers"]
    start = time.perf_counter()
    os.write(queue_w, b"".join(RECORD.pack(i) for i in queue))
    passed = 0
    for _ in range(config["workers"]):
        (count,) = RECORD.unpack(os.read(done_r, RECORD.size))
        passed += count
    seconds = time.perf_counter() - start
    for _ in range(config["workers"]):
        os.wait()
    print(json.dumps({"seconds": seconds, "passed": passed, "programs": len(programs)}))


if __name__ == "__main__":
    main()
