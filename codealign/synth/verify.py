"""Running each item's own asserts against its code in the sandbox ("must pass its own tests").

Each item becomes an MBPP-style problem (`text`, `code`, `test_list` = its asserts), so
the sandbox's parent process holds the expected values of `assert f(x) == literal`
tests and the item's code cannot forge its own verdict. One `Sandbox` is kept warm for
the whole run. An item passes when every assert passes; otherwise the rejection detail
is the sandbox status and its first line of detail (`failed: ...`, `timeout`, `policy`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from codealign.errors import CodealignError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    code: str
    tests: tuple[str, ...]


class SandboxVerifier:
    """Callable on a list of items; returns None per passing item, else why it failed."""

    def __init__(self, workers: int = 2, timeout: float = 3.0, progress: bool = True) -> None:
        from codealign.execution import Limits, Sandbox

        self.progress = progress
        self._sandbox = Sandbox(workers=workers, limits=Limits(timeout=timeout))

    def __enter__(self) -> SandboxVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sandbox.close()

    def __call__(self, items: Sequence[Item]) -> list[str | None]:
        from codealign.execution import score
        from codealign.problems import problem_from_record

        failures: list[str | None] = [None] * len(items)
        problems = {}
        runnable: list[int] = []
        for index, item in enumerate(items):
            if not item.tests:
                continue  # nothing to run; `require_tests` decides whether that is allowed
            record = {
                "task_id": item.id,
                "text": item.question,
                "code": item.code,
                "test_list": list(item.tests),
            }
            try:
                problems[item.id] = problem_from_record(record, item.id)
            except CodealignError as exc:
                failures[index] = f"error: {exc}"
                continue
            runnable.append(index)
        if not runnable:
            return failures
        samples = [{"task_id": items[i].id, "completion": items[i].code} for i in runnable]
        verdicts = score(
            problems, samples, fast=True, progress=self.progress, sandbox=self._sandbox
        )
        for index, verdict in zip(runnable, verdicts, strict=True):
            if not verdict["passed"]:
                detail = (verdict.get("detail") or "").strip().splitlines()
                failures[index] = verdict["status"] + (f": {detail[0][:200]}" if detail else "")
        return failures
