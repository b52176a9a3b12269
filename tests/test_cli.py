import click
from click.testing import CliRunner

from codealign.cli import main
from codealign.command import Command
from codealign.errors import CodealignError


def test_help_lists_commands_and_version_prints():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "Usage: main" in result.output
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and "0.1.0" in version.output


def test_user_errors_are_one_line_with_exit_2():
    @click.command(cls=Command)
    def broken() -> None:
        raise CodealignError("data/x.jsonl:3: missing field 'code'")

    result = CliRunner().invoke(broken, [])
    assert result.exit_code == 2
    assert result.output == "error: data/x.jsonl:3: missing field 'code'\n"
