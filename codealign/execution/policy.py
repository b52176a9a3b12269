"""The static half of the in-Python defence: an AST check run in the parent before dispatch.

It is defence in depth, not the wall: the verdict's integrity rests on process isolation
and on the parent holding the expected results. A program the policy rejects gets the
status `policy` without being run. Identifiers reach the AST already NFKC-normalised by
the parser, so Unicode look-alikes of `exec` are caught as `exec`; attribute names given
as strings (`getattr(x, "...")`) are normalised here before they are checked.
"""

from __future__ import annotations

import ast
import unicodedata
from dataclasses import dataclass

DEFAULT_MODULES = (
    "abc",
    "array",
    "bisect",
    "calendar",
    "cmath",
    "collections",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "io",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "struct",
    "sys",
    "textwrap",
    "time",
    "typing",
    "unicodedata",
    "binascii",
    "base64",
    "difflib",
    "pprint",
    "keyword",
    "__future__",
)

# `eval` is allowed (HumanEval/160's reference solution uses it): the audit hook runs
# this same policy over every string the program evaluates.
FORBIDDEN_NAMES = frozenset(
    {
        "exec",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "__builtins__",
        "__loader__",
        "__spec__",
        "memoryview",
        "help",
    }
)

FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "__class__",
        "__bases__",
        "__base__",
        "__mro__",
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__code__",
        "__closure__",
        "__dict__",
        "__getattribute__",
        "__import__",
        "__loader__",
        "__spec__",
        "__self__",
        "__func__",
        "__defaults__",
        "__kwdefaults__",
        "__reduce__",
        "__reduce_ex__",
        "__setstate__",
        "__getstate__",
        "__traceback__",
        "__context__",
        "__cause__",
        "__wrapped__",
        "__objclass__",
        "__module__",
        "__del__",
        "__set_name__",
        "__init_subclass__",
        "__subclasshook__",
        "__setattr__",
        "__delattr__",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_lasti",
        "f_trace",
        "tb_frame",
        "tb_next",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "co_consts",
        "co_code",
        "co_names",
        "co_filename",
        "co_varnames",
        "_getframe",
        "settrace",
        "setprofile",
        "gettrace",
        "modules",
        "addaudithook",
        "_current_frames",
        "audit",
        "setrecursionlimit",
        "meta_path",
        "path_hooks",
        "path_importer_cache",
        "builtin_module_names",
        "stdlib_module_names",
        "executable",
        "_os",
        "_sys",
        "_posix",
        "system",
        "popen",
        "fork",
        "kill",
        "environ",
    }
)

ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})


@dataclass(frozen=True)
class Policy:
    """What the in-Python layers allow. `enabled=False` leaves only the OS-level sandbox."""

    enabled: bool = True
    modules: tuple[str, ...] = DEFAULT_MODULES  # importable top-level modules

    def check(self, program: str) -> str | None:
        """None if the program may run, else one line saying what it broke."""
        if not self.enabled:
            return None
        try:
            tree = ast.parse(program)
        except SyntaxError:
            return None  # the sandbox reports it as an error, as Python would
        except (ValueError, MemoryError, RecursionError) as exc:
            return f"cannot parse the program: {type(exc).__name__}"
        allowed = set(self.modules)
        try:
            for node in ast.walk(tree):
                reason = _check_node(node, allowed)
                if reason:
                    return reason
        except RecursionError:
            return "program nests too deeply to check"
        return None


def _normal(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def _check_node(node: ast.AST, allowed: set[str]) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top not in allowed:
                return f"import of '{alias.name}' is not allowed"
    elif isinstance(node, ast.ImportFrom):
        top = (node.module or "").split(".")[0]
        if node.level or top not in allowed:
            return f"import from '{'.' * node.level}{node.module or ''}' is not allowed"
        if any(alias.name == "*" for alias in node.names) and top == "sys":
            return "'from sys import *' is not allowed"
        for alias in node.names:
            if _normal(alias.name) in FORBIDDEN_ATTRIBUTES:
                return f"import of '{top}.{alias.name}' is not allowed"
    elif isinstance(node, ast.Name):
        if node.id in FORBIDDEN_NAMES:
            return f"use of '{node.id}' is not allowed"
        if node.id.startswith("__") and node.id.endswith("__") and node.id != "__name__":
            return f"use of '{node.id}' is not allowed"
    elif isinstance(node, ast.Attribute):
        if node.attr in FORBIDDEN_ATTRIBUTES:
            return f"access to attribute '{node.attr}' is not allowed"
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ATTRIBUTE_BUILTINS
    ):
        if len(node.args) < 2 or not (
            isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
        ):
            return f"{node.func.id}() needs a constant attribute name"
        name = _normal(node.args[1].value)
        if name in FORBIDDEN_ATTRIBUTES or (name.startswith("__") and name.endswith("__")):
            return f"{node.func.id}() of '{name}' is not allowed"
    return None
