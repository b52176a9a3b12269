"""What every params section is built from: `Section`, `param` and the value checks.

A section class subclasses `Section` and declares its knobs with `param(...)`:

    @dataclass(frozen=True)
    class DedupParams(Section):
        threshold: float = param(0.95, gt=0, le=1, doc="cosine above which a later item is dropped")

`DedupParams.from_dict(raw, "dedup")` rejects unknown keys, checks every value against
its type hint and bounds, and raises `CodealignError` with one line that names the key:
`dedup.threshold must be a number in (0, 1], got 1.5`. Lists become tuples so that
sections stay hashable and frozen.

A field's default is the value the default profile, params/default.yaml, gives it
(tests/test_params.py asserts so for every key), so a section built in code runs what the
default profile runs. This module imports nothing of codealign but its errors.

Adding a key: declare it in its section's class in `codealign/params/` with the default
profile's value and a `doc=`, write it into every profile in params/ (and params.yaml),
and rerun `codealign params --markdown > docs/params.md`; tests/test_params.py fails
until all of that agrees. A new section also gets a line in `params.SECTIONS`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Self

from codealign.errors import CodealignError

_MISSING = dataclasses.MISSING


def param(
    default: Any = _MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    doc: str,
    before: Any = _MISSING,
) -> Any:
    """Declare a section field: its default (params/default.yaml's value), optional bounds and
    allowed choices, and a one-line doc for docs/params.md. `before`: for a key added after
    runs were recorded, the value that behaves as those runs did (the sweep collectors
    count a run that lacks the key as holding it); unset, a run that lacks the key matches
    only null."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "doc": doc}
    if before is not _MISSING:
        meta["before"] = before
    if isinstance(default, list):
        default = tuple(default)
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda d=default: dict(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is tuple:
        item = _describe(typing.get_args(hint)[0])
        return "a list of " + item.removeprefix("an ").removeprefix("a ") + "s"
    if origin is dict:
        return "a mapping"
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        type(None): "null",
    }.get(hint, str(hint))


def _bounds_text(meta: dict[str, Any]) -> str:
    lo = (
        f"[{meta['ge']}"
        if meta.get("ge") is not None
        else (f"({meta['gt']}" if meta.get("gt") is not None else None)
    )
    hi = (
        f"{meta['le']}]"
        if meta.get("le") is not None
        else (f"{meta['lt']})" if meta.get("lt") is not None else None)
    )
    if lo and hi:
        return f" in {lo}, {hi}"
    if lo:
        return f" {'>=' if lo[0] == '[' else '>'} {lo[1:]}"
    if hi:
        return f" {'<=' if hi[-1] == ']' else '<'} {hi[:-1]}"
    return ""


def _coerce(value: Any, hint: Any, key: str, meta: dict[str, Any]) -> Any:
    """Return `value` converted to `hint`, or raise naming `key`."""

    def fail() -> typing.NoReturn:
        want = _describe(hint) + _bounds_text(meta)
        raise CodealignError(f"{key} must be {want}, got {value!r}")

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _coerce(value, arg, key, meta)
            except CodealignError:
                continue
        fail()
    if hint is type(None):
        if value is not None:
            fail()
        return None
    if origin is tuple:
        if not isinstance(value, list | tuple):
            fail()
        (item_hint, *_rest) = typing.get_args(hint)
        return tuple(_coerce(v, item_hint, f"{key}[{i}]", meta) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            fail()
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail()
        value = float(value)
        if value != value:  # NaN satisfies no bound
            fail()
    elif hint is str and not isinstance(value, str):
        fail()
    checks = (
        ("ge", lambda v, b: v >= b),
        ("gt", lambda v, b: v > b),
        ("le", lambda v, b: v <= b),
        ("lt", lambda v, b: v < b),
    )
    for name, ok in checks:
        bound = meta.get(name)
        if bound is not None and not ok(value, bound):
            fail()
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise CodealignError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Section:
    """Base class of every params section; see the module docstring."""

    @classmethod
    def from_dict(cls, raw: Any, prefix: str) -> Self:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise CodealignError(f"{prefix} must be a mapping of keys, got {raw!r}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in fields:
                known = ", ".join(sorted(fields))
                raise CodealignError(f"unknown params key '{prefix}.{key}' (known: {known})")
        values = {}
        for name, f in fields.items():
            if name not in raw:
                if f.default is _MISSING and f.default_factory is _MISSING:
                    raise CodealignError(f"missing params key '{prefix}.{name}'")
                continue
            values[name] = _coerce(raw[name], hints[name], f"{prefix}.{name}", dict(f.metadata))
        section = cls(**values)
        section.validate(prefix)
        return section

    def validate(self, prefix: str) -> None:
        """Cross-field checks; override and raise CodealignError naming the key."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
