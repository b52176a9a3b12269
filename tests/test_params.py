import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from codealign.cli import main
from codealign.errors import CodealignError
from codealign.params import SECTIONS, load_params, parse_params
from codealign.params.reference import markdown

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


def test_every_section_of_params_yaml_has_a_class_and_every_class_a_section():
    sections = {key for key, value in default().items() if isinstance(value, dict)}
    assert sections == set(SECTIONS)


def test_code_defaults_are_the_values_of_the_default_profile():
    """A section built in code (tests, benchmarks, a partial mapping) runs what the default
    profile runs: every field's default is params/default.yaml's value for that key."""
    resolved = load_params(ROOT / "params" / "default.yaml")
    differ = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            missing = f.default is dataclasses.MISSING
            code = f.default_factory() if missing else f.default
            yaml_value = getattr(resolved[name], f.name)
            if code != yaml_value or type(code) is not type(yaml_value):
                differ.append(f"{name}.{f.name}: code {code!r}, profile {yaml_value!r}")
    assert not differ, differ
    # And so a file with only the required top-level keys resolves to the default profile.
    bare = parse_params({"seed": resolved.seed, "k": resolved.k})
    assert bare == resolved


def test_every_key_and_section_has_a_doc():
    undocumented = [
        f"{name}.{f.name}"
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if not f.metadata["doc"].strip()
    ]
    assert not undocumented, undocumented
    # A class without a docstring gets dataclass's generated signature instead.
    assert not [n for n, c in SECTIONS.items() if c.__doc__.startswith(c.__name__ + "(")]


def test_importing_params_imports_no_library_module_and_nothing_heavy():
    code = (
        "import sys, json, codealign.params; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('codealign', 'torch', 'transformers', 'sklearn', 'numpy', "
        "'click'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(json.loads(out.stdout))
    outside = {m for m in loaded if m != "codealign" and not m.startswith("codealign.params")}
    assert outside == {"codealign.errors"}
    assert "codealign.params.core" in loaded  # the check saw the package's own modules


def test_reference_page_matches_the_code_and_profiles():
    committed = (ROOT / "docs" / "params.md").read_text(encoding="utf-8")
    assert committed == markdown(ROOT), "regenerate: codealign params --markdown > docs/params.md"
    for name, cls in SECTIONS.items():
        assert f"## `{name}`" in committed
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in committed


def test_params_command_prints_the_page_and_a_profile_resolved():
    runner = CliRunner()
    page = runner.invoke(main, ["params", "--markdown", "--root", str(ROOT)])
    assert page.exit_code == 0 and page.output == markdown(ROOT)
    smoke = runner.invoke(main, ["params", "--params", str(ROOT / "params" / "smoke.yaml")])
    assert smoke.exit_code == 0
    resolved = json.loads(smoke.output)
    assert (
        resolved["k"] == 2
        and resolved["sample"] == load_params(ROOT / "params" / "smoke.yaml")["sample"].to_dict()
    )
    bad = runner.invoke(main, ["params", "--params", str(ROOT / "nope.yaml")])
    assert bad.exit_code == 2 and "params file not found" in bad.output


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
