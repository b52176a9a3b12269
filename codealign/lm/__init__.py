"""Causal LMs and sentence embedders: loading, sampling, training curves and checkpoints."""
