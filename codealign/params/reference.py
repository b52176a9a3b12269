"""docs/params.md, written from the section classes and the profiles; and the `codealign
params` command that prints it or a profile's resolved values.

    codealign params --markdown > docs/params.md     # the reference page
    codealign params --params params/smoke.yaml      # every resolved value, as JSON

tests/test_params.py checks that the committed page is what `markdown()` writes.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import click
import yaml

from codealign.params import SECTIONS, TOP_LEVEL, load_params
from codealign.params.core import _bounds_text, _describe

# The profile whose values the code's defaults are.
DEFAULT = Path("params/default.yaml")

HEADER = """\
# Params reference

<!-- Written by `codealign params --markdown > docs/params.md`; do not edit by hand.
     tests/test_params.py checks that this page matches the code. -->

Every knob of the pipeline, section by section, from the section classes in
`codealign/params/`. **default** is the value the code gives a key, which is the value
the default profile, `params/default.yaml`, gives it (a test asserts so for every key);
the other profiles' columns show a value only where it differs from that default. Every
profile spells out every key, so DVC tracks each one, and an unknown key is an error
naming it. `params.yaml` is a copy of one profile (`codealign profile NAME`).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(_plain(v) for v in value) + "]`"
    return f"`{_plain(value)}`"


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        quoted = value == "" or value != value.strip() or " " in value
        return json.dumps(value) if quoted else value
    return str(value)


def _type(hint: Any, meta: dict[str, Any]) -> str:
    text = _describe(hint) + _bounds_text(meta)
    if meta.get("choices") is not None:
        text += ": one of " + ", ".join(map(str, meta["choices"]))
    return text


def _table(rows: list[list[str]], profiles: list[str]) -> list[str]:
    head = ["key", "type", "default", *profiles, "doc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown(root: str | Path = ".") -> str:
    """The reference page for the section classes and the profiles under `root`."""
    root = Path(root)
    paths = [p for p in sorted((root / "params").glob("*.yaml")) if p.name != DEFAULT.name]
    names = [f"params/{p.name}" for p in paths]
    raws = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in paths]
    loaded = [load_params(p) for p in paths]

    def differing(default: Any, values: list[Any]) -> list[str]:
        return ["" if v == default else _value(v) for v in values]

    default_raw = yaml.safe_load((root / DEFAULT).read_text(encoding="utf-8"))
    out = [HEADER, "## Top level", ""]
    rows = []
    for key, (hint, bounds, required, doc) in TOP_LEVEL.items():
        kind = _type(hint, bounds) + (", required" if required else " or null")
        default = default_raw.get(key)
        cells = differing(default, [raw.get(key) for raw in raws])
        rows.append([f"`{key}`", kind, _value(default), *cells, doc])
    out += [*_table(rows, names), ""]
    for name, cls in SECTIONS.items():
        out += [f"## `{name}`", ""]
        if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
            out += [" ".join(cls.__doc__.split()), ""]
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            missing = f.default is dataclasses.MISSING
            default = f.default_factory() if missing else f.default  # type: ignore[misc]
            values = [params[name].to_dict()[f.name] for params in loaded]
            values = [tuple(v) if isinstance(v, list) else v for v in values]
            meta = dict(f.metadata)
            rows.append(
                [
                    f"`{f.name}`",
                    _type(hints[f.name], meta),
                    _value(default),
                    *differing(default, values),
                    meta["doc"],
                ]
            )
        out += [*_table(rows, names), ""]
    return "\n".join(out)


@click.command("params")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print docs/params.md.")
@click.option(
    "--params",
    "params_file",
    default="params.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Profile whose resolved values are printed (without --markdown).",
)
@click.option(
    "--root",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Checkout whose params/ profiles the page lists (with --markdown).",
)
def params_command(as_markdown: bool, params_file: str, root: str) -> None:
    """Print the params reference page, or every resolved value of a profile as JSON."""
    if as_markdown:
        click.echo(markdown(root), nl=False)
        return
    params = load_params(params_file)
    resolved = {"seed": params.seed, "k": params.k, "train_seed": params.train_seed}
    resolved |= {name: section.to_dict() for name, section in params.sections.items()}
    click.echo(json.dumps(resolved, indent=2))
