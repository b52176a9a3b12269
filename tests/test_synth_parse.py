"""The synth answer parser: what is accepted, and every rejection reason."""

import pytest

from codealign.synth.backends import format_answer
from codealign.synth.parse import Parsed, Rejection, parse_response, split_tests

GOOD = """### Question
Write a function add_two(x) that returns x plus 2.
### Code
```python
def add_two(x):
    return x + 2

assert add_two(1) == 3
assert add_two(-2) == 0
```
### Keywords
Integer, Add
"""


def test_good_answer_splits_code_and_its_asserts():
    parsed = parse_response(GOOD)
    assert isinstance(parsed, Parsed)
    assert parsed.question == "Write a function add_two(x) that returns x plus 2."
    assert parsed.code == "def add_two(x):\n    return x + 2\n"
    assert parsed.tests == ("assert add_two(1) == 3", "assert add_two(-2) == 0")
    assert parsed.keywords == ("Integer", "Add")


def test_format_answer_round_trips_through_the_parser():
    text = format_answer("Do it.", "def f():\n    return 1\n\nassert f() == 1", ["A", "B"])
    assert parse_response(text) == Parsed(
        "Do it.", "def f():\n    return 1\n", ("assert f() == 1",), ("A", "B")
    )


def test_tolerates_crlf_bytes_chatter_and_missing_keywords():
    text = ("Sure! Here it is.\r\n" + GOOD.split("### Keywords")[0]).replace("\n", "\r\n")
    parsed = parse_response(text.encode("utf-8"))
    assert isinstance(parsed, Parsed)
    assert parsed.keywords == ()
    assert parsed.tests[0] == "assert add_two(1) == 3"


def test_multiline_assert_and_asserts_inside_functions():
    code = (
        "def f(xs):\n    assert xs is not None\n    return sorted(xs)\n\n"
        "assert f([2, 1]) == [\n    1,\n    2,\n]\n"
    )
    solution, tests = split_tests(code)
    assert solution == "def f(xs):\n    assert xs is not None\n    return sorted(xs)\n"
    assert tests == ("assert f([2, 1]) == [\n    1,\n    2,\n]",)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   \n\t", "empty"),
        (b"### Question\nq\n\xff\xfe", "non_utf8"),
        ("### Question\nq \udcff\n", "non_utf8"),
        ("REFUSE: these keywords do not fit together.", "refusal"),
        ("I'm sorry, but I cannot help with that.", "refusal"),
        ("### Code\n```python\ndef f():\n    return 1\nassert f() == 1\n```\n", "no_question"),
        ("### Question\nWrite f.\n### Code\ndef f(): return 1\n", "no_code"),
        ("### Question\nWrite f.\n### Code\n```python\n```\n", "no_code"),
        ("### Question\nq\n### Code\n```python\ndef f(:\n    return 1\n```\n", "syntax_error"),
        ("### Question\nq\n### Code\n```python\nx = '\0'\0\n```\n", "syntax_error"),
        ("### Question\nq\n### Code\n```python\nassert 1 == 1\n```\n", "no_code"),
        ("### Question\nq\n### Code\n```python\ndef f():\n    return 1\n```\n", "no_tests"),
        ("lorem ipsum dolor", "no_question"),
    ],
)
def test_rejections_name_their_reason(raw, reason):
    result = parse_response(raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_no_tests_is_allowed_when_not_required():
    text = "### Question\nq\n### Code\n```python\ndef f():\n    return 1\n```\n"
    parsed = parse_response(text, require_tests=False)
    assert isinstance(parsed, Parsed) and parsed.tests == ()


def test_a_solution_that_mentions_sorry_is_not_a_refusal():
    text = GOOD.replace("Write a function", "Sorry, write a function", 1)
    text = "I'm sorry for the wait.\n" + text
    assert isinstance(parse_response(text), Parsed)


def test_truncated_code_block_is_still_read():
    text = GOOD.split("```\n### Keywords")[0]  # cut by max_tokens before the closing fence
    parsed = parse_response(text)
    assert isinstance(parsed, Parsed) and len(parsed.tests) == 2
