"""Dense prediction (NYUv2, Cityscapes): metrics; data, networks and losses to come.

- ``metrics``: segmentation / depth / normal metrics under each source's convention and Δm
  (also re-exported by ``tf_mtl.metrics``).
- ``streaming_metrics``: the same as replica-safe Keras metrics for ``model.evaluate``.
"""

from tf_mtl.dense.metrics import (CITYSCAPES_HIGHER_IS_BETTER, NYUV2_HIGHER_IS_BETTER,
                                  NYUV2_SINGLE_TASK_BASELINE, delta_m, depth_metrics,
                                  normal_metrics, segmentation_metrics)
from tf_mtl.dense.streaming_metrics import DepthError, NormalError, SegmentationScore

__all__ = ["CITYSCAPES_HIGHER_IS_BETTER", "DepthError", "NYUV2_HIGHER_IS_BETTER",
           "NYUV2_SINGLE_TASK_BASELINE", "NormalError", "SegmentationScore", "delta_m",
           "depth_metrics", "normal_metrics", "segmentation_metrics"]
