"""`codealign snapshot` on a small reproduced DVC repository: files, provenance, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from codealign.findings.provenance import provenance_of, unrecorded
from codealign.report.snapshot import snapshot_command

pytestmark = pytest.mark.slow  # each test runs `dvc repro` in a fresh repository

# One stage writes its metrics, a table and a data out; `report` writes a page with a
# figure and headline metrics, as the real pipeline's stages do.
_MAKE = """\
import json, sys, yaml
from pathlib import Path
n = yaml.safe_load(open("params.yaml"))["n"]
Path("metrics").mkdir(exist_ok=True)
Path("data").mkdir(exist_ok=True)
Path("data/rows.txt").write_text("row\\n" * n)
score = {"score": n / 10} if n >= 0 else [n]
Path("metrics/score.json").write_text(json.dumps(score))
Path("metrics/score.md").write_text(f"| score |\\n|---|\\n| {n / 10} |\\n")
"""
_REPORT = """\
import json
from pathlib import Path
Path("metrics/report").mkdir(exist_ok=True)
Path("metrics/headline").mkdir(exist_ok=True)
Path("metrics/report/fig.png").write_bytes(b"\\x89PNG fake figure")
Path("metrics/report.md").write_text("# Report\\n\\n![fig](report/fig.png)\\n")
Path("metrics/headline/score.json").write_text(json.dumps({"score": 1}))
"""
_DVC_YAML = """\
stages:
  make:
    cmd: python make.py
    deps: [make.py]
    params: [n]
    outs:
      - data/rows.txt
      - metrics/score.json:
          cache: false
      - metrics/score.md:
          cache: false
  report:
    cmd: python report.py
    deps: [report.py, metrics/score.json]
    outs:
      - metrics/report.md:
          cache: false
      - metrics/report:
          cache: false
    metrics:
      - metrics/headline:
          cache: false
"""


@pytest.fixture
def reproduced(tmp_path, monkeypatch):
    """A git + DVC repository on profile `full`, reproduced and committed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")

    def sh(*argv: str) -> str:
        proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    sh("git", "init", "-q")
    sh(sys.executable, "-m", "dvc", "init", "-q")
    (repo / "params").mkdir()
    for name, n in (("default", 1), ("full", 3)):
        (repo / "params" / f"{name}.yaml").write_text(f"n: {n}\n")
    (repo / "params.yaml").write_text("n: 3\n")  # profile full
    (repo / "make.py").write_text(_MAKE)
    (repo / "report.py").write_text(_REPORT)
    (repo / "dvc.yaml").write_text(_DVC_YAML)
    sh(sys.executable, "-m", "dvc", "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-q", "-m", "full profile reproduced")
    return repo, sh


def _snapshot(repo: Path, *args: str):
    return CliRunner().invoke(snapshot_command, ["--repo", str(repo), *args])


def _tree(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_snapshot_copies_the_profiles_metrics_with_provenance(reproduced):
    repo, sh = reproduced
    head = sh("git", "rev-parse", "HEAD").strip()
    out = repo / "results" / "full"
    out.mkdir(parents=True)
    (out / "ksweep.json").write_text('{"by_k": []}')  # a collector's file: not the snapshot's
    (repo / "metrics" / "stage_times.json").write_text(
        json.dumps({"profile": "default", "stages": {"make": 1.0}, "total_s": 1.0})
    )

    result = _snapshot(repo)

    assert result.exit_code == 0, result.output
    files = _tree(out)
    assert sorted(files) == [
        "ksweep.json",
        "report.md",
        "report/fig.png",
        "score.json",
        "score.md",
        "snapshot.json",
    ]
    assert files["ksweep.json"] == b'{"by_k": []}'
    assert files["report/fig.png"] == (repo / "metrics/report/fig.png").read_bytes()
    assert files["report.md"] == (repo / "metrics/report.md").read_bytes()
    assert files["score.md"] == (repo / "metrics/score.md").read_bytes()
    score = json.loads(files["score.json"])
    assert score["score"] == 0.3
    assert score["provenance"] == {
        "command": f"codealign snapshot --repo {repo}",
        "commit": head,
        "dirty": False,
        "profile": "full",
    }
    manifest = json.loads(files["snapshot.json"])
    assert manifest["provenance"] == score["provenance"]
    assert set(manifest["files"]) == set(files) - {"ksweep.json", "snapshot.json"}
    # Times measured on another profile are not this profile's.
    assert "stage_times.json left out: measured on profile 'default'" in result.stderr
    # Every JSON it wrote passes the project's provenance rule.
    (out / "ksweep.json").unlink()
    assert unrecorded(repo) == []
    assert provenance_of(score)["profile"] == "full"

    # Times measured on this profile come along, their own provenance kept as the source.
    bench = {"command": "python benchmarks/bench_stage_times.py", "commit": head, "profile": "full"}
    times = {"profile": "full", "stages": {"make": 1.0}, "total_s": 1.0, "provenance": bench}
    (repo / "metrics" / "stage_times.json").write_text(json.dumps(times))
    assert _snapshot(repo, "--out", str(out)).exit_code == 0
    copied = json.loads((out / "stage_times.json").read_text())
    assert copied["stages"] == {"make": 1.0}
    assert copied["provenance"]["source"] == bench
    assert copied["provenance"]["command"] == f"codealign snapshot --out {out} --repo {repo}"


def test_files_of_an_older_snapshot_are_listed_and_left(reproduced):
    repo, _ = reproduced
    out = repo / "results" / "full"
    assert _snapshot(repo).exit_code == 0
    manifest = json.loads((out / "snapshot.json").read_text())
    manifest["files"]["dropped.json"] = "0" * 64  # a file an older snapshot wrote
    (out / "snapshot.json").write_text(json.dumps(manifest))
    (out / "dropped.json").write_text("{}")

    result = _snapshot(repo)

    assert result.exit_code == 0, result.output
    assert "from an older snapshot and not written by this one" in result.stderr
    assert "dropped.json" in result.stderr
    assert (out / "dropped.json").read_text() == "{}"
    assert "dropped.json" not in json.loads((out / "snapshot.json").read_text())["files"]


def _refused(result, says: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines


def test_snapshot_refuses_a_stale_pipeline_and_writes_nothing(reproduced):
    repo, _ = reproduced
    assert _snapshot(repo).exit_code == 0
    before = _tree(repo / "results")
    # The profile changed after the run: the metrics are no longer its numbers.
    for path in (repo / "params.yaml", repo / "params" / "full.yaml"):
        path.write_text("n: 4\n")

    _refused(_snapshot(repo), "the pipeline is not up to date (`dvc status`: make)")
    _refused(_snapshot(repo, "--out", str(repo / "elsewhere")), "not up to date")

    assert _tree(repo / "results") == before
    assert not (repo / "elsewhere").exists()


def test_snapshot_refuses_an_out_file_and_an_unnamed_profile(reproduced):
    repo, _ = reproduced
    target = repo / "results.json"
    target.write_text("mine")
    _refused(_snapshot(repo, "--out", str(target)), "is a file, not a folder")
    assert target.read_text() == "mine"

    (repo / "params.yaml").write_text("n: 3  # edited\n")
    _refused(_snapshot(repo), "equals no profile")
    assert not (repo / "results").exists()


def test_a_metrics_file_it_cannot_annotate_leaves_the_older_snapshot_intact(reproduced):
    repo, sh = reproduced
    assert _snapshot(repo).exit_code == 0
    before = _tree(repo / "results")
    for path in (repo / "params.yaml", repo / "params" / "full.yaml"):
        path.write_text("n: -1\n")  # the stage now writes a JSON list
    sh(sys.executable, "-m", "dvc", "repro", "-q")

    _refused(_snapshot(repo), "metrics/score.json: the top level is a list, not an object")

    assert _tree(repo / "results") == before
