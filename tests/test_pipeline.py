"""The whole DAG on params/smoke.yaml in a scratch copy of the repository, through DVC."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    """A scratch clone of the working tree with the smoke profile installed, after `dvc repro`."""
    work = tmp_path_factory.mktemp("smoke") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    shutil.copy2(ROOT / "params" / "smoke.yaml", work / "params.yaml")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "CODEALIGN_CACHE": str(work / ".cache"),
        "HF_HUB_OFFLINE": "1",
        # Each process records the codealign modules it imported and package files it read.
        "CODEALIGN_TRACE_DEPS": str(tmp_path_factory.mktemp("trace")),
    }
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run([*git, "init", "-q"], work, env)
    run([*git, "add", "-A"], work, env)
    run([*git, "commit", "-qm", "smoke"], work, env)
    log = run(["dvc", "repro"], work, env)
    return work, env, log


@pytest.mark.slow
def test_smoke_pipeline_writes_outs_and_metrics(smoke_repo):
    work, _, log = smoke_repo
    assert "Running stage 'seed'" in log and "Running stage 'base_model'" in log
    for name in (
        "s1.jsonl",
        "s2.jsonl",
        "keywords.json",
        "tinyeval.jsonl",
        "tinydev.jsonl",
        "pool.jsonl",
    ):
        assert (work / "data" / "seed" / name).stat().st_size > 0, name
    seed = json.loads((work / "metrics" / "seed.json").read_text())
    assert seed["sets"]["tinyeval"] == {"tasks": 30, "functions": 30}
    assert seed["sets"]["tinydev"] == {"tasks": 20, "functions": 20}
    assert seed["shortfall"] == {"tinyeval": 0, "tinydev": 0}
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(work / "models" / "base_model")
    tokenizer = AutoTokenizer.from_pretrained(work / "models" / "base_model")
    assert tokenizer.chat_template and model.num_parameters() > 0
    metrics = json.loads((work / "metrics" / "base_model.json").read_text())
    assert metrics["tokens_seen"] == 20 * 8 * 64
    assert metrics["final_loss"] > 0 and metrics["parameters"] == model.num_parameters()
    assert 0.0 <= metrics["pass@1_greedy"] <= 1.0 and metrics["eval_tasks"] == 8
    assert metrics["eval_benchmark"] == "tinydev"  # the dev set; tinyeval is evaluate's
    assert (work / "metrics" / "base_model" / "plots" / "metrics").is_dir()


@pytest.mark.slow
def test_smoke_curated_sft_data_holds_no_renamed_twin_of_tinyeval_or_tinydev(smoke_repo):
    from codealign.curation.dedup import ast_twins, read_eval_jsonl, read_sft_jsonl

    work, _, _ = smoke_repo
    seed, dedup = work / "data" / "seed", work / "data" / "dedup"
    held = read_eval_jsonl(seed / "tinyeval.jsonl") + read_eval_jsonl(seed / "tinydev.jsonl")
    for name in ("train.jsonl", "validation.jsonl"):
        records = read_sft_jsonl(dedup / name)
        assert not ast_twins([r["code"] for r in records], held), name
    removed = [json.loads(line) for line in (dedup / "removed.jsonl").read_text().splitlines()]
    metrics = json.loads((work / "metrics" / "dedup.json").read_text())
    ast_removed = [r for r in removed if r["reason"] == "contaminated_ast"]
    assert metrics["removed"]["contaminated_ast"] == len(ast_removed)
    for record in ast_removed:
        assert record["matched_eval_set"] in ("tinyeval", "tinydev")


@pytest.mark.slow
def test_smoke_mines_pairs_in_every_bucket_and_trains_every_dpo_stage_on_them(smoke_repo):
    # The smoke model passes no test: the reference joins each task's samples
    # (sample.add_reference, params/smoke.yaml; docs/heldout.md says why).
    work, _, _ = smoke_repo
    curriculum = json.loads((work / "metrics" / "curriculum.json").read_text())
    assert curriculum["pairs_kept"] >= 10, curriculum
    assert curriculum["empty_stages"] == []
    assert 0 < curriculum["reference_chosen"] <= curriculum["pairs_kept"]
    for row in curriculum["stages"]:
        assert row["pairs"] >= 2, row
        stage = json.loads((work / "metrics" / "dpo" / f"stage_{row['stage']}.json").read_text())
        assert not stage["skipped"] and stage["pairs"] == row["pairs"] and stage["steps"] >= 1
        # Stage boundaries are scored on the dev set, never on tinyeval.
        assert "tinydev/pass@1" in stage["eval"] and "tinyeval/pass@1" not in stage["eval"]
    shuffled = json.loads((work / "metrics" / "dpo" / "shuffled.json").read_text())
    assert shuffled["pairs"] == curriculum["pairs_kept"]
    assert all("tinydev/pass@1" in e for e in shuffled["evals"])


@pytest.mark.slow
def test_smoke_final_evaluation_scores_the_dpo_models_and_compares_them_over_tasks(smoke_repo):
    work, _, _ = smoke_repo
    summary = json.loads((work / "metrics" / "evaluate_dpo.json").read_text())["tinyeval"]
    assert set(summary["models"]) == {f"dpo_stage_{i}" for i in range(1, 5)} | {"dpo_shuffled"}
    evaluate = json.loads((work / "metrics" / "evaluate.json").read_text())["tinyeval"]
    # The same benchmark, tasks and distinct functions as evaluate's.
    for key in ("tasks", "functions", "samples_per_task", "confidence"):
        assert summary[key] == evaluate[key], key
    assert summary["functions"] <= summary["tasks"]
    for name in summary["models"]:
        verdicts = work / "data" / "evaluate_dpo" / "tinyeval" / name / "verdicts_pass1.jsonl"
        assert len(verdicts.read_text().splitlines()) == summary["tasks"] * 2, name
    table = (work / "metrics" / "evaluate_dpo.md").read_text()
    assert f"| tinyeval | 8 | {summary['functions']} | dpo_stage_4 |" in table
    for row in summary["models"].values():
        assert row["pass@1_ci"]["low"] <= row["pass@1"] <= row["pass@1_ci"]["high"]
    compare = json.loads((work / "metrics" / "dpo_compare.json").read_text())
    assert compare["curve_benchmarks"] == ["tinydev"]
    final = compare["final_evaluation"]["tinyeval"]
    models = summary["models"]
    assert final["tasks"] == summary["tasks"]
    assert final["curriculum_pass@1"] == pytest.approx(models["dpo_stage_4"]["pass@1"])
    assert final["shuffled_pass@1"] == pytest.approx(models["dpo_shuffled"]["pass@1"])
    assert final["low"] <= final["mean_difference"] <= final["high"]
    assert final["conclusion"].startswith(
        "inconclusive" if final["low"] <= 0 <= final["high"] else ("curriculum", "shuffled")
    )
    report = (work / "metrics" / "report.md").read_text()
    assert final["conclusion"] in report and "bootstrap interval over tasks" in report
    assert "| dpo_shuffled | – |" in report  # the Models table, from evaluate_dpo.json


@pytest.mark.slow
def test_every_module_and_package_file_a_stage_used_is_among_its_deps(smoke_repo):
    """What each stage process imported (sys.modules at exit) and opened under codealign/
    must be deps of that stage, or a change there would leave its outs stale."""
    from codealign.stage_deps import covers, read_stages

    work, env, _ = smoke_repo
    _, stages = read_stages(work / "dvc.yaml")
    scripts = {spec.script for spec in stages}
    seen, missing = set(), []
    for trace in Path(env["CODEALIGN_TRACE_DEPS"]).glob("*.json"):
        record = json.loads(trace.read_text())
        script = Path(record["argv"][0])
        script = (script.resolve().relative_to(work) if script.is_absolute() else script).as_posix()
        if script not in scripts:
            continue  # `codealign generate` and the like
        seen.add(script)
        files = {f"codealign/{name}" for name in record["files"]}
        for module in record["modules"]:
            base = work.joinpath(*module.split("."))
            files.add(
                (
                    base.with_suffix(".py")
                    if base.with_suffix(".py").is_file()
                    else base / "__init__.py"
                )
                .relative_to(work)
                .as_posix()
            )
        for spec in stages:
            if spec.script == script:
                missing += [f"{spec.name}: {f}" for f in sorted(files) if not covers(spec.deps, f)]
    assert seen == scripts, f"no trace from {sorted(scripts - seen)}"
    assert not missing, sorted(set(missing))


@pytest.mark.slow
def test_smoke_evaluate_tables_base_k1_and_routed_specialists(smoke_repo):
    work, _, _ = smoke_repo
    summary = json.loads((work / "metrics" / "evaluate.json").read_text())["tinyeval"]
    assert summary["tasks"] == 8 and summary["samples_per_task"] == 2
    models = summary["models"]
    assert set(models) == {"base", "k1", "routed"}  # DPO's models: evaluate_dpo
    assert models["k1"]["k"] == 1 and models["routed"]["k"] == 2
    assert sum(models["routed"]["tasks_by_cluster"]) == 8
    assert set(models["routed"]["pass@1_by_cluster"]) == {"0", "1"}
    for name, row in models.items():
        assert 0.0 <= row["pass@1"] <= 1.0 and "pass@1_t0.8" in row
        verdicts = work / "data" / "evaluate" / "tinyeval" / name / "verdicts_pass1.jsonl"
        lines = [json.loads(line) for line in verdicts.read_text().splitlines()]
        assert len(lines) == 16 and sum(row["statuses_pass1"].values()) == 16
        assert {"task_id", "completion_id", "passed", "status", "tests_passed"} <= set(lines[0])
    table = (work / "metrics" / "evaluate.md").read_text()
    tasks = f"| tinyeval | 8 | {summary['functions']} |"
    assert f"{tasks} routed | 2 |" in table and f"{tasks} k1 | 1 |" in table


@pytest.mark.slow
def test_smoke_specialists_are_served_over_one_base_model(smoke_repo):
    work, env, _ = smoke_repo
    router = json.loads((work / "models" / "sft" / "router.json").read_text())
    assert router["k"] == 2
    for i in range(2):
        assert (work / "models" / "sft" / f"adapter_{i}" / "adapter_config.json").is_file()
    out = run(
        ["codealign", "generate", "--model", "models/sft", "Write a function that adds two."],
        work,
        env,
    )
    assert "cluster" in out
    clusters = json.loads((work / "metrics" / "cluster.json").read_text())
    assert clusters["k"] == 2 and sum(clusters["sizes"]) == clusters["train_items"]
    assert (work / "metrics" / "cluster" / "projection.png").stat().st_size > 0


@pytest.mark.slow
def test_second_repro_runs_nothing_and_forced_repro_is_deterministic(smoke_repo):
    work, env, _ = smoke_repo
    again = run(["dvc", "repro"], work, env)
    assert "Running stage" not in again
    lock = (work / "dvc.lock").read_text()
    # A fresh checkpoint cache, so base_model trains from scratch rather than resuming.
    env = {**env, "CODEALIGN_CACHE": str(work / ".cache-forced")}
    forced = run(["dvc", "repro", "-f"], work, env)
    assert "Running stage 'base_model'" in forced
    assert (work / "dvc.lock").read_text() == lock


@pytest.mark.slow
def test_smoke_report_and_lintseq(smoke_repo):
    work, _, _ = smoke_repo
    report = (work / "metrics" / "report.md").read_text()
    for section in (
        "## Dataset",
        "## Deduplication",
        "## Clusters",
        "## Models",
        "## Curriculum DPO",
    ):
        assert section in report
    for link in re.findall(r"\]\((report/[^)]+\.png)\)", report):
        assert (work / "metrics" / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    edits = json.loads((work / "metrics" / "lintseq.json").read_text())
    curated = json.loads((work / "metrics" / "dedup.json").read_text())["records_after"]
    # One edit sequence per curated program (lintseq.samples: 1): every one of them lints.
    assert edits["splits"]["train"]["sequences"] > 0 and edits["sequences"] >= curated


@pytest.mark.slow
def test_push_to_a_local_remote_then_a_fresh_clone_pulls_and_has_nothing_to_run(
    smoke_repo, tmp_path
):
    work, env, _ = smoke_repo
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], work, env)
    run(["dvc", "push"], work, env)
    run([*git, "add", "-A"], work, env)
    run([*git, "commit", "-qm", "results"], work, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path, env)
    assert not (clone / "models" / "sft").exists()
    run(["dvc", "pull"], clone, env)
    assert (clone / "models" / "sft" / "router.json").is_file()
    assert "up to date" in run(["dvc", "status"], clone, env)
    assert "Running stage" not in run(["dvc", "repro"], clone, env)


def _lock_entry(work: Path, stage: str) -> dict:
    import yaml

    return yaml.safe_load((work / "dvc.lock").read_text())["stages"][stage]


def _our_processes(cache: str) -> list:
    """Live processes started for this repository (they carry its CODEALIGN_CACHE)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("CODEALIGN_CACHE") == cache:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def runs(proc, script: str) -> bool:
    """Whether `proc` is the Python process running `script` (its parent is not)."""
    import psutil

    try:
        return script in proc.cmdline() and script not in proc.parent().cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, AttributeError):
        return False  # gone meanwhile (or, AttributeError, orphaned: no parent)


def kill_stage_midway(work: Path, env: dict, stage: str, ready) -> str:
    """`dvc repro -f -s stage`, SIGKILL the stage's own process once `ready(proc)` holds
    (as the OOM killer would), and return DVC's output. DVC must report the failure."""
    import time

    import psutil

    dvc = subprocess.Popen(
        ["dvc", "repro", "-f", "-s", stage],
        cwd=work,
        # DVC runs the stage under $SHELL -c; /bin/sh (dash on Debian) stays the parent
        # of the stage's process rather than exec'ing it, as on a CI machine.
        env={**env, "SHELL": "/bin/sh"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    script = f"stages/{stage}.py"
    deadline = time.time() + 300
    try:
        while True:
            assert dvc.poll() is None, f"{stage} ended before it was killed:\n{dvc.stdout.read()}"
            assert time.time() < deadline, f"{stage}: never ready to be killed"
            # The Python process itself, not the `$SHELL -c` around it (dash keeps
            # itself as the parent) nor the workers it forks (they share its argv).
            stage_procs = [
                p for p in psutil.Process(dvc.pid).children(recursive=True) if runs(p, script)
            ]
            if stage_procs and ready(stage_procs[0]):
                stage_procs[0].kill()
                break
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        pytest.fail(f"{stage} ended before it was killed")
    output = dvc.communicate(timeout=120)[0]
    assert dvc.returncode != 0, output
    return output


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["synth", "sft"])
def test_a_stage_killed_midway_reruns_to_the_same_outs(smoke_repo, stage):
    work, env, _ = smoke_repo
    before = _lock_entry(work, stage)
    outs = [out["path"] for out in before["outs"]]
    cache = Path(env["CODEALIGN_CACHE"])
    if stage == "synth":
        # Midway: the sandbox workers that verify generated code are up.
        def ready(proc):
            return len(proc.children(recursive=True)) >= 2
    else:
        # Midway: a checkpoint of an adapter with steps left is on disk (those of the
        # fixture's run are removed).
        shutil.rmtree(cache / "checkpoints" / "sft", ignore_errors=True)

        def ready(proc):
            for state in (cache / "checkpoints" / "sft").glob("*/checkpoint-*/trainer_state.json"):
                try:
                    state = json.loads(state.read_text())
                except ValueError:  # being written
                    continue
                if state["global_step"] < state["max_steps"]:
                    return True
            return False

    killed = kill_stage_midway(work, env, stage, ready)
    assert f"failed to reproduce '{stage}'" in killed, killed
    for out in outs:
        assert not (work / out).exists() or out.startswith("metrics"), f"half-written {out}"

    # Forced: with its deps unchanged, DVC would restore the outs of the fixture's run
    # from its cache instead of running the stage again.
    rerun = run(["dvc", "repro", "-f", "-s", stage], work, env)
    assert ran(rerun) == {stage}
    assert not list(work.glob("**/.*.tmp")), "the rerun left the killed run's staging dirs"
    if stage == "sft":
        assert "resuming from" in rerun
    assert _lock_entry(work, stage) == before  # every out byte-identical to the first run
    assert "up to date" in run(["dvc", "status"], work, env)
    assert _our_processes(str(cache)) == [], "processes of the killed stage are still alive"


@pytest.mark.slow
def test_sft_under_torchrun_with_two_processes(smoke_repo, tmp_path):
    # What `accelerate launch` does on several GPUs, on the CPU: two data-parallel
    # processes, each taking a batch per step, so half the steps; rank 0 alone writes.
    work, env, _ = smoke_repo
    env = {**env, "CODEALIGN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    out, metrics, live = tmp_path / "sft", tmp_path / "sft.json", tmp_path / "live"
    args = ["torchrun", "--standalone", "--nproc_per_node", "2", "stages/sft.py"]
    args += ["--out", str(out), "--metrics", str(metrics), "--live-dir", str(live)]
    run(args, work, env)
    single = json.loads((work / "metrics" / "sft.json").read_text())["adapters"]
    ddp = json.loads(metrics.read_text())["adapters"]
    assert [a["steps"] for a in ddp] == [-(-a["steps"] // 2) for a in single]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(work / "models" / "base_model")
    PeftModel.from_pretrained(base, out / "adapter_0")
    assert (out / "router.json").is_file() and (live / "plots").is_dir()
    assert not list(tmp_path.glob(".*.tmp")) and not list(work.glob("**/.*.tmp"))
    assert "up to date" in run(["dvc", "status"], work, env), "a distributed run touched an out"


def _fsize_limit(limit: int):
    import resource
    import signal

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "limit", "reason"),
    [("cluster", 2048, "File too large"), ("sft", 60_000, "disk I/O error")],
)
def test_a_full_disk_is_one_error_line_and_leaves_the_outs_as_they_were(
    smoke_repo, stage, limit, reason
):
    # RLIMIT_FSIZE makes the kernel refuse writes past `limit` bytes, as a full disk does
    # (EFBIG instead of ENOSPC), and it binds root too.
    work, env, _ = smoke_repo
    env = {**env, "CODEALIGN_CACHE": str(work / ".cache-full")}
    result = subprocess.run(
        [sys.executable, f"stages/{stage}.py"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_fsize_limit(limit),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "cannot write" in lines[-1], lines[-1]
    assert reason in lines[-1]
    assert "Traceback" not in result.stderr
    assert ".tmp" not in lines[-1], "the error names a staging path, not the out"
    assert not list(work.glob("**/.*.tmp")), "staging dirs left behind"
    assert "up to date" in run(["dvc", "status"], work, env), "an out was changed"


def ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_changing_k_reruns_only_cluster_sft_evaluate_and_dpo_only_dpo_then_report(smoke_repo):
    # Runs last: it leaves the scratch repository at k = 3 and dpo.beta = 0.2.
    work, env, _ = smoke_repo
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("\nk: 2", "\nk: 3", 1))
    # The K sweep's target: `evaluate` runs no sampling, no DPO stage, no DPO evaluation.
    assert ran(run(["dvc", "repro", "evaluate"], work, env)) == {"cluster", "sft", "evaluate"}
    assert ran(run(["dvc", "repro"], work, env)) == {"report"}
    assert json.loads((work / "metrics" / "cluster.json").read_text())["k_requested"] == 3
    params.write_text(params.read_text().replace("  beta: 0.1", "  beta: 0.2", 1))
    dpo = {f"dpo@stage_{i}" for i in range(1, 5)} | {"dpo_shuffled"}
    # The DPO models changed: their final evaluation scores them again, then the comparison.
    assert ran(run(["dvc", "repro"], work, env)) == dpo | {"evaluate_dpo", "dpo_compare", "report"}


@pytest.mark.slow
def test_smoke_metrics_and_plots_are_what_a_terminal_shows(smoke_repo):
    """`dvc metrics show` fits 200 columns without a load warning; `dvc plots show` gives
    one titled plot per definition in dvc.yaml, each data series with every run's curve."""
    work, env, _ = smoke_repo
    env = {**env, "COLUMNS": "200"}
    shown = subprocess.run(
        ["dvc", "metrics", "show"], cwd=work, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "failed to load" not in shown.stderr, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 200 and len(lines) >= 7, shown.stdout
    plots = subprocess.run(
        ["dvc", "plots", "show", "--json", "-o", str(work / ".dvc" / "tmp" / "plots")],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert plots.returncode == 0 and "failed to load" not in plots.stderr, plots.stderr
    data = json.loads(plots.stdout)["data"]
    import yaml

    defined = yaml.safe_load((work / "dvc.yaml").read_text())["plots"]
    names = [next(iter(p)) if isinstance(p, dict) else p for p in defined]
    assert sorted(data) == sorted(names)
    # Where a run mines no DPO pairs the DPO stages train nothing, their curve files hold
    # a header only, and DVC draws no plot of them; the smoke profile mines pairs
    # (sample.add_reference), so every plot is drawn.
    shuffled = json.loads((work / "metrics" / "dpo" / "shuffled.json").read_text())
    empty = (
        {"dpo_loss", "dpo_reward_margin", "dpo_reward_accuracy"} if shuffled["skipped"] else set()
    )
    for name, renders in data.items():
        assert len(renders) == (0 if name in empty else 1), name
        if renders and renders[0]["type"] == "vega":
            content = renders[0]["content"]
            assert content["title"] and content["data"]["values"], name
    runs = {v["run"] for v in data["sft_loss"][0]["content"]["data"]["values"]}
    k = json.loads((work / "metrics" / "sft.json").read_text())["k"]
    assert runs == {f"sft/adapter_{i}" for i in range(k)} | {"sft_baseline/adapter_0"}
    if not empty:
        dpo = {v["run"] for v in data["dpo_reward_margin"][0]["content"]["data"]["values"]}
        assert {"stage_1", "shuffled"} <= dpo
