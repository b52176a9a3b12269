"""How the parent turns what a worker reported into a verdict.

Only this module compares results with expected values, and it runs only in the parent.
Values that cross the wire are plain data of exact builtin types (an `int` subclass
arrives as an opaque marker that equals nothing), so comparing them with Python's own
`==` is safe, and is what every benchmark's `assert f(x) == expected` means: `1 == 1.0`
and `0 == False` hold, `10**17 + 1 == 1e17` does not, a tuple is not a list (except for
APPS, whose expected values came through JSON), NaN equals nothing. An `is True` /
`is False` / `is None` test compares identity. Floats compare with a tolerance only
where the benchmark sets one and only where a float is expected: HumanEval+/MBPP+
`atol` (evalplus's 1e-6 default where none is given), as `abs(got - want) <= atol +
1e-7 * abs(want)` like evalplus's `np.allclose`; an expected `int` compares exactly.

A report is judged line by line as it arrives (`Judge`), so the parent holds at most
one message of it at a time, and stops reading messages past what the sample can
legitimately send. Whatever a program returned, raised or printed becomes a status and
a bounded one-line `detail`; nothing in it can raise here.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
import reprlib
from typing import Any

from codealign.execution import wire
from codealign.problems import NO_EXPECTED, Problem

STATUSES = (
    "passed",
    "failed",
    "timeout",
    "error",
    "policy",
    "oom",
    "crashed",
    "too_large",
    "output_limit",
)
EVALPLUS_FLOAT_ATOL = 1e-6
FLOAT_RTOL = 1e-7  # evalplus compares floats with np.allclose(rtol=1e-7, atol=atol)
DETAIL_CHARS = 300


# ---- equality -------------------------------------------------------------------------


def same_value(expected: Any, actual: Any, atol: float | None = None) -> bool:
    """Python's `expected == actual` on plain data; floats within `atol` where one is given.

    The tolerance applies only where a float is expected (element-wise inside lists,
    tuples and dict values) and the result is an int or a float; everything else,
    integer expectations included, compares exactly. Never raises.
    """
    try:
        return _same(expected, actual, atol)
    except Exception:  # RecursionError, MemoryError on absurd values: not equal
        return False


def _same(expected: Any, actual: Any, atol: float | None) -> bool:
    te, ta = type(expected), type(actual)
    if te is float and atol is not None and (ta is float or ta is int):
        if expected == actual:
            return True
        if not math.isfinite(expected):
            return False
        try:
            return abs(expected - actual) <= atol + FLOAT_RTOL * abs(expected)
        except OverflowError:  # an int too large for a float: nowhere near
            return False
    if te is list or te is tuple:
        if ta is not te or len(expected) != len(actual):
            return False
        # Items that Python's `==` already finds equal are the same value under any
        # tolerance; only the others (found at C speed) are compared one by one.
        differ = itertools.compress(itertools.count(), map(operator.ne, expected, actual))
        return all(_same(expected[i], actual[i], atol) for i in differ)
    if te is dict:
        if ta is not dict or len(expected) != len(actual):
            return False
        for key, value in expected.items():
            try:
                other = actual[key]  # Python's key equality: 1, 1.0 and True are one key
            except (KeyError, TypeError):
                return False
            if not _same(value, other, atol):
                return False
        return True
    return (expected == actual) is True


def _jsonish(value: Any) -> Any:
    t = type(value)
    if t is tuple or t is list:
        return [_jsonish(v) for v in value]
    if t is dict:
        return {k: _jsonish(v) for k, v in value.items()}
    return value


def stdout_matches(expected: str, actual: str) -> bool:
    """APPS-style output comparison: same lines ignoring trailing spaces, or same tokens."""
    exp_lines = [line.rstrip() for line in expected.strip().splitlines()]
    act_lines = [line.rstrip() for line in actual.strip().splitlines()]
    return exp_lines == act_lines or expected.split() == actual.split()


# ---- bounded, printable text ------------------------------------------------------------


class _ShortRepr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxlong = self.maxother = 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        bits = x.bit_length()
        if bits > 4000:  # past Python's int-to-str digit limit long before 4300 digits
            return f"<int of {int(bits * 0.30103) + 1} digits>"
        return super().repr_int(x, level)


_REPR = _ShortRepr()
# What `str.splitlines()` splits on, and lone surrogates (not encodable as UTF-8).
_UNSAFE = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def safe_repr(value: Any, limit: int = 80) -> str:
    """A short repr of any decoded value; never raises."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return clean(text, limit)


def clean(text: Any, limit: int = DETAIL_CHARS) -> str:
    """`text` as one line of at most `limit` characters that always encodes as UTF-8.

    Line breaks of every kind (including U+2028/U+2029) and lone surrogates become
    backslash escapes."""
    if type(text) is not str:
        return safe_repr(text, limit)
    text = text[: limit + 1]
    text = _UNSAFE.sub(lambda m: _NAMED.get(m.group(), f"\\u{ord(m.group()):04x}"), text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _words(parts: list) -> str:
    return " ".join(p if type(p) is str else safe_repr(p, 100) for p in parts)


def _exit_text(code: Any) -> str:
    if type(code) is int and code < 0:
        return f"killed by signal {-code}"
    return f"exit status {safe_repr(code, 20)}"


def _bytes(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


# ---- expected values as the canonical solution sent them --------------------------------

# A result line of value mode: ["r",<test>,<variant>,<value>]
_RESULT_PREFIX = re.compile(rb'\["r",(\d{1,9}),(\d{1,4}),')


class Expected:
    """One problem's expected values as the canonical solution's own encoded results (the
    exact bytes a sample's result line carries, `wire.dumps` of `wire.encode`), decoded
    only when a sample's result differs from them.

    A result whose bytes equal the expected bytes is the same plain data, so it passes
    without being parsed; that holds for every value but NaN and opaque markers, which
    equal nothing, so an expected value that holds either is always decoded and
    compared. `raw[i]` is None where the canonical solution gave no value.
    """

    def __init__(self, raw: list[bytes | None]) -> None:
        self.raw = raw
        self.exact = [r is not None and b'"nan"' not in r and b'"opaque"' not in r for r in raw]
        self._values: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: int) -> Any:
        try:
            return self._values[index]
        except KeyError:
            pass
        raw = self.raw[index]
        value = NO_EXPECTED
        if raw is not None:
            try:
                value = wire.decode(wire.loads(raw))
            except ValueError:
                value = NO_EXPECTED
        self._values[index] = value
        return value

    def values(self) -> list:
        return [self[i] for i in range(len(self.raw))]

    def matches(self, line: bytes) -> int | None:
        """The test index of a value-mode result `line` whose value is byte for byte its
        expected value (variant 0 of a test with one); None otherwise."""
        m = _RESULT_PREFIX.match(line)
        if m is None or m.group(2) != b"0":
            return None
        index = int(m.group(1))
        if not index < len(self.raw) or not self.exact[index]:
            return None
        raw = self.raw[index]
        start = m.end()
        if len(line) == start + len(raw) + 1 and line.endswith(b"]"):
            return index if line.startswith(raw, start) else None
        return None


# ---- judging a report -------------------------------------------------------------------


class Judge:
    """One sample's verdict, built from its report lines as they arrive.

    `feed(stream, line)` takes one line of the program's ("c") or the tester's ("t")
    report; `overflow(stream, detail)` records that the channel hit a limit;
    `verdict(header)` gives `(status, tests_passed, tests_total, detail)` once the
    worker's header for the sample is in (None: the worker died or hung). Past
    `budget` messages per stream the rest is not parsed (`full`).
    """

    def __init__(
        self,
        problem: Problem,
        *,
        fast: bool = False,
        expected: list | Expected | None = None,
    ) -> None:
        self.problem = problem
        self.fast = fast
        self.total = problem.tests_total
        self.expected = expected
        # byte-for-byte matching, where expected values came as the canonical solution's
        # own result lines and a test has one argument list (HumanEval+, MBPP+)
        self.by_bytes: Expected | None = None
        self.first_failed = self.total  # the lowest test index with a wrong result so far
        if (
            type(expected) is Expected
            and not problem.json_results
            and all(len(c.variants) == 1 and not c.identity for c in problem.cases)
        ):
            self.by_bytes = expected
        self.policy: str | None = None
        self.limit: str | None = None
        self.oom = False
        self.load_error: str | None = None
        self.test_error = False
        self.done = {"c": False, "t": False}
        self.protocol_ok = {"c": True, "t": True}
        self.count = {"c": 0, "t": 0}
        variants = sum(len(c.variants) for c in problem.cases) or len(problem.stdio)
        self.budget = max(1000, 4 * (variants + self.total) + 64)
        self.results: list[tuple[bool, str] | None] = [None] * self.total
        self.seen: set[tuple[int, int]] = set()
        self.atol = problem.atol
        if self.atol is None and problem.source == "evalplus":
            self.atol = EVALPLUS_FLOAT_ATOL

    def full(self, stream: str) -> bool:
        """True once `stream` has sent more messages than the sample can legitimately."""
        return self.count[stream] > self.budget

    def overflow(self, stream: str, detail: str) -> None:
        if self.limit is None:
            self.limit = detail

    def feed(self, stream: str, line: bytes) -> None:
        self.count[stream] += 1
        if self.count[stream] > self.budget:
            if self.count[stream] == self.budget + 1:
                self.overflow(stream, f"report flood: over {self.budget} messages")
            return
        if stream == "c" and self.by_bytes is not None:
            index = self.by_bytes.matches(line)
            if index is not None:
                self._result(index, 0, True, "")
                return
        try:
            message = wire.loads(line)
        except ValueError:
            self.protocol_ok[stream] = False
            return
        if not (type(message) is list and message and type(message[0]) is str):
            self.protocol_ok[stream] = False
            return
        try:
            self._message(stream, message)
        except Exception:  # a malformed message from a hostile program: a protocol error
            self.protocol_ok[stream] = False

    def _message(self, stream: str, m: list) -> None:
        kind = m[0]
        if kind == "policy":
            if self.policy is None:
                self.policy = clean(f"policy: {_words(m[1:3])}")
        elif kind == "done":
            self.done[stream] = True
        elif kind == "oom":
            self.oom = True
        elif kind == "limit":
            self.overflow(stream, clean(f"result too large: {_words(m[-1:])}"))
            if len(m) >= 4:
                self._result(m[1], m[2], False, clean(f"result too large: {_words(m[3:4])}"))
        elif kind == "load_error":
            if self.load_error is None:
                self.load_error = clean(f"program failed to load: {': '.join(map(str, m[1:3]))}")
        elif kind == "test_error":
            self.test_error = True
        elif stream == "c" and self.problem.stdio and kind == "o":
            self._output(m)
        elif stream == "c" and self.problem.cases and kind in ("r", "x"):
            self._call(m)
        elif stream == "t" and not self.problem.cases and kind == "u":
            index = m[1] if len(m) == 4 and type(m[1]) is int else -1
            if 0 <= index < self.total and self.results[index] is None:
                self.results[index] = (m[2] is True, clean(m[3]))

    def _result(self, index: Any, variant: Any, ok: bool, why: str) -> None:
        if type(index) is not int or type(variant) is not int:
            return
        if not 0 <= index < self.total:
            return
        if (index, variant) in self.seen:
            self.protocol_ok["c"] = False
            return
        self.seen.add((index, variant))
        previous = self.results[index]
        if previous is None or not previous[0]:
            self.results[index] = (ok, why)

    def _call(self, m: list) -> None:
        if len(m) < 4:
            self.protocol_ok["c"] = False
            return
        index, variant = m[1], m[2]
        if type(index) is not int or not 0 <= index < self.total:
            self.protocol_ok["c"] = False
            return
        case = self.problem.cases[index]
        if m[0] == "x":
            text = ": ".join(str(p) for p in m[3:5] if p != "")
            self._result(index, variant, False, clean(f"{case.source} raised {text}"))
            return
        try:
            got = wire.decode(m[3])
        except ValueError:
            self._result(index, variant, False, "malformed result")
            return
        want = case.expected if self.expected is None else self.expected[index]
        if self.problem.json_results:
            got, want = _jsonish(got), _jsonish(want)
        if want is NO_EXPECTED:
            ok = False
        elif getattr(case, "identity", False):
            ok = type(got) is type(want) and got == want
        else:
            ok = same_value(want, got, self.atol)
        why = ""
        if not ok and (self.by_bytes is None or index < self.first_failed):
            # Only the first failing test's detail reaches the verdict; where every test
            # has one argument list a failure stays one, so later ones need no text.
            why = clean(f"{case.source}: got {safe_repr(got)}")
            self.first_failed = min(self.first_failed, index)
        self._result(index, variant, ok, why)

    def _output(self, m: list) -> None:
        if len(m) < 4 or type(m[1]) is not int or not 0 <= m[1] < self.total:
            return
        index = m[1]
        if self.results[index] is not None:
            return
        text = m[2] if type(m[2]) is str else ""
        if len(m) > 4 and m[4] is True:
            self.overflow("c", f"stdin #{index}: output over the {_bytes(len(text))} limit")
            self.results[index] = (False, f"stdin #{index}: output over the limit")
        elif m[3] != 0:
            self.results[index] = (False, f"stdin #{index}: {_exit_text(m[3])}")
        else:
            want = self.problem.stdio[index][1]
            self.results[index] = (stdout_matches(want, text), f"stdin #{index}: wrong output")

    def verdict(self, header: dict | None) -> tuple[str, int, int, str]:
        total = self.total
        if header is None:
            return "crashed", 0, total, "the sandbox worker died while running this sample"
        if self.policy is not None:
            return "policy", 0, total, self.policy
        dropped = header.get("dropped") or {}
        if type(dropped) is dict and any(dropped.values()):
            cap = header.get("report_cap")
            limit = f"the {_bytes(cap)} limit" if type(cap) is int else "its limit"
            self.overflow("c", f"report over {limit}")
        default = "not run" if not self.problem.cases else "no result"
        if self.problem.stdio:
            default = "no output"
        results = [r if r is not None else (False, default) for r in self.results]
        if self.test_error and not self.fast:
            results = [
                r if r[0] or r[1] != "not run" else (False, "test code failed") for r in results
            ]
        if self.fast:
            passed = next((i for i, (ok, _) in enumerate(results) if not ok), len(results))
        else:
            passed = sum(ok for ok, _ in results)
        first_failure = next((why for ok, why in results if not ok), "")
        reporter = "t" if (self.problem.test and not self.problem.cases) else "c"
        done = self.done[reporter] and self.protocol_ok[reporter]

        if header.get("timeout"):
            test = header.get("timeout_test")
            if type(test) is int and type(header.get("test_limit")) in (int, float):
                why = f"test {test} ran past its {header['test_limit']:.3g} s limit"
            else:
                why = f"timed out after {safe_repr(header.get('limit', '?'), 20)} s"
            return "timeout", passed, total, why
        if self.oom:
            return "oom", passed, total, "out of memory"
        if done and passed == total and total > 0:
            return "passed", passed, total, ""
        if self.limit is not None:
            return "output_limit", passed, total, self.limit
        if self.load_error is not None:
            return "error", 0, total, self.load_error
        if not done:
            exits = header.get("exit") or {}
            code = exits.get(reporter) if type(exits) is dict else None
            why = f"sample ended before reporting all tests ({_exit_text(code)})"
            return "crashed", passed, total, why
        return "failed", passed, total, first_failure


def decide(
    problem: Problem,
    raw: dict | None,
    *,
    fast: bool = False,
    expected: list | None = None,
) -> tuple[str, int, int, str]:
    """(status, tests_passed, tests_total, detail) for a report given whole: `raw` is the
    worker's header with the report lines under "c" and "t" (None: the worker died)."""
    judge = Judge(problem, fast=fast, expected=expected)
    if raw is not None:
        for stream in ("c", "t"):
            for line in raw.get(stream, []):
                judge.feed(stream, line.encode() if type(line) is str else line)
    return judge.verdict(raw)
