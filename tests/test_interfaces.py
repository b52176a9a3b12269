"""What the command lines say of themselves: every `--help` of stages/*.py and of the
`codealign` subcommands names only params that exist, and paths that dvc.yaml has; a
stage's defaults are what dvc.yaml passes it."""

import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p.stem for p in (ROOT / "stages").glob("[a-z]*.py"))  # not _checkout
# Words that follow "params" in prose, not params: "the params swept", "params reference".
WORDS = {"and", "of", "the", "file", "swept", "reference", "profile", "section", "to", "in"}
FILE_SUFFIXES = {"json", "jsonl", "md", "png", "yaml", "py", "tsv", "txt", "lock", "html"}


@cache
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@cache
def commands() -> dict[str, list[list[str]]]:
    """stages/<name>.py -> the argv of every dvc.yaml stage that runs it, vars filled in."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    found: dict[str, list[list[str]]] = {}
    for stage_def in stages.values():
        body = stage_def.get("do", stage_def)
        names = {}
        for entry in body.get("vars", []):
            names.update(entry)
        items = stage_def.get("foreach", {None: None})
        for key, item in items.items():
            cmd = body["cmd"]
            for name, value in names.items():
                cmd = cmd.replace("${" + name + "}", str(value))
            cmd = cmd.replace("${key}", str(key))
            for field, value in (item or {}).items():
                cmd = cmd.replace("${item." + field + "}", str(value))
            argv = shlex.split(cmd)
            script = Path(argv[1]).stem
            found.setdefault(script, []).append(argv[2:])
    return found


@cache
def dvc_paths() -> set[str]:
    """Every path a dvc.yaml command passes, and the folders above them."""
    paths = set()
    for argvs in commands().values():
        for argv in argvs:
            for arg in argv:
                if "/" in arg and not arg.startswith("-"):
                    parts = arg.split("/")
                    paths.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return paths


def resolves(dotted: str) -> bool:
    node = params()
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def named_params(text: str) -> set[str]:
    """The params a help text names: `-S key=`, `params a and b`, and `section.key`
    where section is a params section (not a file name such as sft.json)."""
    found = set(re.findall(r"-S ([\w.]+)=", text))
    pattern = r"(?<![-\w])params? ([a-z_][\w.]*)(?:,? and ([a-z_][\w.]*))?"
    for a, b in re.findall(pattern, text):
        found |= {p for p in (a, b) if p and p not in WORDS}
    for section, key in re.findall(r"(?<![/\w.])([a-z_]+)\.([a-z_]+)\b", text):
        if isinstance(params().get(section), dict) and key not in FILE_SUFFIXES:
            found.add(f"{section}.{key}")
    return found


def named_paths(text: str) -> set[str]:
    """Pipeline paths a help text names (data/, models/, metrics/), without patterns."""
    paths = re.findall(r"(?<![\w/.])((?:data|models|metrics)/[\w./<>{}*,-]*[\w>}*])", text)
    return {p for p in paths if not re.search(r"[<*{]", p)}


def known(path: str) -> bool:
    """A path dvc.yaml passes, a file in one (`data/seed/s1.jsonl` in `data/seed`), or
    a file here."""
    parents = ["/".join(path.split("/")[: i + 1]) for i in range(1, path.count("/") + 1)]
    return any(p in dvc_paths() for p in parents) or (ROOT / path).exists()


def help_text(command, args=("--help",)) -> str:
    result = CliRunner().invoke(command, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


def check_help(where: str, text: str, own: set[str] = frozenset()) -> list[str]:
    """What `text` names wrongly; `own`: paths the command writes itself (its defaults)."""
    wrong = [f"{where}: param {p} is not in params.yaml" for p in sorted(named_params(text))]
    wrong = [w for w in wrong if not resolves(w.split("param ")[1].split(" ")[0])]
    for path in sorted(named_paths(text) - own):
        if not known(path):
            wrong.append(f"{where}: {path} is neither a dvc.yaml path nor a file here")
    return wrong


def defaults(command) -> set[str]:
    return {str(p.default) for p in command.params if isinstance(p.default, (str, Path))}


@pytest.mark.parametrize("name", STAGES)
def test_stage_help_names_real_params_and_paths(name):
    assert check_help(f"stages/{name}.py --help", help_text(stage(name))) == []


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_codealign_help_names_real_params_and_paths(name):
    command = main.get_command(None, name)
    text = help_text(main, [name, "--help"])
    assert check_help(f"codealign {name} --help", text, defaults(command)) == []


@pytest.mark.parametrize("name", sorted(commands()))
def test_stage_defaults_are_what_dvc_yaml_passes(name):
    """A path a stage defaults to is the one dvc.yaml gives it (unless it runs the script
    more than once, as dpo's foreach does, with different values)."""
    options = {
        opt: param
        for param in stage(name).params
        for opt in getattr(param, "opts", [])
        if opt.startswith("--")
    }
    wrong = []
    for argv in commands()[name]:
        if len(commands()[name]) > 1:
            continue
        for flag, value in zip(argv, argv[1:], strict=False):
            param = options.get(flag)
            if param is None or not flag.startswith("--") or param.multiple:
                continue
            default = param.default
            if isinstance(default, (str, Path)) and str(default) != value:
                wrong.append(f"stages/{name}.py {flag} defaults to {default}, dvc.yaml: {value}")
    assert wrong == []


def test_the_helpers_find_what_they_look_for():
    assert named_params("run -S k=10 and -S sft.epochs=3; reads params k and train_seed") == {
        "k", "sft.epochs", "train_seed",
    }  # fmt: skip
    assert named_params("writes metrics/sft.json and sft.json") == set()
    assert check_help("x", "reads params nope and -S sft.nope=1") == [
        "x: param nope is not in params.yaml",
        "x: param sft.nope is not in params.yaml",
    ]
    assert check_help("x", "the policy models/nowhere, data/seed/s1.jsonl") == [
        "x: models/nowhere is neither a dvc.yaml path nor a file here"
    ]
    assert named_paths("`metrics/dpo/stage_<n>.json` and models/sft.") == {"models/sft"}
