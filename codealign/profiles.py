"""Profiles: which params.yaml `dvc repro` reads, chosen by name instead of copied by hand.

A profile is a file `params/<name>.yaml` (`default`, `smoke`, `full`, `paper`, ...). DVC
reads only `params.yaml`, so choosing a profile writes that file, byte for byte, from the
profile, after the profile has been validated. Nothing of the user's is overwritten: a
`params.yaml` that equals no profile (hand edits, `dvc exp run -S` leftovers) is kept
unless `--force`, and then it is saved beside as `params.yaml.bak` first.

    git switch -c paper-run          # a profile is a branch's choice: commit it there
    codealign profile paper          # params.yaml := params/paper.yaml
    dvc repro

`codealign profile` with no name prints which profile params.yaml is now.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from codealign.command import Command
from codealign.errors import CodealignError

PROFILES_DIR = Path("params")
PARAMS_FILE = Path("params.yaml")


def profiles(root: Path = Path(".")) -> dict[str, Path]:
    """Every profile under params/, by name."""
    return {p.stem: p for p in sorted((root / PROFILES_DIR).glob("*.yaml"))}


def current(root: Path = Path("."), params: Path | None = None) -> str | None:
    """The profile under `root`/params/ that `params` (default `root`/params.yaml) equals
    byte for byte, or None."""
    params = root / PARAMS_FILE if params is None else params
    if not params.is_file():
        return None
    text = params.read_bytes()
    for name, path in profiles(root).items():
        if path.read_bytes() == text:
            return name
    return None


def switch(name: str, root: Path = Path("."), force: bool = False) -> Path | None:
    """Write params.yaml from params/<name>.yaml; return the backup written, if any."""
    from codealign.params import load_params

    known = profiles(root)
    if name not in known:
        raise CodealignError(
            f"profile {name!r}: no {PROFILES_DIR / (name + '.yaml')} "
            f"(profiles: {', '.join(known) or 'none'})"
        )
    load_params(known[name])  # one line naming the key if the profile is invalid
    params = root / PARAMS_FILE
    if params.is_dir():
        raise CodealignError(f"{PARAMS_FILE} is a directory")
    backup = None
    if params.exists() and current(root) is None:
        if not force:
            raise CodealignError(
                f"{PARAMS_FILE} equals no profile in {PROFILES_DIR}/ (edited by hand?): "
                "commit or save it, or pass --force to keep a copy in params.yaml.bak"
            )
        backup = params.with_name(params.name + ".bak")
        shutil.copyfile(params, backup)
    tmp = params.with_name(params.name + ".tmp")
    shutil.copyfile(known[name], tmp)
    tmp.replace(params)
    return backup


@click.command("profile", cls=Command)
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Replace a params.yaml that equals no profile.")
@click.option("--list", "list_", is_flag=True, help="List the profiles and exit.")
def profile_command(name: str | None, force: bool, list_: bool) -> None:
    """Choose the params profile `dvc repro` runs: params.yaml := params/NAME.yaml.

    Without NAME, print the profile params.yaml is now (or that it equals none).
    Commit the switch on a branch of its own, so `dvc metrics diff` compares profiles
    across branches and main keeps the default.
    """
    if list_:
        for known in profiles():
            click.echo(known)
        return
    if name is None:
        now = current()
        click.echo(now if now else f"{PARAMS_FILE} equals no profile in {PROFILES_DIR}/")
        return
    backup = switch(name, force=force)
    if backup is not None:
        click.echo(f"saved the previous {PARAMS_FILE} as {backup}", err=True)
    click.echo(f"{PARAMS_FILE} is now profile {name!r}; run `dvc repro`", err=True)
