"""A program with everything that does not define it removed, for comparing two answers.

`strip_program` parses the code and keeps only what defines the solution: imports,
function and class definitions (without docstrings), and top-level assignments whose
value calls nothing (constants a solution may use). Comments vanish with the AST;
docstrings are dropped from modules, classes and functions; example usage is every other
top-level statement: calls and prints, asserts, `if __name__ == "__main__":` blocks,
loops, and assignments that call something (`result = f(3)`). The rest is unparsed, so
formatting and quoting differences disappear too.

Code that does not parse is returned with only surrounding whitespace stripped: two
answers that fail to parse are the same program only if their text is the same.
"""

from __future__ import annotations

import ast

_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _drop_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    return body or [ast.Pass()]


def _calls_something(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _is_definition(stmt: ast.stmt) -> bool:
    if isinstance(stmt, _DEFINITIONS):
        return True
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        return not _calls_something(stmt.value)
    return False


class _Docstrings(ast.NodeTransformer):
    def _strip(self, node):
        self.generic_visit(node)
        node.body = _drop_docstring(node.body)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def strip_program(code: str) -> str:
    """Canonical source of `code` without comments, docstrings and example usage."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code.strip()
    body = [s for s in _drop_docstring(tree.body) if _is_definition(s)]
    tree.body = [_Docstrings().visit(s) for s in body]
    return ast.unparse(tree)


def same_program(a: str, b: str) -> bool:
    """True when `a` and `b` differ only by comments, docstrings or example usage."""
    return strip_program(a) == strip_program(b)
