"""Curating the instruction data.

Seed sets, vendored datasets, dedup and decontamination, dataset metrics.
"""
