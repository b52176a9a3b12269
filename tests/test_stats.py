"""Intervals over tasks and the paired test (codealign.dpo.stats)."""

import random

import pytest

from codealign.dpo.stats import bootstrap_ci, paired_comparison, task_ci, task_scores


def verdicts(rates: dict[str, float], n: int) -> list[dict]:
    """n samples per task, the first round(rate * n) of them passing."""
    return [
        {"task_id": task, "completion_id": i, "passed": i < round(rate * n)}
        for task, rate in rates.items()
        for i in range(n)
    ]


RATES = {f"tinyeval/{i}": (i % 5) / 4 for i in range(40)}


def test_task_scores_are_per_task_pass_rates():
    scores = task_scores(verdicts({"a": 0.5, "b": 1.0}, 4))
    assert scores == {"a": 0.5, "b": 1.0}


def test_more_samples_per_task_do_not_narrow_the_interval_over_tasks():
    few, many = task_ci(verdicts(RATES, 4)), task_ci(verdicts(RATES, 40))
    assert few["n"] == many["n"] == 40
    assert few["mean"] == pytest.approx(many["mean"])
    assert (few["low"], few["high"]) == pytest.approx((many["low"], many["high"]))
    # The interval over samples would be ~sqrt(40) times narrower with 40 samples a task.
    assert many["high"] - many["low"] > 0.15


def test_more_tasks_narrow_the_interval():
    small = task_ci(verdicts(dict(list(RATES.items())[:10]), 4))
    large = task_ci(verdicts({f"t{i}": (i % 5) / 4 for i in range(400)}, 4))
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 2


def test_identical_models_tie_with_p_one():
    result = paired_comparison(RATES, dict(RATES))
    assert result["mean_difference"] == 0 and result["p_value"] == 1.0
    assert result["ties"] == 40 and result["low"] == result["high"] == 0


def test_a_model_better_on_most_tasks_is_detected_and_the_interval_excludes_zero():
    rng = random.Random(0)
    better = {t: min(1.0, r + 0.25 * (rng.random() < 0.8)) for t, r in RATES.items()}
    result = paired_comparison(better, RATES)
    assert result["p_value"] < 0.01 and result["low"] > 0
    assert result["wins"] > 20 and result["losses"] == 0
    reverse = paired_comparison(RATES, better)
    assert reverse["high"] < 0 and reverse["mean_difference"] == -result["mean_difference"]


def test_noise_alone_is_not_significant():
    rng = random.Random(1)
    a = {t: rng.random() for t in RATES}
    b = {t: rng.random() for t in RATES}
    result = paired_comparison(a, b, seed=3)
    assert result["p_value"] > 0.05 and result["low"] < 0 < result["high"]


def test_models_on_different_tasks_are_refused():
    with pytest.raises(ValueError, match="same tasks.*only in a: \\['x'\\]"):
        paired_comparison({"x": 1.0, "y": 0.0}, {"y": 0.0})


def test_bootstrap_ci_is_the_one_interval():
    ci = bootstrap_ci([0.0, 1.0] * 20, seed=2)
    again = task_ci(verdicts({f"t{i}": float(i % 2) for i in range(40)}, 3), seed=2)
    assert (ci["low"], ci["high"]) == (again["low"], again["high"])


def test_task_pass_at_k_matches_the_benchmark_estimate_and_resamples_tasks():
    from codealign.dpo.stats import task_pass_at_k, task_passk_ci
    from codealign.passk import pass_at_k

    data = verdicts(RATES, 10)
    for k in (1, 5, 10):
        per_task = task_pass_at_k(data, k)
        assert len(per_task) == 40
        ci = task_passk_ci(data, k)
        assert ci["mean"] == pytest.approx(pass_at_k(data, [k])[f"pass@{k}"])
        assert ci["n"] == 40 and ci["low"] <= ci["mean"] <= ci["high"]
    # pass@1 per task is the pass rate: the same interval as task_ci.
    assert task_passk_ci(data, 1) == pytest.approx(task_ci(data))


def test_curriculum_against_shuffled_says_inconclusive_when_the_interval_holds_zero():
    from codealign.dpo.stats import compare_on_tasks

    rng = random.Random(1)
    noisy = {t: min(1.0, max(0.0, r + rng.choice([-0.25, 0.0, 0.25]))) for t, r in RATES.items()}
    result = compare_on_tasks(
        verdicts(noisy, 4), verdicts(RATES, 4), names=("curriculum", "shuffled")
    )
    assert result["low"] <= 0 <= result["high"]
    assert result["conclusion"] == "inconclusive: the 95% interval over tasks contains 0"
    assert result["tasks"] == 40 and result["shuffled_pass@1"] == pytest.approx(0.5)

    better = {t: min(1.0, r + 0.25) for t, r in RATES.items()}
    result = compare_on_tasks(
        verdicts(RATES, 4), verdicts(better, 4), names=("curriculum", "shuffled")
    )
    assert result["high"] < 0
    assert result["conclusion"] == (
        "shuffled above curriculum on these tasks: the 95% interval over tasks excludes 0 "
        "(one model each: training noise across seeds is not in it)"
    )


def test_dpo_compare_pairs_the_final_models_per_benchmark_and_names_a_missing_out(tmp_path):
    from stage_scripts import stage_module

    from codealign.errors import CodealignError
    from codealign.io import write_jsonl

    final_comparison = stage_module("dpo_compare").final_comparison
    better = {t: min(1.0, r + 0.25) for t, r in RATES.items()}
    for name, rates in (("dpo_stage_4", better), ("dpo_shuffled", RATES)):
        write_jsonl(tmp_path / "tinyeval" / name / "verdicts_pass1.jsonl", verdicts(rates, 4))
    write_jsonl(tmp_path / "other" / "k1" / "verdicts_pass1.jsonl", verdicts(RATES, 4))
    found = final_comparison(tmp_path)
    assert list(found) == ["tinyeval"]  # a benchmark without both final models is left out
    assert found["tinyeval"]["low"] > 0 and found["tinyeval"]["tasks"] == 40
    assert found["tinyeval"]["conclusion"].startswith("curriculum above shuffled")
    with pytest.raises(CodealignError, match="no benchmark with verdicts of both"):
        final_comparison(tmp_path / "other")
    missing = r"missing: not found \(the evaluate_dpo stage's out\)"
    with pytest.raises(CodealignError, match=missing):
        final_comparison(tmp_path / "missing")
