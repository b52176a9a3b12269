"""LintSeq: sequences rebuild their program exactly, every state lints, decoding fails clearly."""

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.curation.datasets import load_mbpp
from codealign.edits.lintseq import (
    EditError,
    PyflakesLinter,
    Skip,
    apply_diff,
    apply_edits,
    decode_target,
    edit_sequences,
    lint,
    make_diff,
    parse_target,
    prepare,
    render_target,
    sample_states,
    seeded_rng,
)
from codealign.errors import CodealignError
from codealign.params.edits import LintseqParams

ROOT = Path(__file__).resolve().parents[1]

TRICKY = {
    "no_final_newline": "def f(x):\n    return x + 1",
    "crlf": "import os\r\n\r\ndef f():\r\n    return os.sep\r\n",
    "tabs_and_trailing_blanks": "def f(a):\n\tif a:\n\t\treturn 1\n\treturn 2\n\n\n",
    "multiline": (
        "import math\n\n\n"
        "def area(r):\n"
        '    """Circle area.\n\n    Raises on a negative radius.\n    """\n'
        "    if r < 0:\n"
        "        raise ValueError(\n"
        '            "negative"\n'
        "        )\n"
        "    total = math.pi * \\\n        r ** 2\n"
        "    return total\n\n"
        "# a comment between statements\n"
        "print(area(2))"
    ),
    "class_and_decorator": (
        "import functools\n\n\nclass Box:\n    size = 3\n\n"
        "    @functools.cache\n    def grow(self, n):\n"
        "        for i in range(n):\n            if i % 2:\n                continue\n"
        "            self.size += i\n        else:\n            pass\n        return self.size\n"
    ),
    "unicode": "def greet(name):\n    # héllo → wörld\n    return f'héllo {name} ✓'\n",
    "try_except": (
        "def safe(x):\n    try:\n        y = 1 / x\n    except ZeroDivisionError:\n"
        "        y = 0\n    finally:\n        print(y)\n    return y\n"
    ),
}


@pytest.fixture(scope="module")
def programs(small_world):
    """~250 real programs: MBPP solutions (mostly without a final newline) and tiny-world ones."""
    mbpp = [(f"mbpp/{r['task_id']}", r["code"]) for r in load_mbpp()[::6]]
    tiny = [(t.task_id, t.code) for t in small_world.train[::10]]
    return mbpp + tiny + list(TRICKY.items())


def sequences_of(code, samples=2, seed=0, record_id="x", context=0):
    linter = PyflakesLinter()
    program = prepare(code, 500, linter)
    assert not isinstance(program, Skip), program
    return program, edit_sequences(program, samples, seed, record_id, context, linter)


def test_edit_sequences_rebuild_every_program_byte_for_byte(programs):
    for record_id, code in programs:
        _, sequences = sequences_of(code, record_id=record_id)
        assert sequences, record_id
        for diffs in sequences:
            assert apply_edits(diffs) == code, record_id
            assert decode_target(render_target(diffs)).program == code, record_id


def test_every_state_lints_clean_and_every_edit_only_inserts(programs):
    for record_id, code in programs:
        linter = PyflakesLinter()
        program = prepare(code, 500, linter)
        states = sample_states(program, seeded_rng(0, record_id, 0), linter)
        assert states[0] == code and states[-1] == ""
        for state in states:
            new = [e for e in lint(state) if e.key not in program.known_errors]
            assert not new, (record_id, state, new)
        states.reverse()
        for before, after in itertools.pairwise(states):
            diff = make_diff(before, after)
            body = [line for line in diff.splitlines() if not line.startswith(("@@", "\\"))]
            assert body and all(line.startswith("+") for line in body), (record_id, diff)
            assert apply_diff(before, diff) == after


def test_deleting_a_definition_takes_its_users_with_it():
    code = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\nprint(area(2))\n"
    program = prepare(code, 100, PyflakesLinter())
    for seed in range(20):
        for state in sample_states(program, seeded_rng(seed, "area", 0), PyflakesLinter()):
            assert "math.pi" not in state or "import math" in state
            assert "print(area" not in state or "def area" in state
            assert "def area" not in state or "return" in state  # no empty body


def test_a_decorator_stays_with_its_definition():
    program = prepare(TRICKY["class_and_decorator"], 100, PyflakesLinter())
    for seed in range(20):
        for state in sample_states(program, seeded_rng(seed, "box", 0), PyflakesLinter()):
            assert ("@functools.cache" in state) == ("def grow" in state)


def test_errors_the_program_already_had_are_tolerated():
    code = (
        "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return swap(total)\n"
    )
    program, sequences = sequences_of(code)
    assert program.known_errors == {("UndefinedName", "swap")}
    assert all(apply_edits(diffs) == code for diffs in sequences)


def test_context_lines_round_trip_too(programs):
    for record_id, code in programs[:40]:
        _, sequences = sequences_of(code, record_id=record_id, context=2)
        assert all(apply_edits(diffs) == code for diffs in sequences)


# ---------------------------------------------------------------------------- seeding


def test_the_same_seed_gives_the_same_sequences_and_another_seed_differs(programs):
    sample = programs[:60]
    first = [sequences_of(code, seed=3, record_id=rid)[1] for rid, code in sample]
    again = [sequences_of(code, seed=3, record_id=rid)[1] for rid, code in sample]
    other = [sequences_of(code, seed=4, record_id=rid)[1] for rid, code in sample]
    assert first == again
    assert first != other


def test_sampling_does_not_depend_on_the_process_hash_seed():
    script = (
        "from codealign.edits.lintseq import *\n"
        "code = 'import os\\nx = 1\\ny = 2\\nz = x + y\\nprint(os.sep, z)\\n'\n"
        "p = prepare(code, 100, PyflakesLinter())\n"
        "print(repr(edit_sequences(p, 3, 7, 'rec/1')))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": str(hash_seed), "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(outputs) == 1


def test_identical_sequences_are_kept_once():
    _, sequences = sequences_of("x = 1\n", samples=5)
    assert sequences == [["@@ -0,0 +1 @@\n+x = 1\n"]]


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "empty"),
        ("  \n\n\t\n", "empty"),
        ("def f(:\n    pass\n", "syntax_error"),
        ("return 1\n", "syntax_error"),  # compiles only inside a function
        ("x = 1\ry = 2\n", "unsupported_newlines"),
        ("x = 1\n" * 11, "too_long"),
    ],
)
def test_programs_that_cannot_be_sampled_are_skipped_with_a_reason(code, reason):
    skip = prepare(code, 10, PyflakesLinter())
    assert isinstance(skip, Skip) and skip.reason == reason


def test_a_syntax_error_names_its_line():
    skip = prepare("x = 1\ny = (\n", 10, PyflakesLinter())
    assert skip.reason == "syntax_error" and skip.detail.startswith("line 2:")


DIFF = "@@ -0,0 +1,2 @@\n+def f():\n+    return 1\n"


@pytest.mark.parametrize(
    ("program", "diff", "reason"),
    [
        ("", "@@ -0,0 +1,x @@\n+a\n", "expected a hunk header"),
        ("", "+def f():\n", "expected a hunk header"),
        ("", "@@ -0,0 +1,3 @@\n+a\n+b\n", "ends early"),
        ("", "@@ -0,0 +1,1 @@\n+a\n+b\n", "more lines than its header"),
        ("", "@@ -0,0 +2,1 @@\n+a\n", "new-file start +2 should be +1"),
        ("a\n", "@@ -1 +1 @@\n-b\n+c\n", "context mismatch at line 1"),
        ("a\n", "@@ -1,0 +2 @@\n x\n+c\n", "header"),
        ("a\n", "@@ -5,0 +6 @@\n+c\n", "does not fit a 1-line program"),
        ("a\n", "", "no hunk"),
        ("a\n", "\\ No newline at end of file\n", "without a line before it"),
    ],
)
def test_a_diff_that_does_not_apply_says_why(program, diff, reason):
    with pytest.raises(EditError, match=re.escape(reason)):
        apply_diff(program, diff)


def test_a_context_mismatch_names_the_edit_and_decoding_reports_edit_failed():
    good = make_diff("a\nb\nc\n", "a\nb\nX\nc\n", context=1)
    assert apply_diff("a\nb\nc\n", good) == "a\nb\nX\nc\n"
    with pytest.raises(EditError, match=r"edit 2: hunk 1: context mismatch at line 2"):
        apply_edits(["@@ -0,0 +1,3 @@\n+a\n+Q\n+c\n", good])
    target = render_target(["@@ -0,0 +1,3 @@\n+a\n+Q\n+c\n", good])
    decoded = decode_target(target)
    assert decoded.status == "edit_failed" and decoded.program is None
    assert "edit 2" in decoded.reason and decoded.edits == 2


def test_model_output_with_stray_separators_and_blank_lines_still_decodes():
    target = render_target([DIFF, "@@ -2,0 +3 @@\n+print(f())\n"])
    assert parse_target(target) == [DIFF, "@@ -2,0 +3 @@\n+print(f())\n"]
    noisy = "<|diff|>\n" + target + "\n<|diff|>\n\n"
    decoded = decode_target(noisy)
    assert decoded.status == "ok" and decoded.program == "def f():\n    return 1\nprint(f())\n"
    assert decode_target("no diff here").status == "edit_failed"
    assert decode_target("").reason == "no edit in the output"


def test_a_diff_from_other_tools_with_file_headers_applies():
    diff = "--- a.py\n+++ b.py\n" + DIFF
    assert apply_diff("", diff) == "def f():\n    return 1\n"


# ---------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"samples": 0}, "lintseq.samples must be an integer >= 1, got 0"),
        ({"linter": "pylint"}, "lintseq.linter must be one of pyflakes, got 'pylint'"),
        ({"separator": "+diff"}, "lintseq.separator must not start with"),
        ({"separator": ""}, "lintseq.separator must be a non-empty single line"),
        ({"sample": 2}, "unknown params key 'lintseq.sample'"),
    ],
)
def test_bad_params_name_the_key(raw, message):
    with pytest.raises(CodealignError, match=re.escape(message)):
        LintseqParams.from_dict(raw, "lintseq")


# ---------------------------------------------------------------------------- the stage


def record(rid, code):
    return {"id": rid, "question": f"question {rid}", "code": code, "source": "s3"}


@pytest.fixture
def stage_dir(tmp_path):
    train = [record("t0", TRICKY["multiline"]), record("t1", "def f(:\n"), record("t2", "")]
    train.append(record("t3", TRICKY["no_final_newline"]))
    validation = [record("v0", TRICKY["try_except"])]
    for name, records in (("train", train), ("validation", validation)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    params = {"seed": 0, "k": 1, "lintseq": {"samples": 3}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def run_stage(tmp_path):
    return CliRunner().invoke(
        stage("lintseq"),
        [
            *("--params", str(tmp_path / "params.yaml")),
            *("--train", str(tmp_path / "train.jsonl")),
            *("--validation", str(tmp_path / "validation.jsonl")),
            *("--out", str(tmp_path / "lintseq")),
            *("--metrics", str(tmp_path / "metrics.json")),
            *("--plot", str(tmp_path / "plots" / "edits.png")),
        ],
    )


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_stage_writes_sequences_skips_and_metrics(stage_dir):
    result = run_stage(stage_dir)
    assert result.exit_code == 0, result.output
    out = stage_dir / "lintseq"
    train, validation = read(out / "train.jsonl"), read(out / "validation.jsonl")
    assert {r["id"] for r in train} == {"t0", "t3"} and {r["id"] for r in validation} == {"v0"}
    for r in train + validation:
        assert apply_edits(r["edits"]) == r["code"]
        assert r["target"] == render_target(r["edits"]) and r["question"] == f"question {r['id']}"
    assert sorted(r["sample"] for r in train if r["id"] == "t0") == [0, 1, 2]
    skipped = {r["id"]: r["reason"] for r in read(out / "skipped.jsonl")}
    assert skipped == {"t1": "syntax_error", "t2": "empty"}
    metrics = json.loads((stage_dir / "metrics.json").read_text())
    assert metrics["programs"] == 5 and metrics["programs_used"] == 3
    assert metrics["sequences"] == len(train) + len(validation)
    assert metrics["skipped"]["syntax_error"] == 1 and metrics["skipped"]["empty"] == 1
    assert metrics["mean_edits_per_sequence"] > 1


def test_a_malformed_line_fails_in_one_line_and_writes_nothing(stage_dir):
    with (stage_dir / "validation.jsonl").open("a") as handle:
        handle.write('{"id": "v1", "question": "q", "code": \n')
    result = run_stage(stage_dir)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert f"{stage_dir / 'validation.jsonl'}:2: invalid JSON" in result.output
    assert not (stage_dir / "lintseq").exists() and not (stage_dir / "metrics.json").exists()


def test_a_record_without_code_names_file_and_line(stage_dir):
    (stage_dir / "train.jsonl").write_text('{"id": 1, "question": "q"}\n')
    result = run_stage(stage_dir)
    assert result.exit_code == 2
    assert result.output == f"error: {stage_dir / 'train.jsonl'}:1: missing field 'code'\n"
