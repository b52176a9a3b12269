"""The task templates of the tiny world: small Python functions a 1M-parameter model can learn.

A template is one kind of function with holes for constants. Filling the holes gives a
*semantic key* `(template.name, constants)`; the surface (function name, argument names)
is drawn separately. Splits are decided on the semantic key, so a held-out task is a
combination of template and constants the model never saw, not a renamed copy.

Each template states its family, its difficulty level, the keywords it expresses (the
keyword vocabulary of the synthetic-data strategies is the union of these), an English
docstring that determines the body exactly, and a generator of test inputs. Expected
values are computed by running the canonical body, so they are right by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

WORDS = (
    "cat", "dog", "sun", "tree", "book", "fish", "bird", "cake", "ship", "star",
    "moon", "rock", "leaf", "lamp", "door", "king", "road", "milk", "rain", "frog",
)  # fmt: skip
LETTERS = "abcdeilmnorst"

ArgsFn = Callable[[random.Random], tuple]


@dataclass(frozen=True)
class Template:
    """One kind of task: `docstring` and `body` are format strings over the constants."""

    name: str
    family: str
    level: str  # easy | medium | hard
    params: tuple[str, ...]  # argument roles, e.g. ("x",) or ("xs",)
    docstring: str
    body: str
    keywords: tuple[str, ...]
    constants: Callable[[random.Random], dict]
    inputs: ArgsFn
    title: str


def _ints(lo: int, hi: int) -> Callable[[random.Random], int]:
    return lambda rng: rng.randint(lo, hi)


def _num(rng: random.Random) -> int:
    return rng.randint(-20, 40)


def _nums(rng: random.Random) -> list[int]:
    return [rng.randint(-9, 30) for _ in range(rng.randint(1, 6))]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 7)))


def _c(lo: int = 1, hi: int = 9, names: str = "c"):
    def draw(rng: random.Random) -> dict:
        return {name: rng.randint(lo, hi) for name in names.split()}

    return draw


def _cw(rng: random.Random) -> dict:
    first, second = rng.sample(WORDS, 2)
    return {"w": first, "v": second}


def _cch(rng: random.Random) -> dict:
    return {"ch": rng.choice(LETTERS)}


def _cwn(rng: random.Random) -> dict:
    return {"w": rng.choice(WORDS), "c": rng.randint(2, 4)}


def _one(gen: Callable[[random.Random], object]) -> ArgsFn:
    return lambda rng: (gen(rng),)


def _two(gen: Callable[[random.Random], object]) -> ArgsFn:
    return lambda rng: (gen(rng), gen(rng))


_N = ("x",)
_AB = ("a", "b")
_XS = ("xs",)
_S = ("s",)
_NN = ("n",)

TEMPLATES: tuple[Template, ...] = (
    # arithmetic
    Template("add_const", "arithmetic", "easy", _N, "Return {x} plus {c}.", "return {x} + {c}",
             ("Integer", "Add"), _c(1, 19), _one(_num), "Add a constant"),
    Template("sub_const", "arithmetic", "easy", _N, "Return {x} minus {c}.", "return {x} - {c}",
             ("Integer", "Subtract"), _c(1, 19), _one(_num), "Subtract a constant"),
    Template("mul_const", "arithmetic", "easy", _N, "Return {x} times {c}.", "return {x} * {c}",
             ("Integer", "Multiply"), _c(2, 12), _one(_num), "Multiply by a constant"),
    Template("add_pair", "arithmetic", "easy", _AB, "Return the sum of {a} and {b}.",
             "return {a} + {b}", ("Integer", "Add", "Pair"), _c(0, 0, ""), _two(_num),
             "Sum of two numbers"),
    Template("mul_pair", "arithmetic", "easy", _AB, "Return the product of {a} and {b}.",
             "return {a} * {b}", ("Integer", "Multiply", "Pair"), _c(0, 0, ""), _two(_num),
             "Product of two numbers"),
    Template("sub_pair", "arithmetic", "easy", _AB, "Return {a} minus {b}.", "return {a} - {b}",
             ("Integer", "Subtract", "Pair"), _c(0, 0, ""), _two(_num),
             "Difference of two numbers"),
    Template("mul_add", "arithmetic", "medium", _N, "Return {x} times {c} plus {d}.",
             "return {x} * {c} + {d}", ("Integer", "Multiply", "Add"), _c(2, 9, "c d"), _one(_num),
             "Linear function"),
    Template("add_mul", "arithmetic", "medium", _N, "Return {x} plus {c}, times {d}.",
             "return ({x} + {c}) * {d}", ("Integer", "Add", "Multiply"), _c(2, 9, "c d"),
             _one(_num), "Shift then scale"),
    Template("square_add", "arithmetic", "medium", _N, "Return the square of {x} plus {c}.",
             "return {x} * {x} + {c}", ("Integer", "Square", "Add"), _c(1, 19), _one(_num),
             "Square plus a constant"),
    Template("mod_const", "arithmetic", "easy", _N, "Return the remainder of {x} divided by {c}.",
             "return {x} % {c}", ("Integer", "Remainder"), _c(2, 9), _one(_num),
             "Remainder by a constant"),
    # conditionals
    Template("max_pair", "conditionals", "easy", _AB, "Return the larger of {a} and {b}.",
             "if {a} > {b}:\n        return {a}\n    return {b}", ("Integer", "Maximize", "Pair"),
             _c(0, 0, ""), _two(_num), "Larger of two numbers"),
    Template("min_pair", "conditionals", "easy", _AB, "Return the smaller of {a} and {b}.",
             "if {a} < {b}:\n        return {a}\n    return {b}", ("Integer", "Minimize", "Pair"),
             _c(0, 0, ""), _two(_num), "Smaller of two numbers"),
    Template("is_greater", "conditionals", "easy", _N,
             "Return True if {x} is greater than {c}, otherwise False.", "return {x} > {c}",
             ("Integer", "Compare", "Boolean"), _c(0, 19), _one(_num), "Greater than a bound"),
    Template("is_even", "conditionals", "easy", _N,
             "Return True if {x} is even, otherwise False.", "return {x} % 2 == 0",
             ("Integer", "Even", "Boolean"), _c(0, 0, ""), _one(_num), "Even check"),
    Template("is_multiple", "conditionals", "medium", _N,
             "Return True if {x} is a multiple of {c}, otherwise False.", "return {x} % {c} == 0",
             ("Integer", "Remainder", "Boolean"), _c(2, 9), _one(_num), "Multiple check"),
    Template("sign_word", "conditionals", "medium", _N,
             "Return '{w}' if {x} is positive, otherwise '{v}'.",
             "if {x} > 0:\n        return '{w}'\n    return '{v}'",
             ("Integer", "String", "Compare"),
             _cw, _one(_num), "Word for the sign"),
    Template("clamp_low", "conditionals", "medium", _N,
             "Return {x}, but never less than {c}.",
             "if {x} < {c}:\n        return {c}\n    return {x}",
             ("Integer", "Minimize", "Compare"),
             _c(0, 19), _one(_num), "Lower clamp"),
    Template("abs_value", "conditionals", "easy", _N, "Return the absolute value of {x}.",
             "if {x} < 0:\n        return -{x}\n    return {x}", ("Integer", "Absolute"),
             _c(0, 0, ""), _one(_num), "Absolute value"),
    # lists
    Template("list_sum", "lists", "easy", _XS, "Return the sum of the numbers in {xs}.",
             "return sum({xs})", ("Array", "Sum"), _c(0, 0, ""), _one(_nums), "Sum of a list"),
    Template("list_max", "lists", "easy", _XS, "Return the largest number in {xs}.",
             "return max({xs})", ("Array", "Maximize"), _c(0, 0, ""), _one(_nums),
             "Largest element"),
    Template("list_min", "lists", "easy", _XS, "Return the smallest number in {xs}.",
             "return min({xs})", ("Array", "Minimize"), _c(0, 0, ""), _one(_nums),
             "Smallest element"),
    Template("list_len", "lists", "easy", _XS, "Return how many numbers are in {xs}.",
             "return len({xs})", ("Array", "Count"), _c(0, 0, ""), _one(_nums), "Length of a list"),
    Template("list_first", "lists", "easy", _XS, "Return the first number in {xs}.",
             "return {xs}[0]", ("Array", "Index"), _c(0, 0, ""), _one(_nums), "First element"),
    Template("list_last", "lists", "easy", _XS, "Return the last number in {xs}.",
             "return {xs}[-1]", ("Array", "Index"), _c(0, 0, ""), _one(_nums), "Last element"),
    Template("list_scale", "lists", "medium", _XS,
             "Return a list of each number in {xs} times {c}.", "return [v * {c} for v in {xs}]",
             ("Array", "Multiply", "Map"), _c(2, 12), _one(_nums), "Scale a list"),
    Template("list_shift", "lists", "medium", _XS,
             "Return a list of each number in {xs} plus {c}.", "return [v + {c} for v in {xs}]",
             ("Array", "Add", "Map"), _c(1, 19), _one(_nums), "Shift a list"),
    Template("list_above", "lists", "medium", _XS,
             "Return a list of the numbers in {xs} that are greater than {c}.",
             "return [v for v in {xs} if v > {c}]", ("Array", "Filter", "Compare"), _c(0, 19),
             _one(_nums), "Filter by a bound"),
    Template("list_evens", "lists", "medium", _XS,
             "Return a list of the even numbers in {xs}.", "return [v for v in {xs} if v % 2 == 0]",
             ("Array", "Filter", "Even"), _c(0, 0, ""), _one(_nums), "Even elements"),
    Template("count_above", "lists", "medium", _XS,
             "Return how many numbers in {xs} are greater than {c}.",
             "return len([v for v in {xs} if v > {c}])", ("Array", "Count", "Compare"), _c(0, 19),
             _one(_nums), "Count above a bound"),
    Template("sum_above", "lists", "hard", _XS,
             "Return the sum of the numbers in {xs} that are greater than {c}.",
             "return sum([v for v in {xs} if v > {c}])", ("Array", "Sum", "Filter", "Compare"),
             _c(0, 19), _one(_nums), "Sum above a bound"),
    Template("scale_above", "lists", "hard", _XS,
             "Return a list of the numbers in {xs} that are greater than {c}, each times {d}.",
             "return [v * {d} for v in {xs} if v > {c}]",
             ("Array", "Filter", "Multiply", "Map"), _c(2, 9, "c d"), _one(_nums),
             "Filter and scale"),
    Template("sum_scaled", "lists", "hard", _XS,
             "Return the sum of each number in {xs} times {c}.",
             "return sum([v * {c} for v in {xs}])", ("Array", "Sum", "Multiply"), _c(2, 12),
             _one(_nums), "Sum of a scaled list"),
    Template("count_even", "lists", "hard", _XS,
             "Return how many numbers in {xs} are even.",
             "return len([v for v in {xs} if v % 2 == 0])", ("Array", "Count", "Even"),
             _c(0, 0, ""), _one(_nums), "Count even elements"),
    # strings
    Template("str_upper", "strings", "easy", _S, "Return {s} in upper case.", "return {s}.upper()",
             ("String", "Case"), _c(0, 0, ""), _one(_word), "Upper case"),
    Template("str_reverse", "strings", "easy", _S, "Return {s} reversed.", "return {s}[::-1]",
             ("String", "Reverse"), _c(0, 0, ""), _one(_word), "Reverse a string"),
    Template("str_repeat", "strings", "easy", _S, "Return {s} repeated {c} times.",
             "return {s} * {c}", ("String", "Repeat"), _c(2, 5), _one(_word), "Repeat a string"),
    Template("str_suffix", "strings", "easy", _S, "Return {s} followed by '{w}'.",
             "return {s} + '{w}'", ("String", "Concatenate"), _cw, _one(_word), "Append a word"),
    Template("str_prefix", "strings", "easy", _S, "Return '{w}' followed by {s}.",
             "return '{w}' + {s}", ("String", "Concatenate"), _cw, _one(_word), "Prepend a word"),
    Template("str_count", "strings", "medium", _S,
             "Return how many times '{ch}' appears in {s}.", "return {s}.count('{ch}')",
             ("String", "Count", "Character"), _cch, _one(_word), "Count a letter"),
    Template("str_head", "strings", "medium", _S, "Return the first {c} letters of {s}.",
             "return {s}[:{c}]", ("String", "Slice"), _c(1, 5), _one(_word), "Prefix of a string"),
    Template("str_has", "strings", "medium", _S,
             "Return True if '{ch}' is in {s}, otherwise False.", "return '{ch}' in {s}",
             ("String", "Character", "Boolean"), _cch, _one(_word), "Contains a letter"),
    Template("str_len_plus", "strings", "medium", _S, "Return the length of {s} plus {c}.",
             "return len({s}) + {c}", ("String", "Count", "Add"), _c(1, 19), _one(_word),
             "Length plus a constant"),
    Template("str_wrap", "strings", "hard", _S, "Return {s} between two copies of '{w}'.",
             "return '{w}' + {s} + '{w}'", ("String", "Concatenate", "Repeat"), _cw, _one(_word),
             "Wrap a string"),
    Template("str_upper_rev", "strings", "hard", _S, "Return {s} reversed and in upper case.",
             "return {s}[::-1].upper()", ("String", "Reverse", "Case"), _c(0, 0, ""), _one(_word),
             "Reverse and upper case"),
    Template("word_times", "strings", "hard", _NN,
             "Return '{w}' repeated {n} times, then '!' {c} times.",
             "return '{w}' * {n} + '!' * {c}", ("String", "Repeat", "Integer"), _cwn,
             _one(_ints(0, 5)), "Repeat with emphasis"),
    # loops
    Template("range_sum", "loops", "medium", _NN,
             "Return the sum of the numbers from 1 to {n}.",
             "total = 0\n    for i in range(1, {n} + 1):\n        total += i\n    return total",
             ("Loop", "Sum", "Integer"), _c(0, 0, ""), _one(_ints(0, 30)), "Sum of a range"),
    Template("range_list", "loops", "medium", _NN,
             "Return a list of the numbers from 0 to {n} minus 1, each times {c}.",
             "return [i * {c} for i in range({n})]", ("Loop", "Array", "Multiply"), _c(2, 9),
             _one(_ints(0, 8)), "Scaled range"),
    Template("count_down", "loops", "hard", _NN,
             "Return a list counting down from {n} to 1.", "return list(range({n}, 0, -1))",
             ("Loop", "Array", "Reverse"), _c(0, 0, ""), _one(_ints(0, 8)), "Count down"),
    Template("range_product", "loops", "hard", _NN,
             "Return the product of the numbers from 1 to {n}.",
             "total = 1\n    for i in range(1, {n} + 1):\n        total *= i\n    return total",
             ("Loop", "Multiply", "Integer"), _c(0, 0, ""), _one(_ints(0, 8)), "Factorial"),
)  # fmt: skip

TEMPLATE_BY_NAME = {t.name: t for t in TEMPLATES}
FAMILIES = tuple(sorted({t.family for t in TEMPLATES}))
LEVELS = ("easy", "medium", "hard")
KEYWORDS = tuple(sorted({k for t in TEMPLATES for k in t.keywords}))

# Surface names: the argument name for each role and verbs for function names.
ARG_NAMES = {
    "x": ("x", "n", "num", "value", "k"),
    "a": ("a", "x", "first", "p"),
    "b": ("b", "y", "second", "q"),
    "xs": ("xs", "nums", "items", "values", "numbers"),
    "s": ("s", "text", "word", "name"),
    "n": ("n", "count", "k", "size"),
}
