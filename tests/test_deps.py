"""Stage deps from the imports: the walk, `codealign deps --check/--write`, no import cycle."""

import shutil
from pathlib import Path

from click.testing import CliRunner

from codealign.cli import SUBCOMMANDS, main
from codealign.stage_deps import (
    PACKAGE_DATA,
    PARAM_SELECTED,
    closure,
    compress,
    cycles,
    import_graph,
    imports_of,
    stage_deps,
    stage_files,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_form_is_an_edge(tmp_path):
    source = tmp_path / "fake.py"
    source.write_text(
        "import codealign.lm.checkpoints\n"
        "from codealign.dpo import strip\n"  # a submodule, named after `import`
        "from codealign.synth import make_backend\n"  # a name of the package
        "from .pairs import mine\n"
        "from ..curation import seed\n"
        "from . import plots\n"
        "import json\n"
        "def later():\n"
        "    from codealign.passk import pass_at_k\n"
        "    if True:\n"
        "        import codealign.report as r\n"
    )
    assert imports_of(source, "codealign.dpo.fake") == {
        "codealign.lm.checkpoints",
        "codealign.dpo.strip",
        "codealign.synth",
        "codealign.dpo.pairs",
        "codealign.curation.seed",
        "codealign.dpo.plots",
        "codealign.passk",
        "codealign.report",
    }


def test_cli_subcommands_worker_script_and_param_choices_are_edges():
    graph = import_graph()
    assert {target.split(":")[0] for target in SUBCOMMANDS.values()} <= graph["codealign.cli"]
    assert "codealign.stage_deps" in graph["codealign.cli"]
    # pool.py runs worker.py as a script; worker.py imports its siblings by bare name.
    assert "codealign.execution.worker" in graph["codealign.execution.pool"]
    assert {"codealign.execution.policy", "codealign.execution.wire"} <= graph[
        "codealign.execution.worker"
    ]
    for module, choices in PARAM_SELECTED.items():
        for choice in choices.values():
            assert set(choice) <= closure([module], declared=False), (module, choice)


def test_closure_runs_parent_packages_and_reads_declared_data():
    # Importing codealign.synth.pipeline runs codealign/synth/__init__.py first, and the
    # pipeline imports the prompts module, which reads codealign/prompts/.
    files = stage_files("stages/synth.py")
    assert "codealign/synth/__init__.py" in files
    assert {f"codealign/prompts/{p.name}" for p in (ROOT / "codealign/prompts").iterdir()} <= files
    assert "codealign/prompts" in stage_deps("stages/synth.py")
    assert {"codealign.synth", "codealign.synth.prompts"} <= closure(["codealign.synth.pipeline"])
    # The refine stage reads its TinyHelen-style prompts the same way.
    assert "codealign.refine.refine" in PACKAGE_DATA
    assert "codealign/refine/prompts" in stage_deps("stages/refine.py")


def test_a_directory_is_listed_only_when_every_file_in_it_is_reached():
    execution = {
        f"codealign/execution/{p.name}" for p in (ROOT / "codealign/execution").glob("*.py")
    }
    assert compress(execution) == ["codealign/execution"]
    partial = execution - {"codealign/execution/cli.py"}
    assert compress(partial) == sorted(partial)
    assert compress(partial | {"codealign/io.py"}) == sorted(partial | {"codealign/io.py"})


def test_deps_check_passes_on_the_repository():
    result = CliRunner().invoke(main, ["deps", "--check", "--dvc-yaml", str(ROOT / "dvc.yaml")])
    assert result.exit_code == 0, result.output
    assert "stages: deps cover their code" in result.output


def test_check_names_each_missing_and_extra_dep_and_write_restores_the_file(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    shutil.copy(ROOT / "dvc.yaml", dvc_yaml)
    original = dvc_yaml.read_text()
    edited = original.replace("      - codealign/dpo/score.py\n", "", 1).replace(
        "      - stages/score.py\n", "      - stages/score.py\n      - codealign/cli.py\n", 1
    )
    assert edited.count("\n") == original.count("\n")
    dvc_yaml.write_text(edited)
    runner = CliRunner()
    check = runner.invoke(main, ["deps", "--check", "--dvc-yaml", str(dvc_yaml)])
    assert check.exit_code == 1
    first = next(
        i for i, line in enumerate(original.splitlines()) if "codealign/dpo/score.py" in line
    )
    stage = next(
        line.strip().rstrip(":")
        for line in reversed(original.splitlines()[:first])
        if line.startswith("  ") and not line.startswith("   ")
    )
    assert check.stdout.splitlines() == [
        f"{stage}: missing dep codealign/dpo/score.py",
        "score: extra dep codealign/cli.py",
    ]
    write = runner.invoke(main, ["deps", "--write", "--dvc-yaml", str(dvc_yaml)])
    assert write.exit_code == 0, write.output
    assert dvc_yaml.read_text() == original  # comments, folded cmds and data deps kept
    again = runner.invoke(main, ["deps", "--check", "--dvc-yaml", str(dvc_yaml)])
    assert again.exit_code == 0, again.output


def test_a_missing_dvc_yaml_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["deps", "--check", "--dvc-yaml", str(tmp_path / "no.yaml")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'no.yaml'}: file not found"


def test_no_import_cycle_among_codealign_modules():
    """Function-level imports and the CLI's lazy subcommands included; nothing ignored."""
    found = cycles(import_graph())
    assert not found, "; ".join(f"an import cycle runs through {', '.join(c)}" for c in found)


def test_every_stage_script_imports_its_own_checkout_before_codealign():
    import ast

    for script in sorted((ROOT / "stages").glob("[a-z]*.py")):
        names = []
        for node in ast.parse(script.read_text()).body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
        assert "_checkout" in names, f"{script.name}: does not import _checkout"
        first = next(i for i, name in enumerate(names) if name.split(".")[0] == "codealign")
        assert names.index("_checkout") < first, f"{script.name}: _checkout after codealign"


def test_a_stage_in_a_copy_of_the_repository_runs_the_copys_code(tmp_path):
    """What a queued `dvc exp run` does: the stage runs in a copy (.dvc/tmp/exps/...)
    while the venv's editable install points at the original checkout."""
    import subprocess
    import sys

    copy = tmp_path / "copy"
    (copy / "stages").mkdir(parents=True)
    shutil.copy(ROOT / "stages" / "_checkout.py", copy / "stages")
    (copy / "codealign").mkdir()
    (copy / "codealign" / "__init__.py").write_text("WHERE = 'copy'\n")
    probe = "import _checkout  # noqa\nimport codealign\nprint(codealign.__file__)\n"
    (copy / "stages" / "probe.py").write_text(probe)
    unguarded = "import codealign\nprint(codealign.__file__)\n"
    (copy / "stages" / "unguarded.py").write_text(unguarded)

    def imported(script: str) -> Path:
        env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH: only the install and sys.path
        out = subprocess.run([sys.executable, f"stages/{script}"], cwd=copy, env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        return Path(out.stdout.strip()).resolve()

    assert imported("probe.py") == (copy / "codealign" / "__init__.py").resolve()
    # Without it the installed checkout's code runs: the failure this guards against
    # (where codealign is installed editable from another checkout, as here).
    assert imported("unguarded.py") != (copy / "codealign" / "__init__.py").resolve()
