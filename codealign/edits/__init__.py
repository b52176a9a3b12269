"""Edit sequences.

LintSeq data (`lintseq`) and the edits-against-programs comparison (`lintseq_eval`).
"""
