"""The report stage: every section, valid figures, "Not run" for missing inputs, stable bytes."""

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.errors import CodealignError
from codealign.params import parse_params
from codealign.params.report import ReportParams
from codealign.report.dpo import seed_band
from codealign.report.timing import stage_times

ROOT = Path(__file__).resolve().parents[1]
BASE = "dc30" * 16  # the base model the fixture's runs and aggregates share
PNG = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "## Dataset",
    "### Synthesis",
    "## Deduplication",
    "## Clusters",
    "## Models",
    "## pass@k against K",
    "## Curriculum DPO",
    "### Curriculum against shuffled",
    "### Per-sample loss against pair distance",
    "## Edit sequences against programs (LintSeq)",
    "## Code share of the pretraining mixture",
    "## Training curves",
    "## Wall time per stage",
)


def dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def tsv(path: Path, name: str, rows: list[tuple[int, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"step\t{name}\n" + "".join(f"{s}\t{v}\n" for s, v in rows))


def png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, [[0.0, 1.0], [1.0, 0.0]])


def curve(values: list[float], steps=(0, 3, 6)) -> list[dict]:
    return [{"step": s, "pass@1": v} for s, v in zip(steps, values, strict=True)]


def write_metrics(m: Path) -> None:
    """Small metrics files shaped like those a smoke run of the pipeline leaves in metrics/."""
    row = {
        "code_spread": 2.3,
        "cyclomatic_complexity": 1.6,
        "data_points": 149,
        "halstead_difficulty": 0.6,
        "halstead_length": 3.6,
        "halstead_vocabulary": 3.4,
        "parse_failures": 0,
        "question_mtld": 24.7,
        "question_spread": 2.7,
    }
    dump(m / "dataset_metrics.json", {"curated": row, "mbpp": {**row, "data_points": 974}})
    strategy = {
        "acceptance_rate": 0.6875,
        "accepted": 11,
        "rejected": 5,
        "rejected_by_reason": {"refusal": 5},
        "requests": 16,
        "size": 11,
    }
    dump(m / "synth.json", {"backend": {"name": "tinyworld"}, "s5": strategy, "total": {}})
    dump(
        m / "dedup.json",
        {
            "before": {"s1_star": 16, "s5": 11, "seed_s1": 40},
            "after": {"s1_star": 16, "s5": 10, "seed_s1": 39},
            "records_before": 67,
            "records_after": 65,
            "removed": {"contaminated_ngram": 1, "duplicate_id": 0, "near_duplicate": 1},
            "train": 60,
            "validation": 5,
        },
    )
    dump(
        m / "cluster.json",
        {
            "dissolved": [],
            "inertia": 80.1,
            "k": 2,
            "k_requested": 2,
            "silhouette": 0.1,
            "sizes": [24, 36],
            "train_items": 60,
            "validation_items": 5,
            "validation_sizes": [2, 3],
        },
    )
    png(m / "cluster" / "projection.png")
    adapter = {"cluster": 0, "steps": 4, "eval_loss": 5.3, "train_items": 24}
    dump(m / "sft.json", {"adapters": [adapter, {**adapter, "cluster": 1}], "k": 2})
    model = {
        "pass@1": 0.25,
        "pass@1_t0.8": 0.2,
        "pass@10_t0.8": 0.6,
        "solved_always": 0.1,
        "solved_never": 0.4,
        "solved_sometimes": 0.5,
    }
    routed = {
        **model,
        "k": 2,
        "pass@1": 0.375,
        "pass@1_ci": {"low": 0.125, "high": 0.625},
        "pass@10_t0.8_ci": {"low": 0.375, "high": 0.875},
        "pass@1_by_cluster": {"0": 0.5, "1": None},
        "tasks_by_cluster": [8, 0],
    }
    dump(
        m / "evaluate.json",
        {
            "tinyeval": {
                "models": {"base": model, "routed": routed},
                "samples_per_task": 10,
                "tasks": 8,
                "functions": 7,
                "confidence": 0.95,
            }
        },
    )
    dpo_model = {**model, "pass@1": 0.3125, "pass@1_ci": {"low": 0.125, "high": 0.5}}
    dump(
        m / "evaluate_dpo.json",
        {
            "tinyeval": {
                "models": {"dpo_stage_4": dpo_model, "dpo_shuffled": {**model, "pass@1": 0.25}},
                "samples_per_task": 10,
                "tasks": 8,
                "functions": 7,
                "confidence": 0.95,
            }
        },
    )
    stages = [
        {"bucket": 1, "high": None, "low": 0.4, "pairs": 6, "pairs_before_pruning": 7, "stage": 1},
        {"bucket": 0, "high": 0.4, "low": None, "pairs": 0, "pairs_before_pruning": 0, "stage": 2},
    ]
    dump(
        m / "curriculum.json",
        {
            "order": "descending",
            "pairs_in": 7,
            "pairs_kept": 6,
            "pruned": {"identical_after_strip": 1},
            "stages": stages,
            "tasks": 40,
            "ties": 33,
        },
    )
    png(m / "curriculum" / "distance_hist.png")
    trained = {"bucket": 1, "pairs": 6, "skipped": False, "stage": 1, "steps": 3, "end_step": 3}
    trained |= {"eval": {"pass@1": 0.3}, "eval_init": {"pass@1": 0.25}}
    skipped = {"bucket": 0, "pairs": 0, "skipped": True, "stage": 2, "steps": 0, "end_step": 3}
    dump(m / "dpo" / "stage_1.json", trained)
    dump(m / "dpo" / "stage_2.json", {**skipped, "reason": "no pairs"})
    evals = [{"step": 3, "pass@1": 0.28}, {"step": 6, "pass@1": 0.27}]
    dump(m / "dpo" / "shuffled.json", {"pairs": 6, "skipped": False, "steps": 6, "evals": evals})
    png(m / "dpo" / "loss_vs_distance.png")
    dump(
        m / "dpo_compare.json",
        {
            "curriculum": curve([0.25, 0.3, 0.3]),
            "shuffled": curve([0.25, 0.28, 0.27]),
            "final_curriculum_pass@1": 0.3,
            "final_shuffled_pass@1": 0.27,
            "final_difference": 0.03,
            "mean_difference_at_boundaries": 0.025,
            "steps": 6,
            "curve_benchmarks": ["tinydev"],
            "final_evaluation": {
                "tinyeval": {
                    "mean_difference": 0.0625,
                    "low": -0.0625,
                    "high": 0.1875,
                    "p_value": 0.5,
                    "tasks": 8,
                    "wins": 2,
                    "losses": 1,
                    "ties": 5,
                    "confidence": 0.95,
                    "curriculum_pass@1": 0.3125,
                    "shuffled_pass@1": 0.25,
                    "conclusion": "inconclusive: the 95% interval over tasks contains 0",
                }
            },
        },
    )
    seeds = [
        {
            "seed": s,
            "curriculum": curve([0.25, 0.3 + d, 0.3 + d]),
            "shuffled": curve([0.25, 0.28, 0.27 - d]),
        }
        for s, d in enumerate((0.0, 0.02, -0.01))
    ]
    dump(m / "dpo_seeds.json", {"base_model_digest": BASE, "seeds": seeds})

    def stats(values):
        mean = sum(values) / len(values)
        return {"mean": mean, "min": min(values), "max": max(values), "n": len(values)}

    sweep = [(1, [0.7, 0.72, 0.68]), (5, [0.3, 0.35, 0.25]), (10, [0.2])]
    by_k = [
        {"k": k, "seeds": list(range(len(v))), "pass@1": stats(v), "pass@10_t0.8": stats(v)}
        for k, v in sweep
    ]
    dump(
        m / "ksweep.json",
        {
            "benchmark": "tinyeval",
            "metrics": ["pass@1", "pass@10_t0.8"],
            "by_k": by_k,
            "base_model_digest": BASE,
        },
    )
    png(m / "ksweep.png")

    def target(pass1, failed):
        return {"pass@1": pass1, "pass@10": pass1 + 0.2, "pass@50": pass1 + 0.3,
                "edit_failed_share": failed, "statuses": {"passed": 3}}  # fmt: skip

    dump(
        m / "lintseq_eval.json",
        {"benchmark": "tinyeval", "tasks": 8, "samples_per_task": 50, "temperature": 0.8,
         "steps": 12, "train_seed": 0, "code": target(0.3, 0.0), "edits": target(0.2, 0.05)},
    )  # fmt: skip
    png(m / "lintseq_eval" / "pass_at_k.png")
    dump(
        m / "lintseq_seeds.json",
        {"seeds": [0, 1, 2], "base_model_digest": BASE, "by_target": {
            t: {"edit_failed_share": stats([0.0]), "pass@50": stats([x + 0.3 for x in v]),
                "pass@1": stats(v)}
            for t, v in (("code", [0.3, 0.32, 0.28]), ("edits", [0.2, 0.25, 0.15]))}},
    )  # fmt: skip
    png(m / "lintseq_seeds.png")
    dump(
        m / "base_model_eval.json",
        {"code_share": 0.25, "english": {"bits_per_byte": 0.25}, "code": {"bits_per_byte": 0.1},
         "instructions_heldout": {"correct": 188, "prompts": 200}, "model_digest": BASE},
    )  # fmt: skip
    shares = [
        {"code_share": 0.0, "base_seeds": [0], "sft_runs": [],
         "english_bits_per_byte": stats([0.2]), "code_bits_per_byte": stats([0.9]),
         "instruction_accuracy": stats([0.95]), "sft_pass@1": None},
        {"code_share": 0.5, "base_seeds": [0, 1, 2], "sft_runs": [[0, 0], [0, 1]],
         "english_bits_per_byte": stats([0.3, 0.32, 0.34]),
         "code_bits_per_byte": stats([0.1]), "instruction_accuracy": stats([0.9]),
         "sft_pass@1": stats([0.7, 0.8])},
    ]  # fmt: skip
    runs = [{"code_share": 0.25, "model_digest": BASE}, {"code_share": 0.5, "model_digest": "f0"}]
    dump(m / "mixture.json", {"benchmark": "tinyeval", "by_share": shares, "runs": runs})
    png(m / "mixture.png")
    tsv(m / "base_model/plots/metrics/train/loss.tsv", "loss", [(1, 6.0), (2, 5.5), (3, 5.2)])
    for adapter_dir in ("adapter_0", "adapter_1"):
        run = m / "sft/plots/metrics" / adapter_dir
        tsv(run / "train/loss.tsv", "loss", [(2, 5.35), (4, 5.33)])
        tsv(run / "eval/eval_loss.tsv", "eval_loss", [(4, 5.3)])
    times = {"seed": 1.5, "base_model": 40.25, "report": 3.0}
    dump(
        m / "stage_times.json",
        {"profile": "smoke", "stages": times, "order": list(times), "total_s": 44.75, "cores": 2},
    )


def test_aggregates_from_another_base_model_say_so_and_leave_the_curves_alone(tmp_path):
    reports = {}
    for name, digest in (("same", BASE), ("other", "ab" * 32)):
        metrics = tmp_path / name / "metrics"
        write_metrics(metrics)
        eval_file = metrics / "base_model_eval.json"
        dump(eval_file, {**json.loads(eval_file.read_text()), "model_digest": digest})
        assert run_report(tmp_path / name, metrics=metrics).exit_code == 0
        reports[name] = metrics
    text = (reports["other"] / "report.md").read_text()
    notes = re.findall(r"\*From another base model: the runs in `?metrics/(\w+)\.json", text)
    assert sorted(notes) == ["dpo_seeds", "ksweep", "lintseq_seeds", "mixture"]
    assert f"base model {BASE[:8]}, this pipeline's is abababab" in text
    # The seeds keep their table; the plot draws this run's curves, not their band.
    assert "Over 3 seeds" in text
    assert "From another base model" not in (reports["same"] / "report.md").read_text()
    figures = [(m / "report" / "dpo_pass_at_1.png").read_bytes() for m in reports.values()]
    assert figures[0] != figures[1]


def make_params(tmp_path: Path, **report) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "k": 2, "report": {"resamples": 500, **report}}))
    return path


def run_report(tmp_path: Path, params: Path | None = None, metrics: Path | None = None):
    metrics = metrics or tmp_path / "metrics"
    args = ["--params", str(params or make_params(tmp_path)), "--metrics-dir", str(metrics)]
    args += ["--out", str(metrics / "report.md"), "--figures", str(metrics / "report")]
    return CliRunner().invoke(stage("report"), args, catch_exceptions=False)


def image_links(md: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text())


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    write_metrics(tmp_path / "metrics")
    result = run_report(tmp_path)
    assert result.exit_code == 0, result.output
    return tmp_path


def test_report_has_every_section_and_every_figure_is_a_png(full_report):
    md = full_report / "metrics" / "report.md"
    text = md.read_text()
    for heading in SECTIONS:
        assert f"\n{heading}\n" in text, heading
    assert "Not run" not in text and "Not measured" not in text
    links = image_links(md)
    names = {
        "dedup_funnel.png",
        "cluster_projection.png",
        "models.png",
        "ksweep.png",
        "curriculum_distance_hist.png",
        "dpo_pass_at_1.png",
        "dpo_loss_vs_distance.png",
        "curves_base_model.png",
        "curves_sft.png",
        "lintseq_pass_at_k.png",
        "lintseq_seeds.png",
        "mixture.png",
    }
    assert {Path(link).name for link in links} == names
    assert sorted(p.name for p in (full_report / "metrics" / "report").iterdir()) == sorted(names)
    for link in links:
        assert link.startswith("report/"), link  # relative to the markdown file
        assert (md.parent / link).read_bytes().startswith(PNG), link


def test_report_tables_show_what_users_compare(full_report):
    text = (full_report / "metrics" / "report.md").read_text()
    # pass@1, pass@1 and pass@10 at T; routed's with their intervals over tasks
    assert "| base | – | 0.2500 | 0.2000 | 0.6000 |" in text  # an evaluate.json without them
    assert "| routed | 2 | 0.3750 [0.1250, 0.6250] | 0.2000 | 0.6000 [0.3750, 0.8750] |" in text
    # DPO's final models from evaluate_dpo.json, in the same table as evaluate.json's
    assert "| dpo_stage_4 | – | 0.3125 [0.1250, 0.5000] | 0.2000 | 0.6000 |" in text
    assert "| dpo_shuffled | – | 0.2500 | 0.2000 | 0.6000 |" in text
    assert "(`metrics/evaluate.json` and `metrics/evaluate_dpo.json`)" in text
    assert "8 tasks holding 7 distinct functions" in text
    assert "95% bootstrap interval over tasks (resampling tasks, not samples" in text
    assert "samples)" not in text.replace("not samples", "")  # no interval over samples
    assert "On tinydev (the dev set the curves are drawn on)" in text
    assert (
        "| tinyeval | 8 | 0.3125 | 0.2500 | 0.0625 [-0.0625, 0.1875] | 0.5000 | 2 / 1 / 5 "
        "| inconclusive: the 95% interval over tasks contains 0 |"
    ) in text
    assert "| routed | 1 | 0 | – |" in text  # a cluster no task was routed to
    assert "| **total** | 67 | 65 | 2 |" in text
    assert "| 5 | 0, 1, 2 | 0.3000 (0.2500–0.3500) |" in text  # mean (range) over seeds
    assert "| 10 | 0 | 0.2000 | 0.2000 |" in text  # one seed: no range
    assert "| 0 | 24 | 40.0% | 2 | 4 | 5.3000 |" in text
    assert "Over 3 seeds" in text and "95% percentile-bootstrap" in text
    assert "| stage_2 | 0 | 0 | 0 | – | no pairs |" in text
    assert "2 runs (adapter_0, adapter_1)" in text
    assert "| code | 0.3000 | 0.5000 | 0.6000 | 0.0000 |" in text  # pass@1/10/50, edit_failed
    assert "| edits | 0.2000 | 0.4000 | 0.5000 | 0.0500 |" in text
    assert "| edits | 0.2000 (0.1500–0.2500) | 0.5000 (0.4500–0.5500) |" in text
    assert "| Trained on | pass@1 | pass@50 | edit_failed_share |" in text
    assert "code share 0.25: held-out English 0.2500 bits/byte" in text
    assert "188 of 200 answered exactly" in text
    # Pretraining seeds spread the base-model columns; SFT runs spread pass@1.
    assert (
        "| 0.5 | 0, 1, 2 | 2 | 0.3200 (0.3000–0.3400) | 0.1000 | 0.9000 | 0.7500 (0.7000–0.8000) |"
        in text
    )
    assert "| 0 | 0 | 0 | 0.2000 | 0.9000 | 0.9500 | – |" in text  # no evaluate: no pass@1
    assert "| base_model | 40.2 | 89.9% |" in text and "Profile `smoke` on 2 cores" in text
    assert str(full_report) not in text  # no absolute paths: the same bytes wherever it runs


def test_rerun_is_byte_identical(full_report):
    metrics = full_report / "metrics"
    before = {p.name: p.read_bytes() for p in [metrics / "report.md", *metrics.glob("report/*")]}
    assert run_report(full_report).exit_code == 0
    after = {p.name: p.read_bytes() for p in [metrics / "report.md", *metrics.glob("report/*")]}
    assert after == before


def _columns(data, prefix=""):
    """The flattened keys, as `dvc metrics show` makes columns of them."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _columns(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def test_headline_metrics_are_a_few_numbers_from_the_stages_files(full_report):
    metrics = full_report / "metrics"
    headline = {p.name: json.loads(p.read_text()) for p in (metrics / "headline").iterdir()}
    assert sorted(headline) == [
        "dataset.json", "dedup.json", "dpo.json", "lintseq.json", "times.json", "tinyeval.json",
    ]  # fmt: skip
    evaluate = json.loads((metrics / "evaluate.json").read_text())["tinyeval"]["models"]
    assert headline["tinyeval.json"] == {
        "pass@1": {model: scores["pass@1"] for model, scores in evaluate.items()}
    }
    dedup = json.loads((metrics / "dedup.json").read_text())
    assert headline["dedup.json"]["records"] == dedup["records_after"]
    assert headline["dedup.json"]["removed"] == dedup["records_before"] - dedup["records_after"]
    compare = json.loads((metrics / "dpo_compare.json").read_text())
    # The final models on the final benchmark (paired over tasks), not the dev-set curves.
    final = compare["final_evaluation"]["tinyeval"]
    assert headline["dpo.json"]["difference"] == final["mean_difference"]
    assert headline["dpo.json"]["pass@1"] == {
        "curriculum": final["curriculum_pass@1"],
        "shuffled": final["shuffled_pass@1"],
    }
    assert headline["dataset.json"] == {"question_mtld": 24.7, "records": 149}
    times = json.loads((metrics / "stage_times.json").read_text())
    assert headline["times.json"] == {"total_s": times["total_s"]}
    # One table a terminal shows: few columns, and no `error` key (DVC reads it as a failure).
    columns = {column for data in headline.values() for column in _columns(data)}
    assert len(columns) <= 11
    assert not any(column.split(".")[-1] == "error" for column in columns)


def test_headline_of_a_partial_run_has_only_what_ran(tmp_path):
    metrics = tmp_path / "metrics"
    write_metrics(metrics)
    for name in ("evaluate.json", "dpo_compare.json", "stage_times.json"):
        (metrics / name).unlink()
    assert run_report(tmp_path).exit_code == 0
    names = sorted(p.name for p in (metrics / "headline").iterdir())
    assert names == ["dataset.json", "dedup.json", "lintseq.json"]


def test_missing_inputs_give_not_run_sections(tmp_path):
    (tmp_path / "metrics").mkdir()
    result = run_report(tmp_path)
    assert result.exit_code == 0, result.output
    md = tmp_path / "metrics" / "report.md"
    text = md.read_text()
    for heading in SECTIONS:
        assert heading in text
    stage_names = ("dataset_metrics", "synth", "dedup", "cluster", "evaluate", "evaluate_dpo")
    for stage_name in (*stage_names, "curriculum"):
        assert f"is written by `dvc repro {stage_name}`" in text, stage_name
    assert "`dvc repro dpo_compare`" in text and "`dvc repro base_model`" in text
    assert "`dvc repro lintseq_eval`" in text and "`dvc repro base_model_eval`" in text
    assert "No K sweep yet" in text and "codealign ksweep" in text
    assert "bench_stage_times.py --profile default --out metrics/stage_times.json" in text
    assert image_links(md) == [] and list((tmp_path / "metrics" / "report").iterdir()) == []


def test_models_without_evaluate_dpo_show_evaluate_and_say_what_is_missing(tmp_path):
    # A K sweep's run (`dvc exp run -S k=10 evaluate`) has evaluate.json alone.
    metrics = tmp_path / "metrics"
    write_metrics(metrics)
    (metrics / "evaluate_dpo.json").unlink()
    assert run_report(tmp_path).exit_code == 0
    text = (metrics / "report.md").read_text()
    models = text.split("## Models")[1].split("\n## ")[0]
    assert "| routed | 2 | 0.3750 [0.1250, 0.6250] |" in models
    assert "dpo_stage_4" not in models
    assert "`metrics/evaluate_dpo.json` is missing; it is written by `dvc repro evaluate_dpo`" in (
        models
    )


def test_a_pre_split_evaluate_json_gives_way_to_evaluate_dpo(tmp_path):
    # evaluate.json of before the split still scored the DPO models: evaluate_dpo's row wins.
    metrics = tmp_path / "metrics"
    write_metrics(metrics)
    data = json.loads((metrics / "evaluate.json").read_text())
    data["tinyeval"]["models"]["dpo_stage_4"] = {"pass@1": 0.9876}
    (metrics / "evaluate.json").write_text(json.dumps(data))
    assert run_report(tmp_path).exit_code == 0
    text = (metrics / "report.md").read_text()
    assert "| dpo_stage_4 | – | 0.3125 [0.1250, 0.5000] |" in text and "0.9876" not in text


def test_partial_run_renders_what_is_there(tmp_path):
    full = tmp_path / "full"
    write_metrics(full)
    part = tmp_path / "metrics"
    part.mkdir()
    (part / "dedup.json").write_bytes((full / "dedup.json").read_bytes())
    assert run_report(tmp_path).exit_code == 0
    text = (part / "report.md").read_text()
    assert "![dedup funnel](report/dedup_funnel.png)" in text
    assert "`metrics/cluster.json` is missing" in text


def test_mixture_section_without_the_grid_and_with_a_broken_one(tmp_path):
    full = tmp_path / "full"
    write_metrics(full)
    part = tmp_path / "metrics"
    part.mkdir()
    (part / "base_model_eval.json").write_bytes((full / "base_model_eval.json").read_bytes())
    assert run_report(tmp_path).exit_code == 0
    text = (part / "report.md").read_text()
    assert "No ablation yet" in text and "`codealign mixture`" in text

    grid = json.loads((full / "mixture.json").read_text())
    del grid["by_share"][1]["base_seeds"]
    (part / "mixture.json").write_text(json.dumps(grid))
    result = run_report(tmp_path)
    assert result.exit_code != 0
    assert "mixture.json: missing key 'by_share[1].base_seeds'" in result.output
    assert "No ablation yet" in (part / "report.md").read_text()  # the old report stays


def test_stage_times_can_be_left_out(tmp_path):
    (tmp_path / "metrics").mkdir()
    assert run_report(tmp_path, make_params(tmp_path, stage_times=False)).exit_code == 0
    assert "Wall time" not in (tmp_path / "metrics" / "report.md").read_text()


def test_malformed_json_is_one_error_naming_the_file_and_no_report(tmp_path):
    metrics = tmp_path / "metrics"
    write_metrics(metrics)
    (metrics / "evaluate.json").write_text('{"tinyeval": {"models": ')
    result = CliRunner().invoke(
        stage("report"),
        ["--params", str(make_params(tmp_path)), "--metrics-dir", str(metrics)]
        + ["--out", str(metrics / "report.md"), "--figures", str(metrics / "report")],
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {metrics / 'evaluate.json'}:1: invalid JSON")
    assert not (metrics / "report.md").exists() and not (metrics / "report").exists()
    assert not (metrics / "headline").exists()


def test_wrong_shape_names_the_key(tmp_path):
    metrics = tmp_path / "metrics"
    write_metrics(metrics)
    data = json.loads((metrics / "evaluate.json").read_text())
    data["tinyeval"]["models"]["base"]["pass@1"] = "high"
    dump(metrics / "evaluate.json", data)
    result = CliRunner().invoke(
        stage("report"),
        ["--params", str(make_params(tmp_path)), "--metrics-dir", str(metrics)]
        + ["--out", str(metrics / "report.md"), "--figures", str(metrics / "report")],
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {metrics / 'evaluate.json'}: 'tinyeval.models.base.pass@1' "
        "must be a number, got str"
    )


def test_stage_times_of_other_profiles_are_more_columns(tmp_path):
    metrics = tmp_path / "metrics"
    times = {"seed": 2.0, "base_model": 200.0, "lintseq_eval": 98.0}
    dump(
        metrics / "stage_times.json",
        {"profile": "default", "stages": times, "total_s": 300.0, "cores": 2},
    )
    smoke = {"seed": 1.0, "base_model": 8.0, "extra": 1.0}
    dump(
        metrics / "stage_times_smoke.json",
        {"profile": "smoke", "stages": smoke, "total_s": 10.0, "cores": 2},
    )
    assert run_report(tmp_path).exit_code == 0
    text = (metrics / "report.md").read_text()
    assert "| Stage | `default` (s) | Share | `smoke` (s) | Share |" in text
    assert "| base_model | 200.0 | 66.7% | 8.0 | 80.0% |" in text
    assert "| lintseq_eval | 98.0 | 32.7% | – | – |" in text
    assert "| extra | – | – | 1.0 | 10.0% |" in text
    assert "| **total** | 300.0 | 100.0% | 10.0 | 100.0% |" in text
    assert "Beside it, profile `smoke` on 2 cores (`metrics/stage_times_smoke.json`)." in text
    dump(metrics / "stage_times_smoke.json", {"stages": {"seed": -1}, "total_s": 1})
    result = run_report(tmp_path)
    assert result.exit_code != 0
    assert "stage_times_smoke.json: stages.seed must be >= 0, got -1" in result.output


def test_seed_band_and_stage_times_reader(tmp_path):
    seeds = [
        {"curriculum": ([0, 5], [0.2, v]), "shuffled": ([0, 5], [0.2, 0.3])}
        for v in (0.3, 0.4, 0.5)
    ]
    band = seed_band(seeds, ReportParams(resamples=500))
    final = band["difference"][-1]
    assert final["mean"] == pytest.approx(0.1) and final["low"] <= 0.1 <= final["high"]
    assert final["n"] == 3 and band["curriculum"][0]["low"] == band["curriculum"][0]["high"]
    assert stage_times(tmp_path) is None
    dump(tmp_path / "stage_times.json", {"stages": {"b": 2, "a": 1}, "total_s": 3})
    assert list(stage_times(tmp_path)["stages"]) == ["b", "a"]
    dump(tmp_path / "stage_times.json", {"stages": {"a": "slow"}, "total_s": 3})
    with pytest.raises(CodealignError, match=r"'stages\.a' must be a number, got str"):
        stage_times(tmp_path)


def test_params_section_validates_its_keys():
    assert parse_params({"seed": 0, "k": 2})["report"] == ReportParams()
    with pytest.raises(CodealignError, match=r"^report\.dpi must be an integer in \[50, 600\]"):
        parse_params({"seed": 0, "k": 2, "report": {"dpi": 10}})


def test_an_existing_base_model_has_no_code_share_and_is_scored_on_humaneval(tmp_path):
    """base_model_eval on real data (the paper profile) writes code_share: null."""
    metrics = tmp_path / "metrics"
    write_metrics(metrics)
    eval_file = metrics / "base_model_eval.json"
    dump(eval_file, {**json.loads(eval_file.read_text()), "code_share": None})
    assert run_report(tmp_path).exit_code == 0
    text = (metrics / "report.md").read_text()
    assert "This run's base model (an existing model, not pretrained here): " in text
    assert "HumanEval solutions 0.1000 bits/byte" in text
