"""Every metric function of tf_mtl, whichever package implements it.

``000``'s sample-wise interference / transfer / PerfGain and linear CKA task
similarity live in ``tf_mtl.interference.metrics``; CelebA's macro attribute
scores in ``tf_mtl.experiments.attribute_metrics``. This module is their one
public home, so scripts keep calling ``tf_mtl.metrics.<name>``.

Example:
    >>> import numpy as np, tf_mtl
    >>> out = tf_mtl.metrics.interference_transfer(
    ...     single_correct=np.array([1, 1, 0, 0], bool), multi_correct=np.array([1, 0, 1, 0], bool))
    >>> {k: round(out[k], 1) for k in ("interference", "perf_gain", "transfer")}
    {'interference': 50.0, 'perf_gain': 0.0, 'transfer': 50.0}
"""

from tf_mtl.experiments.attribute_metrics import AttributeScore
from tf_mtl.interference.metrics import (UNDEFINED, correct_predictions,
                                         evaluate_interference_transfer, interference_transfer,
                                         linear_cka, representations, task_similarity)

__all__ = ["AttributeScore", "UNDEFINED", "correct_predictions", "evaluate_interference_transfer",
           "interference_transfer", "linear_cka", "representations", "task_similarity"]
