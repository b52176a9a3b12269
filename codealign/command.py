"""The click command class of every stage script and `codealign` command.

A `Command` turns a `CodealignError` (or a full disk, quota or permission error while
writing) into one line on stderr, `error: <message>`, and exit status 2, so a user sees
the same kind of error from `dvc repro` as from the CLI. It lives apart from cli.py, whose
group imports every subcommand's module: a module that builds a command imports this one
and no import cycle runs through the CLI.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import click

from codealign.errors import CodealignError

# Errors of a write that the user fixes outside the program: space, quota, permissions.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def _one_line(exc: BaseException) -> str | None:
    """The one-line message for an error a user can act on, or None for a bug."""
    if isinstance(exc, CodealignError):
        return str(exc)
    if type(exc).__name__ == "OperationalError" and "disk" in str(exc):
        # sqlite3 (DVC's state, through dvclive) on a full disk: "disk I/O error",
        # "database or disk is full".
        return f"cannot write a database: {exc} (is the disk full?)"
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        from codealign.io import public_path

        where = public_path(exc.filename) if exc.filename else "an output"
        return f"{where}: cannot write: {exc.strerror or exc}"
    return None


def _stage_of(command: click.Command) -> str | None:
    """The stage name of a command defined in a stage script (stages/<name>.py), or None."""
    code = getattr(command.callback, "__code__", None)
    path = Path(code.co_filename) if code else None
    return path.stem if path is not None and path.parent.name == "stages" else None


class Command(click.Command):
    """A click command that reports CodealignError, or a full disk, quota or permission
    error while writing, as one line and exits 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            stage = _stage_of(self)
            if stage is not None and "params_file" in ctx.params:
                from codealign.guards import check

                check(ctx.params["params_file"], stage)
            return super().invoke(ctx)
        except Exception as exc:
            message = _one_line(exc)
            if message is None:
                raise
            click.echo(f"error: {message}", err=True)
            ctx.exit(2)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
