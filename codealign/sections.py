"""Imports every module that registers a params section (see codealign.params)."""

import codealign.curation.dataset_metrics  # noqa: F401
import codealign.curation.dedup  # noqa: F401
import codealign.curation.seed  # noqa: F401
import codealign.dpo.curriculum  # noqa: F401
import codealign.dpo.pairs  # noqa: F401
import codealign.dpo.sample  # noqa: F401
import codealign.dpo.score  # noqa: F401
import codealign.dpo.train  # noqa: F401
import codealign.edits.lintseq  # noqa: F401
import codealign.edits.lintseq_eval  # noqa: F401
import codealign.evaluation.evaluate  # noqa: F401
import codealign.lm.embedding  # noqa: F401
import codealign.lm.hub  # noqa: F401
import codealign.pretraining.base_model  # noqa: F401
import codealign.pretraining.base_model_eval  # noqa: F401
import codealign.report  # noqa: F401
import codealign.specialists.cluster  # noqa: F401
import codealign.specialists.sft  # noqa: F401
import codealign.synth  # noqa: F401
