"""Experiments run as DVC experiment grids and collected.

The K sweep, LintSeq seeds, the code-share sweep.
"""
