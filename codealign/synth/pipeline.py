"""The synth run: seed sets in, S1*, S2, S3, S4, S5 and the rejected items out.

Order of work (METHOD.md A):

1. S2 completion: S2 records without question/code (real data) get both from the model.
2. Method 1: `cycles` self-instruct cycles; each cycle's accepted items join the pool
   the next cycle draws its examples from. S1* = S1 + every cycle's accepted items.
3. Strategies 1-3 from S2 → S3, S4, S5.

Every answer is parsed (`parse.parse_response`), then its asserts are run against its
code (`verify.SandboxVerifier`) when a verifier is given. An item is accepted only if
both succeed; otherwise it goes to `rejected` with the strategy, the reason, a detail
and the raw answer. Reasons: the parser's (`empty`, `non_utf8`, `refusal`,
`no_question`, `no_code`, `syntax_error`, `no_tests`), `tests_failed`, and the
backend's (`budget_exhausted`, `api_error`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import read_json, read_jsonl, require_fields
from codealign.params.synth import SynthParams
from codealign.synth import strategies
from codealign.synth.backends import Backend, Request, Response
from codealign.synth.parse import Parsed, Rejection, parse_response
from codealign.synth.verify import Item

log = logging.getLogger(__name__)

SETS = ("s1_star", "s2", "s3", "s4", "s5")
Verifier = Callable[[Sequence[Item]], list[str | None]]


@dataclass
class SeedSets:
    s1: list[dict[str, Any]]
    s2: list[dict[str, Any]]
    vocabulary: list[str]
    known_prompts: list[str] = field(default_factory=list)  # for the tiny world's exclusions


@dataclass
class SynthResult:
    sets: dict[str, list[dict[str, Any]]]
    rejected: list[dict[str, Any]]
    metrics: dict[str, Any]


def load_seed_sets(seed_dir: str | Path) -> SeedSets:
    """S1, S2 and the vocabulary from `seed_dir`, each record checked, errors naming file:line."""
    seed_dir = Path(seed_dir)
    s1 = read_jsonl(seed_dir / "s1.jsonl")
    for line, record in enumerate(s1, start=1):
        require_fields(
            record,
            {"id": (str, int), "question": str, "code": str, "keywords": list},
            f"{seed_dir / 's1.jsonl'}:{line}",
        )
    s2 = read_jsonl(seed_dir / "s2.jsonl")
    for line, record in enumerate(s2, start=1):
        require_fields(
            record,
            {"id": (str, int), "title": str, "keywords": list},
            f"{seed_dir / 's2.jsonl'}:{line}",
        )
    vocabulary = read_json(seed_dir / "keywords.json")
    if not isinstance(vocabulary, list) or not all(isinstance(w, str) for w in vocabulary):
        raise CodealignError(f"{seed_dir / 'keywords.json'}: expected a JSON list of keywords")
    known: list[str] = []
    for name in ("train.jsonl", "pool.jsonl", "tinyeval.jsonl"):
        path = seed_dir / name
        if path.is_file():
            known.extend(r["prompt"] for r in read_jsonl(path) if isinstance(r.get("prompt"), str))
    return SeedSets(s1=s1, s2=s2, vocabulary=list(vocabulary), known_prompts=known)


def _printable(text: str | None) -> str | None:
    # rejected.jsonl must stay valid UTF-8 even when the answer was not.
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Synthesizer:
    """Sends one method's requests, parses and verifies the answers, keeps the counts."""

    def __init__(
        self,
        backend: Backend,
        params: SynthParams,
        verifier: Verifier | None = None,
        progress: bool = True,
    ) -> None:
        self.backend = backend
        self.params = params
        self.verifier = verifier
        self.progress = progress
        self.rejected: list[dict[str, Any]] = []
        self.counts: dict[str, Counter] = {}

    def run(self, requests: Sequence[Request], desc: str) -> list[dict[str, Any]]:
        """Accepted SFT records for `requests` (rejections are kept in `self.rejected`)."""
        responses = self.backend.complete(requests, progress=self.progress, desc=desc)
        outcomes: list[Parsed | Rejection] = [self._parse(r) for r in responses]
        parsed = [i for i, o in enumerate(outcomes) if isinstance(o, Parsed)]
        if self.verifier is not None and parsed:
            items = [
                Item(requests[i].id, outcomes[i].question, outcomes[i].code, outcomes[i].tests)
                for i in parsed
            ]
            for i, failure in zip(parsed, self.verifier(items), strict=True):
                if failure is not None:
                    outcomes[i] = Rejection("tests_failed", failure)
        accepted = []
        for request, response, outcome in zip(requests, responses, outcomes, strict=True):
            strategy = request.meta["strategy"]
            counts = self.counts.setdefault(strategy, Counter())
            counts["requests"] += 1
            if isinstance(outcome, Rejection):
                counts[f"reason:{outcome.reason}"] += 1
                self.rejected.append(
                    {
                        "id": request.id,
                        "strategy": strategy,
                        "reason": outcome.reason,
                        "detail": _printable(outcome.detail),
                        "requested_keywords": request.meta.get("keywords"),
                        "raw": _printable(response.text),
                    }
                )
                continue
            counts["accepted"] += 1
            accepted.append(
                {
                    "id": request.id,
                    "question": outcome.question,
                    "code": outcome.code,
                    "keywords": list(outcome.keywords),
                    "source": strategy,
                    "tests": list(outcome.tests),
                }
            )
        if requests:
            log.info(
                "%s: %d requests, %d accepted, %d rejected",
                desc,
                len(requests),
                len(accepted),
                len(requests) - len(accepted),
            )
        return accepted

    def _parse(self, response: Response) -> Parsed | Rejection:
        if response.error is not None:
            return Rejection(response.error, response.detail)
        return parse_response(response.text, require_tests=self.params.require_tests)

    def metrics(self, sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        total: Counter = Counter()
        for name in SETS:
            counts = self.counts.get(name, Counter())
            reasons = {
                k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("reason:")
            }
            requests = counts["requests"]
            out[name] = {
                "requests": requests,
                "accepted": counts["accepted"],
                "rejected": requests - counts["accepted"],
                "acceptance_rate": round(counts["accepted"] / requests, 4) if requests else None,
                "rejected_by_reason": reasons,
                "size": len(sets.get(name, [])),
            }
            total.update(counts)
        reasons = {
            k.split(":", 1)[1]: v for k, v in sorted(total.items()) if k.startswith("reason:")
        }
        out["total"] = {
            "requests": total["requests"],
            "accepted": total["accepted"],
            "rejected": total["requests"] - total["accepted"],
            "rejected_by_reason": reasons,
        }
        out["backend"] = {"name": self.backend.name, **self.backend.stats}
        return out


def run_synth(
    seed: SeedSets,
    params: SynthParams,
    backend: Backend,
    master_seed: int,
    *,
    verifier: Verifier | None = None,
    progress: bool = True,
) -> SynthResult:
    """Run every method; see the module docstring."""
    synth = Synthesizer(backend, params, verifier, progress)

    complete = [r for r in seed.s2 if r.get("question") and r.get("code")]
    titles = [r for r in seed.s2 if not (r.get("question") and r.get("code"))]
    s2 = list(seed.s2)
    if titles:
        log.info("S2: %d titles without question/code; asking the model for them", len(titles))
        requests = strategies.title_requests(titles, seed.s1, params, master_seed)
        answers = {r["id"]: r for r in synth.run(requests, "S2 from titles")}
        s2 = complete + [
            {**answers[f"s2/{r['id']}"], "id": r["id"], "title": r["title"], "source": "seed_s2"}
            for r in titles
            if f"s2/{r['id']}" in answers
        ]

    pool = list(seed.s1)
    for cycle in range(1, params.cycles + 1):
        requests = strategies.self_instruct_requests(pool, params, master_seed, cycle)
        pool += synth.run(requests, f"self-instruct cycle {cycle}")

    s3 = synth.run(strategies.strategy1_requests(s2, seed.vocabulary, params, master_seed), "S3")
    s4 = synth.run(strategies.strategy2_requests(s2, params, master_seed), "S4")
    s5 = synth.run(strategies.strategy3_requests(s2, seed.vocabulary, params, master_seed), "S5")
    sets = {"s1_star": pool, "s2": s2, "s3": s3, "s4": s4, "s5": s5}
    return SynthResult(sets=sets, rejected=synth.rejected, metrics=synth.metrics(sets))
