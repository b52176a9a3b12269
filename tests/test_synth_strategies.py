"""What each synth method asks for: distributions, seeding, prompts and params checks."""

import random

import pytest

from codealign.errors import CodealignError
from codealign.params import parse_params
from codealign.params.synth import SynthParams
from codealign.synth import strategies
from codealign.synth.prompts import render

VOCABULARY = [f"Word{i:02d}" for i in range(40)]


def s2_records(count=30):
    rng = random.Random(1)
    return [
        {
            "id": f"t/{i}",
            "question": f"Write f{i}(x) that returns x plus {i}.",
            "code": f"def f{i}(x):\n    return x + {i}\n",
            "tests": [f"assert f{i}(0) == {i}"],
            "keywords": rng.sample(VOCABULARY, rng.randint(3, 6)),
            "title": f"Add {i}",
            "difficulty": "easy",
        }
        for i in range(count)
    ]


def params(**changes):
    return SynthParams.from_dict(
        {
            "s3_requests": 400,
            "s4_requests": 50,
            "s5_requests": 400,
            "items_per_cycle": 20,
            **changes,
        },
        "synth",
    )


def test_strategy1_draws_n_uniformly_in_bounds_with_two_examples():
    requests = strategies.strategy1_requests(s2_records(), VOCABULARY, params(), 0)
    assert len(requests) == 400
    ns = [r.meta["n"] for r in requests]
    assert min(ns) == 5 and max(ns) == 15  # both ends are drawn
    assert len(set(ns)) == 11
    for request in requests:
        assert len(request.meta["keywords"]) == request.meta["n"]
        assert len(set(request.meta["keywords"])) == request.meta["n"]
        assert set(request.meta["keywords"]) <= set(VOCABULARY)
        assert len(request.meta["examples"]) == 2
        assert ", ".join(request.meta["keywords"]) in request.prompt


def test_strategy1_caps_n_at_the_vocabulary_size():
    small = VOCABULARY[:6]
    requests = strategies.strategy1_requests(s2_records(), small, params(), 0)
    assert all(len(r.meta["keywords"]) == min(r.meta["n"], 6) for r in requests)


def test_strategy2_asks_for_exactly_the_example_keywords():
    s2 = s2_records()
    by_id = {r["id"]: r for r in s2}
    for request in strategies.strategy2_requests(s2, params(), 0):
        (example,) = request.meta["examples"]
        assert request.meta["keywords"] == by_id[example["id"]]["keywords"]


def test_strategy3_draws_m_in_bounds_and_builds_k_star_and_k_hat():
    s2 = s2_records()
    by_id = {r["id"]: r for r in s2}
    requests = strategies.strategy3_requests(s2, VOCABULARY, params(), 0)
    m_star = [r.meta["m_star"] for r in requests]
    m_hat = [r.meta["m_hat"] for r in requests]
    assert set(m_star) == set(range(6)) and set(m_hat) == set(range(6))
    for request in requests:
        k_i = by_id[request.meta["examples"][0]["id"]]["keywords"]
        k_star, k_hat = request.meta["k_star"], request.meta["keywords"]
        assert k_star[: len(k_i)] == k_i and len(k_star) == len(k_i) + request.meta["m_star"]
        assert len(set(k_star)) == len(k_star)
        assert k_hat and len(set(k_hat)) == len(k_hat) and set(k_hat) <= set(VOCABULARY)
        assert abs(len(k_hat) - len(k_i)) <= request.meta["m_hat"]
        if request.meta["m_hat"] == 0:
            assert k_hat == k_i
        # The example is shown with k*, and the request names k^.
        assert "### Keywords\n" + ", ".join(k_star) in request.prompt
        assert "these keywords:\n" + ", ".join(k_hat) in request.prompt


def test_custom_bounds_are_honoured():
    p = params(n_min=7, n_max=7, m_min=2, m_max=3)
    assert {r.meta["n"] for r in strategies.strategy1_requests(s2_records(), VOCABULARY, p, 0)} == {
        7
    }
    s5 = strategies.strategy3_requests(s2_records(), VOCABULARY, p, 0)
    assert {r.meta["m_star"] for r in s5} | {r.meta["m_hat"] for r in s5} == {2, 3}


def test_requests_are_seeded_and_each_strategy_has_its_own_stream():
    s2 = s2_records()
    first = strategies.strategy3_requests(s2, VOCABULARY, params(), 7)
    again = strategies.strategy3_requests(s2, VOCABULARY, params(), 7)
    other = strategies.strategy3_requests(s2, VOCABULARY, params(), 8)
    assert [(r.prompt, r.seed) for r in first] == [(r.prompt, r.seed) for r in again]
    assert [r.prompt for r in first] != [r.prompt for r in other]
    # Sending more S3 requests does not change what S5 asks for.
    more_s3 = strategies.strategy3_requests(s2, VOCABULARY, params(s3_requests=5), 7)
    assert [r.prompt for r in more_s3] == [r.prompt for r in first]
    assert len({r.seed for r in first}) == len(first)


def test_self_instruct_draws_few_shot_examples_from_the_pool():
    pool = s2_records(10)
    requests = strategies.self_instruct_requests(pool, params(few_shot=4), 0, cycle=2)
    assert len(requests) == 20
    assert all(len(r.meta["examples"]) == 4 and r.meta["cycle"] == 2 for r in requests)
    assert requests[0].id == "s1_star/c2/00000"
    assert "## Example 4" in requests[0].prompt and "## Example 5" not in requests[0].prompt


def test_prompt_shows_example_code_with_its_asserts_and_the_response_format():
    (record,) = s2_records(1)
    prompt = render("strategy2", [record], keywords=record["keywords"])
    assert "def f0(x):\n    return x + 0\n\nassert f0(0) == 0\n```" in prompt
    assert "### Question\n<the exercise" in prompt and "REFUSE" in prompt
    assert "$" not in prompt


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"n_min": 9, "n_max": 5}, "synth.n_min (9) must not exceed synth.n_max (5)"),
        ({"m_min": 4, "m_max": 1}, "synth.m_min (4) must not exceed synth.m_max (1)"),
        ({"backend": "gpt"}, "synth.backend must be one of tinyworld, hf, openai"),
        ({"temperature": -1}, "synth.temperature must be"),
        ({"openai_concurrency": 0}, "synth.openai_concurrency must be"),
        (
            {"backend": "openai", "openai_base_url": "localhost:8000"},
            "synth.openai_base_url must start with http",
        ),
        ({"backend": "openai", "cache_dir": ""}, "synth.cache_dir must be set"),
        ({"backend": "hf", "hf_model": " "}, "synth.hf_model must name"),
        ({"openai_backoff": 5, "openai_backoff_max": 1}, "synth.openai_backoff_max (1.0)"),
        ({"n_mx": 3}, "unknown params key 'synth.n_mx'"),
    ],
)
def test_impossible_params_name_the_key(raw, message):
    with pytest.raises(CodealignError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_params({"seed": 0, "k": 1, "synth": raw})


def test_defaults_follow_the_method():
    p = parse_params({"seed": 0, "k": 1})["synth"]
    assert (p.backend, p.cycles, p.n_min, p.n_max, p.m_min, p.m_max) == (
        "tinyworld",
        2,
        5,
        15,
        0,
        5,
    )
