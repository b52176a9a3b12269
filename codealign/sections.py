"""Imports every module that registers a params section (see codealign.params)."""

import codealign.base_model  # noqa: F401
import codealign.cluster  # noqa: F401
import codealign.dataset_metrics  # noqa: F401
import codealign.dedup  # noqa: F401
import codealign.dpo.curriculum  # noqa: F401
import codealign.dpo.pairs  # noqa: F401
import codealign.dpo.sample  # noqa: F401
import codealign.dpo.score  # noqa: F401
import codealign.dpo.train  # noqa: F401
import codealign.edits_eval  # noqa: F401
import codealign.embedding  # noqa: F401
import codealign.evaluation  # noqa: F401
import codealign.lintseq  # noqa: F401
import codealign.mixture  # noqa: F401
import codealign.report  # noqa: F401
import codealign.seed  # noqa: F401
import codealign.sft  # noqa: F401
import codealign.synth  # noqa: F401
