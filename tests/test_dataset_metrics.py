"""Dataset diversity and complexity metrics on sets small enough to check by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from lexicalrichness import LexicalRichness
from stage_scripts import stage

from codealign.curation.dataset_metrics import (
    METRIC_KEYS,
    complexity_summary,
    dataset_metrics,
    program_complexity,
    question_mtld,
    render_markdown,
    sample_indices,
    spread,
)
from codealign.curation.dedup import load_named_dataset
from codealign.errors import CodealignError
from codealign.lm.embedding import l2_normalize
from codealign.params.curation import DatasetMetricsParams

# Halstead by hand: operators >, +, unary - (h1=3, N1=3); operands x, 0, 1 (h2=3, N2=5):
# vocabulary 6, length 8, difficulty h1/2 * N2/h2 = 2.5; one `if`: cyclomatic 2.
SIGN = "def f(x):\n    if x > 0:\n        return x + 1\n    return -x\n"
# Operator * (h1=N1=1), operands a, b (h2=N2=2): vocabulary 3, length 3, difficulty 0.5.
PRODUCT = "def g(a, b):\n    return a * b\n"


def test_program_complexity_matches_a_hand_count():
    sign = program_complexity(SIGN)
    assert (sign.halstead_vocabulary, sign.halstead_length) == (6, 8)
    assert sign.halstead_difficulty == pytest.approx(2.5)
    assert sign.cyclomatic_complexity == 2


def test_cyclomatic_complexity_averages_functions_and_methods_not_classes():
    code = (
        "class A:\n    def m(self, x):\n        return 1 if x else 2\n"
        "def h(y):\n    for i in y:\n        if i:\n            return i\n"
    )
    # m: 1 + conditional expression = 2; h: 1 + for + if = 3; the class (5) is left out.
    assert program_complexity(code).cyclomatic_complexity == pytest.approx(2.5)


def test_a_script_without_functions_is_scored_by_its_module_code():
    assert program_complexity("x = 1\nif x:\n    print(x)\n").cyclomatic_complexity == 2


def test_programs_that_do_not_parse_are_counted_and_left_out_of_the_averages():
    summary = complexity_summary([SIGN, PRODUCT, "print 'python 2'", "def (:", "a\x00b"])
    assert summary["parse_failures"] == 3
    assert summary["halstead_vocabulary"] == pytest.approx((6 + 3) / 2)
    assert summary["halstead_length"] == pytest.approx((8 + 3) / 2)
    assert summary["halstead_difficulty"] == pytest.approx((2.5 + 0.5) / 2)
    assert summary["cyclomatic_complexity"] == pytest.approx((2 + 1) / 2)


def test_no_parseable_program_gives_null_averages():
    summary = complexity_summary(["def (:"])
    assert summary["parse_failures"] == 1 and summary["halstead_length"] is None


def test_mtld_is_lexicalrichness_bidirectional_mtld_of_the_joined_questions():
    questions = [
        "Write a function that returns the largest element of a list.",
        "Given a string, count how many times each character appears.",
        "Return the list sorted in descending order without using sort.",
    ]
    expected = LexicalRichness("\n".join(questions)).mtld(threshold=0.72)
    assert question_mtld(questions, 0.72) == pytest.approx(expected)


def test_mtld_by_hand():
    # "cat dog cat dog": TTR falls to 2/3 <= 0.72 at the third word (one factor), and the
    # last word starts a fresh segment with TTR 1 (no partial factor): 4 words / 1 factor,
    # the same read backwards.
    assert question_mtld(["cat dog", "cat dog"]) == pytest.approx(4.0)
    assert question_mtld(["", "  "]) is None


def test_spread_by_hand():
    # Ordered pairs i != j: (0,1) and (1,0) have cosine 1, the other four 0: mean 1/3.
    x = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert spread(x) == pytest.approx(3.0)
    assert spread(x[:1]) is None


def test_spread_equals_the_pairwise_definition():
    x = l2_normalize(np.random.default_rng(0).standard_normal((50, 8)) + 1)
    sims = x @ x.T
    mean = (sims.sum() - np.trace(sims)) / (50 * 49)
    assert spread(x) == pytest.approx(1 / mean, rel=1e-5)


def test_the_sample_is_seeded_and_bounded():
    assert sample_indices(10, 1000, seed=0).tolist() == list(range(10))
    first = sample_indices(5000, 1000, seed=0)
    assert len(first) == 1000 == len(set(first.tolist()))
    np.testing.assert_array_equal(first, sample_indices(5000, 1000, seed=0))
    assert not np.array_equal(first, sample_indices(5000, 1000, seed=1))


def fake_embed(texts):
    rows = [np.random.default_rng(len(t)).standard_normal(8) + 2 for t in texts]
    return l2_normalize(np.asarray(rows))


def tiny_set():
    return [
        {"id": 1, "question": "Return the sign of x.", "code": SIGN, "keywords": [], "source": "a"},
        {
            "id": 2,
            "question": "Multiply two numbers.",
            "code": PRODUCT,
            "keywords": [],
            "source": "a",
        },
        {"id": 3, "question": "Broken code here.", "code": "def (:", "keywords": [], "source": "a"},
    ]


def test_dataset_metrics_reports_every_key():
    out = dataset_metrics(tiny_set(), fake_embed, DatasetMetricsParams(), seed=0)
    assert tuple(out) == METRIC_KEYS
    assert out["data_points"] == 3 and out["parse_failures"] == 1
    assert out["halstead_vocabulary"] == pytest.approx(4.5)
    assert out["question_spread"] > 0 and out["code_spread"] > 0
    assert out["question_mtld"] == pytest.approx(question_mtld([r["question"] for r in tiny_set()]))


def test_the_table_has_one_row_per_dataset_in_order():
    row = dict.fromkeys(METRIC_KEYS, 1.234) | {"data_points": 20000, "parse_failures": 0}
    table = render_markdown({"curated": row, "mbpp": row | {"code_spread": None}})
    lines = table.strip().splitlines()
    assert lines[0].startswith("| Dataset | Question MTLD | Question spread | Code spread |")
    assert lines[2].startswith("| curated | 1.23 | 1.23 | 1.23 |") and "20,000" in lines[2]
    assert lines[3].startswith("| mbpp | 1.23 | 1.23 | n/a |")


def test_bad_params_name_the_key():
    with pytest.raises(CodealignError, match=r"dataset_metrics\.references\[0\] must be one of"):
        DatasetMetricsParams.from_dict({"references": ["alpaca"]}, "dataset_metrics")
    with pytest.raises(CodealignError, match=r"dataset_metrics\.mtld_threshold must be"):
        DatasetMetricsParams.from_dict({"mtld_threshold": 1.0}, "dataset_metrics")


def test_the_vendored_reference_sets_load_as_sft_records():
    raw = Path(__file__).resolve().parents[1] / "data" / "raw"
    alpaca = load_named_dataset("code_alpaca_2k", raw)
    assert len(alpaca) == 2015 and alpaca[0]["source"] == "code_alpaca_2k"
    assert len(load_named_dataset("mbpp", raw)) == 974


def test_the_stage_writes_json_and_table(tmp_path):
    main = stage("dataset_metrics")

    data = tmp_path / "set.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in tiny_set()))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 0, "k": 1, "dataset_metrics": {"references": []}}))
    out, table = tmp_path / "m.json", tmp_path / "m.md"
    args = [
        "--params",
        str(params),
        "--dataset",
        f"seed_s1={data}",
        "--dataset",
        f"curated={data},{data}",
        "--out",
        str(out),
        "--table",
        str(table),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["curated"]["data_points"] == 6 and metrics["seed_s1"]["data_points"] == 3
    rows = [line.split(" | ")[0] for line in table.read_text().splitlines()[2:]]
    assert rows == ["| curated", "| seed_s1"]

    bad = CliRunner().invoke(main, ["--params", str(params), "--dataset", "nopath"])
    assert bad.exit_code == 2 and "error: --dataset must be NAME=PATH" in bad.output
