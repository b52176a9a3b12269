"""The real profile's DPO pool: held out of SFT, eval and dev by id, statement and AST key."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.curation import datasets
from codealign.curation.dedup import ast_keys, read_sft_jsonl
from codealign.curation.pool import check_real_split, held_out, mbpp_id, real_split
from codealign.dpo.sample import check_disjoint, pool_problems
from codealign.errors import CodealignError
from codealign.params import load_params

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data/raw"
SOURCES = ("mbpp_plus", "apps_call", "apps_stdio")


@pytest.fixture(scope="module")
def split():
    return real_split(SOURCES, RAW)


def test_the_pool_counts_what_the_vendored_data_holds(split):
    pool = split["metrics"]["pool"]
    assert pool["candidates"] == {"mbpp_plus": 378, "apps_call": 79, "apps_stdio": 49}
    # MBPP+ keeps its train (108) and prompt (7) tasks less ten eval/dev copies.
    assert pool["kept"] == {"mbpp_plus": 105, "apps_call": 79, "apps_stdio": 49}
    assert pool["dropped"] == {
        "eval_id": 224,  # MBPP+ tasks of MBPP test
        "dev_id": 39,  # ... and of MBPP validation
        "eval_statement": 1,  # Mbpp/602 states MBPP test 217
        "eval_ast": 5,  # Mbpp/608, 737, 792, 798, 800: renamed copies of eval functions
        "dev_ast": 3,  # Mbpp/725, 732, 767: of MBPP validation functions
        "eval_ngram": 1,  # Mbpp/784 (product of the first even and odd) words MBPP test 38
    }
    assert len(split["pool"]) == 233
    assert split["metrics"]["sets"]["sft_seed"]["tasks"] == len(split["seed_problems"]) == 254


def test_every_pool_task_has_enough_tests_for_graded_scores(split):
    problems = pool_problems(split["pool"], "pool.jsonl")
    tests = Counter(p.source for p in problems.values())
    assert tests == {"evalplus": 105, "apps": 128}
    totals = [p.tests_total for p in problems.values()]
    assert split["metrics"]["pool"]["tests_per_task"]["total"] == sum(totals)
    assert sum(t >= 5 for t in totals) == 232  # one MBPP+ task has only its 3 base inputs
    mbpp_plus = [p.tests_total for p in problems.values() if p.source == "evalplus"]
    assert min(mbpp_plus) == 3 and max(mbpp_plus) == 150


def test_the_pool_shares_nothing_with_sft_eval_or_dev(split):
    pool, seeds = split["pool"], split["seed_problems"]
    held = {r["task_id"] for r in datasets.load_mbpp(raw_dir=RAW) if r["split"] != "train"}
    held -= set(datasets.MBPP_SPLITS["prompt"])
    pool_ids = {mbpp_id(r["task_id"]) for r in pool if r["task_id"].startswith("Mbpp/")}
    seed_ids = {r["task_id"] for r in seeds}
    assert not pool_ids & held and not seed_ids & held and not pool_ids & seed_ids
    pool_keys = set().union(*(ast_keys(r["prompt"] + r["canonical_solution"]) for r in pool[:105]))
    assert not pool_keys & set().union(*(ast_keys(r["code"]) for r in seeds))
    # The sample stage's own check, by statement, against eval and dev.
    evaluation = {
        "humaneval": datasets.load_humaneval(),
        "mbpp": datasets.load_mbpp("test", RAW),
        "mbpp_validation": datasets.load_mbpp("validation", RAW),
    }
    assert check_disjoint(pool, evaluation) == {
        "humaneval": 164,
        "mbpp": 500,
        "mbpp_validation": 90,
    }


def test_a_renamed_copy_of_an_eval_or_dev_task_is_held_out():
    held = held_out(RAW)
    test_17 = datasets.load_mbpp("test", RAW)[6]
    assert test_17["task_id"] == 17
    renamed = test_17["code"].replace("square_perimeter", "edge_sum").replace("(a)", "(side)")
    renamed = renamed.replace("4*a", "4*side")
    assert renamed != test_17["code"]
    assert held.reason("Find the perimeter of a square.", renamed) == "eval_ast"
    dev = datasets.load_mbpp("validation", RAW)[0]
    assert held.reason(dev["text"].upper(), "") == "dev_statement"
    assert held.reason("anything", mbpp=530) == "dev_id"
    assert held.reason("anything", "def f(x):\n    return x * 7 + 1\n") is None


def test_the_split_check_stops_on_a_twin_of_a_held_out_or_pool_task(split):
    humaneval_0 = datasets.load_humaneval()[0]
    twin = {
        "task_id": "Mbpp/9999",
        "prompt": '"""\nClose elements.\n"""\n',
        "canonical_solution": humaneval_0["prompt"].replace("has_close_elements", "near")
        + humaneval_0["canonical_solution"],
        "entry_point": "near",
    }
    with pytest.raises(CodealignError, match=r"pool\.jsonl: 1 programs .* HumanEval/0"):
        check_real_split(split["held"], [twin], {})
    pool_task = split["pool"][0]  # Mbpp/2
    renamed = pool_task["canonical_solution"].replace("similar_elements", "shared")
    with pytest.raises(CodealignError, match=r"data/seed/s1\.jsonl: 1 programs .* Mbpp/2"):
        check_real_split(split["held"], split["pool"][:105], {"s1.jsonl": [renamed]})


def test_the_paper_seed_stage_writes_the_disjoint_pool_and_its_counts(tmp_path):
    data = load_params(ROOT / "params/paper.yaml")
    raw = yaml.safe_load((ROOT / "params/paper.yaml").read_text())
    raw["data"]["raw_dir"] = str(RAW)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    out, metrics = tmp_path / "seed", tmp_path / "seed.json"
    result = CliRunner().invoke(
        stage("seed"), ["--params", str(params), "--out", str(out), "--metrics", str(metrics)]
    )
    assert result.exit_code == 0, result.output
    pool = [json.loads(line) for line in (out / "pool.jsonl").read_text().splitlines()]
    s1 = read_sft_jsonl(out / "s1.jsonl")
    assert len(pool) == 233 and len(s1) == 254
    assert [r["task_id"] for r in pool[:3]] == ["Mbpp/2", "Mbpp/3", "Mbpp/4"]
    assert not {f"mbpp/{mbpp_id(r['task_id'])}" for r in pool} & {r["id"] for r in s1}
    counts = json.loads(metrics.read_text())
    assert counts["sets"]["pool"]["tasks"] == 233
    assert counts["pool"]["kept"] == {"mbpp_plus": 105, "apps_call": 79, "apps_stdio": 49}
    assert list(data["data"].pool_sources) == list(SOURCES)


def test_pool_sources_choose_the_pool(split):
    apps_only = real_split(("apps_call",), RAW)
    assert [r["task_id"] for r in apps_only["pool"]] == [
        r["task_id"] for r in split["pool"][105 : 105 + 79]
    ]
    # Without MBPP+ in the pool, its train tasks seed SFT again.
    assert len(apps_only["seed_problems"]) == 361  # 254 + the 105 + 779, 879


def test_an_unknown_pool_source_is_named_by_key():
    data = load_params(ROOT / "params/paper.yaml")["data"]
    with pytest.raises(
        CodealignError, match=r"data\.pool_sources\[1\] must be one of .*'codecontests'"
    ):
        replace(data, pool_sources=("mbpp_plus", "codecontests")).validate("data")


def test_dedup_against_the_pool_removes_a_renamed_pool_problem(tmp_path, split):
    pool = split["pool"][:2] + split["pool"][105:106]  # Mbpp/2, Mbpp/3 and an APPS problem
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    renamed = pool[0]["canonical_solution"].replace("similar_elements", "common_items")
    records = [
        {"id": "s3-0", "question": "Items two tuples share.", "code": renamed, "source": "s3"},
        {
            "id": "s3-1",
            "question": "Add one.",
            "code": "def f(x):\n    return x + 1\n",
            "source": "s3",
        },
    ]
    (tmp_path / "s3.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "no_eval.jsonl").write_text("")  # the pool alone is decontaminated against

    def run(against_pool: bool):
        params = tmp_path / "params.yaml"
        dedup = {"against_pool": against_pool, "validation_fraction": 0.0}
        params.write_text(yaml.safe_dump({"seed": 0, "k": 1, "dedup": dedup}))
        out = tmp_path / f"dedup_{against_pool}"
        args = ["--params", str(params), "--input", str(tmp_path / "s3.jsonl"), "--eval-file",
                str(tmp_path / "no_eval.jsonl"), "--pool-file", str(tmp_path / "pool.jsonl"),
                "--out", str(out), "--metrics", str(tmp_path / "m.json"),
                "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
        result = CliRunner().invoke(stage("dedup"), args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]

    (removed,) = run(True)
    assert (removed["id"], removed["reason"]) == ("s3-0", "contaminated_ast")
    assert (removed["matched_eval_set"], removed["matched_task_id"]) == ("pool", "Mbpp/2")
    assert run(False) == []
