"""The code-share ablation: held-out sets, perplexity, instructions, and `codealign mixture`.

The scoring tests train a 2-layer Llama on tiny-world English for a few seconds; the
collector tests read a hand-written `dvc exp show --json` listing shaped like DVC 3.x
output (tests/fixtures/exp_show.json is a real one).
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.errors import CodealignError
from codealign.params.edits import LintseqParams
from codealign.params.pretraining import BaseModelEvalParams, BaseModelParams
from codealign.pretraining.base_model_eval import (
    answer_instructions,
    corpus_documents,
    heldout_english,
    heldout_instructions,
    instruction_accuracy,
    instruction_prompt,
    measure,
    score_texts,
    seen_instructions,
)
from codealign.sweeps.mixture import log_scale, mixture_command, zoom_shares
from codealign.tinyworld.corpus import edit_documents, make_corpus
from codealign.tinyworld.text import (
    InstructionSplit,
    _instruction_doc,
    english_document,
    instruction_pair,
)

ROOT = Path(__file__).resolve().parents[1]
CODE = [
    ('def add(a, b):\n    """Return a plus b."""\n', "    return a + b\n"),
    ('def twice(s):\n    """Return s repeated 2 times."""\n', "    return s * 2\n"),
    ('def first(xs):\n    """Return the first item of xs."""\n', "    return xs[0]\n"),
]


SPLIT = InstructionSplit(0.25, "instructions")  # the default params' split


def _params(**changes) -> BaseModelEvalParams:
    raw = {"english_docs": 24, "instructions": 12, "batch_size": 8, "max_new_tokens": 12}
    return BaseModelEvalParams.from_dict({**raw, **changes}, "base_model_eval")


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _tasks(pairs) -> list[dict]:
    return [{"prompt": p, "canonical_solution": s} for p, s in pairs]


# --- held-out sets ----------------------------------------------------------------------


def test_instruction_prompt_is_how_the_corpus_writes_instructions():
    for seed in range(20):
        question, answer = instruction_pair(random.Random(seed))
        assert _instruction_doc(random.Random(seed)) == f"{instruction_prompt(question)} {answer}"


def test_heldout_english_does_not_occur_in_the_training_corpus(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", _tasks(CODE))
    base = BaseModelParams(code_share=0.25, edit_share=0.2, corpus_chars=300_000)
    seen = corpus_documents(train, base, LintseqParams(), seed=0)
    code = [p + s for p, s in CODE]
    edits = edit_documents(code, LintseqParams(), seed=0)
    corpus = make_corpus(code, 0.25, 300_000, 0, edits, 0.2)
    assert seen == {d["text"] for d in corpus}
    assert {d["kind"] for d in corpus} == {"text", "code", "edits"}

    documents, skipped = heldout_english(300, 0, "heldout", seen)
    assert len(documents) == 300
    assert not set(documents) & seen
    assert not any(d.startswith("Instruction: ") for d in documents)
    # Exactly the colliding draws were skipped: the same stream, unfiltered, has them.
    unfiltered, none = heldout_english(300 + skipped, 0, "heldout")
    assert none == 0
    assert [d for d in unfiltered if d not in seen] == documents
    assert sum(d in seen for d in unfiltered) == skipped
    # The stream is not the corpus's: stories are all but unique, so if it were, the
    # held-out stories would be in the corpus; the corpus's own stories are.
    stories = [d for d in unfiltered if " went to the " in d]
    assert len(stories) > 100 and not set(stories) & seen
    assert any(" went to the " in d for d in seen)


def test_salt_and_seed_choose_the_heldout_draw():
    base = heldout_english(20, 0, "heldout")[0]
    assert heldout_english(20, 0, "heldout")[0] == base
    assert heldout_english(20, 1, "heldout")[0] != base
    assert heldout_english(20, 0, "other")[0] != base
    pairs = heldout_instructions(5, 0, "heldout", SPLIT)
    assert pairs == heldout_instructions(5, 0, "heldout", SPLIT)
    assert heldout_instructions(20, 0, "other", SPLIT) != heldout_instructions(
        20, 0, "heldout", SPLIT
    )


def test_params_name_the_bad_key():
    with pytest.raises(CodealignError, match="base_model_eval.english_docs must be an integer"):
        _params(english_docs=0)
    with pytest.raises(CodealignError, match="base_model_eval.salt must be a non-empty"):
        _params(salt=" ")
    with pytest.raises(CodealignError, match="unknown params key 'base_model_eval.docs'"):
        BaseModelEvalParams.from_dict({"docs": 3}, "base_model_eval")


def test_instruction_accuracy_is_exact_match_of_the_first_line():
    pairs = [
        ("What is 3 plus 4?", "7"),
        ("Write a greeting for Tom.", "Hello, Tom!"),
        ("Spell the word cat backwards.", "tac"),
        ("How many letters are in the word cat?", "3"),
    ]
    completions = [
        " 7\nInstruction: What is 1 plus 1?",  # right, then the next document
        " Hello, Tom",  # the "!" is part of the answer
        " tac ",  # surrounding whitespace does not count
        " 33",
    ]
    seen = {"Instruction: What is 3 plus 4?\nAnswer: 7"}
    assert instruction_accuracy(pairs, completions, seen) == {
        "accuracy": 0.5,
        "correct": 2,
        "prompts": 4,
        "in_corpus": 1,
        "by_kind": {
            "backwards": {"correct": 1, "prompts": 1},
            "greeting": {"correct": 0, "prompts": 1},
            "letters": {"correct": 0, "prompts": 1},
            "plus": {"correct": 1, "prompts": 1},
        },
    }
    assert instruction_accuracy([], [])["accuracy"] is None


# --- scoring a model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-layer Llama trained for a few seconds on tiny-world English; its corpus."""
    import torch

    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, pack, train_tokenizer

    rng = random.Random(0)
    documents = [english_document(rng, SPLIT) for _ in range(600)]
    params = BaseModelParams(
        vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64
    )
    tokenizer = train_tokenizer(documents, params.vocab_size)
    blocks = torch.tensor(pack(tokenizer, documents, 64))
    model = build_model(params, tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(150):
        batch = blocks[torch.randint(len(blocks), (16,), generator=generator)]
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out = tmp_path_factory.mktemp("mixture") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, frozenset(documents)


@pytest.mark.slow
def test_perplexity_is_lower_on_text_like_the_training_data_than_on_noise(trained):
    from codealign.lm.generation import load_causal_lm

    model_dir, seen = trained
    tokenizer, model = load_causal_lm(model_dir)
    english, _ = heldout_english(40, 0, "heldout", seen)
    rng = random.Random(1)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    noise = ["".join(rng.choice(alphabet) for _ in range(120)) for _ in range(20)]

    text = score_texts(model, tokenizer, [("", d) for d in english], batch_size=8)
    random_text = score_texts(model, tokenizer, [("", d) for d in noise], batch_size=8)

    for scores in (text, random_text):
        assert math.isfinite(scores["perplexity"]) and scores["perplexity"] > 1
        assert math.isfinite(scores["bits_per_byte"]) and scores["bits_per_byte"] > 0
    assert text["perplexity"] < 10 < random_text["perplexity"]
    assert text["bits_per_byte"] < random_text["bits_per_byte"]
    # Each document counts its tokens plus the closing end-of-sequence token.
    lengths = [len(tokenizer(d, add_special_tokens=False)["input_ids"]) + 1 for d in english]
    assert text["tokens"] == sum(lengths)
    assert text["bytes"] == sum(len(d.encode()) for d in english)
    # Padding does not leak into the score: one document per batch gives the same.
    alone = score_texts(model, tokenizer, [("", d) for d in english], batch_size=1)
    assert alone["perplexity"] == pytest.approx(text["perplexity"], rel=1e-4)


@pytest.mark.slow
def test_measure_scores_english_code_and_instructions(trained):
    from codealign.lm.generation import load_causal_lm

    model_dir, seen = trained
    params = _params()
    code = CODE + [("def g():\n", "    return 1\n")]
    seen_with_code = seen | {"def g():\n    return 1\n"}

    result = measure(model_dir, code, params, seed=0, seen=seen_with_code)

    assert result["english"]["documents"] == 24
    assert result["code"]["documents"] == 3 and result["code"]["skipped_in_corpus"] == 1
    for domain in ("english", "code"):
        assert math.isfinite(result[domain]["perplexity"])
    # Trained on English only: code is the less predictable text, byte for byte.
    assert result["english"]["bits_per_byte"] < result["code"]["bits_per_byte"]
    tokenizer, model = load_causal_lm(model_dir)
    for key, draw in (
        ("instructions_heldout", heldout_instructions),
        ("instructions_seen", seen_instructions),
    ):
        instructions = result[key]
        assert instructions["prompts"] == 12 and 0.0 <= instructions["accuracy"] <= 1.0
        # The accuracy is the exact match of the same greedy answers, recounted here.
        pairs = draw(12, 0, params.salt, SPLIT)
        answers = answer_instructions(model, tokenizer, [q for q, _ in pairs], params)
        hits = [a.split("\n")[0].strip() == r for (_, r), a in zip(pairs, answers, strict=True)]
        assert instructions["correct"] == sum(hits)
        assert instructions["in_corpus"] == sum(
            f"{instruction_prompt(q)} {a}" in seen for q, a in pairs
        )
    assert result["instructions_heldout"]["in_corpus"] == 0
    assert result["instructions_seen"]["in_corpus"] > 0
    json.dumps(result, allow_nan=False)  # plain JSON numbers

    limited = measure(model_dir, CODE, _params(code_docs=2, instructions=0), seed=0)
    assert limited["code"]["documents"] == 2
    assert limited["instructions_heldout"]["accuracy"] is None


def test_missing_or_corrupt_model_dir_is_one_clear_error(tmp_path):
    with pytest.raises(CodealignError, match=r"nope: not a model directory \(no config.json\)"):
        measure(tmp_path / "nope", CODE, _params(), seed=0)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    with pytest.raises(CodealignError, match="corrupt: cannot load model"):
        measure(corrupt, CODE, _params(), seed=0)


@pytest.mark.slow
def test_stage_writes_the_metrics_and_names_a_missing_model(tmp_path, trained):
    model_dir, _ = trained
    seed_dir = tmp_path / "seed"
    _write_jsonl(seed_dir / "train.jsonl", _tasks(CODE[:2]))
    _write_jsonl(seed_dir / "tinydev.jsonl", _tasks(CODE))  # the held-out code: the dev set
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw["base_model_eval"] = _params(english_docs=8, instructions=4).to_dict()
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    out = tmp_path / "metrics" / "base_model_eval.json"
    argv = ["--params", str(params), "--seed-dir", str(seed_dir), "--out", str(out)]

    result = CliRunner().invoke(stage("base_model_eval"), [*argv, "--model", str(model_dir)])

    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["code_share"] == raw["base_model"]["code_share"]
    assert len(metrics["model_digest"]) == 64
    # tinydev's first two tasks are the corpus's code: skipped, the third is scored.
    assert metrics["code"]["documents"] == 1 and metrics["code"]["skipped_in_corpus"] == 2

    out.unlink()
    missing = CliRunner().invoke(stage("base_model_eval"), [*argv, "--model", "nope"])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: nope: not a model directory (no config.json)"
    assert not out.exists()


# --- the collector --------------------------------------------------------------------

SHARES = (0.0, 0.5, 1.0)
SEEDS = (0, 1, 2)


def _base_eval(share: float, base_seed: int = 0) -> dict:
    """What base_model_eval writes; its model (and scores) depend on the share and the
    pretraining seed alone."""
    return {
        "code_share": share,
        "base_seed": base_seed,
        "model_digest": f"model-{share}-{base_seed}",
        "english": {"perplexity": 3.0 + share, "bits_per_byte": 0.3 + share + 0.01 * base_seed},
        "code": {"perplexity": 2.0 - share, "bits_per_byte": 0.5 - 0.4 * share},
        "instructions_heldout": {"accuracy": 0.9 - 0.9 * share, "correct": 9, "prompts": 10},
        "seed": 0,
    }


def _pass1(share: float, seed: int) -> float:
    return round(0.2 + 0.4 * share + 0.1 * seed, 6)


def _rev(
    rev: str,
    name,
    timestamp,
    share,
    train_seed,
    base_eval=None,
    pass1=None,
    *,
    base_seed=None,
    evaluated_digest=None,
    evaluated_seed=None,
    params=None,
) -> dict:
    """One row of `dvc exp show --json`; `evaluated_digest` is the base model evaluate saw
    (None: a file from before evaluate recorded it)."""
    metrics = {}
    if base_eval is not None:
        metrics["metrics/base_model_eval.json"] = {"data": base_eval}
    if pass1 is not None:
        models = {"k1": {"k": 1, "pass@1": pass1}, "routed": {"k": 5, "pass@1": 0.0}}
        if evaluated_digest is not None:
            models["base"] = {"pass@1": 0.1, "model_digest": evaluated_digest}
        if evaluated_seed is not None:
            models["k1"]["train_seed"] = evaluated_seed
        metrics["metrics/evaluate.json"] = {"data": {"tinyeval": {"models": models}}}
    base = {"code_share": share, "seed": base_seed}
    params = {"seed": 0, "k": 5, "train_seed": train_seed, "base_model": base, **(params or {})}
    return {
        "rev": rev,
        "name": name,
        "data": {
            "rev": rev,
            "timestamp": timestamp,
            "params": {"params.yaml": {"data": params}},
            "metrics": metrics,
            "deps": {},
            "outs": {},
            "meta": {},
        },
        "error": None,
        "experiments": None,
    }


def _experiment(rev: dict, state: str | None = None) -> dict:
    executor = {"state": state, "name": None, "local": {}} if state else None
    return {"executor": executor, "name": rev["name"], "revs": [rev]}


BASELINE_DIGEST = "model-0.25-0"


def _listing() -> list:
    """Shares x train seeds, shares x pretraining seeds 1 and 2 (base_model_eval only, so
    their evaluate.json is the baseline's), plus a stale repeat, a queued, a failed and
    two stale-metrics runs."""
    experiments = []
    minute = 0
    for share in SHARES:
        for seed in SEEDS:
            minute += 1
            # Share 1.0 is an older grid: its evaluate.json does not name its base model.
            evaluated = None if share == 1.0 else f"model-{share}-0"
            rev = _rev(
                f"{minute:040x}",
                f"exp-{share}-{seed}",
                f"2026-01-01T10:{minute:02d}:00",
                share,
                seed,
                _base_eval(share),
                _pass1(share, seed),
                evaluated_digest=evaluated,
            )
            experiments.append(_experiment(rev))
        for base_seed in (1, 2):
            minute += 1
            rev = _rev(
                f"{minute:040x}",
                f"exp-{share}-base{base_seed}",
                f"2026-01-01T10:{minute:02d}:00",
                share,
                None,
                _base_eval(share, base_seed),
                0.35,
                base_seed=base_seed,
                evaluated_digest=BASELINE_DIGEST,
            )
            experiments.append(_experiment(rev))
    older = _base_eval(0.5)
    older["english"]["bits_per_byte"] = 9.0
    experiments.append(
        _experiment(_rev("a" * 40, "older", "2026-01-01T09:00:00", 0.5, 1, older, 0.99))
    )
    # A failed run shows its baseline's metrics: must not become a share 0.25 point.
    failed = _rev("b" * 40, "failed", "2026-01-01T11:00:00", 0.25, 0, _base_eval(0.25), 0.5)
    experiments.append(_experiment(failed, "failed"))
    experiments.append(_experiment(_rev("c" * 40, "queued", None, 0.75, 0), "queued"))
    # Ran `evaluate` only: base_model_eval.json is the baseline's, measured at 0.25 ...
    stale = _rev("d" * 40, "stale", "2026-01-01T11:30:00", 0.75, 1, _base_eval(0.25), 0.5)
    experiments.append(_experiment(stale))
    # ... and here with the baseline's pretraining seed.
    stale_seed = _rev(
        "f" * 40, "stale-seed", "2026-01-01T11:40:00", 0.25, None, _base_eval(0.25), 0.5,
        base_seed=3, evaluated_digest="model-0.25-3",
    )  # fmt: skip
    experiments.append(_experiment(stale_seed))
    # Ran `lintseq_eval` only at train_seed 1: evaluate.json is the baseline's (seed 0).
    stale_train = _rev(
        "9" * 40, "lintseq-only", "2026-01-01T11:50:00", 0.25, 1, _base_eval(0.25), 0.35,
        evaluated_digest=BASELINE_DIGEST, evaluated_seed=0,
    )  # fmt: skip
    experiments.append(_experiment(stale_train))
    # The same, newer than a run that did measure (0.5, 0, 1): it must not shadow it.
    shadow = _rev(
        "8" * 40, "lintseq-later", "2026-01-01T12:00:00", 0.5, 1, _base_eval(0.5), 0.35,
        evaluated_digest="model-0.5-0", evaluated_seed=0,
    )  # fmt: skip
    experiments.append(_experiment(shadow))
    # The newest (0.5, 0, 1) run, but it also changed sft.epochs: another configuration.
    epochs = _rev(
        "7" * 40, "epochs", "2026-01-01T12:10:00", 0.5, 1, _base_eval(0.5), 0.99,
        evaluated_digest="model-0.5-0", params={"sft": {"epochs": 9}},
    )  # fmt: skip
    experiments.append(_experiment(epochs))
    workspace = _rev(
        "workspace", None, None, 0.25, None, _base_eval(0.25), 0.4,
        evaluated_digest=BASELINE_DIGEST,
    )  # fmt: skip
    baseline = _rev(
        "e" * 40, "main", "2026-01-01T08:00:00", 0.25, None, _base_eval(0.25), 0.35,
        evaluated_digest=BASELINE_DIGEST,
    )  # fmt: skip
    baseline["experiments"] = experiments
    return [workspace, baseline]


def _collect(tmp_path: Path, listing, *args: str):
    path = tmp_path / "exp_show.json"
    path.write_text(listing if isinstance(listing, str) else json.dumps(listing))
    out, plot = tmp_path / "out" / "mixture.json", tmp_path / "out" / "mixture.png"
    argv = ["--from-json", str(path), "--out", str(out), "--plot", str(plot)]
    argv += ["--runs-dir", str(tmp_path / "runs"), *args]
    return CliRunner().invoke(mixture_command, argv), out, plot


def test_collector_aggregates_per_code_share(tmp_path):
    from PIL import Image

    result, out, plot = _collect(tmp_path, _listing())

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    by_share = {point["code_share"]: point for point in summary["by_share"]}
    # 0.25 comes from the workspace and the baseline commit (master seed 0, one run).
    assert sorted(by_share) == [0.0, 0.25, 0.5, 1.0]
    for share in SHARES:
        point = by_share[share]
        # pass@1 after SFT: one per training seed, never from a run whose evaluate.json
        # is another base model's (the pretraining-seed runs show the baseline's 0.35).
        assert point["sft_runs"] == [[0, 0], [0, 1], [0, 2]]
        pass1 = point["sft_pass@1"]
        assert pass1["values"] == [_pass1(share, seed) for seed in SEEDS]
        assert pass1["n"] == 3 and pass1["min"] == _pass1(share, 0)
        assert pass1["max"] == _pass1(share, 2)
        assert pass1["mean"] == pytest.approx(_pass1(share, 1))
        # One base model per pretraining seed (train_seed does not change it): counted once.
        assert point["base_models"] == 3 and point["base_seeds"] == [0, 1, 2]
        english = point["english_bits_per_byte"]
        assert english["n"] == 3 and english["mean"] == pytest.approx(0.3 + share + 0.01)
        assert english["min"] == pytest.approx(0.3 + share)
        assert english["max"] == pytest.approx(0.3 + share + 0.02)
        assert point["instruction_accuracy"]["n"] == 3
    # The lintseq-only run's evaluate.json is the baseline's: its pass@1 is not counted.
    assert by_share[0.25]["base_seeds"] == [0] and by_share[0.25]["sft_runs"] == [[0, 0]]
    # The workspace repeats the baseline commit and, without a timestamp, counts as older.
    assert by_share[0.25]["sft_pass@1"]["values"] == [0.35]
    assert len(summary["runs"]) == 17

    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(plot) as image:
        image.verify()
        assert image.size[0] > 1000 and image.size[1] > 300


def test_collector_skips_unfinished_stale_and_older_runs(tmp_path):
    result, out, _ = _collect(tmp_path, _listing())

    summary = json.loads(out.read_text())
    runs = {(r["code_share"], r["base_seed"], r["train_seed"]): r for r in summary["runs"]}
    # Not the older repeat, not lintseq-later, not the run that changed sft.epochs.
    assert runs[(0.5, 0, 1)]["name"] == "exp-0.5-1"
    assert "1 with other params than the workspace (sft.epochs)" in result.stderr
    assert 0.75 not in {share for share, _, _ in runs}  # queued, and stale metrics
    assert (0.25, 3, 0) not in runs  # base_model_eval did not run at base_model.seed 3
    assert runs[(0.5, 2, 0)]["sft_pass@1"] is None  # evaluate did not run on its model
    assert "1 failed" in result.stderr and "1 queued" in result.stderr
    assert "1 with a stale metrics/base_model_eval.json (measured at another code" in (
        result.stderr
    )
    assert "1 with a stale metrics/base_model_eval.json (measured at another base_model.seed)" in (
        result.stderr
    )
    assert "6 SFT scores of another base model" in result.stderr
    assert "2 SFT scores of another train_seed" in result.stderr
    assert runs[(0.25, 0, 1)]["sft_pass@1"] is None
    # older, baseline, lintseq-later
    assert "3 older repeats of a (code share, schedule, base seed, train seed)" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["code_share", "base_models", "sft_runs"]
    assert lines[1].split("\t")[:3] == ["0", "3", "3"]


def test_collector_without_sft_scores_still_plots(tmp_path):
    listing = _listing()
    for entry in [listing[0], listing[1], *(e["revs"][0] for e in listing[1]["experiments"])]:
        entry["data"]["metrics"].pop("metrics/evaluate.json", None)

    result, out, plot = _collect(tmp_path, listing)

    assert result.exit_code == 0, result.output
    assert all(p["sft_pass@1"] is None for p in json.loads(out.read_text())["by_share"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("listing", "message"),
    [
        ("[{", r"exp_show.json:1: invalid JSON"),
        ('{"rows": []}', r"exp_show.json: expected the list of rows"),
        ("[]", r"exp_show.json: no finished experiments with metrics/base_model_eval.json"),
    ],
)
def test_collector_bad_input_is_one_error_line(tmp_path, listing, message):
    result, out, plot = _collect(tmp_path, listing)

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0])
    assert not out.exists() and not plot.exists()


def test_collector_names_why_nothing_was_usable(tmp_path):
    listing = _listing()
    for entry in [listing[0], listing[1], *(e["revs"][0] for e in listing[1]["experiments"])]:
        entry["data"]["metrics"].pop("metrics/base_model_eval.json", None)

    result, _, _ = _collect(tmp_path, listing)

    assert result.exit_code == 2
    assert "no metrics/base_model_eval.json" in result.stderr


def test_help_shows_the_recipe():
    result = CliRunner().invoke(mixture_command, ["--help"])
    assert result.exit_code == 0
    assert "base_model.code_share=$s" in result.output and "--from-json" in result.output


def test_bits_per_byte_spanning_a_share_that_never_saw_the_text_get_a_log_axis():
    assert log_scale("code_bits_per_byte", [14.8, 0.104, 0.103])
    assert not log_scale("english_bits_per_byte", [0.277, 0.25, 0.289])
    assert not log_scale("instruction_accuracy", [0.01, 0.96])  # not bits per byte
    assert not log_scale("code_bits_per_byte", [0.0, 0.5])  # a log axis cannot hold 0


def test_a_log_axis_gets_a_linear_zoom_of_the_shares_near_the_best():
    def point(share, low, high):
        return {"code_share": share, "english": {"min": low, "max": high}}

    points = [point(0, 0.25, 0.28), point(0.25, 0.23, 0.25), point(0.5, 0.26, 0.29),
              point(1.0, 9.7, 11.6)]  # fmt: skip
    assert zoom_shares(points, "english") == [0, 0.25, 0.5]
    assert zoom_shares(points[1:], "english") == [0.25, 0.5]


def test_each_mixture_run_gets_a_record_that_findings_can_pair_by_base_seed(tmp_path):
    result, out, _ = _collect(tmp_path, _listing())

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    records = [json.loads(Path(p).read_text()) for p in summary["records"]]
    assert len(records) == len(summary["runs"])
    assert sorted(records[0]["varies"]) == ["base_model.seed", "train_seed"]
    for record in records:
        swept = record["swept"]
        assert record["seeds"]["base_model.seed"] == swept["base_seed"]
        assert record["seeds"]["train_seed"] == swept["train_seed"]
        measured = record["metrics"]["base_model_eval"]
        assert (
            measured["english"]["bits_per_byte"]
            == record["metrics"]["scores"]["english_bits_per_byte"]
        )
        # The K = 1 scores only where evaluate ran in the run, and its verdicts asked for.
        if record["metrics"]["k1"] is None:
            assert record["tasks_missing"] == {}
        else:
            assert set(record["tasks_missing"]) == {"k1/pass1", "k1/passk"}


def _scheduled(rev: str, base_seed: int, cooldown_share: float, measured_phases) -> dict:
    """A run with a text-or-code cooldown (base_model_eval only); `measured_phases` is the
    schedule its base_model_eval.json names (None: a stale file from before it)."""
    measured = _base_eval(0.25, base_seed)
    measured["model_digest"] = f"model-cool{cooldown_share}-{base_seed}"
    measured["english"]["bits_per_byte"] = 0.2 + cooldown_share
    if measured_phases is not None:
        measured["phases"] = measured_phases
    row = _rev(
        rev, f"cool-{cooldown_share}-{base_seed}", f"2026-01-02T10:0{base_seed}:00", 0.25, None,
        measured, 0.35, base_seed=base_seed, evaluated_digest=BASELINE_DIGEST,
    )  # fmt: skip
    row["data"]["params"]["params.yaml"]["data"]["base_model"].update(
        cooldown_fraction=0.2, cooldown_code_share=cooldown_share
    )
    row["data"]["metrics"]["metrics/base_model.json"] = {"data": {"pass@1_t0.8": 0.1}}
    return _experiment(row)


def _phases(share: float) -> list[dict]:
    return [
        {"name": "main", "fraction": 0.8, "code_share": 0.25, "steps": 480},
        {"name": "cooldown", "fraction": 0.2, "code_share": share, "steps": 120},
    ]


def test_scheduled_runs_get_records_but_stay_out_of_the_single_mixture_grid(tmp_path):
    listing = _listing()
    (tmp_path / "plain").mkdir()
    plain, _, _ = _collect(tmp_path / "plain", _listing())
    assert plain.exit_code == 0, plain.output
    listing[1]["experiments"] += [
        _scheduled("1" * 40, 1, 0.0, _phases(0.0)),
        _scheduled("2" * 40, 2, 0.0, _phases(0.0)),
        _scheduled("3" * 40, 1, 0.25, _phases(0.25)),
        # Ran base_model only: its base_model_eval.json is the baseline's, unscheduled.
        _scheduled("4" * 40, 2, 0.25, None),
    ]
    result, out, _ = _collect(tmp_path, listing)

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    before = json.loads((tmp_path / "plain" / "out" / "mixture.json").read_text())
    assert summary["by_share"] == before["by_share"]  # the grid is unchanged
    assert "1 with a stale metrics/base_model_eval.json (measured under another phase" in (
        result.stderr
    )
    points = {point["phases"][0]["code_share"]: point for point in summary["by_schedule"]}
    assert sorted(points) == [0.0, 0.25]
    assert points[0.0]["base_seeds"] == [1, 2] and points[0.25]["base_seeds"] == [1]
    assert points[0.0]["phases"] == [{"name": "cooldown", "fraction": 0.2, "code_share": 0.0}]
    assert points[0.0]["english_bits_per_byte"]["mean"] == pytest.approx(0.2)
    records = [json.loads(Path(p).read_text()) for p in summary["records"]]
    scheduled = [r for r in records if "schedule" in r["swept"]]
    assert len(scheduled) == 3 and len(records) == len(before["records"]) + 3
    for record in scheduled:
        assert record["swept"]["schedule"].startswith("cooldown0.2at")
        assert record["params"]["base_model"]["cooldown_fraction"] == 0.2
        assert record["metrics"]["base_model"] == {"pass@1_t0.8": 0.1}
    assert "cooldown 0.2 at 0\t2\t0" in result.stdout.replace(", ", " ")
