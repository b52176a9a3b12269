"""Each DVC stage's code deps, computed from the imports: `codealign deps --check/--write`.

A stage's code deps are its script (`stages/<name>.py`), `stages/_checkout.py` (which every
script imports first, so that it runs its own checkout's `codealign`), every file of the
`codealign` package the script can reach, and `requirements.lock`. "Reach" is the transitive closure
of imports as `ast` reads them: module-level and function-level, `import a.b`,
`from a import b` where `b` is a submodule, relative imports, the lazy `SUBCOMMANDS`
strings of codealign/cli.py, the parent packages every import runs (their `__init__.py`
and what it imports), plus the edges no import statement shows, declared below in
`EXTRA_IMPORTS`, and the package data a module reads, declared in `PACKAGE_DATA`.

A package directory is listed instead of its files when the closure holds every file in
it (so a directory dep never reruns a stage for a file the stage cannot reach).

docs/deps.md says how to add a stage; tests/test_deps.py checks the closure statically
and against what the smoke run imported and opened.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import click

from codealign.command import Command
from codealign.errors import CodealignError

PACKAGE = "codealign"
PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent  # the repository root (dvc.yaml, stages/, requirements.lock)
LOCK_FILE = "requirements.lock"
STAGE_DIR = "stages"
# Imported by every stage script before codealign, so that it is this checkout's.
CHECKOUT = f"{STAGE_DIR}/_checkout.py"

# Imports no `import` statement shows, module -> modules it runs.
EXTRA_IMPORTS: dict[str, tuple[str, ...]] = {
    # pool.py starts worker.py as a script (WORKER_SCRIPT), and worker.py puts its own
    # directory on sys.path and imports `policy` and `wire` by their bare names.
    "codealign.execution.pool": ("codealign.execution.worker",),
    "codealign.execution.worker": ("codealign.execution.policy", "codealign.execution.wire"),
}

# Modules a param selects, module that picks -> choice -> modules the choice runs. Each is
# imported today inside the branch the param picks, so the walk finds it too (a test
# checks); the table keeps them deps if a choice is ever loaded by name instead.
PARAM_SELECTED: dict[str, dict[str, tuple[str, ...]]] = {
    # synth.backend: TinyWorldBackend, HFBackend, OpenAIBackend (make_backend).
    "codealign.synth.backends": {
        "tinyworld": ("codealign.tinyworld.world", "codealign.tinyworld.templates"),
        "hf": ("codealign.lm.generation",),
        "openai": (),
    },
}

# Package data a module reads, as paths from the repository root (a directory stands
# for every file in it). synth/prompts.py reads prompts/synth_<name>.txt through
# importlib.resources, the name chosen by the strategy params, so the whole directory;
# refine/refine.py reads refine/prompts/<genre>.txt the same way.
PACKAGE_DATA: dict[str, tuple[str, ...]] = {
    "codealign.synth.prompts": ("codealign/prompts",),
    "codealign.refine.refine": ("codealign/refine/prompts",),
}

# Modules a stage need not list: a change there cannot change an out. Empty: every
# module a stage reaches can change what it writes (see docs/deps.md).
PLUMBING: frozenset[str] = frozenset()


def module_path(name: str) -> Path | None:
    """The file of module `name` (a package's `__init__.py`), or None if not ours."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def module_name(path: Path) -> str:
    rel = path.resolve().relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def all_modules() -> list[str]:
    return sorted(module_name(p) for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _subcommand_targets(tree: ast.Module) -> list[str]:
    """The modules of the `SUBCOMMANDS = {"name": "module:attr"}` table of cli.py."""
    found = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(t, ast.Name) and t.id == "SUBCOMMANDS"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            and isinstance(node.value, ast.Dict)
        ):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append(value.value.split(":")[0])
    return found


def imports_of(path: Path, name: str | None, declared: bool = True) -> set[str]:
    """The codealign modules the file `path` (module `name`, None for a script) imports
    by name anywhere in its body: each is the deepest module an import statement names,
    plus, unless `declared` is false, the edges of EXTRA_IMPORTS and PARAM_SELECTED."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise CodealignError(f"{path}:{exc.lineno}: cannot parse: {exc.msg}") from None
    is_package = path.name == "__init__.py"
    package = (name if is_package else name.rpartition(".")[0]) if name else ""
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                prefix = ".".join(base)
                source = f"{prefix}.{node.module}" if node.module else prefix
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                targets.add(sub if module_path(sub) else source)
    if name == f"{PACKAGE}.cli":
        targets.update(_subcommand_targets(tree))
    if declared:
        targets.update(EXTRA_IMPORTS.get(name or "", ()))
        for choices in PARAM_SELECTED.get(name or "", {}).values():
            targets.update(choices)
    return {t for t in targets if module_path(t) is not None and t != name}


@cache
def _module_imports(name: str, declared: bool = True) -> frozenset[str]:
    path = module_path(name)
    if path is None:
        raise CodealignError(f"{name}: no such module in {PACKAGE_DIR}")
    return frozenset(imports_of(path, name, declared))


def import_graph() -> dict[str, set[str]]:
    """Module -> the codealign modules it names in an import (no implied parent packages)."""
    return {name: set(_module_imports(name)) for name in all_modules()}


def closure(roots: Iterable[str], declared: bool = True) -> set[str]:
    """Every module that importing `roots` can run: imports and parent packages, transitively
    (without the declared edges when `declared` is false)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_parents(name))
        todo.extend(_module_imports(name, declared))
    return seen


def script_closure(script: Path) -> set[str]:
    """The codealign modules the script `script` can run."""
    return closure(imports_of(script, None)) - PLUMBING


def _rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def _files_under(directory: Path) -> set[str]:
    return {
        _rel(p)
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def compress(files: set[str]) -> list[str]:
    """`files`, with the topmost directories whose every file is in `files` listed instead."""
    candidates = sorted(
        {p.as_posix() for f in files for p in Path(f).parents if p.as_posix() != "."},
        key=lambda d: (d.count("/"), d),
    )
    chosen: list[str] = []
    for d in candidates:
        if not covers(chosen, d) and _files_under(ROOT / d) <= files:
            chosen.append(d)
    return sorted(chosen + [f for f in files if not covers(chosen, f)])


def stage_files(script: str) -> set[str]:
    """Repository paths of every file the stage script `script` can read as code or data."""
    path = ROOT / script
    if not path.is_file():
        raise CodealignError(f"{script}: stage script not found")
    files = {script, CHECKOUT, LOCK_FILE}
    for name in script_closure(path):
        files.add(_rel(module_path(name)))
        for data in PACKAGE_DATA.get(name, ()):
            target = ROOT / data
            files.update(_files_under(target) if target.is_dir() else {data})
    return files


def stage_deps(script: str) -> list[str]:
    """The code deps dvc.yaml lists for a stage run by `script`, in the order written:
    the script, stages/_checkout.py, the codealign files and directories,
    requirements.lock."""
    listed = compress(stage_files(script) - {script, CHECKOUT, LOCK_FILE})
    return [script, CHECKOUT, *listed, LOCK_FILE]


def is_code_dep(dep: str) -> bool:
    """Whether a dvc.yaml dep is code (written by `--write`) rather than data."""
    return dep == LOCK_FILE or dep.split("/")[0] in (PACKAGE, STAGE_DIR)


def covers(deps: Iterable[str], file: str) -> bool:
    return any(file == d or file.startswith(d.rstrip("/") + "/") for d in deps)


@dataclass
class Stage:
    name: str
    script: str
    deps: list[str]  # as written, templates unresolved
    node: object  # the ruamel mapping that holds `deps:` (the stage or its `do:`)


def _script_of(name: str, cmd: str) -> str:
    words = str(cmd).split()
    scripts = [w for w in words if w.startswith(f"{STAGE_DIR}/") and w.endswith(".py")]
    if not scripts:
        raise CodealignError(f"dvc.yaml: stages.{name}.cmd runs no {STAGE_DIR}/*.py script")
    return scripts[0]


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, order and quoting kept
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def read_stages(dvc_yaml: Path) -> tuple[object, list[Stage]]:
    try:
        data = _yaml().load(dvc_yaml.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CodealignError(f"{dvc_yaml}: file not found") from None
    except Exception as exc:
        raise CodealignError(f"{dvc_yaml}: not valid YAML: {exc}".splitlines()[0]) from None
    stages = []
    for name, spec in (data.get("stages") or {}).items():
        node = spec.get("do", spec)  # a foreach stage: one definition for every item
        if "cmd" not in node:
            raise CodealignError(f"{dvc_yaml}: stages.{name} has no cmd")
        deps = [str(d) for d in node.get("deps") or []]
        stages.append(Stage(name, _script_of(name, node["cmd"]), deps, node))
    return data, stages


def differences(stage: Stage) -> list[str]:
    """One line per code dep `stage` lacks or lists beyond what its script reaches."""
    want = stage_deps(stage.script)
    have = [d for d in stage.deps if is_code_dep(d)]
    lines = [f"{stage.name}: missing dep {d}" for d in want if d not in have]
    lines += [f"{stage.name}: extra dep {d}" for d in have if d not in want]
    return lines


def rewrite(stage: Stage) -> None:
    """Replace the code deps of `stage` in its ruamel node, data deps kept in place after them."""
    from ruamel.yaml.comments import CommentedSeq

    want = stage_deps(stage.script)
    seq = stage.node.get("deps")
    if seq is None:
        seq = CommentedSeq()
        stage.node.insert(list(stage.node).index("cmd") + 1, "deps", seq)
    data = [d for d in seq if not is_code_dep(str(d))]
    if [str(d) for d in seq] == want + [str(d) for d in data]:
        return
    seq[:] = [*want, *data]


@click.command("deps", cls=Command)
@click.option("--dvc-yaml", default="dvc.yaml", show_default=True, type=click.Path(path_type=Path))
@click.option("--check", "mode", flag_value="check", default=True, help="Report differences.")
@click.option("--write", "mode", flag_value="write", help="Rewrite the code deps in place.")
def deps_command(dvc_yaml: Path, mode: str) -> None:
    """Each stage's code deps (script, codealign modules and data, requirements.lock),
    computed from the imports, against dvc.yaml: --check lists every missing or extra
    dep, one line each, and exits 1; --write rewrites the deps lists in place."""
    data, stages = read_stages(dvc_yaml)
    lines = [line for stage in stages for line in differences(stage)]
    if mode == "check":
        for line in lines:
            click.echo(line)
        if lines:
            click.echo(f"{len(lines)} differences; `codealign deps --write` fixes them", err=True)
            sys.exit(1)
        click.echo(f"{len(stages)} stages: deps cover their code")
        return
    if not lines:
        click.echo(f"{len(stages)} stages: nothing to write")
        return
    for stage in stages:
        rewrite(stage)
    from codealign.io import atomic_path

    with atomic_path(dvc_yaml) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        _yaml().dump(data, handle)
    click.echo(
        f"{dvc_yaml}: {len(lines)} deps changed in {len({x.split(':')[0] for x in lines})} stages"
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a self-import), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:  # Tarjan, iterative
        nonlocal counter
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)
