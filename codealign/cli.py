"""The `codealign` command-line tool: a click group whose commands live beside their code.

Every command of `main` is a `codealign.command.Command`: a `CodealignError` becomes one
line on stderr, `error: <message>`, and exit status 2. Nothing imports this module but
the `codealign` entry point, so the lazy imports of `SUBCOMMANDS` close no cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError

# Subcommands live beside the code they drive and are imported only when used, so
# `codealign --help` stays fast and no module imports this one in a cycle.
SUBCOMMANDS = {
    "check": "codealign.execution.cli:check",
    "docs": "codealign.report.docs:docs_command",
    "generate": "codealign.specialists.routing:generate_command",
    "route": "codealign.specialists.routing:route_command",
    "exps": "codealign.sweeps.experiments:exps_command",
    "ksweep": "codealign.sweeps.experiments:ksweep_command",
    "mixture": "codealign.sweeps.mixture:mixture_command",
    "tinyhelen": "codealign.sweeps.tinyhelen:tinyhelen_command",
    "lintseq-seeds": "codealign.sweeps.lintseq_seeds:lintseq_seeds_command",
    "params": "codealign.params.reference:params_command",
    "deps": "codealign.stage_deps:deps_command",
    "profile": "codealign.profiles:profile_command",
    "findings": "codealign.findings.table:findings_command",
    "snapshot": "codealign.report.snapshot:snapshot_command",
    "equal-steps": "codealign.sweeps.equal_steps:equal_steps_command",
    "fallback-margin": "codealign.specialists.fallback:fallback_margin_command",
    "specialist-ideas": "codealign.sweeps.specialist_ideas:specialist_ideas_command",
    "train-data": "codealign.sweeps.train_data:train_data_command",
    "tune": "codealign.sweeps.tune:tune_command",
}


class Group(click.Group):
    command_class = Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in SUBCOMMANDS:
            module, attr = SUBCOMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodealignError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group)
@click.version_option(package_name="codealign")
def main() -> None:
    """codealign: curate code instruction data, train specialist adapters, run DPO.

    The pipeline itself runs with `dvc repro`; these commands are the pieces a user
    calls by hand. Every command has --help.
    """
