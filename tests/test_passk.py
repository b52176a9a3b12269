import math

import pytest

from codealign.passk import estimate_pass_at_k, pass_at_k


def _exact(n, c, k):
    return 1 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize("n,c,k", [(10, 0, 1), (10, 3, 1), (10, 3, 5), (10, 9, 5), (200, 13, 100)])
def test_matches_the_closed_form(n, c, k):
    assert estimate_pass_at_k(n, c, k) == pytest.approx(_exact(n, c, k), abs=1e-12)


def test_stable_where_binomials_overflow_floats():
    value = estimate_pass_at_k(2000, 1, 1000)
    assert value == pytest.approx(0.5)


def test_rejects_k_above_n():
    with pytest.raises(ValueError):
        estimate_pass_at_k(3, 1, 4)


def test_pass_at_k_averages_tasks_and_drops_k_above_the_smallest_n():
    verdicts = [{"task_id": "a", "passed": p} for p in (True, False)] + [
        {"task_id": "b", "passed": False},
        {"task_id": "b", "passed": False},
        {"task_id": "b", "passed": True},
    ]
    result = pass_at_k(verdicts, [1, 2, 10])
    assert set(result) == {"pass@1", "pass@2"}
    assert result["pass@1"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert result["pass@2"] == pytest.approx((1.0 + _exact(3, 1, 2)) / 2)
