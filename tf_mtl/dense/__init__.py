"""Dense prediction (NYUv2, Cityscapes): networks, losses and metrics.

The data are in ``tf_mtl.data`` (``nyuv2``, ``cityscapes``: ``(image, {task: y},
{task: validity weights})``); here:

- ``segnet``: ``SegNet`` (MTAN's / ``003``'s, optionally with routing layers);
- ``mtan``: ``SegNetMTAN``, SegNet with per-task attention modules (task-specific
  parameters: ``MultiTaskModel.task_variables``);
- ``heads``: ``DenseHead`` / ``dense_head`` (segmentation, depth, normal, binary);
- ``losses``: the valid-pixel-mean losses and the validity weights they reduce with;
- ``metrics``: segmentation / depth / normal metrics under each source's convention and Δm
  (also re-exported by ``tf_mtl.metrics``);
- ``streaming_metrics``: the same as replica-safe Keras metrics for ``model.evaluate``;
- ``taskonomy_net``, ``taskonomy_losses``: Standley's (``002``) Taskonomy network and losses.

Example:
    >>> tasks = ["segmentation", "depth", "normal"]
    >>> model = tf_mtl.MultiTaskModel(
    ...     tf_mtl.dense.SegNetMTAN(tasks),
    ...     {"segmentation": tf_mtl.dense.dense_head("segmentation", 13),
    ...      "depth": tf_mtl.dense.dense_head("depth"),
    ...      "normal": tf_mtl.dense.dense_head("normal")},
    ...     {"segmentation": tf_mtl.dense.SegmentationCrossEntropy(),
    ...      "depth": tf_mtl.dense.DepthL1(), "normal": tf_mtl.dense.NormalCosine()})
"""

from tf_mtl.dense.heads import DenseHead, dense_head
from tf_mtl.dense.losses import (MASK_SOURCES, BinaryPixelCrossEntropy, DepthL1, NormalCosine,
                                 SegmentationCrossEntropy, per_class_targets, pixel_validity,
                                 validity_weights)
from tf_mtl.dense.metrics import (CITYSCAPES_HIGHER_IS_BETTER, NYUV2_HIGHER_IS_BETTER,
                                  NYUV2_SINGLE_TASK_BASELINE, delta_m, depth_metrics,
                                  normal_metrics, segmentation_metrics)
from tf_mtl.dense.mtan import SegNetMTAN
from tf_mtl.dense.segnet import SegNet
from tf_mtl.dense.streaming_metrics import DepthError, NormalError, SegmentationScore
from tf_mtl.dense.taskonomy_losses import (TaskonomyL1, TaskonomyRotateL1,
                                           make_taskonomy_losses, total_test_loss)
from tf_mtl.dense.taskonomy_net import (GradientScale, TaskonomyDecoder, TaskonomyEncoder,
                                        taskonomy_decoders)

__all__ = ["BinaryPixelCrossEntropy", "CITYSCAPES_HIGHER_IS_BETTER", "DenseHead", "DepthError",
           "DepthL1", "MASK_SOURCES", "NYUV2_HIGHER_IS_BETTER", "NYUV2_SINGLE_TASK_BASELINE",
           "NormalCosine", "NormalError", "SegNet", "SegNetMTAN", "SegmentationCrossEntropy",
           "SegmentationScore", "delta_m", "dense_head", "depth_metrics", "normal_metrics",
           "per_class_targets", "pixel_validity", "segmentation_metrics", "validity_weights",
           "GradientScale", "TaskonomyDecoder", "TaskonomyEncoder", "TaskonomyL1",
           "TaskonomyRotateL1", "make_taskonomy_losses", "taskonomy_decoders", "total_test_loss"]
