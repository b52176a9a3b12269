"""The docs: README's generated blocks match the files, its length, and every relative link."""

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from codealign.params import load_params
from codealign.report.docs import TARGETS, docs_command, generated, pipeline_mermaid, results_block

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_generated_blocks_match_what_the_files_give():
    """README's results block and the stage graphs are what `codealign docs` writes now."""
    params = load_params(ROOT / "params.yaml")["report"]
    for target, text in generated(ROOT, params).items():
        assert (ROOT / target).read_text() == text, f"{target} is stale: run `codealign docs`"


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    first_block = lines[lines.index("```bash") + 1 : lines.index("```")]
    assert [line.split()[:2] for line in first_block] == [["make", "repro"], ["make", "test"]]


def copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("dvc.yaml", "params.yaml", *TARGETS):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, root / name)
    shutil.copytree(ROOT / "params", root / "params")
    for folder in ("metrics", "results/full"):
        for path in (ROOT / folder).glob("*.json"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / folder / path.name)
    return root


def test_results_block_follows_the_metrics_and_check_names_the_stale_file(tmp_path):
    root = copy_repo(tmp_path)
    evaluate = json.loads((root / "metrics" / "evaluate.json").read_text())
    evaluate["tinyeval"]["models"]["k1"]["pass@1"] = 0.9876
    evaluate["tinyeval"]["models"]["k1"]["pass@1_ci"] = {"low": 0.9, "high": 1.0}
    (root / "metrics" / "evaluate.json").write_text(json.dumps(evaluate))
    (root / "results" / "full" / "dpo_seeds.json").unlink()
    block = results_block(root)
    k1 = next(line for line in block.splitlines() if "k1 (K = 1)" in line)
    pass10 = evaluate["tinyeval"]["models"]["k1"]["pass@10_t0.8"]
    assert f"| 0.988 [0.900, 1.000] / {pass10:.3f} |" in k1
    dpo = next(line for line in block.splitlines() if "over seeds" in line)
    assert dpo.endswith("| not run | not run |")

    readme = (root / "README.md").read_text()
    result = CliRunner().invoke(docs_command, ["--root", str(root), "--check"])
    assert result.exit_code == 1 and "README.md" in result.output
    assert (root / "README.md").read_text() == readme  # --check writes nothing
    result = CliRunner().invoke(docs_command, ["--root", str(root)])
    assert result.exit_code == 0, result.output
    assert block in (root / "README.md").read_text()
    assert CliRunner().invoke(docs_command, ["--root", str(root), "--check"]).exit_code == 0


def test_results_block_labels_what_differs_between_profiles_and_names_a_bad_file(tmp_path):
    root = copy_repo(tmp_path)
    full = root / "results" / "full" / "evaluate.json"
    evaluate = json.loads(full.read_text())
    evaluate["tinyeval"]["models"]["routed"]["k"] = 10
    full.write_text(json.dumps(evaluate))
    default = json.loads((root / "metrics" / "evaluate.json").read_text())["tinyeval"]["models"]
    routed = next(line for line in results_block(root).splitlines() if ", routed" in line)
    ci = default["routed"]["pass@1_ci"]
    assert routed.startswith(
        "| tinyeval, routed: pass@1 [95% interval over tasks, where measured] / "
        "pass@10 (T = 0.8) | "
        f"K = {default['routed']['k']}: {default['routed']['pass@1']:.3f} "
        f"[{ci['low']:.3f}, {ci['high']:.3f}]"
    )
    assert "| K = 10: 0.426 / 0.625 |" in routed

    del evaluate["tinyeval"]["models"]
    full.write_text(json.dumps(evaluate))
    result = CliRunner().invoke(docs_command, ["--root", str(root)])
    assert result.exit_code == 2
    assert result.output == "error: results/full/evaluate.json: missing key 'tinyeval.models'\n"


def test_results_block_reads_dpo_models_from_evaluate_dpo(tmp_path):
    # `evaluate` scores base, k1 and routed; `evaluate_dpo` the DPO models, same columns.
    root = copy_repo(tmp_path)
    evaluate = json.loads((root / "metrics" / "evaluate.json").read_text())
    models = evaluate["tinyeval"]["models"]
    row = {**models["k1"], "pass@1": 0.4321, "pass@1_ci": {"low": 0.4, "high": 0.5}}
    row.pop("k", None)  # an adapter, not an sft dir
    dpo = {"tinyeval": {**evaluate["tinyeval"], "models": {"dpo_stage_4": row}}}
    (root / "metrics" / "evaluate_dpo.json").write_text(json.dumps(dpo))
    for name in [m for m in models if m.startswith("dpo_")]:
        del models[name]
    (root / "metrics" / "evaluate.json").write_text(json.dumps(evaluate))
    lines = results_block(root).splitlines()
    stage_4 = next(line for line in lines if "tinyeval, dpo_stage_4:" in line)
    assert f"| 0.432 [0.400, 0.500] / {row['pass@10_t0.8']:.3f} | not run |" in stage_4
    assert any("tinyeval, routed" in line for line in lines)

    del dpo["tinyeval"]["models"]["dpo_stage_4"]["pass@1"]
    (root / "metrics" / "evaluate_dpo.json").write_text(json.dumps(dpo))
    result = CliRunner().invoke(docs_command, ["--root", str(root)])
    assert result.exit_code == 2
    assert result.output == (
        "error: metrics/evaluate_dpo.json: missing key 'tinyeval.models.dpo_stage_4.pass@1'\n"
    )


def test_results_block_is_the_same_with_the_provenance_a_snapshot_adds(tmp_path):
    root = copy_repo(tmp_path)
    before = results_block(root)
    prov = {"command": "codealign snapshot", "commit": "abc", "dirty": False, "profile": "full"}
    for path in (root / "results" / "full").glob("*.json"):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            path.write_text(json.dumps({**data, "provenance": prov}))
    assert "provenance" in json.loads((root / "results/full/evaluate.json").read_text())
    assert results_block(root) == before


def test_stage_graph_has_every_stage_and_follows_dvc_yaml(tmp_path):
    root = copy_repo(tmp_path)
    diagram = pipeline_mermaid(root)
    for stage in ("seed", 'dpo_stage_1["dpo@stage_1"]', "dpo_compare", "report"):
        assert stage in diagram
    assert "  score --> pairs\n" in diagram
    # A new stage after `pairs` appears as pairs' successor.
    text = (root / "dvc.yaml").read_text()
    new = "  audit:\n    cmd: python -c pass\n    deps: [data/pairs]\n    outs: [audit]\n"
    (root / "dvc.yaml").write_text(text.replace("stages:\n", "stages:\n" + new, 1))
    assert re.search(r"^  pairs --> (.* & )?audit\b", pipeline_mermaid(root), re.M)


def test_missing_markers_name_the_file(tmp_path):
    root = copy_repo(tmp_path)
    (root / "docs" / "pipeline.md").write_text("# no markers\n")
    result = CliRunner().invoke(docs_command, ["--root", str(root)])
    assert result.exit_code == 2
    assert "docs/pipeline.md: expected one '<!-- dag:start -->'" in result.output


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", strip_fences(page.read_text()), re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def strip_fences(text: str) -> str:
    """The markdown without its fenced blocks (where `# ...` is a comment, not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def strip_code(text: str) -> str:
    """The markdown without fenced blocks and inline code, where links are not links."""
    return re.sub(r"`[^`\n]*`", "", strip_fences(text))


def test_docs_exist():
    names = {page.name for page in PAGES}
    assert {"method.md", "pipeline.md", "sandbox.md", "specialists.md", "dpo.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(strip_code(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def shown_code(text: str) -> str:
    """Every inline code span and fenced block of a markdown text, one per line."""
    spans = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S)
    spans += re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    return "\n".join(spans)


def test_every_command_and_script_the_docs_show_exists():
    """`codealign NAME` answers --help; `stages/…py` and `benchmarks/…py` are files."""
    from codealign.cli import main

    code = "\n".join(shown_code(page.read_text()) for page in PAGES)
    names = set(re.findall(r"(?:^|[\s(])codealign ([a-z][a-z-]*)", code, flags=re.M))
    assert {"check", "docs", "exps", "ksweep"} <= names
    for name in sorted(names):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, f"`codealign {name} --help`: {result.output}"
    scripts = set(re.findall(r"\b((?:stages|benchmarks)/\w+\.py)\b", code))
    assert scripts and not [s for s in sorted(scripts) if not (ROOT / s).is_file()]


def test_where_does_my_change_go_names_real_modules_stages_and_tests():
    """Every module, stage and test file in the README's map exists under that name."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Where does my change go", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    stages = set(re.findall(r"^  ([\w@]+):", (ROOT / "dvc.yaml").read_text(), flags=re.M))
    missing = []
    for row in rows[1:]:
        _, modules, stage_cell, tests = (cell.strip() for cell in row.strip("|").split("|"))
        for module in re.findall(r"`([\w/.*]+)`", modules):
            if not list((ROOT / "codealign").glob(module.rstrip("/"))):
                missing.append(f"codealign/{module}")
        for stage in re.findall(r"`(\w+)", stage_cell):
            if stage not in stages and stage not in ("codealign", "ksweep", "mixture"):
                missing.append(f"stage {stage}")
        for test in re.findall(r"`([\w*]+\.py)`", tests):
            if not list((ROOT / "tests").glob(test)):
                missing.append(f"tests/{test}")
    assert len(rows) > 10 and not missing, missing


def test_every_make_target_and_experiment_param_the_docs_show_exists():
    """`make X` is a Makefile target; `-S key=value` names a key of params.yaml."""
    import yaml

    code = "\n".join(shown_code(page.read_text()) for page in PAGES)
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    shown = set(re.findall(r"(?:^|[\s(`])make ([a-z][\w-]*)", code, flags=re.M))
    assert {"repro", "test"} <= shown and not shown - targets, shown - targets
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    missing = []
    for key in sorted(set(re.findall(r"-S ([\w.]+)=", code))):
        node = params
        for part in key.split("."):
            node = node.get(part, missing) if isinstance(node, dict) else missing
        if node is missing:
            missing.append(key)
    assert not missing, f"-S keys not in params.yaml: {missing}"


def test_the_readme_stage_table_has_every_stage():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    section = (ROOT / "README.md").read_text().split("| stage | reads |", 1)[1].split("\n\n")[0]
    listed = set(re.findall(r"^\| `([\w@]+)", section, flags=re.M))
    listed = {"dpo" if name.startswith("dpo@") else name for name in listed}
    assert set(stages) - listed == set()
