"""Every metric function of tf_mtl, whichever package implements it.

``000``'s sample-wise interference / transfer / PerfGain and linear CKA task
similarity live in ``tf_mtl.interference.metrics``; CelebA's macro attribute
scores in ``tf_mtl.experiments.attribute_metrics``; dense prediction's segmentation, depth and
normal metrics, their streaming Keras metrics and Δm in ``tf_mtl.dense.metrics`` and
``tf_mtl.dense.streaming_metrics``. This module is their one
public home, so scripts keep calling ``tf_mtl.metrics.<name>``.

Example:
    >>> import numpy as np, tf_mtl
    >>> out = tf_mtl.metrics.interference_transfer(
    ...     single_correct=np.array([1, 1, 0, 0], bool), multi_correct=np.array([1, 0, 1, 0], bool))
    >>> {k: round(out[k], 1) for k in ("interference", "perf_gain", "transfer")}
    {'interference': 50.0, 'perf_gain': 0.0, 'transfer': 50.0}
"""

from tf_mtl.dense.metrics import (CITYSCAPES_HIGHER_IS_BETTER, NYUV2_HIGHER_IS_BETTER,
                                  NYUV2_SINGLE_TASK_BASELINE, delta_m, depth_metrics,
                                  normal_metrics, segmentation_metrics)
from tf_mtl.dense.streaming_metrics import DepthError, NormalError, SegmentationScore
from tf_mtl.experiments.attribute_metrics import AttributeScore
from tf_mtl.interference.metrics import (UNDEFINED, correct_predictions,
                                         evaluate_interference_transfer, interference_transfer,
                                         linear_cka, representations, task_similarity)

__all__ = ["AttributeScore", "CITYSCAPES_HIGHER_IS_BETTER", "DepthError", "NYUV2_HIGHER_IS_BETTER",
           "NYUV2_SINGLE_TASK_BASELINE", "NormalError", "SegmentationScore", "UNDEFINED",
           "correct_predictions", "delta_m", "depth_metrics", "evaluate_interference_transfer",
           "interference_transfer", "linear_cka", "normal_metrics", "representations",
           "segmentation_metrics", "task_similarity"]
