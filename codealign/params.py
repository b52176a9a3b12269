"""Typed, validated params: one frozen dataclass per params.yaml section.

A section class subclasses `Section` and declares its knobs with `param(...)`:

    @dataclass(frozen=True)
    class DedupParams(Section):
        threshold: float = param(0.95, gt=0, le=1, doc="cosine above which a later item is dropped")

`DedupParams.from_dict(raw, "dedup")` rejects unknown keys, checks every value against
its type hint and bounds, and raises `CodealignError` with one line that names the key:
`dedup.threshold must be a number in (0, 1], got 1.5`. Lists become tuples so that
sections stay hashable and frozen.

`load_params(path)` reads a whole params file: the top-level `seed`, `k` and
`train_seed` and every registered section. `seed` is the master seed (the tiny world,
the corpus, the data); `train_seed` (null: `seed`) seeds only what comes after the data
(K-means, adapter training, sampling, DPO, lintseq_eval), so a training experiment can be
repeated over seeds on the same curated data. Any key it does not know is an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

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
    doc: str = "",
) -> Any:
    """Declare a section field with optional bounds, allowed choices and a one-line doc."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "doc": doc}
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
        return f"a list of {_describe(typing.get_args(hint)[0])}"
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

    _name: ClassVar[str] = ""

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


# Section name -> class; filled by `register` so that each class lives beside its code.
SECTIONS: dict[str, type[Section]] = {}


def register(name: str):
    """Class decorator: make `cls` the parser of params section `name`."""

    def wrap(cls: type[Section]) -> type[Section]:
        SECTIONS[name] = cls
        return cls

    return wrap


def _import_sections() -> None:
    # Importing the modules registers their sections; they import nothing heavy at top level.
    import codealign.sections  # noqa: F401


@dataclasses.dataclass(frozen=True)
class Params:
    """A whole params file: top-level `seed`, `k`, `train_seed`, one object per section."""

    seed: int
    k: int
    sections: dict[str, Section]
    train_seed: int  # resolved: the file's `train_seed`, or `seed` when that is null or absent

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    def seed_of(self, name: str) -> int:
        """Section `name`'s own `seed` (e.g. `base_model.seed`, `lintseq.seed`), or the
        master seed where that is null."""
        own = self.sections[name].seed
        return self.seed if own is None else own


def parse_params(raw: Any, source: str = "params") -> Params:
    _import_sections()
    if not isinstance(raw, dict):
        raise CodealignError(f"{source}: expected a mapping at the top level")
    for key in raw:
        if key not in SECTIONS and key not in ("seed", "k", "train_seed"):
            raise CodealignError(f"unknown params key '{key}' in {source}")
    for key in ("seed", "k"):
        if key not in raw:
            raise CodealignError(f"missing params key '{key}' in {source}")
    seed = _coerce(raw["seed"], int, "seed", {"ge": 0})
    k = _coerce(raw["k"], int, "k", {"ge": 1})
    train_seed = raw.get("train_seed")
    train_seed = seed if train_seed is None else _coerce(train_seed, int, "train_seed", {"ge": 0})
    sections = {name: cls.from_dict(raw.get(name), name) for name, cls in SECTIONS.items()}
    if sections["sample"].add_reference and not sections["fetch"].tiny_from_config:
        raise CodealignError(
            f"{source}: sample.add_reference: true puts reference solutions among the policy's "
            "samples; only a rehearsal on tiny random models (fetch.tiny_from_config: true) "
            "may set it"
        )
    return Params(seed=seed, k=k, sections=sections, train_seed=train_seed)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; every error names the key (or the file)."""
    path = Path(path)
    if not path.is_file():
        raise CodealignError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CodealignError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_params(raw, str(path))
