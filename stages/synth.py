"""Stage `synth`: S1*, S2, S3, S4, S5 and the rejected answers from data/seed/ into data/synth/."""

import contextlib
import logging

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.io import atomic_path, write_json, write_jsonl
from codealign.params import load_params
from codealign.synth.backends import make_backend
from codealign.synth.pipeline import SETS, load_seed_sets, run_synth
from codealign.synth.verify import SandboxVerifier

log = logging.getLogger("stages.synth")


@click.command(cls=Command)
@click.option(
    "--params",
    "params_file",
    default="params.yaml",
    show_default=True,
    help="Params file (sections: seed, synth).",
)
@click.option(
    "--seed-dir",
    default="data/seed",
    show_default=True,
    help="Seed sets: s1.jsonl, s2.jsonl, keywords.json.",
)
@click.option("--out", default="data/synth", show_default=True, help="Output directory.")
@click.option("--metrics", "metrics_file", default="metrics/synth.json", show_default=True)
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def main(params_file: str, seed_dir: str, out: str, metrics_file: str, progress: bool) -> None:
    """Generate question/code pairs by self-instruct and three keyword strategies.

    Answers of the hf and openai backends are cached in synth.cache_dir, so a rerun
    after a crash or a change of sizes asks only for what it has not seen.
    """
    setup_logging()
    params = load_params(params_file)
    synth = params["synth"]
    seed = load_seed_sets(seed_dir)
    log.info(
        "read %s: S1 %d, S2 %d, vocabulary %d",
        seed_dir,
        len(seed.s1),
        len(seed.s2),
        len(seed.vocabulary),
    )
    backend = make_backend(synth, known_prompts=seed.known_prompts)
    with contextlib.ExitStack() as stack:
        stack.callback(backend.close)
        verifier = None
        if synth.verify:
            verifier = stack.enter_context(
                SandboxVerifier(synth.sandbox_workers, synth.sandbox_timeout, progress)
            )
        result = run_synth(seed, synth, backend, params.seed, verifier=verifier, progress=progress)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for name in SETS:
            write_jsonl(tmp / f"{name}.jsonl", result.sets[name])
        write_jsonl(tmp / "rejected.jsonl", result.rejected)
    write_json(metrics_file, result.metrics)
    for name in SETS:
        log.info("wrote %s/%s.jsonl: %d records", out, name, len(result.sets[name]))
    reasons = result.metrics["total"]["rejected_by_reason"]
    log.info("wrote %s/rejected.jsonl: %d records %s", out, len(result.rejected), reasons)


if __name__ == "__main__":
    main()
