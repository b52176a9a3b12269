"""Turning a model's answer into a question, code, tests and keywords, or a reason to reject.

Every prompt asks for the same format (see `codealign/prompts/synth_format.txt`):
`### Question`, `### Code` with one fenced python block, `### Keywords`. The model is
asked to end its code with assert statements; those top-level asserts become the item's
`tests` and are cut from its `code`, so that the stored code is the solution alone and
the sandbox can run the tests against it. Asking for asserts inside the code block,
rather than a separate tests section, keeps the format one block that every model
already writes, and the asserts are exactly "its own tests" (METHOD.md A).

Rejection reasons are a small fixed set so that metrics can count them:
`empty`, `non_utf8`, `refusal`, `no_question`, `no_code`, `syntax_error`, `no_tests`.
A missing `### Keywords` section is tolerated (the item gets no keywords): keywords
only steer generation, and nothing downstream needs them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

REASONS = ("empty", "non_utf8", "refusal", "no_question", "no_code", "syntax_error", "no_tests")

_SECTION = re.compile(r"^[ \t]*#{2,4}[ \t]*(question|code|keywords)[ \t]*:?[ \t]*$", re.I | re.M)
# An unterminated fence (an answer cut at max_tokens) runs to the end of the text.
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.I | re.M)
# Refusals are recognised only at the start of an answer that has no code block: a
# solution whose docstring says "cannot" is not a refusal.
_REFUSAL = re.compile(
    r"^\s*(refuse\b|i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i can not|"
    r"i'?m unable|i am unable|i won'?t|as an ai\b)",
    re.I,
)


@dataclass(frozen=True)
class Parsed:
    question: str
    code: str
    tests: tuple[str, ...]
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str = ""


def decode(raw: str | bytes | None) -> str | Rejection:
    """The answer as text, or a rejection for empty or non-UTF-8 input."""
    if raw is None:
        return Rejection("empty", "no answer")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejection("non_utf8", f"byte {exc.start}: {exc.reason}")
    try:
        # Lone surrogates arrive through JSON escapes or surrogateescape decoding.
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        return Rejection("non_utf8", f"character {exc.start}: {exc.reason}")
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return Rejection("empty", "blank answer")
    return text


def _sections(text: str) -> dict[str, str]:
    marks = list(_SECTION.finditer(text))
    out: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.setdefault(mark.group(1).lower(), text[mark.end() : end].strip("\n"))
    return out


def split_tests(code: str) -> tuple[str, tuple[str, ...]]:
    """Cut the top-level asserts out of `code`; return (solution, asserts). Code must parse."""
    tree = ast.parse(code)
    lines = code.split("\n")
    drop: set[int] = set()
    tests: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assert):
            tests.append(ast.get_source_segment(code, node) or ast.unparse(node))
            drop.update(range(node.lineno - 1, (node.end_lineno or node.lineno)))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    solution = "\n".join(kept).strip("\n")
    return (solution + "\n" if solution else ""), tuple(tests)


def parse_keywords(text: str) -> tuple[str, ...]:
    words: list[str] = []
    for part in re.split(r"[,\n;]", text):
        word = part.strip().strip("-*`'\"").strip()
        if word and word not in words:
            words.append(word)
    return tuple(words)


def parse_response(raw: str | bytes | None, *, require_tests: bool = True) -> Parsed | Rejection:
    """Parse one answer in the synth response format; see the module docstring."""
    text = decode(raw)
    if isinstance(text, Rejection):
        return text
    fences = _FENCE.findall(text)
    if _REFUSAL.match(text) and not fences:
        return Rejection("refusal", text.strip().splitlines()[0][:200])
    sections = _sections(text)
    question = sections.get("question", "").strip()
    if not question:
        return Rejection("no_question", "no '### Question' section with text")
    code_fences = _FENCE.findall(sections.get("code", "")) or fences
    if not code_fences or not code_fences[0].strip():
        return Rejection("no_code", "no fenced python block")
    code = code_fences[0].strip("\n")
    try:
        solution, tests = split_tests(code)
    except SyntaxError as exc:
        return Rejection("syntax_error", f"line {exc.lineno}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        # ast.parse raises ValueError on NUL bytes and RecursionError on deep nesting.
        return Rejection("syntax_error", f"{type(exc).__name__}: {exc}"[:200])
    if not solution.strip():
        return Rejection("no_code", "the code block holds only asserts")
    if require_tests and not tests:
        return Rejection("no_tests", "the code block has no top-level assert")
    return Parsed(
        question=question,
        code=solution,
        tests=tests,
        keywords=parse_keywords(sections.get("keywords", "")),
    )
