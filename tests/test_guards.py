"""Params this machine cannot honour stop a stage with one line, before any model load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign import guards

ROOT = Path(__file__).resolve().parents[1]
NO_GPU = guards.cuda_problem() is not None
needs_no_gpu = pytest.mark.skipif(not NO_GPU, reason="this machine has a usable GPU")


def smoke_with(tmp_path: Path, section: str, key: str, value) -> Path:
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@needs_no_gpu
def test_nf4_stops_sft_with_one_line_before_the_base_model_is_read(tmp_path, monkeypatch):
    import transformers

    loads = []
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        classmethod(lambda cls, *a, **k: loads.append(a)),
    )
    monkeypatch.chdir(ROOT)  # dvc.yaml says which sections the sft stage reads
    params = smoke_with(tmp_path, "sft", "quantization", "nf4")
    result = CliRunner().invoke(
        stage("sft"), ["--params", str(params), "--base", str(tmp_path / "no-model")]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {params}: sft.quantization 'nf4' cannot run here: ")
    assert loads == []


@needs_no_gpu
def test_the_guard_fires_when_dvc_runs_the_script(tmp_path):
    params = smoke_with(tmp_path, "sft", "quantization", "nf4")
    result = subprocess.run(
        [sys.executable, "stages/sft.py", "--params", str(params), "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {params}: sft.quantization 'nf4' cannot run here: {guards.cuda_problem()}"
    ]
    assert not (tmp_path / "o").exists()


def test_vllm_without_vllm_names_the_param_and_the_extra(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = smoke_with(tmp_path, "sample", "backend", "vllm")
    if guards._vllm("vllm") is None:
        pytest.skip("vllm and a GPU are present")
    result = CliRunner().invoke(stage("sample"), ["--params", str(params)])
    assert result.exit_code == 2
    assert f"{params}: sample.backend 'vllm' cannot run here: " in result.output
    assert len(result.output.strip().splitlines()) == 1


@needs_no_gpu
def test_a_stage_that_does_not_read_the_section_is_not_stopped(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    params = smoke_with(tmp_path, "sft", "quantization", "nf4")
    assert "sft" not in guards.stage_sections("dedup")
    assert "sft" in guards.stage_sections("sft")
    guards.check(params, "dedup")  # curating data on CPU with the paper profile is fine
    with pytest.raises(guards.CodealignError, match="sft.quantization"):
        guards.check(params, "sft")
    with pytest.raises(guards.CodealignError, match="sft.quantization"):
        guards.check(params, "not_in_dvc_yaml")  # unknown stage: every key is checked


def test_hidden_gpus_are_named_as_the_reason(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert guards.cuda_problem() == "CUDA_VISIBLE_DEVICES hides every GPU"


def test_every_profile_runs_here_or_is_the_paper_profile():
    for name in ("default", "smoke", "full"):
        for stage_name in ("sft", "sample", "dpo", "embed"):
            guards.check(ROOT / "params" / f"{name}.yaml", stage_name)
