"""`codealign tinyhelen`: lean vs original pretraining text at equal tokens.

Reads the `refine` stage's data/refine/{original,lean}.jsonl and the tiny world's train
split and tinyeval, pretrains a pair of base models per seed (codealign.refine.compare),
and writes

- results/tinyhelen/<name>.json: the whole comparison, with its command, commit, profile,
  params, seeds, every run's per-item scores and the paired bootstrap per metric, and
  <name>.png, held-out bits per byte against training tokens for both corpora;
- results/runs/tinyhelen/<name>-corpus=<corpus>-seed=<seed>.json: one run record per
  pretrained model in the schema `codealign findings` reads (codealign.sweeps.records),
  `tinyhelen.corpus` and `base_model.seed` in its params.

`--from-summary` rewrites the run records from a comparison written before, without
pretraining again.

Its cost is 2 x len(tinyhelen.seeds) pretrainings of `base_model`'s size, which is why it
is a command and not a stage of the default DAG (docs/tinyhelen.md).
"""

from __future__ import annotations

import io
import logging
import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from codealign.command import Command, setup_logging
from codealign.errors import CodealignError
from codealign.io import atomic_path, read_jsonl, write_json
from codealign.refine.compare import CORPORA

log = logging.getLogger(__name__)

RUNS_DIR = Path("results/runs/tinyhelen")
OUT_DIR = Path("results/tinyhelen")
BOOTSTRAP = 2000

# metric -> (where its per-item values are, whether lower is better)
ITEM_METRICS = {
    "heldout_bpb_lean_text": (("heldout_bpb", "lean"), True),
    "heldout_bpb_original_text": (("heldout_bpb", "original"), True),
    "instructions_lean_form": (("instructions_correct", "lean"), False),
    "instructions_original_form": (("instructions_correct", "original"), False),
    "code_pass_rate": (("code", "task_pass_rate"), False),
}


def profile_of(params_file: Path) -> str | None:
    """The profile (params/<name>.yaml) whose bytes the params file has, or None."""
    from codealign.profiles import current

    root = params_file.resolve().parent
    for base in (root, root.parent, Path(".")):
        if name := current(base, params_file):
            return name
    return None


def _items(run: dict[str, Any], path: tuple[str, str]) -> list[float] | None:
    value = run.get(path[0])
    value = value.get(path[1]) if isinstance(value, dict) else None
    return value if isinstance(value, list) and value else None


def paired_bootstrap(
    lean: Sequence[Sequence[float]], original: Sequence[Sequence[float]], seed: int
) -> dict[str, Any]:
    """Mean of lean - original and its 95% interval: seeds resampled, then items within
    each drawn seed (the same items for both corpora, so the pairing is kept)."""
    import numpy as np

    a, b = np.asarray(lean, dtype=float), np.asarray(original, dtype=float)
    diff = a - b  # seeds x items
    rng = np.random.default_rng(seed)
    n_seeds, n_items = diff.shape
    seeds = rng.integers(0, n_seeds, size=(BOOTSTRAP, n_seeds))
    items = rng.integers(0, n_items, size=(BOOTSTRAP, n_seeds, n_items))
    draws = diff[seeds[:, :, None], items].mean(axis=(1, 2))
    low, high = np.percentile(draws, [2.5, 97.5])
    return {
        "lean": float(a.mean()),
        "original": float(b.mean()),
        "diff": float(diff.mean()),
        "ci95": [float(low), float(high)],
        "per_seed_diff": [float(d) for d in diff.mean(axis=1)],
    }


def verdict(effect: dict[str, Any], lower_is_better: bool) -> str:
    """`supports` when the interval excludes 0 in the claimed direction (lean better),
    `contradicts` when it excludes 0 the other way, else `inconclusive`."""
    low, high = effect["ci95"]
    better_low = lower_is_better
    if (high < 0) if better_low else (low > 0):
        return "supports"
    if (low > 0) if better_low else (high < 0):
        return "contradicts"
    return "inconclusive"


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per metric: lean vs original over seeds and items, with interval and verdict."""
    summary: dict[str, Any] = {}
    for name, (path, lower) in ITEM_METRICS.items():
        lean = [_items(r["lean"], path) for r in runs]
        original = [_items(r["original"], path) for r in runs]
        if any(v is None for v in lean + original):
            continue
        effect = paired_bootstrap(lean, original, seed=0)
        summary[name] = {
            **effect,
            "lower_is_better": lower,
            "items": len(lean[0]),
            "verdict": verdict(effect, lower),
        }
    return summary


def render_plot(runs: Sequence[dict[str, Any]], title: str) -> bytes:
    """Held-out bits per byte against training tokens, a panel per held-out form; a thin
    line per seed and a thick mean per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colours = {"original": "#c44e52", "lean": "#4c72b0"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    for ax, (target, label) in zip(
        axes[0],
        (("lean", "held-out lean text"), ("original", "held-out original text")),
        strict=True,
    ):
        for corpus, colour in colours.items():
            curves = [r[corpus]["curve"] for r in runs]
            tokens = [p["tokens"] for p in curves[0]]
            values = np.array([[p[target] for p in c] for c in curves])
            for row in values:
                ax.plot(tokens, row, color=colour, alpha=0.3, linewidth=0.8)
            ax.plot(
                tokens,
                values.mean(axis=0),
                color=colour,
                linewidth=2,
                marker="o",
                markersize=3,
                label=f"trained on {corpus} text",
            )
        ax.set_xlabel("training tokens seen")
        ax.set_ylabel("bits per byte")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def read_corpus(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise CodealignError(f"{path}: not found; run the refine stage first (dvc repro refine)")
    records = read_jsonl(path)
    if not records:
        raise CodealignError(f"{path}: no documents")
    return records


def load_with_overrides(params_file: Path, overrides: Sequence[str]) -> Any:
    """The params file with `section.key=value` overrides (the value read as YAML, as
    `dvc exp run -S` reads it), validated; one line naming the override on error."""
    import yaml

    from codealign.params import load_params, parse_params

    params = load_params(params_file)  # the file's own errors first, with its name
    if not overrides:
        return params
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    for override in overrides:
        key, sep, text = override.partition("=")
        section, dot, field = key.partition(".")
        if not sep or not dot or not field or "." in field:
            raise CodealignError(f"-S {override!r}: expected section.key=value")
        if not isinstance(raw.get(section), dict):
            raise CodealignError(f"-S {override!r}: no params section {section!r}")
        try:
            raw[section][field] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CodealignError(f"-S {override!r}: the value is not valid YAML") from None
    return parse_params(raw, f"{params_file} with -S {' -S '.join(overrides)}")


def run_comparison(params: Any, refine_dir: Path, seed_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Every seed's pair of runs, and the summary (see codealign.refine.compare)."""
    from codealign.curation.dedup import read_eval_jsonl, require_no_twins
    from codealign.refine.compare import (
        heldout_instructions,
        heldout_targets,
        run_one,
        shared_tokenizer,
    )
    from codealign.tinyworld.corpus import read_code
    from codealign.tinyworld.original import ANSWER_PREFIX, INSTRUCTION_PREFIX
    from codealign.tinyworld.text import InstructionSplit

    if params["base_model"].name != "tiny":
        raise CodealignError("base_model.name must be tiny: the comparison pretrains from scratch")
    th, rates = params["tinyhelen"], params["refine"]
    english = {name: read_corpus(refine_dir / f"{name}.jsonl") for name in ("original", "lean")}
    code = [p + s for p, s in read_code(seed_dir / "train.jsonl")]
    held_out = [seed_dir / n for n in ("tinyeval.jsonl", "tinydev.jsonl")]
    tasks = [t for path in held_out if path.is_file() for t in read_eval_jsonl(path)]
    require_no_twins(code, tasks, f"{seed_dir / 'train.jsonl'} (the corpora's code)")
    problems = read_jsonl(seed_dir / "tinyeval.jsonl")[: th.eval_tasks] if th.eval_tasks else []
    lean_texts = [d["text"] for d in english["lean"]]
    heldout = params["heldout_instructions"]
    split = InstructionSplit(heldout.share, heldout.salt)
    targets = heldout_targets(lean_texts, th.heldout_docs, th.salt, rates, split)
    instructions = heldout_instructions(th.instructions, th.salt, rates, split)
    texts = {corpus: [d["text"] for d in docs] for corpus, docs in english.items()}
    tokenizer = None
    if th.tokenizer == "shared":
        tokenizer = shared_tokenizer(code, list(texts.values()), params)
    runs = []
    for seed in th.seeds:
        run: dict[str, Any] = {"seed": seed}
        for corpus in ("original", "lean"):
            run[corpus] = run_one(
                corpus,
                texts[corpus],
                code,
                params,
                seed,
                targets,
                instructions,
                problems,
                work_dir,
                tokenizer,
            )
        runs.append(run)
    import hashlib

    lean_set = frozenset(lean_texts)
    return {
        "corpora": {
            name: {
                "documents": len(docs),
                "sha256": hashlib.sha256((refine_dir / f"{name}.jsonl").read_bytes()).hexdigest(),
            }
            for name, docs in english.items()
        },
        "runs": runs,
        "summary": summarise(runs),
        "heldout": {
            "documents": len(targets["lean"]),
            "instructions": len(instructions),
            # On arguments the refine stage kept out of both corpora: 0 unless the corpora
            # were written under another split (heldout_instructions params).
            "instructions_in_lean_corpus": sum(
                f"{INSTRUCTION_PREFIX}{i['lean']}{ANSWER_PREFIX}{i['answer']}" in lean_set
                for i in instructions
            ),
        },
        "instruction_examples": instructions[:3],
        "heldout_examples": {k: v[:2] for k, v in targets.items()},
    }


def run_records(summary: dict[str, Any], command: str) -> list[dict[str, Any]]:
    """One run record (codealign.sweeps.records) per model of a comparison summary: its
    params with `base_model.seed` and `tinyhelen.corpus` set, its mean scores as metrics,
    its tinyeval pass counts as the `code` arm's per-task outcomes."""
    import copy

    from codealign.sweeps.records import build_record

    seeds = [run["seed"] for run in summary["runs"]]
    samples = summary["params"]["tinyhelen"]["eval_samples"]
    records = []
    for run in summary["runs"]:
        for corpus in CORPORA:
            scored = run[corpus]
            params = copy.deepcopy(summary["params"])
            params["base_model"]["seed"] = run["seed"]
            params["tinyhelen"]["corpus"] = corpus
            metrics: dict[str, Any] = {
                "heldout_bpb": {
                    f"{form}_text": _mean(scored["heldout_bpb"][form]) for form in CORPORA
                },
                "tokens_seen": scored["tokens_seen"],
                "epochs": scored["epochs"],
                "curve": scored["curve"],
            }
            tasks: dict[str, Any] = {}
            if "instructions_correct" in scored:
                metrics["instructions_heldout"] = {
                    f"{form}_form": _mean(scored["instructions_correct"][form]) for form in CORPORA
                }
            if "code" in scored:
                code = scored["code"]
                metrics["code"] = {k: v for k, v in code.items() if k.startswith("pass@")}
                tasks["code"] = {
                    task: [round(rate * samples), samples]
                    for task, rate in zip(code["tasks"], code["task_pass_rate"], strict=True)
                }
            records.append(
                build_record(
                    sweep="tinyhelen",
                    run=f"{summary['name']}-corpus={corpus}-seed={run['seed']}",
                    command=command,
                    commit=summary["commit"],
                    dirty=summary.get("dirty"),
                    experiment={},
                    profile=None if summary.get("overrides") else summary.get("profile"),
                    params=params,
                    swept={"tinyhelen.corpus": corpus, "base_model.seed": run["seed"]},
                    varies=["base_model.seed"] if len(set(seeds)) > 1 else [],
                    metrics=metrics,
                    tasks=tasks,
                    tasks_missing={},
                )
            )
    return records


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def print_summary(summary: dict[str, Any]) -> None:
    click.echo("metric\toriginal\tlean\tlean-original [95% CI]\tverdict")
    for metric, s in summary.items():
        low, high = s["ci95"]
        click.echo(
            f"{metric}\t{s['original']:.4f}\t{s['lean']:.4f}\t"
            f"{s['diff']:+.4f} [{low:+.4f}, {high:+.4f}]\t{s['verdict']}"
        )


@click.command("tinyhelen", cls=Command)
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("params.yaml"),
    show_default=True,
)
@click.option(
    "--refine-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/refine"),
    show_default=True,
    help="The refine stage's original.jsonl and lean.jsonl.",
)
@click.option(
    "--seed-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/seed"),
    show_default=True,
    help="The tiny world's train.jsonl (the corpora's code) and tinyeval.jsonl.",
)
@click.option(
    "--name",
    "run_id",
    default=None,
    help="Name of the comparison (default: <profile>[-custom]-<commit>).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=OUT_DIR,
    show_default=True,
    help="Where the comparison's JSON and plot go.",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=RUNS_DIR,
    show_default=True,
    help="Where the per-model run records go (read by `codealign findings`).",
)
@click.option(
    "-S",
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a param of the params file (repeatable); recorded.",
)
@click.option(
    "--from-summary",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Write the run records of a comparison written before; pretrain nothing.",
)
def tinyhelen_command(
    params_file: Path,
    refine_dir: Path,
    seed_dir: Path,
    run_id: str | None,
    out_dir: Path,
    runs_dir: Path,
    overrides: tuple[str, ...],
    from_summary: Path | None,
) -> None:
    """Pretrain base models on original and on lean text at equal tokens and compare them.

    \b
        dvc repro refine seed      # data/refine/{original,lean}.jsonl, data/seed/
        codealign tinyhelen        # results/tinyhelen/<name>.{json,png}, results/runs/tinyhelen/
        codealign tinyhelen -S base_model.steps=200 -S tinyhelen.eval_tasks=20

    Per seed in tinyhelen.seeds, two base models (base_model's size, steps and code
    share) are pretrained, one per corpus, and scored on held-out text in lean and in
    original form (bits per byte, during training and at the end), on held-out
    instructions in both forms, and on tinyeval pass@k. Prints lean vs original per
    metric with a 95% paired bootstrap interval (seeds, then items).
    """
    from codealign.sweeps.records import head_commit, workspace_dirty, write_records

    setup_logging()
    if from_summary is not None:
        summary = read_json_file(from_summary)
        command = shlex.join(
            [
                "codealign",
                "tinyhelen",
                "--from-summary",
                str(from_summary),
                "--runs-dir",
                str(runs_dir),
            ]
        )
        records = run_records(summary, command)
        write_records(runs_dir, records)
        print_summary(summary["metrics"])
        click.echo(f"wrote {len(records)} run records to {runs_dir}", err=True)
        return
    if not params_file.is_file():
        raise CodealignError(f"{params_file}: params file not found")
    params = load_with_overrides(params_file, overrides)
    commit, dirty, profile = head_commit(), workspace_dirty(), profile_of(params_file)
    name = (
        run_id or f"{profile or 'custom'}{'-custom' if overrides else ''}-{(commit or 'nogit')[:8]}"
    )
    if "/" in name or not name.strip():
        raise CodealignError(f"--name must be a plain file name, got {name!r}")
    command = shlex.join(
        [
            "codealign",
            "tinyhelen",
            "--params",
            str(params_file),
            "--refine-dir",
            str(refine_dir),
            "--seed-dir",
            str(seed_dir),
            "--name",
            name,
            "--out-dir",
            str(out_dir),
            "--runs-dir",
            str(runs_dir),
            *(arg for override in overrides for arg in ("-S", override)),
        ]
    )
    with tempfile.TemporaryDirectory(prefix="tinyhelen-") as work:
        result = run_comparison(params, refine_dir, seed_dir, Path(work))
    summary = {
        "name": name,
        "command": command,
        "commit": commit,
        "dirty": dirty,
        "profile": profile,
        "overrides": list(overrides),
        "params": {
            "seed": params.seed,
            **{
                s: params[s].to_dict()
                for s in ("base_model", "heldout_instructions", "refine", "tinyhelen")
            },
        },
        "seeds": {
            "varies": "tinyhelen.seeds (pretraining seed)",
            "values": list(params["tinyhelen"].seeds),
            "corpus_seed": params.seed,
        },
        "claim": "lean (refined) pretraining text beats original text at equal tokens "
        "(TinyHelen); offline the lean text is the tiny world's own generator's, so this "
        "tests 'lean data helps tiny models', not an LM's refinement",
        "refine_backend": params["refine"].backend,
        "metrics": result["summary"],
        "runs": result["runs"],
        **{k: v for k, v in result.items() if k not in ("summary", "runs")},
    }
    records = run_records(summary, command)
    png = render_plot(
        result["runs"],
        f"TinyHelen, {profile or params_file}{' with -S' if overrides else ''}: held-out "
        f"bits per byte vs tokens ({len(result['runs'])} seeds)",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    out, plot = out_dir / f"{name}.json", out_dir / f"{name}.png"
    write_json(out, summary)
    with atomic_path(plot) as tmp:
        tmp.write_bytes(png)
    write_records(runs_dir, records)
    print_summary(result["summary"])
    click.echo(f"wrote {out}, {plot} and {len(records)} run records to {runs_dir}", err=True)


def read_json_file(path: Path) -> dict[str, Any]:
    from codealign.io import read_json

    data = read_json(path)
    needed = ("command", "commit", "params", "runs", "metrics")
    if not isinstance(data, dict) or any(key not in data for key in needed):
        raise CodealignError(f"{path}: not a comparison written by codealign tinyhelen")
    # Comparisons written before the name was recorded are named by their file.
    return {"name": path.stem, **data}
