"""Dense losses: each a mean over the valid pixels of the global batch.

As MTAN's ``utils.py`` (Liu et al., CVPR 2019) and Maximum Roaming's code (``003``)
compute them, for ``y_true``/``y_pred`` ``[B, H, W, C]`` (labels ``[B, H, W]``):

- ``SegmentationCrossEntropy``: ``-log softmax(y_pred)[y]`` averaged over the pixels
  whose label is not ``ignore_index`` (-1) — PyTorch's ``nll_loss(ignore_index=-1)``
  on MTAN's log-softmax head. It takes log-probabilities or logits alike (log-softmax
  leaves log-probabilities unchanged).
- ``DepthL1``: ``sum |p - y| m / sum m`` (MTAN's depth loss).
- ``NormalCosine``: ``1 - sum (p . y) m / sum m`` = the mean over valid pixels of
  ``1 - cos`` for unit vectors (MTAN's normal loss).
- ``BinaryPixelCrossEntropy``: ``003``'s per-class tasks: binary cross-entropy of the
  sigmoid of a logit, averaged over all pixels (their ``F.binary_cross_entropy`` on
  sigmoid outputs; ignored labels are negatives for every class, see
  ``per_class_targets``).

**Validity travels as per-task sample weights** ``[B, H, W]`` (0/1), as MovieLens's
masks do: each loss reduces with ``"mean_with_sample_weight"`` (``sum(loss * w) /
sum(w)``), so ``tf_mtl.distribute.loss_divisor`` reads the valid-pixel count from the
weights and ``MultiTaskModel`` turns each replica's loss into its exact share of the
global batch's mean over valid pixels: two replicas give one device's loss and
gradients. A batch with no valid pixel gives 0 (``divide_no_nan``), never NaN.

Where the mask comes from is the named option ``mask`` of ``validity_weights``, with
the vocabulary of the loaders' ``mask`` (``tf_mtl.data.nyuv2``, which yield these
weights):

- ``mask="own"``: each task's own target (MTAN since July 2020, LibMTL):
  labels ``!= -1``, depth and normals ``sum_c y != 0``;
- ``mask="depth"``: depth and normals both masked by the depth target (MTAN
  before July 2020 and ``003``'s code); segmentation keeps its labels' mask.

Called without sample weights, the segmentation, depth and normal losses mask with
their own target; that is exact on one device, but under several replicas the global
count needs the mask as sample weights (they refuse to run without).

Example:
    >>> from tf_mtl.dense.losses import DepthL1, validity_weights
    >>> depth = np.array([[[[2.0], [0.0]], [[1.0], [3.0]]]])        # [1, 2, 2, 1], 0 = invalid
    >>> weights = validity_weights({"depth": depth}, {"depth": "depth"})
    >>> float(DepthL1()(depth, np.ones_like(depth), sample_weight=weights["depth"]))
    1.0
"""

import keras
import tensorflow as tf

from tf_mtl import distribute

MASK_SOURCES = ("own", "depth")   # Values of ``mask``: where validity comes from.
KINDS = ("segmentation", "depth", "normal", "binary")


def pixel_validity(y_true, kind, ignore_index=-1):
    """``[..., H, W]`` float 0/1: where ``y_true`` (``kind``'s target) is valid.

    Segmentation labels (``[..., H, W]`` or ``[..., H, W, 1]``): ``y != ignore_index``;
    depth and normals (``[..., H, W, C]``): ``sum_c y != 0``; binary: every pixel."""
    if kind == "segmentation":
        labels = _labels(y_true)
        return tf.cast(tf.not_equal(labels, ignore_index), tf.float32)
    if kind in ("depth", "normal"):
        return tf.cast(tf.not_equal(tf.reduce_sum(tf.cast(y_true, tf.float32), -1), 0.0),
                       tf.float32)
    if kind == "binary":
        return tf.ones_like(_labels(y_true), tf.float32)
    raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")


def validity_weights(targets, kinds, mask="own", ignore_index=-1):
    """``{task: [..., H, W] float}`` sample weights: each task's valid pixels.

    Args:
        targets: ``{task: y_true}`` (a batch, or one example inside ``tf.data``).
        kinds: ``{task: kind}``, kinds in ``KINDS``.
        mask: ``"own"`` (each task's own target) or ``"depth"`` (depth and normals
            take the depth target's mask; exactly one task of kind ``"depth"``).
    """
    if mask not in MASK_SOURCES:
        raise ValueError(f"`mask` must be one of {MASK_SOURCES}. Received: mask={mask!r}")
    if set(kinds) != set(targets):
        raise ValueError(f"`kinds` must name exactly the tasks of `targets` {sorted(targets)}. "
                         f"Received: kinds={kinds!r}")
    bad = {t: k for t, k in kinds.items() if k not in KINDS}
    if bad:
        raise ValueError(f"Task kinds must be in {KINDS}. Received: kinds={kinds!r}")
    weights = {t: pixel_validity(targets[t], k, ignore_index) for t, k in kinds.items()}
    if mask == "depth":
        depth = [t for t, k in kinds.items() if k == "depth"]
        if len(depth) != 1:
            raise ValueError("mask='depth' needs exactly one task of kind 'depth'. "
                             f"Received: kinds={kinds!r}")
        for t, k in kinds.items():
            if k in ("depth", "normal"):
                weights[t] = weights[depth[0]]
    return weights


def per_class_targets(labels, num_classes):
    """``003``'s targets for one binary task per class: ``[..., H, W, num_classes]`` float.

    The one-hot of ``label + 1`` over ``num_classes + 1`` channels with channel 0
    dropped, as their loaders build it: an ignored pixel (-1) is negative for every class.
    """
    labels = _labels(labels)
    return tf.one_hot(labels + 1, num_classes + 1, dtype=tf.float32)[..., 1:]


def _labels(y_true):
    labels = tf.cast(y_true, tf.int32)
    if labels.shape.rank is not None and labels.shape.rank == 4 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return labels


class _PixelLoss(keras.losses.Loss):
    """A per-pixel loss ``[B, H, W]`` reduced as ``sum(loss * w) / sum(w)``."""

    kind = None

    def __init__(self, name=None, **kwargs):
        kwargs.pop("reduction", None)   # Fixed: the valid-pixel mean (module docstring).
        super().__init__(name=name, reduction="mean_with_sample_weight", **kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None and self.kind != "binary":
            if distribute.num_replicas() > 1:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' under {distribute.num_replicas()} "
                    "replicas needs the valid-pixel mask as the task's sample weights "
                    "(tf_mtl.dense.losses.validity_weights): the mean over the global "
                    "batch's valid pixels is only exact with it. Received: sample_weight=None")
            sample_weight = pixel_validity(tf.convert_to_tensor(y_true), self.kind,
                                           getattr(self, "ignore_index", -1))
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="tf_mtl")
class SegmentationCrossEntropy(_PixelLoss):
    """Cross-entropy of ``log_softmax(y_pred)`` at the label; ``ignore_index`` pixels add 0.

    ``y_true``: int labels ``[B, H, W]`` (or ``[B, H, W, 1]``) in ``[0, C)`` or
    ``ignore_index``; ``y_pred``: ``[B, H, W, C]`` log-probabilities or logits."""

    kind = "segmentation"

    def __init__(self, ignore_index=-1, name="segmentation_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ValueError(
                f"`ignore_index` must be an int. Received: ignore_index={ignore_index!r}")
        self.ignore_index = ignore_index

    def call(self, y_true, y_pred):
        labels = _labels(y_true)
        valid = tf.not_equal(labels, self.ignore_index)
        log_probs = tf.nn.log_softmax(y_pred, axis=-1)
        picked = tf.reduce_sum(log_probs * tf.one_hot(tf.where(valid, labels, 0),
                                                      tf.shape(y_pred)[-1], dtype=y_pred.dtype), -1)
        return tf.where(valid, -picked, tf.zeros_like(picked))

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="tf_mtl")
class DepthL1(_PixelLoss):
    """``sum_c |y_pred - y_true|`` per pixel (one channel: the absolute error)."""

    kind = "depth"

    def __init__(self, name="depth_l1", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return tf.reduce_sum(tf.abs(y_pred - y_true), axis=-1)


@keras.saving.register_keras_serializable(package="tf_mtl")
class NormalCosine(_PixelLoss):
    """``1 - sum_c y_pred * y_true`` per pixel (``1 - cos`` for unit normals)."""

    kind = "normal"

    def __init__(self, name="normal_cosine", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return 1.0 - tf.reduce_sum(y_pred * y_true, axis=-1)


@keras.saving.register_keras_serializable(package="tf_mtl")
class BinaryPixelCrossEntropy(_PixelLoss):
    """``003``'s per-class loss: binary cross-entropy of ``sigmoid(y_pred)`` per pixel.

    ``y_true``: 0/1 ``[B, H, W]`` or ``[B, H, W, 1]``; ``y_pred``: logits ``[B, H, W, 1]``.
    Without sample weights every pixel counts (``003``); weights exclude pixels."""

    kind = "binary"

    def __init__(self, name="binary_pixel_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        if y_pred.shape.rank == 4 and y_pred.shape[-1] == 1:
            y_pred = y_pred[..., 0]
        if y_true.shape.rank == 4 and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=y_true, logits=y_pred)
