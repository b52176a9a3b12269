"""Hostile programs: none may pass, and the host must be untouched afterwards.

Every program runs twice: with the in-Python policy (AST check and audit hook) and
without it, so that the OS-level sandbox and the parent-side verdict are shown to hold
on their own.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from codealign.execution import Limits, Policy, Sandbox
from codealign.problems import Problem, TestCase

pytestmark = pytest.mark.slow

SECRET = "codealign-parent-secret-6f1d"

ADD = Problem(
    task_id="hostile/add",
    prompt='def add(a, b):\n    """Return a + b."""\n',
    entry_point="add",
    cases=(
        TestCase((((1, 2), {}),), 3, "add(1, 2) == 3"),
        TestCase((((5, 7), {}),), 12, "add(5, 7) == 12"),
    ),
)
ADD_CHECK = Problem(  # general test code: a loop, so it runs in the tester process
    task_id="hostile/add-check",
    prompt='def add(a, b):\n    """Return a + b."""\n',
    entry_point="add",
    test="def check(candidate):\n    for i in range(5):\n        assert candidate(i, 1) == i + 1\n"
    "    assert candidate(2, 2) == 4\n",
)

CORRECT = "def add(a, b):\n    return a + b\n"


def escape(attack: str) -> str:
    """A program whose `add` is right only if `attack` ran to the end without an error.

    So a `passed` verdict would mean the attack succeeded: the suite asserts it never does.
    """
    body = "".join(f"    {line}\n" for line in attack.splitlines())
    return (
        f"ESCAPED = False\ntry:\n{body}    ESCAPED = True\nexcept BaseException:\n    pass\n"
        "def add(a, b):\n    return a + b if ESCAPED else a - b\n"
    )


HOSTILE = {
    "write_outside": escape("open('{outside}/pwned', 'w').write('x')"),
    "write_dotdot": escape("open('../../../../../../{outside}/pwned', 'w').write('x')"),
    "write_home": escape("import os\nopen(os.path.expanduser('~/codealign-pwned'), 'w')"),
    "delete_canary": escape("import os\nos.remove('{canary}')"),
    "truncate_canary": escape("open('{canary}', 'w').close()"),
    "os_system": escape(
        "import os\nassert os.system('touch {outside}/pwned; rm -f {canary}') == 0"
    ),
    "subprocess": escape("import subprocess\nsubprocess.run(['rm', '-f', '{canary}'], check=True)"),
    "ctypes_system": escape(
        "import ctypes\nassert ctypes.CDLL(None).system(b'rm -f {canary}') == 0"
    ),
    "obfuscated_exec": escape(
        "getattr(__builtins__, 'ex' + 'ec')(\"import os; os.remove('{canary}')\")"
    ),
    "unicode_exec": escape("ｅｘｅｃ(\"import os; os.remove('{canary}')\")"),
    "eval_import": escape("eval(\"__import__('os').remove('{canary}')\")"),
    "eval_smuggled_exec": escape("eval(\"exec('import os; os.remove(\\\\'{canary}\\\\')')\")"),
    "network_connect": escape(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), 1)\ns.sendall(b'pwned')"
    ),
    "read_environment": "import os\ndef add(a, b):\n"
    "    return os.environ.get('SECRET_NAME', 'none')\n",
    "read_parent_environ": "def add(a, b):\n    return open('/proc/1/environ').read()\n",
    "fork_bomb": "import os\nwhile True:\n    os.fork()\n",
    "thread_bomb": "import threading, time\nwhile True:\n"
    "    threading.Thread(target=time.sleep, args=(60,)).start()\n",
    "memory_bomb": escape("x = bytearray(10 ** 11)"),
    "memory_creep": "chunks = []\nwhile True:\n    chunks.append(' ' * 10 ** 7)\n",
    "disk_bomb": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'0' * 10 ** 6)\n",
    "disk_many_files": "i = 0\nwhile True:\n    open('f' + str(i), 'wb').write(b'0' * 10 ** 6)\n"
    "    i += 1\n",
    "huge_integer": "def add(a, b):\n    return 10 ** (10 ** 9)\n",
    "signals_ignored_loop": "import signal\n"
    "for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):\n"
    "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n",
    "sleeping": "import time\ntime.sleep(1000)\n" + CORRECT,
    "read_stdin": "def add(a, b):\n    return int(input())\n",
    "deep_recursion": "import sys\nsys.setrecursionlimit(10 ** 7)\n"
    "def add(a, b):\n    return add(a, b) + 1\n",
    "exit_before_tests": "import sys\nsys.exit(0)\n" + CORRECT,
    "os_exit_before_tests": "import os\nos._exit(0)\n" + CORRECT,
    "exit_during_tests": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os_exit_during_tests": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "atexit_exit": "import atexit, os\natexit.register(lambda: os._exit(0))\n"
    "def add(a, b):\n    return 0\n",
    "del_exit": "import os\nclass X:\n    def __del__(self):\n        os._exit(0)\n"
    "def add(a, b):\n    X()\n    return 0\n",
    "print_fake_results": "print('[\"r\",0,0,3]')\nprint('[\"done\"]')\nprint('passed')\n"
    "def add(a, b):\n    print('{{\"passed\": true}}')\n    return 0\n",
    "always_equal": "class E:\n    def __eq__(self, other):\n        return True\n"
    "    __hash__ = object.__hash__\ndef add(a, b):\n    return E()\n",
    "int_subclass": "class I(int):\n    def __eq__(self, other):\n        return True\n"
    "    __hash__ = int.__hash__\ndef add(a, b):\n    return I(0)\n",
    "nan": "def add(a, b):\n    return float('nan')\n",
    "base_exception": "class Boom(BaseException):\n    pass\ndef add(a, b):\n    raise Boom()\n",
    "raising_dunders": "class R:\n    def __eq__(self, other):\n        raise RuntimeError\n"
    "    def __repr__(self):\n        raise RuntimeError\n    __hash__ = None\n"
    "def add(a, b):\n    return R()\n",
    "pickle_reduce": "import os\nclass P:\n    def __reduce__(self):\n"
    "        return (os.remove, ('{canary}',))\ndef add(a, b):\n    return P()\n",
    "caller_frames": "import sys\ndef add(a, b):\n    f = sys._getframe(1)\n"
    "    while f is not None:\n        for v in list(f.f_locals.values()):\n"
    "            if isinstance(v, int) and not isinstance(v, bool) and v > 2:\n"
    "                return v\n        f = f.f_back\n    return 0\n",
    "bytecode_constants": "import gc\ndef add(a, b):\n    for o in gc.get_objects():\n"
    "        if type(o).__name__ == 'code' and 12 in o.co_consts:\n            return 12\n"
    "    return 0\n",
    "harness_source": "def add(a, b):\n    import codealign.execution.verdicts as v\n"
    "    return len(open(v.__file__).read())\n",
    "patch_builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\n"
    "builtins.type = lambda *a: int\nbuiltins.len = lambda *a: 0\ndef add(a, b):\n    return 'x'\n",
    "patch_sys_modules": "import sys\nclass Fake:\n    def __getattr__(self, name):\n"
    "        return lambda *a, **k: b'[\"done\"]\\n'\nfor name in list(sys.modules):\n"
    "    sys.modules[name] = Fake()\ndef add(a, b):\n    return 0\n",
    "patch_harness": "import sys\nw = sys.modules.get('wire')\nif w:\n"
    "    w.encode = lambda *a, **k: 3\n    w.dumps = lambda m: b'[\"done\"]\\n'\n"
    "def add(a, b):\n    return 0\n",
    "forge_report_pipe": "import os\n"
    "fake = b''.join(b'[\"u\",%d,true,\"\"]\\n' % i for i in range(9))\n"
    'fake += b\'["r",0,0,{{"t":"opaque","v":"x"}}]\\n["done"]\\n\'\n'
    "for fd in range(3, 20):\n    try:\n        os.write(fd, fake)\n    except OSError:\n"
    "        pass\nos._exit(0)\n",
    "kill_parent": "import os, signal\nfor pid in (os.getppid(), 1, -1):\n    try:\n"
    "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n"
    "def add(a, b):\n    return 0\n",
    "setsid_daemon": "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
    "    if os.fork() == 0:\n        time.sleep(600)\n    os._exit(0)\n"
    "def add(a, b):\n    return 0\n",
    "output_flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 100000)\n",
    "read_problem_file": "import json, gzip\ndef add(a, b):\n"
    "    return json.loads(open('{outside}/../secret-answers.json').read())[str((a, b))]\n",
}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    outside = tmp_path_factory.mktemp("host")
    canary = outside / "canary.txt"
    canary.write_text("untouched")
    answers = {str((a, b)): a + b for a in range(10) for b in range(10)}
    (outside.parent / "secret-answers.json").write_text(json.dumps(answers))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            received.append(conn.recv(100) or b"<connect>")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    os.environ["SECRET_NAME"] = SECRET
    yield {
        "outside": outside,
        "canary": canary,
        "port": listener.getsockname()[1],
        "received": received,
    }
    os.environ.pop("SECRET_NAME", None)
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture(scope="module", params=[True, False], ids=["policy", "no-policy"])
def sandbox(request):
    limits = Limits(timeout=1.5, memory_mb=512, file_mb=8, disk_mb=64, processes=16)
    with Sandbox(workers=2, limits=limits, policy=Policy(enabled=request.param)) as box:
        yield box
        jail = box._jail
    assert not Path(jail).exists()


def _uid_processes(uids: range) -> list[int]:
    """Processes still running under a sandbox's private uids (real, effective, saved or
    filesystem uid: a sample that switched uids is not dumpable, so /proc/PID's owner
    says root)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as handle:
                    line = next(x for x in handle if x.startswith("Uid:"))
            except (OSError, StopIteration):
                continue
            if any(int(uid) in uids for uid in line.split()[1:]):
                found.append(int(entry))
    return found


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("problem", [ADD, ADD_CHECK], ids=["values", "check"])
def test_hostile_program_never_passes(sandbox, host, name, problem):
    program = HOSTILE[name].format(
        canary=host["canary"], outside=host["outside"], port=host["port"]
    )
    [verdict] = sandbox.score(
        [problem], [{"task_id": problem.task_id, "completion": program, "full_program": True}]
    )
    assert verdict["passed"] is False, verdict
    assert verdict["status"] != "passed"
    assert verdict["tests_passed"] < verdict["tests_total"]
    assert SECRET not in verdict["detail"]
    assert host["canary"].read_text() == "untouched"
    assert sorted(p.name for p in host["outside"].iterdir()) == ["canary.txt"]
    assert not Path("~/codealign-pwned").expanduser().exists()
    assert host["received"] == []


def test_timeouts_and_bombs_get_the_right_status(sandbox):
    programs = [
        HOSTILE["sleeping"],
        HOSTILE["signals_ignored_loop"],
        "x = bytearray(10 ** 11)\n" + CORRECT,
    ]
    samples = [{"task_id": ADD.task_id, "completion": c, "full_program": True} for c in programs]
    statuses = [v["status"] for v in sandbox.score([ADD], samples)]
    if sandbox.policy.enabled:
        assert statuses[:2] == ["timeout", "policy"]
    else:
        # `signal` is not importable in the jail: the program stops with an error
        assert statuses[0] == "timeout" and statuses[1] in ("timeout", "error")
    assert statuses[2] == "oom"


def test_state_does_not_leak_into_the_next_sample(sandbox):
    leaky = (
        "import math, builtins\nmath.sqrt = lambda x: 0\nbuiltins.abs = lambda x: 0\n"
        "open('leak.txt', 'w').write('x')\n" + CORRECT
    )
    probe = (
        "import math\ndef add(a, b):\n    try:\n        open('leak.txt')\n        return -1\n"
        "    except OSError:\n        pass\n"
        "    return a + b if math.sqrt(4) == 2 and abs(-1) == 1 else -1\n"
    )
    samples = [
        {"task_id": ADD.task_id, "completion": c, "full_program": True} for c in [leaky, probe] * 4
    ]
    verdicts = sandbox.score([ADD], samples)
    assert [v["passed"] for v in verdicts[1::2]] == [True] * 4


def test_after_the_suite_the_pool_still_judges_correctly(sandbox):
    samples = [
        {"task_id": p.task_id, "completion": CORRECT, "full_program": True}
        for p in (ADD, ADD_CHECK)
    ] + [
        {
            "task_id": ADD.task_id,
            "completion": "def add(a, b):\n    return a - b\n",
            "full_program": True,
        }
    ]
    verdicts = sandbox.score([ADD, ADD_CHECK], samples)
    assert [v["status"] for v in verdicts] == ["passed", "passed", "failed"]
    assert _uid_processes(sandbox.uids) == []
