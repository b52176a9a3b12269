"""Findings: each claim of the source works as an experiment with a verdict.

`claims` declares the claims (one registry); `table` applies the rule to the run
records under results/runs/ and writes results/findings.json and .md
(`codealign findings`; docs/findings.md).
"""
