"""Dense prediction heads: Conv3x3 (bias, no BN/ReLU) -> Conv1x1 -> the task's output map.

MTAN's ``pred_task`` layers and Maximum Roaming's (``003``) prediction layers: a 3x3
conv keeping the feature's width (64 -> 64), then a 1x1 conv to the task's channels,
Xavier-normal init, zero biases. The output per kind:

- ``"segmentation"``: log-softmax over the classes (MTAN); ``log_softmax=False`` gives
  the logits. ``tf_mtl.dense.losses.SegmentationCrossEntropy`` takes either (it applies
  log-softmax, which leaves log-probabilities unchanged), and argmax is the same;
- ``"depth"``: the raw channel(s) (1 for NYUv2's depth, Cityscapes' inverse depth);
- ``"normal"``: 3 channels divided by their L2 norm (MTAN; here ``tf.math.l2_normalize``,
  whose 1e-12 floor keeps an all-zero output finite where MTAN's division gives NaN);
- ``"binary"``: one logit per pixel, ``003``'s per-class tasks (their code applies a
  sigmoid and ``binary_cross_entropy``; ``tf_mtl.dense.losses.BinaryPixelCrossEntropy``
  takes the logit, the same loss computed stably).

Example:
    >>> from tf_mtl.dense.heads import dense_head
    >>> heads = {"segmentation": dense_head("segmentation", 13), "depth": dense_head("depth"),
    ...          "normal": dense_head("normal")}
    >>> heads["normal"](np.ones((1, 4, 4, 64), "float32")).shape
    TensorShape([1, 4, 4, 3])
"""

import keras
import tensorflow as tf

from tf_mtl.dense.segnet import conv

KINDS = ("segmentation", "depth", "normal", "binary")
_DEFAULT_CHANNELS = {"depth": 1, "normal": 3, "binary": 1}


@keras.saving.register_keras_serializable(package="tf_mtl")
class DenseHead(keras.layers.Layer):
    """Conv3x3 (width kept) -> Conv1x1 to ``channels`` -> ``kind``'s output (module docstring).

    Args:
        kind: one of ``"segmentation"``, ``"depth"``, ``"normal"``, ``"binary"``.
        channels: output channels (classes for segmentation; ``"normal"`` needs 3).
        log_softmax: segmentation only: log-probabilities (True, MTAN) or logits.
    """

    def __init__(self, kind, channels, log_softmax=True, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"`channels` must be a positive int. Received: channels={channels!r}")
        if kind == "normal" and channels != 3:
            raise ValueError(f"Surface normals have 3 channels. Received: channels={channels!r}")
        if kind == "segmentation" and channels < 2:
            raise ValueError(f"Segmentation needs at least 2 classes (for one class as a "
                             f"binary task, use kind='binary'). Received: channels={channels!r}")
        if not isinstance(log_softmax, bool):
            raise ValueError(f"`log_softmax` must be a bool. Received: log_softmax={log_softmax!r}")
        self.kind, self.channels, self.log_softmax = kind, channels, log_softmax
        self.hidden = None
        self.output_conv = conv(channels, 1)

    def build(self, input_shape):
        self.hidden = conv(int(input_shape[-1]), 3)
        self.hidden.build(input_shape)
        self.output_conv.build(tuple(input_shape[:-1]) + (int(input_shape[-1]),))
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def call(self, features):
        out = self.output_conv(self.hidden(features))
        if self.kind == "segmentation" and self.log_softmax:
            return tf.nn.log_softmax(out, axis=-1)
        if self.kind == "normal":
            return tf.math.l2_normalize(out, axis=-1)
        return out

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "channels": self.channels,
                "log_softmax": self.log_softmax}


def dense_head(kind, channels=None, **kwargs):
    """A ``DenseHead`` for ``kind``; ``channels`` defaults to 1 (depth, binary) or 3 (normal)
    and is required for segmentation (the number of classes)."""
    if channels is None:
        if kind == "segmentation":
            raise ValueError("`channels` (the number of classes) is required for "
                             "kind='segmentation'. Received: channels=None")
        channels = _DEFAULT_CHANNELS.get(kind)
    return DenseHead(kind, channels, **kwargs)
