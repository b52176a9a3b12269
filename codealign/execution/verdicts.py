"""How the parent turns what a worker reported into a verdict.

Only this module compares results with expected values, and it runs only in the parent.
Comparison is by exact type: `True` is not `1`, an `int` subclass arrives as an opaque
marker and equals nothing, a tuple is not a list (except for APPS, whose expected values
came through JSON). The one allowance is Python's own: an `int` equals the `float` of the
same value. Floats compare with a tolerance only where the problem has one (HumanEval+
`atol`, and evalplus's 1e-6 default for floats).
"""

from __future__ import annotations

import math
from typing import Any

from codealign.execution import wire
from codealign.problems import NO_EXPECTED, Problem

STATUSES = ("passed", "failed", "timeout", "error", "policy", "oom", "crashed")
EVALPLUS_FLOAT_ATOL = 1e-6


def _typed_key(value: Any) -> Any:
    t = type(value)
    if t is tuple:
        return ("tuple", tuple(_typed_key(v) for v in value))
    if t is frozenset:
        return ("frozenset", frozenset(_typed_key(v) for v in value))
    return (t.__name__, value)


def _jsonish(value: Any) -> Any:
    t = type(value)
    if t is tuple or t is list:
        return [_jsonish(v) for v in value]
    if t is dict:
        return {k: _jsonish(v) for k, v in value.items()}
    return value


def same_value(expected: Any, actual: Any, atol: float | None = None) -> bool:
    """Exact-type equality, recursively; floats within `atol` when one is given."""
    te, ta = type(expected), type(actual)
    if te is not ta:
        # int and float are one number line in every benchmark's `==`; bool is not.
        if {te, ta} == {int, float}:
            return same_value(float(expected), float(actual), atol)
        return False
    if te is float:
        if math.isnan(expected) or math.isnan(actual):
            return atol is not None and math.isnan(expected) and math.isnan(actual)
        if atol is not None:
            return expected == actual or abs(expected - actual) <= atol
        return expected == actual
    if te is complex:
        return same_value(expected.real, actual.real, atol) and same_value(
            expected.imag, actual.imag, atol
        )
    if te is list or te is tuple:
        return len(expected) == len(actual) and all(
            same_value(e, a, atol) for e, a in zip(expected, actual, strict=True)
        )
    if te is dict:
        if len(expected) != len(actual):
            return False
        keyed = {_typed_key(k): v for k, v in actual.items()}
        for key, value in expected.items():
            typed = _typed_key(key)
            if typed not in keyed or not same_value(value, keyed[typed], atol):
                return False
        return True
    if te is set or te is frozenset:
        return {_typed_key(v) for v in expected} == {_typed_key(v) for v in actual}
    if te in (int, str, bytes, bool, type(None)):
        return expected == actual
    return False


def stdout_matches(expected: str, actual: str) -> bool:
    """APPS-style output comparison: same lines ignoring trailing spaces, or same tokens."""
    exp_lines = [line.rstrip() for line in expected.strip().splitlines()]
    act_lines = [line.rstrip() for line in actual.strip().splitlines()]
    return exp_lines == act_lines or expected.split() == actual.split()


def _parse(lines: list[str]) -> tuple[list[list], bool]:
    messages, ok = [], True
    for line in lines:
        try:
            message = wire.loads(line)
        except ValueError:
            ok = False
            continue
        if type(message) is list and message and type(message[0]) is str:
            messages.append(message)
        else:
            ok = False
    return messages, ok


def _exit_text(code: Any) -> str:
    if type(code) is int and code < 0:
        return f"killed by signal {-code}"
    return f"exit status {code}"


def decide(
    problem: Problem,
    raw: dict | None,
    *,
    fast: bool = False,
    expected: list | None = None,
) -> tuple[str, int, int, str]:
    """(status, tests_passed, tests_total, detail) for one sample's raw worker report.

    `raw` None means the worker itself died or hung: the sample is `crashed`.
    `expected` overrides the cases' expected values (HumanEval+ oracle results).
    """
    total = problem.tests_total
    if raw is None:
        return "crashed", 0, total, "the sandbox worker died while running this sample"
    c_msgs, c_ok = _parse(raw.get("c", []))
    t_msgs, t_ok = _parse(raw.get("t", []))
    for message in c_msgs + t_msgs:
        if message[0] == "policy":
            return "policy", 0, total, f"policy: {' '.join(str(m) for m in message[1:3])}"[:300]

    if problem.stdio:
        outputs: dict[int, tuple[str, Any]] = {}
        for m in c_msgs:
            if m[0] == "o" and len(m) == 4 and type(m[1]) is int and m[1] not in outputs:
                outputs[m[1]] = (m[2] if type(m[2]) is str else "", m[3])
        results = []
        for i, (_, want) in enumerate(problem.stdio):
            got = outputs.get(i)
            if got is None:
                results.append((False, f"stdin #{i}: no output"))
            elif got[1] != 0:
                results.append((False, f"stdin #{i}: exit status {got[1]}"))
            else:
                results.append((stdout_matches(want, got[0]), f"stdin #{i}: wrong output"))
        done = any(m[0] == "done" for m in c_msgs)
    elif problem.cases:
        atol = problem.atol
        if atol is None and problem.source == "evalplus":
            atol = EVALPLUS_FLOAT_ATOL
        seen: dict[tuple[int, int], list] = {}
        protocol_ok = c_ok
        for m in c_msgs:
            if m[0] in ("r", "x") and len(m) >= 3 and type(m[1]) is int and type(m[2]) is int:
                if (m[1], m[2]) in seen:
                    protocol_ok = False
                seen.setdefault((m[1], m[2]), m)
        results = []
        for i, case in enumerate(problem.cases):
            want = case.expected if expected is None else expected[i]
            ok, why = False, "no result"
            for v in range(len(case.variants)):
                m = seen.get((i, v))
                if m is None:
                    continue
                if m[0] == "x":
                    why = f"{case.source} raised {m[3] if len(m) > 3 else ''}"
                    continue
                try:
                    got = wire.decode(m[3])
                except (ValueError, IndexError):
                    why = "malformed result"
                    continue
                if problem.json_results:
                    got, want = _jsonish(got), _jsonish(want)
                if want is not NO_EXPECTED and same_value(want, got, atol):
                    ok = True
                    break
                why = f"{case.source}: got {_short(got)}"
            results.append((ok, why))
        done = protocol_ok and any(m[0] == "done" for m in c_msgs)
    else:
        units: dict[int, tuple[bool, str]] = {}
        for m in t_msgs:
            if m[0] == "u" and len(m) == 4 and type(m[1]) is int and m[1] not in units:
                units[m[1]] = (m[2] is True, str(m[3]))
        results = [units.get(i, (False, "not run")) for i in range(total)]
        done = t_ok and any(m[0] == "done" for m in t_msgs)
        for m in t_msgs:
            if m[0] == "test_error" and not fast:
                results = [
                    r if r[0] or r[1] != "not run" else (False, "test code failed") for r in results
                ]

    if fast:
        passed = next((i for i, (ok, _) in enumerate(results) if not ok), len(results))
    else:
        passed = sum(ok for ok, _ in results)
    first_failure = next((why for ok, why in results if not ok), "")

    if raw.get("timeout"):
        return "timeout", passed, total, f"timed out after {raw.get('limit', '?')} s"
    for message in c_msgs + t_msgs:
        if message[0] == "oom":
            return "oom", passed, total, "out of memory"
    for message in c_msgs:
        if message[0] == "load_error":
            detail = ": ".join(str(m) for m in message[1:3])
            return "error", 0, total, f"program failed to load: {detail}"[:300]
    if not done:
        exits = raw.get("exit", {})
        code = exits.get("t" if (problem.test and not problem.cases) else "c")
        why = f"sample ended before reporting all tests ({_exit_text(code)})"
        return "crashed", passed, total, why
    if passed == total and total > 0:
        return "passed", passed, total, ""
    return "failed", passed, total, first_failure[:300]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
