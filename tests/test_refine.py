"""TinyHelen's pipeline: the original corpus, the refine stage on each backend, and the
`codealign tinyhelen` comparison writing its run record."""

import json
import random
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.params import load_params
from codealign.params.refine import RefineParams
from codealign.refine.refine import parse_refined
from codealign.synth.stub_server import StubServer
from codealign.tinyworld.original import (
    ANSWER_PREFIX,
    lean_source,
    lexicon,
    original_corpus,
    original_of,
)
from codealign.tinyworld.text import InstructionSplit, english_document

ROOT = Path(__file__).resolve().parents[1]


def params_file(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw["refine"]["documents"] = 120
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_refine(tmp_path: Path, params: Path):
    out, metrics = tmp_path / "refine", tmp_path / "refine.json"
    result = CliRunner().invoke(
        stage("refine"),
        ["--params", str(params), "--out", str(out), "--metrics", str(metrics), "--no-progress"],
    )
    return result, out, metrics


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_original_corpus_is_noisy_says_the_same_and_repeats_from_its_seed():
    rates = RefineParams()
    docs = list(original_corpus(300, 5, rates))
    assert docs == list(original_corpus(300, 5, rates))
    assert docs != list(original_corpus(300, 6, rates))
    assert {d["genre"] for d in docs} == {"story", "facts", "instruction"}
    noise = {kind: sum(d["noise"][kind] for d in docs) for kind in docs[0]["noise"]}
    assert all(count > 0 for count in noise.values()), noise
    for doc in docs:
        lean = lean_source(doc["source_seed"])
        assert doc["text"] != lean or sum(doc["noise"].values()) == 0
        # Numbers are facts: the original states the same ones, in order.
        assert re.findall(r"\d+", doc["text"]) == re.findall(r"\d+", lean)
        if doc["genre"] == "instruction":  # the answer line is exact
            answer = lean.split(ANSWER_PREFIX)[1]
            assert doc["text"].split(ANSWER_PREFIX)[1].split("\n")[0] == answer


def test_zero_rates_leave_the_lean_text_as_it_is():
    quiet = RefineParams(
        synonym_rate=0,
        typo_rate=0,
        filler_rate=0,
        aside_rate=0,
        join_rate=0,
        boilerplate_rate=0,
    )
    rng = random.Random(3)
    for _ in range(50):
        lean = english_document(rng)
        assert original_of(lean, random.Random(1), quiet)[0] == lean


def test_parse_refined_reads_both_formats_and_rejects_the_rest():
    assert parse_refined("EDITED:\nTom had 3 cups. <end>", "story") == ("Tom had 3 cups.", None)
    assert parse_refined(" Say cat 2 times. <split> cat cat <end>", "instruction") == (
        "Instruction: Say cat 2 times.\nAnswer: cat cat",
        None,
    )
    assert parse_refined("EDITED:\nTom had 3 cups.", "story") == (None, "no_end_marker")
    assert parse_refined("Say cat. <end>", "instruction") == (None, "not_instruction_and_answer")
    assert parse_refined(None, "facts") == (None, "no_answer")


def test_refine_tinyworld_shrinks_the_vocabulary_and_removes_all_noise(tmp_path):
    result, out, metrics_file = run_refine(tmp_path, params_file(tmp_path))
    assert result.exit_code == 0, result.output
    original, lean = read(out / "original.jsonl"), read(out / "lean.jsonl")
    assert len(original) == len(lean) == 120
    # The world's own lean source, under the params' held-out instruction split.
    heldout = load_params(tmp_path / "params.yaml")["heldout_instructions"]
    split = InstructionSplit(heldout.share, heldout.salt)
    assert split.share > 0
    assert [d["text"] for d in lean] == [lean_source(d["source_seed"], split) for d in original]
    metrics = json.loads(metrics_file.read_text())
    before, after = metrics["original"], metrics["lean"]
    assert after["vocabulary"] < before["vocabulary"] / 2
    assert before["noise_rate"] > 0.1 and after["noise_rate"] == 0.0
    assert after["words_per_sentence"] < before["words_per_sentence"]
    assert after["genres"] == before["genres"]  # the genre mix is kept
    assert metrics["refine"]["rejected"] == {}
    again = tmp_path / "again"
    again.mkdir()
    assert run_refine(again, params_file(again))[0].exit_code == 0
    assert (again / "refine" / "lean.jsonl").read_bytes() == (out / "lean.jsonl").read_bytes()


WORDS = lexicon()


def simplifying_model(body: dict) -> str:
    """An endpoint that answers a refine prompt as a model would: the original text with
    every word outside the lean lexicon dropped; one document in ten is left unfinished."""
    prompt = body["messages"][0]["content"]
    if body["seed"] % 10 == 3:
        return "EDITED:\nI am not sure what to"

    def lean(text: str) -> str:
        tokens = re.findall(r"[A-Za-z]+|\d+|[.,!?]", text)
        kept = [t for t in tokens if not t.isalpha() or t.lower() in WORDS]
        return re.sub(r" ([.,!?])", r"\1", " ".join(kept))

    if "[TASK]" in prompt:
        task = prompt.rsplit("[TASK]", 1)[1].split("\n[RESPONSE]")[0]
        response = prompt.rsplit("[RESPONSE]", 1)[1].split("\n")[0]
        return f"{lean(task)} <split> {response} <end>"
    original = prompt.split("ORIGINAL TEXT:\n", 1)[1].split("\n\n### Output:")[0]
    return f"EDITED:\n{lean(original)} <end>"


def test_refine_openai_sends_tinyhelen_prompts_and_parses_the_answers(tmp_path):
    with StubServer(responder=simplifying_model) as server:
        params = params_file(
            tmp_path,
            **{
                "refine.backend": "openai",
                "synth.openai_base_url": server.base_url,
                "synth.openai_model": "stub-model",
                "synth.cache_dir": str(tmp_path / "cache"),
            },
        )
        result, out, metrics_file = run_refine(tmp_path, params)
        assert result.exit_code == 0, result.output
        assert server.hits == 120
        original = read(out / "original.jsonl")
        prompts = [b["messages"][0]["content"] for b in server.bodies]
        assert all("preschool children" in p and "<end>" in p for p in prompts)
        by_text = sum(any(d["text"] in p for p in prompts) for d in original)
        instructions = sum(d["genre"] == "instruction" for d in original)
        assert by_text >= len(original) - instructions  # prose is sent whole
        assert all(b["model"] == "stub-model" and b["temperature"] == 0.0 for b in server.bodies)
        # A rerun is answered from the cache: no new requests.
        again = tmp_path / "again"
        again.mkdir()
        assert run_refine(again, params)[0].exit_code == 0
        assert server.hits == 120
    metrics = json.loads(metrics_file.read_text())
    unfinished = 12  # seeds 3, 13, ..., 113
    assert metrics["refine"]["rejected"] == {"no_end_marker": unfinished}
    assert metrics["lean"]["documents"] == 120 - unfinished
    assert metrics["lean"]["noise_rate"] == 0.0
    assert metrics["lean"]["vocabulary"] < metrics["original"]["vocabulary"] / 2
    lean = read(out / "lean.jsonl")
    assert all(d["text"].startswith("Instruction: ") for d in lean if d["genre"] == "instruction")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("refine.typo_rate", 2, "error: refine.typo_rate must be a number in [0, 1], got 2"),
        ("refine.backend", "gpt", "error: refine.backend must be one of tinyworld, hf, openai"),
        ("tinyhelen.seeds", [], "error: tinyhelen.seeds must list at least one seed"),
    ],
)
def test_bad_params_give_one_line_and_no_outs(tmp_path, key, value, message):
    result, out, metrics = run_refine(tmp_path, params_file(tmp_path, **{key: value}))
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.strip().startswith(message)
    assert not out.exists() and not metrics.exists()


def test_tinyhelen_without_refined_corpora_names_the_file(tmp_path):
    from codealign.sweeps.tinyhelen import tinyhelen_command

    result = CliRunner().invoke(
        tinyhelen_command,
        [
            "--params",
            str(params_file(tmp_path)),
            "--refine-dir",
            str(tmp_path / "nothing"),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 'nothing' / 'original.jsonl'}: not found; "
        "run the refine stage first (dvc repro refine)"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_tinyhelen_on_a_tiny_config_writes_its_run_record(tmp_path):
    from codealign.sweeps.tinyhelen import tinyhelen_command

    params = params_file(
        tmp_path,
        **{
            "base_model.steps": 4,
            "base_model.batch_size": 2,
            "base_model.block_size": 32,
            "tinyhelen.seeds": [0, 1],
            "tinyhelen.curve_points": 2,
            "tinyhelen.heldout_docs": 6,
            "tinyhelen.instructions": 4,
            "tinyhelen.eval_tasks": 2,
            "tinyhelen.eval_samples": 2,
        },
    )
    seed = CliRunner().invoke(
        stage("seed"),
        [
            "--params",
            str(params),
            "--out",
            str(tmp_path / "seed"),
            "--metrics",
            str(tmp_path / "s"),
        ],
    )
    assert seed.exit_code == 0, seed.output
    assert run_refine(tmp_path, params)[0].exit_code == 0
    args = ["--params", str(params), "--refine-dir", str(tmp_path / "refine")]
    args += ["--seed-dir", str(tmp_path / "seed"), "--out-dir", str(tmp_path / "out")]
    args += ["--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(tinyhelen_command, [*args, "--name", "tiny"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert {"command", "commit", "profile", "params", "seeds", "metrics"} <= set(summary)
    assert summary["command"].startswith("codealign tinyhelen --params ")
    assert summary["seeds"]["values"] == [0, 1]
    assert summary["params"]["base_model"]["steps"] == 4
    assert summary["params"]["heldout_instructions"]["share"] > 0
    # The instructions are on arguments neither corpus holds.
    assert summary["heldout"]["instructions"] == 4
    assert summary["heldout"]["instructions_in_lean_corpus"] == 0
    assert (tmp_path / "out" / "tiny.png").read_bytes()[:4] == b"\x89PNG"
    for run in summary["runs"]:
        for corpus in ("original", "lean"):
            scored = run[corpus]
            assert scored["tokens_seen"] == 4 * 2 * 32  # equal tokens
            assert [p["step"] for p in scored["curve"]] == [0, 2, 4]
            assert len(scored["heldout_bpb"]["lean"]) == 6
            assert len(scored["instructions_correct"]["original"]) == 4
            assert len(scored["code"]["task_pass_rate"]) == 2
        # One shared tokenizer and the same seed: the untrained models score the same.
        assert run["original"]["curve"][0] == run["lean"]["curve"][0]
    metric = summary["metrics"]["heldout_bpb_lean_text"]
    low, high = metric["ci95"]
    assert low <= metric["diff"] <= high
    assert metric["verdict"] in ("supports", "contradicts", "inconclusive")
    assert "heldout_bpb_lean_text" in result.output

    # One run record per model, in the schema `codealign findings` reads.
    from codealign.findings.table import load_records

    records = load_records(tmp_path / "runs")
    assert len(records) == 4
    keys = {(r["params"]["tinyhelen"]["corpus"], r["seeds"]["base_model.seed"]) for r in records}
    assert keys == {("original", 0), ("lean", 0), ("original", 1), ("lean", 1)}
    for record in records:
        assert record["command"] == summary["command"] and record["sweep"] == "tinyhelen"
        counts = record["tasks"]["code"].values()
        assert len(counts) == 2 and all(n == 2 and 0 <= c <= 2 for c, n in counts)
        assert set(record["metrics"]["heldout_bpb"]) == {"lean_text", "original_text"}
        assert set(record["metrics"]["instructions_heldout"]) == {"lean_form", "original_form"}
    # Rewritten from the comparison alone, the records are the same.
    again = CliRunner().invoke(
        tinyhelen_command,
        ["--from-summary", str(tmp_path / "out" / "tiny.json"), "--runs-dir", str(tmp_path / "r2")],
    )
    assert again.exit_code == 0, again.output
    for record in records:
        rewritten = json.loads((tmp_path / "r2" / Path(record["_path"]).name).read_text())
        assert rewritten["metrics"] == record["metrics"] and rewritten["tasks"] == record["tasks"]


@pytest.mark.slow
def test_refine_hf_runs_a_local_model_and_names_what_it_could_not_parse(tmp_path):
    """A tiny random Llama through the hf backend: its answers never close with <end>, so
    the stage stops with one line and writes nothing."""
    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, train_tokenizer

    # No "<end>" in its vocabulary: four tokens cannot spell it, so no answer parses.
    tokenizer = train_tokenizer(["Tom had 3 cups."] * 20, vocab_size=300)
    small = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}
    model_params = BaseModelParams.from_dict({**small, "vocab_size": 300}, "base_model")
    model_dir = tmp_path / "model"
    build_model(model_params, tokenizer, seed=0).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    params = params_file(
        tmp_path,
        **{
            "refine.backend": "hf",
            "refine.documents": 6,
            "refine.max_tokens": 4,
            "synth.hf_model": str(model_dir),
            "synth.cache_dir": str(tmp_path / "cache"),
        },
    )
    result, out, metrics = run_refine(tmp_path, params)
    assert result.exit_code == 2, result.output
    # The last line (transformers' loading bar goes to stderr before it).
    assert result.output.strip().splitlines()[-1] == (
        "error: refine.backend hf: none of the 6 answers parsed as a refinement "
        "(no_end_marker: 6); the prompts ask for 'EDITED: ... <end>' and "
        "'... <split> ... <end>' (docs/tinyhelen.md)"
    )
    assert not out.exists() and not metrics.exists()
    assert (tmp_path / "cache" / "hf.sqlite").is_file()  # the answers are kept for a rerun
