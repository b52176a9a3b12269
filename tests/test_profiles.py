"""`codealign profile`: params.yaml chosen from params/<name>.yaml, never clobbering edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codealign.cli import main
from codealign.profiles import current, profiles

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "params", tmp_path / "params")
    shutil.copyfile(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, ["profile", *args])


def test_the_committed_params_yaml_is_a_profile():
    assert current(ROOT) is not None, "params.yaml equals no file in params/"
    assert {"default", "smoke", "full", "paper"} <= set(profiles(ROOT))


def test_switching_writes_the_profile_byte_for_byte_and_says_which(repo):
    result = run("paper")
    assert result.exit_code == 0, result.output
    assert (repo / "params.yaml").read_bytes() == (repo / "params" / "paper.yaml").read_bytes()
    assert run().output.strip() == "paper"
    assert run("default").exit_code == 0
    assert run().output.strip() == "default"


def test_a_hand_edited_params_yaml_is_kept_unless_forced(repo):
    edited = (repo / "params.yaml").read_text() + "# my edit\n"
    (repo / "params.yaml").write_text(edited)
    refused = run("paper")
    assert refused.exit_code == 2
    assert "equals no profile" in refused.output and "--force" in refused.output
    assert (repo / "params.yaml").read_text() == edited

    forced = run("paper", "--force")
    assert forced.exit_code == 0, forced.output
    assert (repo / "params.yaml.bak").read_text() == edited
    assert (repo / "params.yaml").read_bytes() == (repo / "params" / "paper.yaml").read_bytes()


def test_an_unknown_or_invalid_profile_changes_nothing(repo):
    before = (repo / "params.yaml").read_bytes()
    unknown = run("nope")
    assert unknown.exit_code == 2
    assert "error: profile 'nope': no params/nope.yaml" in unknown.output
    (repo / "params" / "broken.yaml").write_text(
        (repo / "params" / "smoke.yaml").read_text() + "\nnot_a_section: 1\n"
    )
    broken = run("broken")
    assert broken.exit_code == 2
    assert "not_a_section" in broken.output
    assert (repo / "params.yaml").read_bytes() == before
    assert not list(repo.glob("params.yaml.*"))


def test_current_names_the_profile_any_params_file_equals(tmp_path):
    copy = tmp_path / "params.yaml"
    copy.write_bytes((ROOT / "params" / "smoke.yaml").read_bytes())
    assert current(ROOT, copy) == "smoke"
    copy.write_bytes(copy.read_bytes() + b"# edited\n")
    assert current(ROOT, copy) is None
    assert current(ROOT, tmp_path / "missing.yaml") is None
