"""Which requests each method sends: examples, keyword lists and their distributions.

Every method draws from its own `random.Random`, seeded by the master seed and the
method's name, so changing how many requests one strategy sends leaves the others'
draws unchanged. Each request also gets its own seed (for sampling and the cache key),
derived from the master seed and the request id.

- Method 1, self-instruct (→ S1*): `few_shot` examples from the current pool.
- Strategy 1 (→ S3): two S2 examples and n ~ U(n_min, n_max) vocabulary words
  (all of the vocabulary when it is smaller than n; `meta["n"]` keeps the drawn n).
- Strategy 2 (→ S4): one S2 example and exactly its keywords.
- Strategy 3 (→ S5): one S2 example i, shown with k* = k_i plus m* ~ U(m_min, m_max)
  vocabulary words it lacks; the request asks for k^ = k_i perturbed by m^ ~ U(m_min,
  m_max) edits. METHOD.md leaves "perturbed" open; here each edit is, with equal
  chance, adding a vocabulary word, replacing a keyword with one, or dropping a keyword
  (never the last), so k^ drifts from k_i in both content and length.
- S2 completion (real data only): an S2 title without question/code gets both from the
  model, from the title, its keywords and two S1 examples (METHOD.md A, "Seed data").
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from codealign.params.synth import SynthParams
from codealign.synth.backends import Request
from codealign.synth.prompts import render


def request_seed(master_seed: int, request_id: str) -> int:
    digest = hashlib.sha256(f"{master_seed}|{request_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def method_rng(master_seed: int, name: str) -> random.Random:
    return random.Random(f"synth|{master_seed}|{name}")


def _request(
    request_id: str, prompt: str, params: SynthParams, master_seed: int, meta: dict[str, Any]
) -> Request:
    return Request(
        id=request_id,
        messages=({"role": "user", "content": prompt},),
        temperature=params.temperature,
        max_tokens=params.max_tokens,
        seed=request_seed(master_seed, request_id),
        meta=meta,
    )


def _example_meta(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": r["id"], "keywords": list(r["keywords"]), "difficulty": r.get("difficulty")}
        for r in records
    ]


def extend_keywords(
    rng: random.Random, keywords: Sequence[str], vocabulary: Sequence[str], m: int
) -> list[str]:
    """`keywords` plus up to `m` vocabulary words it lacks (k* of strategy 3)."""
    fresh = [w for w in vocabulary if w not in keywords]
    return list(keywords) + rng.sample(fresh, min(m, len(fresh)))


def perturb_keywords(
    rng: random.Random, keywords: Sequence[str], vocabulary: Sequence[str], m: int
) -> list[str]:
    """`keywords` after `m` random edits (k^ of strategy 3; see the module docstring)."""
    words = list(keywords)
    for _ in range(m):
        fresh = [w for w in vocabulary if w not in words]
        edit = rng.choice(("add", "replace", "drop"))
        if edit == "drop" and len(words) > 1:
            words.pop(rng.randrange(len(words)))
        elif edit == "replace" and fresh and words:
            words[rng.randrange(len(words))] = rng.choice(fresh)
        elif fresh:
            words.append(rng.choice(fresh))
    return words


def self_instruct_requests(
    pool: Sequence[dict[str, Any]], params: SynthParams, master_seed: int, cycle: int
) -> list[Request]:
    rng = method_rng(master_seed, f"self_instruct/{cycle}")
    requests = []
    for i in range(params.items_per_cycle if pool else 0):
        examples = rng.sample(list(pool), min(params.few_shot, len(pool)))
        meta = {
            "method": "self_instruct",
            "strategy": "s1_star",
            "cycle": cycle,
            "examples": _example_meta(examples),
        }
        prompt = render("self_instruct", examples)
        requests.append(_request(f"s1_star/c{cycle}/{i:05d}", prompt, params, master_seed, meta))
    return requests


def strategy1_requests(
    s2: Sequence[dict[str, Any]],
    vocabulary: Sequence[str],
    params: SynthParams,
    master_seed: int,
) -> list[Request]:
    rng = method_rng(master_seed, "s3")
    requests = []
    for i in range(params.s3_requests if len(s2) >= 2 and vocabulary else 0):
        n = rng.randint(params.n_min, params.n_max)
        keywords = rng.sample(list(vocabulary), min(n, len(vocabulary)))
        examples = rng.sample(list(s2), 2)
        meta = {
            "method": "strategy1",
            "strategy": "s3",
            "n": n,
            "keywords": keywords,
            "examples": _example_meta(examples),
        }
        prompt = render("strategy1", examples, keywords=keywords)
        requests.append(_request(f"s3/{i:05d}", prompt, params, master_seed, meta))
    return requests


def strategy2_requests(
    s2: Sequence[dict[str, Any]], params: SynthParams, master_seed: int
) -> list[Request]:
    rng = method_rng(master_seed, "s4")
    requests = []
    for i in range(params.s4_requests if s2 else 0):
        example = rng.choice(list(s2))
        keywords = list(example["keywords"])
        meta = {
            "method": "strategy2",
            "strategy": "s4",
            "keywords": keywords,
            "examples": _example_meta([example]),
        }
        prompt = render("strategy2", [example], keywords=keywords)
        requests.append(_request(f"s4/{i:05d}", prompt, params, master_seed, meta))
    return requests


def strategy3_requests(
    s2: Sequence[dict[str, Any]],
    vocabulary: Sequence[str],
    params: SynthParams,
    master_seed: int,
) -> list[Request]:
    rng = method_rng(master_seed, "s5")
    requests = []
    for i in range(params.s5_requests if s2 else 0):
        example = rng.choice(list(s2))
        m_star = rng.randint(params.m_min, params.m_max)
        m_hat = rng.randint(params.m_min, params.m_max)
        k_star = extend_keywords(rng, example["keywords"], vocabulary, m_star)
        k_hat = perturb_keywords(rng, example["keywords"], vocabulary, m_hat)
        meta = {
            "method": "strategy3",
            "strategy": "s5",
            "m_star": m_star,
            "m_hat": m_hat,
            "k_star": k_star,
            "keywords": k_hat,
            "examples": _example_meta([example]),
        }
        prompt = render("strategy3", [example], keywords=k_hat, example_keywords=[k_star])
        requests.append(_request(f"s5/{i:05d}", prompt, params, master_seed, meta))
    return requests


def title_requests(
    titles: Sequence[dict[str, Any]],
    s1: Sequence[dict[str, Any]],
    params: SynthParams,
    master_seed: int,
) -> list[Request]:
    rng = method_rng(master_seed, "s2")
    requests = []
    for record in titles if len(s1) >= 2 else ():
        examples = rng.sample(list(s1), 2)
        keywords = list(record["keywords"])
        meta = {
            "method": "title",
            "strategy": "s2",
            "title": record["title"],
            "keywords": keywords,
            "examples": _example_meta(examples),
        }
        prompt = render("title", examples, title=record["title"], keywords=keywords)
        request_id = f"s2/{record['id']}"
        requests.append(_request(request_id, prompt, params, master_seed, meta))
    return requests
