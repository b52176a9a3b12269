"""Hostile results: nothing a program returns, raises or prints may crash the parent.

Every such value ends as a per-sample status with a short one-line `detail`, the run
goes on and every sample gets its verdict. Comparisons are Python's `==` on plain data,
tolerances only where the benchmark sets them. Limits are sized so that correct results
as large as HumanEval+'s pass, and a sample that trips one gets a status naming it.
Everything runs with the in-Python policy on and off.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codealign.execution import STATUSES, Limits, Policy, Sandbox, wire
from codealign.execution.cache import ExpectedCache, problem_key
from codealign.problems import Problem, TestCase

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def value_problem(task_id: str, expected, *, identity: bool = False) -> Problem:
    return Problem(
        task_id=task_id,
        prompt="def f(x):\n    pass\n",
        entry_point="f",
        cases=(TestCase((((1,), {}),), expected, f"f(1) == {expected!r}", identity),),
    )


INT = value_problem("p/int", 3)
FLOAT = value_problem("p/float", 0.5)
CHECK = Problem(  # general test code: runs in the tester process
    task_id="p/check",
    prompt="def f(x):\n    pass\n",
    entry_point="f",
    test="def check(candidate):\n    for i in range(2):\n        assert candidate(i) == 3\n",
)


def oracle_problem(task_id: str, canonical: str, inputs: list, atol=None) -> Problem:
    """A HumanEval+-shaped problem: expected values come from running `canonical`."""
    return Problem(
        task_id=task_id,
        prompt="def f(x):\n",
        entry_point="f",
        canonical_solution=canonical,
        cases=tuple(
            TestCase((((*args,), {}),), source=f"f(<input {i}>)") for i, args in enumerate(inputs)
        ),
        atol=atol,
        source="evalplus",
    )


@pytest.fixture(scope="module", params=[True, False], ids=["policy", "no-policy"])
def sandbox(request, tmp_path_factory):
    limits = Limits(timeout=30.0, memory_mb=1024)
    cache = tmp_path_factory.mktemp("cache")
    with Sandbox(
        workers=2, limits=limits, policy=Policy(enabled=request.param), cache_dir=cache
    ) as box:
        yield box
        jail = box._jail
    assert not Path(jail).exists()


def run(box, problem, bodies):
    samples = [
        {"task_id": problem.task_id, "completion": "def f(x):\n" + body, "full_program": True}
        for body in bodies
    ]
    return box.score([problem], samples)


def assert_sane(verdicts, count):
    """Every sample has a verdict of a known status and a short detail any reader takes."""
    assert len(verdicts) == count
    for verdict in verdicts:
        assert verdict["status"] in STATUSES
        detail = verdict["detail"]
        assert len(detail) <= 300
        assert len(detail.splitlines()) <= 1, detail
        detail.encode("utf-8")  # no lone surrogate
        json.dumps(verdict, ensure_ascii=False).encode("utf-8")


# ---- 1. nothing crashes the parent ------------------------------------------------------

RESULTS = {
    "huge_int": "    return 10 ** 5000\n",
    "huge_negative_int": "    return -(7 ** 20000)\n",
    "shifted_int": "    return 1 << 2000\n",
    "huge_int_in_list": "    return [1, 2, 10 ** 9000]\n",
    "surrogate_str": "    return '\\udcff' * 3\n",
    "line_separators": "    return 'a\\u2028b\\u2029c\\x85d\\re\\nf'\n",
    "deep_list": "    v = []\n    for _ in range(5000):\n        v = [v]\n    return v\n",
    "many_items": "    return list(range(wire.MAX_ITEMS + 5))\n",
    "many_dict_items": "    return {i: i for i in range(wire.MAX_ITEMS // 2 + 10)}\n",
    "huge_string": "    return 'x' * (40 << 20)\n",
    "surrogate_dict_key": "    return {'\\ud800': 1, 2: '\\udfff'}\n",
    "bytes_garbage": "    return bytes(range(256)) * 100\n",
}
RAISES = {
    "surrogate_message": "    raise ValueError('\\udcff boom')\n",
    "separator_message": "    raise ValueError('one\\u2028two\\u2029three\\nfour')\n",
    "huge_message": "    raise ValueError('m' * (10 << 20))\n",
    "str_raises": "    class E(Exception):\n        def __str__(self):\n            raise E()\n"
    "    raise E()\n",
    "str_not_str": "    class E(Exception):\n        def __str__(self):\n            return 7\n"
    "    raise E()\n",
    "repr_and_str_recursive": "    class E(Exception):\n        def __str__(self):\n"
    "            return str(self)\n        __repr__ = __str__\n    raise E()\n",
    "name_is_not_str": "    class E(Exception):\n        pass\n    E.__name__ = 'x' * 10000\n"
    "    raise E('\\udcff')\n",
    "huge_int_message": "    raise ValueError(10 ** 5000)\n",
    "base_exception_surrogate": "    class B(BaseException):\n        pass\n"
    "    raise B('\\udfff\\u2028')\n",
}


@pytest.mark.parametrize("problem", [INT, FLOAT, CHECK], ids=["int", "float", "check"])
def test_no_result_or_exception_crashes_the_run(sandbox, problem):
    bodies = [
        body.replace("wire.MAX_ITEMS", str(wire.MAX_ITEMS))
        for body in [*RESULTS.values(), *RAISES.values()]
    ]
    # a correct sample after all of them is still judged
    bodies.append("    return 0.5\n" if problem is FLOAT else "    return 3\n")
    verdicts = run(sandbox, problem, bodies)
    assert_sane(verdicts, len(bodies))
    assert [v["passed"] for v in verdicts] == [False] * (len(bodies) - 1) + [True]
    by_name = dict(zip([*RESULTS, *RAISES], verdicts, strict=False))
    if problem is not CHECK:
        assert "digits" in by_name["huge_int"]["detail"]
        for name in ("deep_list", "many_items", "many_dict_items"):
            assert by_name[name]["status"] == "output_limit", by_name[name]
        allowed = {"failed", "policy"} if sandbox.policy.enabled else {"failed"}
        for name in RAISES:  # `E.__name__ = ...` is against the policy
            assert by_name[name]["status"] in allowed, by_name[name]
    else:
        assert by_name["many_items"]["status"] == "output_limit"


def test_exception_text_is_escaped_not_lost(sandbox):
    [verdict] = run(sandbox, INT, ["    raise ValueError('a\\udcffb\\u2028c')\n"])
    assert "a\\udcffb\\u2028c" in verdict["detail"]


def test_a_report_flood_is_cut_off_and_the_run_goes_on(sandbox):
    """Forged report lines written straight to every descriptor: the parent stops
    reading them past what the sample may send, and judges the next sample."""
    flood = (
        "    line = b'[\"r\",0,0,3]\\n' * 1000\n"
        "    for fd in range(3, 30):\n"
        "        try:\n"
        "            out = open(fd, 'wb', closefd=False, buffering=0)\n"
        "            for _ in range(600):\n"
        "                out.write(line)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 3\n"
    )
    verdicts = run(sandbox, INT, [flood, "    return 3\n"])
    assert_sane(verdicts, 2)
    assert verdicts[0]["status"] in ("output_limit", "policy"), verdicts[0]
    assert verdicts[1]["status"] == "passed"


def test_parent_memory_stays_bounded_under_a_24_mb_flood(tmp_path):
    """The parent, in its own process, judges a sample flooding 24 MB of report lines;
    its peak resident memory stays far below what holding them parsed would take
    (388 MiB before the report was read line by line)."""
    script = tmp_path / "flood.py"
    script.write_text(
        "import json\n"
        "from codealign.execution import Limits, Policy, Sandbox\n"
        "from codealign.problems import Problem, TestCase\n"
        "p = Problem('f/add', 'def add(a, b):\\n    pass\\n', 'add', cases=(\n"
        "    TestCase((((1, 2), {}),), 3, 'add(1, 2) == 3'),))\n"
        "body = ('def add(a, b):\\n'\n"
        "    '    line = b\\'[\"r\",0,0,3]\\\\n\\' * 1000\\n'\n"
        "    '    for fd in range(3, 30):\\n'\n"
        "    '        try:\\n'\n"
        "    '            out = open(fd, \"wb\", closefd=False, buffering=0)\\n'\n"
        "    '            for _ in range(24 * 1024 * 1024 // len(line)):\\n'\n"
        "    '                out.write(line)\\n'\n"
        "    '        except OSError:\\n'\n"
        "    '            pass\\n'\n"
        "    '    return a + b\\n')\n"
        "with Sandbox(workers=1, limits=Limits(timeout=60), policy=Policy(enabled=False),\n"
        "             cache_dir=False) as box:\n"
        "    [v] = box.score([p], [{'task_id': 'f/add', 'completion': body,\n"
        "                           'full_program': True}])\n"
        "status = open('/proc/self/status').read()\n"  # VmHWM: this exec's own peak
        "peak = int(status.split('VmHWM:')[1].split()[0])\n"
        "print(json.dumps({'status': v['status'], 'peak_kb': peak}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "output_limit"
    assert result["peak_kb"] < 150 * 1024  # holding the flood parsed took over 380 MB


# ---- 2. Python's equality ---------------------------------------------------------------


def test_equality_is_pythons(sandbox):
    zero = value_problem("p/zero", 0)
    big = value_problem("p/big", 10**17 + 1)
    true = value_problem("p/true", True)
    is_true = value_problem("p/is-true", True, identity=True)
    pairs = value_problem("p/pairs", [(1, 2.0), {"a": {1, 2}}])
    cases = [
        (zero, "    return False\n", True),
        (zero, "    return 0.0\n", True),
        (zero, "    return None\n", False),
        (big, "    return 1e17\n", False),
        (big, "    return 10 ** 17 + 1\n", True),
        (big, "    return float(10 ** 17 + 1)\n", False),
        (true, "    return 1\n", True),
        (is_true, "    return 1\n", False),
        (is_true, "    return True\n", True),
        (pairs, "    return [(1, 2), {'a': frozenset({1, 2})}]\n", True),
        (pairs, "    return [[1, 2.0], {'a': {1, 2}}]\n", False),
        (INT, "    class I(int):\n        pass\n    return I(3)\n", False),
        (FLOAT, "    return float('nan')\n", False),
    ]
    for problem, body, passes in cases:
        [verdict] = run(sandbox, problem, [body])
        assert verdict["passed"] is passes, (problem.task_id, body, verdict)


def test_tolerance_only_for_floats_where_the_benchmark_sets_it(sandbox):
    # evalplus default: 1e-6 for expected floats; an expected int compares exactly
    problem = oracle_problem("p/tol", "    return [0.1 * x, x, x / 3]\n", [[1], [2], [3]])
    [close, int_off, exact] = run(
        sandbox,
        problem,
        [
            "    return [0.1 * x + 1e-7, x, x / 3 - 1e-7]\n",
            "    return [0.1 * x, x + 1e-9, x / 3]\n",
            "    return [0.1 * x, x, x / 3]\n",
        ],
    )
    assert close["passed"] and exact["passed"]
    assert not int_off["passed"]
    plain = value_problem("p/no-tol", 0.3)  # HumanEval: no tolerance at all
    [verdict] = run(sandbox, plain, ["    return 0.1 + 0.2\n"])
    assert not verdict["passed"]


def test_results_equal_to_the_canonical_bytes_pass_and_nothing_else_does(sandbox):
    """A result that is byte for byte the canonical solution's passes without being
    parsed; NaN and non-plain values, which equal nothing, never pass that way; values
    that differ in bytes but not in Python's `==` (ints for floats, packed or not) still
    pass; a forged report line with the right shape but a wrong value fails."""
    canonical = (
        "    if x == 0:\n        return [1, 3] + [i / 2 for i in range(40)]\n"
        "    if x == 1:\n        return [float('nan')] * 20\n"
        "    if x == 2:\n        return object()\n"
        "    return [i * 1.0 for i in range(30)]\n"
    )
    inputs = [[0], [1], [2], [3]]
    problem = oracle_problem("p/bytes", canonical, inputs)
    same = run(sandbox, problem, [canonical])[0]
    assert same["status"] == "failed" and same["tests_passed"] == 2, same  # NaN, object()
    as_ints = run(
        sandbox,
        oracle_problem("p/bytes-ints", canonical, [[0], [3]]),
        [
            "    if x == 0:\n        return [1, 3] + [i / 2 for i in range(40)]\n"
            "    return list(range(30))\n",  # ints where floats were: equal in Python
        ],
    )[0]
    assert as_ints["passed"], as_ints
    # a program that writes its own report line in the protocol's shape, guessing
    forged = (
        "    import sys\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            __import__('os').write(fd, b'[\"r\",0,0,[1,2,3]]\\n')\n"
        "        except Exception:\n"
        "            pass\n"
        "    return None\n"
    )
    [verdict] = run(sandbox, oracle_problem("p/bytes-forged", canonical, [[0]]), [forged])
    assert not verdict["passed"], verdict


# ---- 3. limits sized for correct solutions, and named when tripped ----------------------


def test_large_correct_results_pass(sandbox):
    """Results past the old limits (1,000,000 items, a 32 MiB report) as HumanEval/100,
    /130 and /15 return them."""
    canonical = (
        "    if x == 0:\n        return list(range(1_500_000))\n"
        "    if x == 1:\n        return [i / 7 for i in range(1_100_000)]\n"
        "    return ' '.join(str(i) for i in range(x))\n"
    )
    problem = oracle_problem("p/large", canonical, [[0], [1], [2_000_000], [2_000_001]])
    [verdict] = run(sandbox, problem, [canonical])
    assert verdict["status"] == "passed", verdict


def test_each_test_gets_a_limit_from_the_canonical_time(sandbox):
    canonical = "    import time\n    time.sleep(0.01)\n    return x\n"
    problem = oracle_problem("p/timed", canonical, [[i] for i in range(4)])
    slow = "    import time\n    time.sleep(0.6)\n    return x\n"  # 2.4 s in all: passes
    stuck = "    import time\n    time.sleep(0.6 if x < 2 else 30)\n    return x\n"
    verdicts = run(sandbox, problem, [slow, stuck])
    assert verdicts[0]["status"] == "passed", verdicts[0]
    assert verdicts[1]["status"] == "timeout"
    assert verdicts[1]["tests_passed"] == 2
    assert "test 2 ran past its 1 s limit" in verdicts[1]["detail"]


def test_an_oversized_program_is_too_large_and_never_sent(sandbox):
    program = "def f(x):\n    return 3\n" + "#" * (200 << 20) + "\n"
    [verdict, after] = sandbox.score(
        [INT],
        [
            {"task_id": INT.task_id, "completion": program, "full_program": True},
            {
                "task_id": INT.task_id,
                "completion": "def f(x):\n    return 3\n",
                "full_program": True,
            },
        ],
    )
    assert verdict["status"] == "too_large" and "16 MiB" in verdict["detail"]
    assert after["status"] == "passed"


def test_reports_over_the_caps_are_output_limit(sandbox):
    line = "    return 'y' * (100 << 20)\n"  # one result line of 100 MiB
    stream = (  # 300 MiB written straight to every descriptor, no line break
        "    for fd in range(3, 30):\n"
        "        try:\n"
        "            out = open(fd, 'wb', closefd=False, buffering=0)\n"
        "            for _ in range(300):\n"
        "                out.write(b'z' * (1 << 20))\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 3\n"
    )
    verdicts = run(sandbox, INT, [line, stream, "    return 3\n"])
    assert_sane(verdicts, 3)
    assert verdicts[0]["status"] == "output_limit" and "64 MiB" in verdicts[0]["detail"]
    assert verdicts[1]["status"] in ("output_limit", "policy"), verdicts[1]
    assert verdicts[2]["status"] == "passed"


# ---- 4. expected values cached by content -----------------------------------------------


def test_expected_values_are_cached_by_content_and_bad_entries_recomputed(tmp_path):
    problem = oracle_problem("p/cached", "    return x * 2\n", [[1], [2], [3]])
    right = {
        "task_id": problem.task_id,
        "completion": "def f(x):\n    return x * 2\n",
        "full_program": True,
    }
    cache = ExpectedCache(tmp_path)
    with Sandbox(workers=1, cache_dir=tmp_path) as box:
        assert box.score([problem], [right])[0]["passed"]
    [entry] = list((tmp_path / "expected").iterdir())
    assert entry.name == f"{problem_key(problem)}.json.gz"
    assert cache.load(problem)[0].values() == [2, 4, 6]

    # A later run reads the entry instead of running the canonical solution: an entry
    # rewritten by hand decides the verdict. Values are kept as the encoded results the
    # canonical solution sent.
    data = json.loads(gzip.decompress(entry.read_bytes()))
    assert data["values"] == ["2", "4", "6"]
    data["values"] = ["20", "40", "60"]
    entry.write_bytes(gzip.compress(json.dumps(data).encode()))
    with Sandbox(workers=1, cache_dir=tmp_path) as box:
        assert not box.score([problem], [right])[0]["passed"]

    # A corrupt entry is ignored, recomputed and replaced.
    entry.write_bytes(b"\x1f\x8b not gzip at all")
    with Sandbox(workers=1, cache_dir=tmp_path) as box:
        assert box.score([problem], [right])[0]["passed"]
    assert cache.load(problem)[0].values() == [2, 4, 6]
    assert [p.name for p in (tmp_path / "expected").iterdir()] == [entry.name]

    # Another canonical solution or other inputs: another key.
    other = oracle_problem("p/cached", "    return x + x\n", [[1], [2], [3]])
    assert problem_key(other) != problem_key(problem)
