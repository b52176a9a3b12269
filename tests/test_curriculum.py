"""Buckets, edges, ordering and pruning of the curriculum; AST stripping; bootstrap CI."""

import pytest

from codealign.dpo.curriculum import bucket_edges, bucket_of, build_curriculum
from codealign.dpo.stats import bootstrap_ci
from codealign.dpo.strip import same_program, strip_program
from codealign.errors import CodealignError
from codealign.params.dpo import CurriculumParams

SOLUTION = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'


def pair(pid, distance, *, chosen=SOLUTION, rejected="def add(a, b):\n    return a\n", passed=True):
    return {
        "pair_id": pid,
        "distance": distance,
        "chosen": chosen,
        "rejected": rejected,
        "chosen_passed": passed,
    }


def params(**kw):
    return CurriculumParams.from_dict(kw, "curriculum")


def test_percentile_edges_and_buckets_on_known_distances():
    distances = [float(d) for d in range(101)]  # 0..100: the p-th percentile is p
    edges = bucket_edges(distances, [10, 50, 90])
    assert edges == pytest.approx([10.0, 50.0, 90.0])
    assert [bucket_of(d, edges) for d in (0, 9.9, 10, 49, 50, 89.9, 90, 100)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    result = build_curriculum(
        [pair(f"p{int(d):03d}", d) for d in distances],
        params(prune_low_incorrect=False, prune_high_comment_only=False),
    )
    sizes = {s["bucket"]: s["pairs"] for s in result["summary"]["stages"]}
    assert sizes == {0: 10, 1: 40, 2: 40, 3: 11}


def test_default_order_trains_the_highest_distance_bucket_first():
    pairs = [pair(f"p{d}", float(d)) for d in range(20)]
    descending = build_curriculum(pairs, params())
    assert [s["bucket"] for s in descending["summary"]["stages"]] == [3, 2, 1, 0]
    assert all(p["stage"] == 1 for p in descending["stages"][0])
    assert min(p["distance"] for p in descending["stages"][0]) >= max(
        p["distance"] for p in descending["stages"][1]
    )
    ascending = build_curriculum(pairs, params(order="ascending"))
    assert [s["bucket"] for s in ascending["summary"]["stages"]] == [0, 1, 2, 3]


def test_low_bucket_drops_pairs_whose_chosen_fails():
    pairs = [pair(f"p{d}", float(d), passed=d % 2 == 1) for d in range(20)]
    result = build_curriculum(pairs, params(prune_high_comment_only=False))
    low = [p for p in result["pruned"] if p["bucket"] == 0]
    assert low and all(p["reason"] == "low_bucket_chosen_fails_tests" for p in low)
    assert all(p["chosen_passed"] for s in result["stages"] for p in s if p["bucket"] == 0)
    # Failing chosen answers in other buckets are kept: the rule is for the lowest one only.
    assert any(not p["chosen_passed"] for s in result["stages"] for p in s)
    kept = build_curriculum(pairs, params(prune_low_incorrect=False, prune_high_comment_only=False))
    assert kept["pruned"] == []


@pytest.mark.parametrize(
    "rejected",
    [
        SOLUTION.replace("    return a + b", "    # sum them\n    return a + b  # done"),
        "def add(a, b):\n    return a + b\n",  # docstring only
        SOLUTION + "\nprint(add(1, 2))\nresult = add(3, 4)\nassert add(1, 1) == 2\n",
        SOLUTION + '\nif __name__ == "__main__":\n    print(add(2, 2))\n',
        '"""Module docstring."""\n' + SOLUTION.replace('"', "'"),
    ],
    ids=["comments", "docstring", "example-usage", "main-block", "module-docstring"],
)
def test_high_bucket_drops_pairs_that_differ_only_in_what_does_not_run(rejected):
    assert same_program(SOLUTION, rejected)
    pairs = [pair(f"p{d}", float(d)) for d in range(19)] + [pair("top", 99.0, rejected=rejected)]
    result = build_curriculum(pairs, params())
    pruned = {p["pair_id"]: p["reason"] for p in result["pruned"]}
    assert pruned == {"top": "high_bucket_comment_only_difference"}
    off = build_curriculum(pairs, params(prune_high_comment_only=False))
    assert "top" in {p["pair_id"] for s in off["stages"] for p in s}


def test_real_differences_survive_stripping():
    assert not same_program(SOLUTION, SOLUTION.replace("a + b", "a - b"))
    # An assignment that calls something is example usage; a constant is part of the program.
    assert same_program(SOLUTION, SOLUTION + "\nvalue = add(1, 2)\n")
    assert not same_program(SOLUTION, SOLUTION + "\nLIMIT = 10\n")
    assert strip_program("X = 3\n" + SOLUTION) == "X = 3\n\ndef add(a, b):\n    return a + b"
    assert strip_program("def broken(:\n") == "def broken(:"
    assert not same_program("def broken(:\n", "def broken(:  # x\n")


def test_no_pairs_gives_empty_stages_not_an_error():
    result = build_curriculum([], params())
    assert result["stages"] == [[], [], [], []]
    assert result["summary"]["empty_stages"] == [1, 2, 3, 4]
    assert result["summary"]["edges"] == []


def test_percentiles_must_increase():
    with pytest.raises(CodealignError, match="curriculum.percentiles must be strictly increasing"):
        params(percentiles=[50, 10])
    with pytest.raises(CodealignError, match="curriculum.order must be one of"):
        params(order="random")


def test_bootstrap_interval_contains_the_mean():
    ci = bootstrap_ci([0.02, 0.05, -0.01], seed=1)
    assert ci["low"] <= ci["mean"] <= ci["high"]
    assert ci["mean"] == pytest.approx(0.02)
    assert bootstrap_ci([0.1, 0.1, 0.1])["low"] == pytest.approx(0.1)


def test_a_best_candidate_that_passes_some_tests_is_mined_then_pruned_from_the_low_bucket():
    """Mining and pruning on sandbox-scored samples: the smoke run's pairs all have the
    passing reference as chosen (sample.add_reference), so this path is exercised here."""
    from codealign.dpo.pairs import mine_pairs
    from codealign.dpo.sample import pool_problems
    from codealign.dpo.score import score_samples
    from codealign.params.dpo import ScoreParams

    records, samples = [], []
    for c in range(1, 5):
        records.append(
            {
                "task_id": f"pool/{c}",
                "prompt": f'def add_c(x):\n    """Return x plus {c}."""\n',
                "canonical_solution": f"    return x + {c}\n",
                "test": (
                    "def check(candidate):\n"
                    f"    assert candidate(0) == {c}\n"
                    f"    assert candidate(1) == {1 + c}\n"
                    f"    assert candidate(2) == {2 + c}\n"
                ),
                "entry_point": "add_c",
            }
        )
        answers = [
            "def add_c(x):\n    return x\n",  # no test passes
            f"def add_c(x):\n    return {c} if x == 0 else 0\n",  # the first test only
        ]
        samples += [
            {"task_id": f"pool/{c}", "completion_id": i, "completion": a, "question": "q"}
            for i, a in enumerate(answers)
        ]
    scored = score_samples(
        pool_problems(records, "pool.jsonl"), samples, ScoreParams(workers=1), progress=False
    )
    assert sorted(s["score"] for s in scored) == [0.0] * 4 + [pytest.approx(1 / 3)] * 4
    pairs, counts = mine_pairs(scored)
    assert counts["pairs"] == 4
    assert all(p["chosen_id"] == 1 and not p["chosen_passed"] for p in pairs)
    assert not any(p["chosen_reference"] for p in pairs)
    # Distances come from the pairs stage's reference log-probs; any order does here.
    for distance, p in enumerate(pairs):
        p["distance"] = float(distance)
    result = build_curriculum(pairs, params())
    assert [p["reason"] for p in result["pruned"]] == ["low_bucket_chosen_fails_tests"]
    assert result["pruned"][0]["distance"] == 0.0
    assert result["summary"]["pairs_kept"] == 3 and result["summary"]["reference_chosen"] == 0
