"""Imports every module that registers a params section (see codealign.params)."""

import codealign.base_model  # noqa: F401
import codealign.dataset_metrics  # noqa: F401
import codealign.dedup  # noqa: F401
import codealign.embedding  # noqa: F401
import codealign.evaluation  # noqa: F401
import codealign.seed  # noqa: F401
import codealign.synth  # noqa: F401
