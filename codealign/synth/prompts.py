"""The synth prompts: templates in `codealign/prompts/synth_*.txt`, filled with `$names`.

`string.Template` is used rather than `str.format` because examples contain Python code,
whose braces would otherwise need escaping. Every method ends with the same response
format (`synth_format.txt`), so one parser reads the answers of every method and backend.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import Any

METHODS = ("self_instruct", "strategy1", "strategy2", "strategy3", "title")


@functools.cache
def template(name: str) -> Template:
    """The prompt template `codealign/prompts/synth_<name>.txt`."""
    text = resources.files("codealign").joinpath("prompts", f"synth_{name}.txt").read_text("utf-8")
    return Template(text)


def example_code(record: dict[str, Any]) -> str:
    """An example's code as the model is asked to write it: solution, then its asserts."""
    code = record["code"].rstrip("\n")
    tests = [t for t in record.get("tests") or [] if t not in code]
    return code + ("\n\n" + "\n".join(tests) if tests else "")


def render_examples(records: Sequence[dict[str, Any]], keywords: Sequence[Sequence[str]]) -> str:
    """The few-shot block; `keywords[i]` is what example i is shown with (k* in strategy 3)."""
    return "\n\n".join(
        template("example")
        .substitute(
            number=i + 1,
            question=record["question"].strip(),
            code=example_code(record),
            keywords=", ".join(words),
        )
        .rstrip("\n")
        for i, (record, words) in enumerate(zip(records, keywords, strict=True))
    )


def render(method: str, examples: Sequence[dict[str, Any]], **fields: Any) -> str:
    """The full prompt of `method` for `examples` (shown with their own keywords by default).

    `example_keywords` overrides the keywords the examples are shown with; `keywords`
    (a list) is the request's keyword list; other fields fill the template as they are.
    """
    shown = fields.pop("example_keywords", None) or [r["keywords"] for r in examples]
    values = {k: ", ".join(v) if k == "keywords" else v for k, v in fields.items()}
    return template(method).substitute(
        examples=render_examples(examples, shown),
        format=template("format").template.rstrip("\n"),
        **values,
    )
