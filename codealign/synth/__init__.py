"""Synthetic question/code generation (METHOD.md A, "Synthetic generation").

- `backends`: one interface (`Backend.complete(requests) -> responses`) over the
  offline tiny world, a local HF causal LM and any OpenAI-compatible endpoint, with a
  response cache so that reruns never pay twice.
- `prompts`: the prompt templates in `codealign/prompts/synth_*.txt`.
- `strategies`: what each method asks for (self-instruct, keyword strategies 1-3).
- `parse`: an answer → question, code, tests, keywords, or a rejection reason.
- `verify`: an item's own asserts run against its code in the sandbox.
- `pipeline.run_synth`: all of it, in METHOD.md's order, with counts per reason.

Its params section is `codealign.params.synth.SynthParams`. Importing this package
imports nothing heavy.
"""

from codealign.synth.backends import (
    Backend,
    HFBackend,
    OpenAIBackend,
    Request,
    Response,
    ResponseCache,
    TinyWorldBackend,
    make_backend,
)
from codealign.synth.parse import Parsed, Rejection, parse_response
from codealign.synth.pipeline import SETS, SeedSets, SynthResult, load_seed_sets, run_synth
from codealign.synth.verify import Item, SandboxVerifier

__all__ = [
    "SETS",
    "Backend",
    "HFBackend",
    "Item",
    "OpenAIBackend",
    "Parsed",
    "Rejection",
    "Request",
    "Response",
    "ResponseCache",
    "SandboxVerifier",
    "SeedSets",
    "SynthResult",
    "TinyWorldBackend",
    "load_seed_sets",
    "make_backend",
    "parse_response",
    "run_synth",
]
