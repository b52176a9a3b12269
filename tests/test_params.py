from pathlib import Path

import pytest
import yaml

from codealign.errors import CodealignError
from codealign.params import SECTIONS, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [ROOT / "params.yaml", *sorted((ROOT / "params").glob("*.yaml"))]


def default() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_profile_is_valid_and_complete(path):
    params = load_params(path)
    raw = yaml.safe_load(path.read_text())
    # Complete: every key of every section is written out, so DVC tracks it.
    for name, section in params.sections.items():
        assert name in raw, f"{path.name} lacks section {name}"
        assert set(raw[name]) == set(section.to_dict()), f"{path.name}: {name}"


def test_params_are_frozen():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(AttributeError):
        params["base_model"].steps = 3


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("k",), 0, "k must be an integer >= 1, got 0"),
        (("k",), "ten", "k must be an integer >= 1, got 'ten'"),
        (("seed",), -1, "seed must be an integer >= 0"),
        (("train_seed",), -2, "train_seed must be an integer >= 0, got -2"),
        (("train_seed",), "one", "train_seed must be an integer >= 0, got 'one'"),
        (("base_model", "steps"), -3, "base_model.steps must be an integer >= 1, got -3"),
        (("base_model", "steps"), 2.5, "base_model.steps must be an integer"),
        (("base_model", "steps"), True, "base_model.steps must be an integer"),
        (("base_model", "code_share"), 1.5, "base_model.code_share must be a number in [0, 1]"),
        (("base_model", "learning_rate"), float("nan"), "base_model.learning_rate"),
        (("base_model", "dtype"), "int8", "base_model.dtype must be one of"),
        (("data", "source"), "web", "data.source must be one of tinyworld, real"),
        (("base_model", "hidden_size"), 130, "base_model.hidden_size (130) must be a multiple"),
    ],
)
def test_bad_values_name_the_key(path, value, message):
    raw = default()
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(
        CodealignError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        parse_params(raw)


def test_train_seed_defaults_to_the_master_seed():
    raw = default()
    raw["seed"] = 7
    raw["train_seed"] = None
    assert parse_params(raw).train_seed == 7
    del raw["train_seed"]  # absent, as in a params file older than the key
    assert parse_params(raw).train_seed == 7
    raw["train_seed"] = 2
    params = parse_params(raw)
    assert (params.seed, params.train_seed) == (7, 2)


def test_a_section_seed_defaults_to_the_master_seed():
    raw = default()
    raw["seed"] = 7
    raw["base_model"]["seed"] = None
    raw["lintseq"]["seed"] = 3
    params = parse_params(raw)
    assert params.seed_of("base_model") == 7
    assert params.seed_of("lintseq") == 3


def test_unknown_keys_are_errors():
    raw = default()
    raw["base_model"]["stpes"] = 10
    with pytest.raises(CodealignError, match="unknown params key 'base_model.stpes'"):
        parse_params(raw)
    raw = default()
    raw["dedupe"] = {}
    with pytest.raises(CodealignError, match="unknown params key 'dedupe'"):
        parse_params(raw)


def test_missing_top_level_key_and_bad_yaml(tmp_path):
    raw = default()
    del raw["seed"]
    with pytest.raises(CodealignError, match="missing params key 'seed'"):
        parse_params(raw)
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: 0\nk: [1,\n")
    with pytest.raises(CodealignError, match=r"params.yaml:\d+: invalid YAML"):
        load_params(bad)
    with pytest.raises(CodealignError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_sections_registered_for_every_stage_so_far():
    load_params(ROOT / "params.yaml")
    assert {"data", "base_model"} <= set(SECTIONS)


# What the default changes to run in about 15 minutes: sizes, and two sampling batch
# sizes (64 rows run 1.5x faster than 32 on 2 cores); every other value is full.yaml's.
SCALED = {
    "data.n_pool", "data.n_eval", "data.s1_size", "data.s2_size", "base_model.eval_tasks",
    "synth.items_per_cycle", "synth.s3_requests", "synth.s4_requests", "synth.s5_requests",
    "dataset_metrics.sample_size", "lintseq_eval.limit", "lintseq_eval.n", "lintseq_eval.ks",
    "lintseq_eval.epochs", "dpo.eval_limit", "sample.batch_size", "dpo.eval_batch_size",
}  # fmt: skip


def test_the_default_is_the_full_profile_scaled_down():
    full = yaml.safe_load((ROOT / "params" / "full.yaml").read_text())
    ours = default()
    differ = set()
    for name in set(full) | set(ours):
        if isinstance(full.get(name), dict) and isinstance(ours.get(name), dict):
            keys = set(full[name]) | set(ours[name])
            differ |= {f"{name}.{k}" for k in keys if full[name].get(k) != ours[name].get(k)}
        elif full.get(name) != ours.get(name):
            differ.add(name)
    assert differ == SCALED
