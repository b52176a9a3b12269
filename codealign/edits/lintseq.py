"""LintSeq: re-express a program as a sequence of linter-clean insertion edits, and back.

Piterbarg, Pinto & Fergus (2024), "Training Language Models on Synthetic Edit Sequences
Improves Code Synthesis". A model trained to write a program as a sequence of diffs
instead of in one go; this module makes the training targets and decodes model output.

**Backward sampling.** Starting from the whole program, repeat until it is empty:
pick a line of the current program uniformly at random and delete it, together with the
lines indented under it; lint what is left, and while the linter reports an error the
original program did not have, delete the lines it points at (and the lines indented
under those). Each program reached this way is one state; every state is linter-clean
relative to the original. Reversed, the states run from the empty program to the whole
one, and the diffs between consecutive states are the edit sequence: insertions only.

Choices the paper leaves open, made here:

- A "line" is a *unit*: one logical line as Python's tokenizer sees it (a statement that
  spans several physical lines through brackets, a backslash or a triple-quoted string is
  deleted and inserted whole), or one comment-only line. Blank lines travel with the unit
  that follows them (blank lines at the end of the file with the unit before them), so no
  edit inserts only blank lines. Decorators travel with the definition they decorate.
- The linter is pyflakes, in process, after a full `compile()` of the AST (which also
  catches `'return' outside function`, a `nonlocal` without a binding, and the like).
  Errors are syntax/compile errors and the pyflakes messages in `ERROR_MESSAGES`:
  undefined names, `return`/`yield`/`break`/`continue` out of place and the like.
  Warnings (unused imports and variables, redefinitions, format-string checks) are not
  errors, as the paper disabled pylint's warning classes. An error is "new" when its
  kind and name are not among the original program's (line numbers move as lines go).
- A syntax error points at the line Python names, or, for "expected an indented block
  after ... on line N", at line N: the header whose body is gone is what must go.
- The `samples` sequences of a program are drawn with independent generators seeded by
  sha256(seed, id, draw); identical sequences (small programs have few orderings) are
  kept once.

**Edit format.** Each edit is a unified diff (`difflib`, GNU format) without file
headers and with `context` lines of context (0, the paper's compact choice, by default):

    @@ -0,0 +1,2 @@
    +def add(a, b):
    +    return a + b

A line without a final newline is followed by `\\ No newline at end of file`, so applying
the edits in order rebuilds the program byte for byte. A training target is the edits
joined by a separator line (`<|diff|>` by default); `decode_target` parses model output
of that shape back into a program, or reports `edit_failed` with the reason.

Programs that are empty, too long, or do not compile are skipped with the reason.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import itertools
import logging
import random
import re
import tokenize
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from codealign.params.edits import DEFAULT_SEPARATOR, LintseqParams

log = logging.getLogger(__name__)

NO_NEWLINE_MARKER = "\\ No newline at end of file"

# pyflakes messages that mean the program cannot compile or names something undefined;
# the rest are warnings and may appear in an intermediate program.
ERROR_MESSAGES = frozenset(
    {
        "UndefinedName",
        "UndefinedLocal",
        "UndefinedExport",
        "ReturnOutsideFunction",
        "YieldOutsideFunction",
        "BreakOutsideLoop",
        "ContinueOutsideLoop",
        "DefaultExceptNotLast",
        "DuplicateArgument",
        "TwoStarredExpressions",
        "TooManyExpressionsInStarredAssignment",
        "ImportStarNotPermitted",
        "LateFutureImport",
        "FutureFeatureNotDefined",
        "ForwardAnnotationSyntaxError",
    }
)

SKIP_REASONS = ("empty", "too_long", "syntax_error", "unsupported_newlines", "lint_failed")


# --------------------------------------------------------------------------- lines and units


def split_lines(text: str) -> list[str]:
    """Physical lines with their '\\n' kept; only '\\n' ends a line, so '\\r\\n' survives."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _indent(line: str) -> int:
    expanded = line.expandtabs(8)
    return len(expanded) - len(expanded.lstrip())


@dataclass(frozen=True)
class Unit:
    """Physical lines [start, stop) deleted and inserted together."""

    start: int
    stop: int
    indent: int  # of the first non-blank line
    comment: bool  # a comment-only line (never has lines indented under it)


def split_units(code: str) -> list[Unit]:
    """The units of a program that tokenizes (see the module docstring).

    Raises SyntaxError (or tokenize.TokenError) for a program that does not tokenize.
    """
    lines = split_lines(code)
    statement_of: dict[int, int] = {}  # physical line -> first line of its statement
    start = None
    layout = (tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type in layout:
            continue
        if start is None:
            if tok.type in (tokenize.NL, tokenize.COMMENT):
                continue
            start = tok.start[0] - 1
        if tok.type == tokenize.NEWLINE:
            for row in range(start, tok.start[0]):
                statement_of[row] = start
            start = None
    units: list[Unit] = []
    pending = None  # first line of blank lines and decorators waiting for their unit
    first_code = None  # first decorator among them: the unit's indentation
    row = 0
    while row < len(lines):
        line = lines[row]
        if row in statement_of:
            first = statement_of[row]
            stop = row + 1
            while stop < len(lines) and statement_of.get(stop) == first:
                stop += 1
            comment = False
            if line.lstrip().startswith("@"):  # a decorator goes with what it decorates
                pending = row if pending is None else pending
                first_code = row if first_code is None else first_code
                row = stop
                continue
        elif line.strip().startswith("#"):
            stop, comment = row + 1, True
        elif not line.strip():
            pending = row if pending is None else pending
            row += 1
            continue
        else:  # a line the tokenizer did not place in a statement: keep it on its own
            stop, comment = row + 1, False
        begin = row if pending is None else pending
        indent = _indent(lines[row if first_code is None else first_code])
        units.append(Unit(begin, stop, indent, comment))
        pending = first_code = None
        row = stop
    if pending is not None:
        if units:
            last = units[-1]
            units[-1] = Unit(last.start, len(lines), last.indent, last.comment)
        else:
            units.append(Unit(pending, len(lines), 0, True))
    return units


# --------------------------------------------------------------------------- the linter


@dataclass(frozen=True)
class LintError:
    """One error: `key` identifies it across line moves, `line` (1-based) locates it."""

    key: tuple[str, ...]
    line: int
    message: str


_ON_LINE = re.compile(r"on line (\d+)")


class PyflakesLinter:
    """Compile + pyflakes errors of a program text, cached by text.

    One instance serves one program (its `samples` draws revisit the same states), so
    the cache stays as small as the program's state space that was actually visited.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[LintError, ...]] = {}

    def __call__(self, text: str) -> tuple[LintError, ...]:
        errors = self._cache.get(text)
        if errors is None:
            errors = self._cache[text] = lint(text)
        return errors


LINTERS = {"pyflakes": PyflakesLinter}


def lint(text: str) -> tuple[LintError, ...]:
    """Errors of `text`: a syntax/compile error alone, or pyflakes' error messages."""
    from pyflakes.checker import Checker

    n_lines = max(1, len(split_lines(text)))
    with warnings.catch_warnings():
        # Invalid escapes and `is` with a literal warn at compile time; they are not errors.
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(text)
            compile(tree, "<lintseq>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            message = exc.msg or "syntax error"
            pointed = _ON_LINE.search(message)
            line = int(pointed.group(1)) if pointed else (exc.lineno or n_lines)
            return (LintError(("SyntaxError", message), min(max(line, 1), n_lines), message),)
        except ValueError as exc:  # e.g. a null byte in the source
            return (LintError(("SyntaxError", str(exc)), n_lines, str(exc)),)
    checker = Checker(tree, filename="<lintseq>")
    errors = []
    for msg in sorted(checker.messages, key=lambda m: (m.lineno, m.col)):
        kind = type(msg).__name__
        if kind in ERROR_MESSAGES:
            name = tuple(str(a) for a in msg.message_args[:1])
            line = min(max(msg.lineno, 1), n_lines)
            errors.append(LintError((kind, *name), line, msg.message % msg.message_args))
    return tuple(errors)


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Skip:
    """Why a program yields no edit sequence."""

    reason: str  # one of SKIP_REASONS
    detail: str = ""


@dataclass(frozen=True)
class Program:
    """A program ready for sampling: its lines, units and the errors it already has."""

    code: str
    lines: tuple[str, ...]
    units: tuple[Unit, ...]
    known_errors: frozenset[tuple[str, ...]]


def prepare(code: str, max_lines: int, linter: PyflakesLinter) -> Program | Skip:
    """A Program, or a Skip naming why `code` cannot be sampled."""
    if not code.strip():
        return Skip("empty")
    if re.search(r"\r(?!\n)", code):
        # Python ends a line at a lone '\r' and this module does not: line numbers would drift.
        return Skip("unsupported_newlines", "a lone carriage return ends a line")
    lines = split_lines(code)
    if len(lines) > max_lines:
        return Skip("too_long", f"{len(lines)} lines > max_lines {max_lines}")
    try:
        errors = linter(code)
    except (RecursionError, MemoryError) as exc:
        return Skip("lint_failed", type(exc).__name__)
    syntax = [e for e in errors if e.key[0] == "SyntaxError"]
    if syntax:
        return Skip("syntax_error", f"line {syntax[0].line}: {syntax[0].message}")
    try:
        units = split_units(code)
    except (SyntaxError, tokenize.TokenError) as exc:
        return Skip("syntax_error", f"tokenize: {exc}")
    return Program(code, tuple(lines), tuple(units), frozenset(e.key for e in errors))


def _render(program: Program, alive: Sequence[int]) -> tuple[str, list[int]]:
    """Text of the units `alive`, and the unit of each of its lines."""
    parts, owner = [], []
    for u in alive:
        unit = program.units[u]
        parts.extend(program.lines[unit.start : unit.stop])
        owner.extend([u] * (unit.stop - unit.start))
    return "".join(parts), owner


def _with_children(program: Program, alive: Sequence[int], doomed: set[int]) -> set[int]:
    """`doomed` plus, for each of its code units, the alive units indented under it."""
    out = set(doomed)
    position = {u: i for i, u in enumerate(alive)}
    for u in doomed:
        unit = program.units[u]
        if unit.comment:
            continue
        pending: list[int] = []
        for v in alive[position[u] + 1 :]:
            other = program.units[v]
            if other.comment:
                pending.append(v)  # a child only if a deeper code line follows it
            elif other.indent > unit.indent:
                out.update(pending)
                pending.clear()
                out.add(v)
            else:
                break
    return out


def sample_states(program: Program, rng: random.Random, linter: PyflakesLinter) -> list[str]:
    """One backward LintSeq pass: program texts from the whole program down to ''."""
    alive = list(range(len(program.units)))
    states = [program.code]
    while alive:
        doomed = _with_children(program, alive, {rng.choice(alive)})
        alive = [u for u in alive if u not in doomed]
        while True:
            text, owner = _render(program, alive)
            new = [e for e in linter(text) if e.key not in program.known_errors]
            if not new:
                break
            doomed = _with_children(program, alive, {owner[e.line - 1] for e in new})
            alive = [u for u in alive if u not in doomed]
        states.append(text)
    return states


def seeded_rng(seed: int, record_id: Any, draw: int) -> random.Random:
    """A generator fixed by (seed, id, draw), the same in every process."""
    digest = hashlib.sha256(f"{seed}\x00{record_id}\x00{draw}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def edit_sequences(
    program: Program,
    samples: int,
    seed: int,
    record_id: Any,
    context: int = 0,
    linter: PyflakesLinter | None = None,
) -> list[list[str]]:
    """Up to `samples` distinct edit sequences (lists of diffs, empty -> program)."""
    linter = linter or PyflakesLinter()
    seen: set[tuple[str, ...]] = set()
    out = []
    for draw in range(samples):
        states = sample_states(program, seeded_rng(seed, record_id, draw), linter)
        states.reverse()
        diffs = tuple(make_diff(a, b, context) for a, b in itertools.pairwise(states))
        if diffs not in seen:
            seen.add(diffs)
            out.append(list(diffs))
    return out


# --------------------------------------------------------------------------- diffs


def _range(start: int, length: int) -> str:
    # As difflib.unified_diff writes a range: "start,length", "start" alone for one line.
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def _diff_line(prefix: str, line: str) -> str:
    if line.endswith("\n"):
        return prefix + line
    return f"{prefix}{line}\n{NO_NEWLINE_MARKER}\n"


def make_diff(before: str, after: str, context: int = 0) -> str:
    """The unified diff (no file headers) that turns `before` into `after`; '' if equal."""
    a, b = split_lines(before), split_lines(after)
    # autojunk off: with it, frequent lines (blank ones) in long files make diffs non-minimal.
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out = []
    if a == b:
        return ""
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        old = _range(first[1], last[2] - first[1])
        new = _range(first[3], last[4] - first[3])
        out.append(f"@@ -{old} +{new} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(_diff_line(" ", line) for line in a[i1:i2])
                continue
            if tag in ("replace", "delete"):
                out.extend(_diff_line("-", line) for line in a[i1:i2])
            if tag in ("replace", "insert"):
                out.extend(_diff_line("+", line) for line in b[j1:j2])
    return "".join(out)


class EditError(ValueError):
    """A diff that does not parse or does not apply; the message says where and why."""


_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class _Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    body: list[tuple[str, str]]  # (' ' | '-' | '+', line with its newline if it had one)


def parse_diff(diff: str) -> list[_Hunk]:
    """The hunks of a unified diff; `---`/`+++` headers before the first hunk are allowed."""
    hunks: list[_Hunk] = []
    old_left = new_left = 0
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, raw in enumerate(lines, start=1):
        where = f"line {lineno}"
        if raw.startswith("\\"):
            body = hunks[-1].body if hunks else []
            if not body or not body[-1][1].endswith("\n"):
                raise EditError(f"{where}: '\\ No newline' marker without a line before it")
            kind, text = body[-1]
            body[-1] = (kind, text[:-1])
            continue
        if old_left or new_left:
            kind, text = (raw[0], raw[1:]) if raw else (" ", "")  # an empty line: context
            if kind not in " -+":
                raise EditError(f"{where}: hunk line must start with ' ', '-' or '+', got {raw!r}")
            if kind in " -":
                old_left -= 1
            if kind in " +":
                new_left -= 1
            if old_left < 0 or new_left < 0:
                n = len(hunks)
                raise EditError(f"{where}: hunk {n} has more lines than its header says")
            hunks[-1].body.append((kind, text + "\n"))
            continue
        match = _HUNK_HEADER.match(raw)
        if match:
            a, b, c, d = match.groups()
            hunk = _Hunk(int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d), [])
            hunks.append(hunk)
            old_left, new_left = hunk.old_len, hunk.new_len
            if not old_left and not new_left:
                raise EditError(f"{where}: hunk {len(hunks)} header changes no line: {raw!r}")
            continue
        if not raw.strip():
            continue
        if not hunks and (raw.startswith("--- ") or raw.startswith("+++ ")):
            continue
        if hunks and raw[0] in " -+":
            raise EditError(f"{where}: hunk {len(hunks)} has more lines than its header says")
        raise EditError(f"{where}: expected a hunk header '@@ -a,b +c,d @@', got {raw!r}")
    if old_left or new_left:
        raise EditError(f"hunk {len(hunks)} ends early: {old_left + new_left} lines missing")
    if not hunks:
        raise EditError("no hunk ('@@ -a,b +c,d @@') in the edit")
    return hunks


def apply_diff(program: str, diff: str) -> str:
    """`program` with `diff` applied; EditError when the diff is malformed or does not fit."""
    old = split_lines(program)
    out: list[str] = []
    pos = 0  # next line of `old` not yet copied
    for number, hunk in enumerate(parse_diff(diff), start=1):
        start = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        if start < pos or start + hunk.old_len > len(old):
            raise EditError(
                f"hunk {number} (-{hunk.old_start},{hunk.old_len}) does not fit a "
                f"{len(old)}-line program after the hunks before it"
            )
        out.extend(old[pos:start])
        expected_new = len(out) + 1 if hunk.new_len else len(out)
        if hunk.new_start != expected_new:
            raise EditError(
                f"hunk {number}: new-file start +{hunk.new_start} should be +{expected_new}"
            )
        at = start
        for kind, text in hunk.body:
            if kind in " -":
                if old[at] != text:
                    raise EditError(
                        f"hunk {number}: context mismatch at line {at + 1}: "
                        f"expected {text!r}, found {old[at]!r}"
                    )
                at += 1
            if kind in " +":
                out.append(text)
        pos = start + hunk.old_len
    out.extend(old[pos:])
    return "".join(out)


def apply_edits(diffs: Iterable[str], program: str = "") -> str:
    """Apply the diffs in order to `program` (empty by default); EditError names the edit."""
    for number, diff in enumerate(diffs, start=1):
        try:
            program = apply_diff(program, diff)
        except EditError as exc:
            raise EditError(f"edit {number}: {exc}") from None
    return program


def render_target(diffs: Sequence[str], separator: str = DEFAULT_SEPARATOR) -> str:
    """One training target: the diffs, each ending in a newline, joined by separator lines."""
    return f"{separator}\n".join(d if d.endswith("\n") else d + "\n" for d in diffs)


def parse_target(text: str, separator: str = DEFAULT_SEPARATOR) -> list[str]:
    """The diffs of a target (or of model output shaped like one); blank pieces dropped."""
    pieces: list[list[str]] = [[]]
    for line in split_lines(text):
        if line.rstrip() == separator:  # a context line ' <sep>' is code, not a separator
            pieces.append([])
        else:
            pieces[-1].append(line)
    return ["".join(piece) for piece in pieces if "".join(piece).strip()]


@dataclass(frozen=True)
class Decoded:
    """A decoded model output: status 'ok' with the program, or 'edit_failed' with why."""

    status: str
    program: str | None
    reason: str = ""
    edits: int = 0  # edits found in the output


def decode_target(text: str, separator: str = DEFAULT_SEPARATOR) -> Decoded:
    """Parse model output into diffs and apply them to the empty program; never raises."""
    diffs = parse_target(text, separator)
    if not diffs:
        return Decoded("edit_failed", None, "no edit in the output", 0)
    try:
        return Decoded("ok", apply_edits(diffs), "", len(diffs))
    except EditError as exc:
        return Decoded("edit_failed", None, str(exc), len(diffs))


# --------------------------------------------------------------------------- the dataset


@dataclass
class LintseqResult:
    """Training records, skipped programs (id, reason, detail) and metrics of one split."""

    records: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    metrics: dict[str, Any]


def build_split(
    records: Sequence[dict[str, Any]],
    params: LintseqParams,
    seed: int,
    desc: str = "lintseq",
    progress: bool = True,
) -> LintseqResult:
    """Edit-sequence records (`sample` numbers a program's distinct sequences from 0)."""
    from tqdm.auto import tqdm

    out: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    duplicates = 0
    for record in tqdm(records, desc=desc, unit="program", disable=not progress):
        linter = LINTERS[params.linter]()
        ready = prepare(record["code"], params.max_lines, linter)
        if isinstance(ready, Skip):
            skipped.append({"id": record["id"], "reason": ready.reason, "detail": ready.detail})
            continue
        sequences = edit_sequences(
            ready, params.samples, seed, record["id"], params.context, linter
        )
        duplicates += params.samples - len(sequences)
        for sample, diffs in enumerate(sequences):
            # A bug, not bad input, if this fails: every sequence must rebuild its program.
            if apply_edits(diffs) != record["code"]:
                raise AssertionError(f"{record['id']}: edit sequence {sample} does not rebuild")
            out.append(
                {
                    **record,
                    "edits": diffs,
                    "target": render_target(diffs, params.separator),
                    "sample": sample,
                }
            )
    edits = [len(r["edits"]) for r in out]
    reasons = Counter(s["reason"] for s in skipped)
    log.info(
        "%s: %d programs -> %d edit sequences (%d duplicates dropped); skipped %s",
        desc,
        len(records),
        len(out),
        duplicates,
        dict(reasons) or "none",
    )
    metrics = {
        "programs": len(records),
        "programs_used": len(records) - len(skipped),
        "sequences": len(out),
        "duplicate_sequences": duplicates,
        "edits": sum(edits),
        "mean_edits_per_sequence": round(sum(edits) / len(edits), 3) if edits else None,
        "skipped": {reason: reasons.get(reason, 0) for reason in SKIP_REASONS},
    }
    return LintseqResult(out, skipped, metrics)


def merge_metrics(splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals over the splits, with each split's own metrics under `splits`."""
    total = {
        key: sum(m[key] for m in splits.values())
        for key in ("programs", "programs_used", "sequences", "duplicate_sequences", "edits")
    }
    mean = round(total["edits"] / total["sequences"], 3) if total["sequences"] else None
    return {
        **total,
        "mean_edits_per_sequence": mean,
        "skipped": {r: sum(m["skipped"][r] for m in splits.values()) for r in SKIP_REASONS},
        "splits": splits,
    }
