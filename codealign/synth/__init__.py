"""Synthetic question/code generation (METHOD.md A, "Synthetic generation").

- `backends`: one interface (`Backend.complete(requests) -> responses`) over the
  offline tiny world, a local HF causal LM and any OpenAI-compatible endpoint, with a
  response cache so that reruns never pay twice.
- `prompts`: the prompt templates in `codealign/prompts/synth_*.txt`.
- `strategies`: what each method asks for (self-instruct, keyword strategies 1-3).
- `parse`: an answer → question, code, tests, keywords, or a rejection reason.
- `verify`: an item's own asserts run against its code in the sandbox.
- `pipeline.run_synth`: all of it, in METHOD.md's order, with counts per reason.

Its params section is `codealign.params.synth.SynthParams`. The package re-exports
nothing: import the submodule you use, so a stage that needs only `backends` (refine)
does not depend on the sandbox that `verify` runs.
"""
