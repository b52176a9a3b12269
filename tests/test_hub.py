"""models/hub: hub models fetched once by the `fetch` stage, then resolved offline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from codealign.errors import CodealignError
from codealign.lm.embedding import resolve_model
from codealign.lm.fetch import download, fetch_all, profile_models
from codealign.lm.hub import hub_dir, is_hub_id, local_model
from codealign.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_hub_ids_and_other_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # a local folder: models/base_model is a path, not an org
    assert is_hub_id("microsoft/phi-2") and is_hub_id("intfloat/e5-base-v2")
    for name in ("tiny", "bundled:all-MiniLM-L6-v2", "models/base_model", "./x/y", "/abs/dir"):
        assert not is_hub_id(name), name
    assert hub_dir("microsoft/phi-2") == Path("models/hub/microsoft--phi-2")


def test_a_fetched_hub_id_resolves_to_its_directory(tmp_path):
    target = hub_dir("org/model", tmp_path)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert local_model("org/model", "base_model.name", tmp_path) == str(target)
    assert local_model("tiny", "base_model.name", tmp_path) == "tiny"


def test_a_missing_model_ends_in_one_line_naming_the_fetch_command(tmp_path):
    with pytest.raises(CodealignError) as info:
        local_model("org/model", "base_model.name", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("base_model.name: 'org/model' is not fetched")
    assert "dvc repro fetch" in message


def test_every_loader_resolves_through_models_hub(tmp_path, monkeypatch):
    """embed.model, base_model.name and synth.hf_model fail the same way before any load."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CodealignError, match=r"^embed.model: 'intfloat/e5-base-v2' is not fetched"):
        resolve_model("intfloat/e5-base-v2")
    from codealign.pretraining.base_model import save_existing

    with pytest.raises(CodealignError, match=r"^base_model.name: 'microsoft/phi-2' is not fetch"):
        save_existing("microsoft/phi-2", tmp_path / "out")
    from codealign.synth.backends import make_backend

    synth = replace(load_params(ROOT / "params/paper.yaml")["synth"], backend="hf")
    synth = replace(synth, hf_model="microsoft/phi-2", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(CodealignError, match=r"^synth.hf_model: 'microsoft/phi-2' is not fetch"):
        make_backend(synth)
    target = tmp_path / "models/hub/intfloat--e5-base-v2"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert resolve_model("intfloat/e5-base-v2") == target.resolve()


def test_the_profiles_name_their_hub_models():
    paper = profile_models(load_params(ROOT / "params/paper.yaml"))
    assert paper == {"base_model.name": "microsoft/phi-2", "embed.model": "intfloat/e5-base-v2"}
    assert profile_models(load_params(ROOT / "params/default.yaml")) == {}
    rehearsal = profile_models(load_params(ROOT / "params/paper_rehearsal.yaml"))
    assert rehearsal["synth.hf_model"] == "microsoft/phi-2"


def fake_cache(cache: Path, name: str, commit: str, files: dict[str, str]) -> None:
    """The layout huggingface_hub keeps: blobs, snapshots/<commit> of links, refs/main."""
    repo = cache / f"models--{name.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for i, (file, text) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{i}"
        blob.write_text(text)
        (snapshot / file).symlink_to(blob)


def test_download_copies_a_snapshot_from_the_local_hf_cache(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    fake_cache(tmp_path / "hf", "org/model", commit, {"config.json": '{"a": 1}', "w.bin": "xy"})
    target = tmp_path / "hub" / "org--model"
    got = download("org/model", target, cache_dir=tmp_path / "hf", offline=True)
    assert got == commit
    assert (target / "config.json").read_text() == '{"a": 1}'
    assert not (target / "w.bin").is_symlink() and (target / "w.bin").read_text() == "xy"
    with pytest.raises(CodealignError, match="not in the local Hugging Face cache"):
        download("org/other", tmp_path / "x", cache_dir=tmp_path / "hf", offline=True)


def test_fetch_writes_a_manifest_and_nothing_else_in_the_default_profile(tmp_path):
    manifest = fetch_all(load_params(ROOT / "params/default.yaml"), tmp_path / "hub")
    assert manifest["models"] == {}
    assert sorted(p.name for p in (tmp_path / "hub").iterdir()) == ["fetched.json"]


def test_tiny_from_config_builds_phi_and_an_e5_style_embedder(tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForCausalLM

    params = load_params(ROOT / "params/paper_rehearsal.yaml")
    hub = tmp_path / "models/hub"
    manifest = fetch_all(params, hub, ROOT / "data/raw")
    assert set(manifest["models"]) == {"microsoft/phi-2", "intfloat/e5-base-v2"}
    assert manifest["models"]["microsoft/phi-2"]["params"] == ["base_model.name", "synth.hf_model"]
    assert json.loads((hub / "fetched.json").read_text()) == manifest

    phi = AutoModelForCausalLM.from_pretrained(hub / "microsoft--phi-2", local_files_only=True)
    assert type(phi).__name__ == "PhiForCausalLM"
    assert (phi.config.hidden_act, phi.config.layer_norm_eps) == ("gelu_new", 1e-5)  # kept
    assert phi.config.hidden_size < 2560 and phi.config.num_hidden_layers < 32

    encoder = SentenceTransformer(str(hub / "intfloat--e5-base-v2"), local_files_only=True)
    assert type(encoder[0].auto_model).__name__ == "BertModel"
    assert encoder.encode(["query: add two numbers"]).shape == (1, 64)

    # The stages then load these dirs by their hub names, offline.
    monkeypatch.chdir(tmp_path)
    assert resolve_model("intfloat/e5-base-v2") == (hub / "intfloat--e5-base-v2").resolve()
