"""Evaluating a policy on a benchmark: sampling, scoring in the sandbox, pass@k (`evaluate`)."""
