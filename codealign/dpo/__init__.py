"""Curriculum DPO from execution feedback.

The pipeline, one module per step, each step one DVC stage:

The SFT policy on disk (a model dir, one LoRA adapter dir, or the routed specialists of
`models/sft/`) is `codealign.evaluation.policy`; how prompts are put to it (chat
template, whole-function answers) is `codealign.evaluation.chat`.

- `sample`: on-policy best-of-N completions on the DPO prompt pool, after checking that
  the pool shares no problem with any evaluation set.
- `score`: every completion through the sandbox; score = tests passed / tests total.
- `pairs`: chosen = highest score, rejected = lowest, no pair on ties; reference
  log-probs computed once, exactly as TRL's DPOTrainer computes them, and stored.
- `strip`: comments, docstrings and example usage removed (AST) to spot pairs that
  differ in nothing that runs.
- `curriculum`: percentile buckets of the log-prob distance, pruning, ordering.
- `train`: DPOTrainer + PEFT, one curriculum stage at a time or the shuffled baseline,
  with per-sample losses logged and pass@1 measured at the stage boundaries.
- `plots`, `stats`: figures and the bootstrap confidence interval of the seed experiment.
"""
