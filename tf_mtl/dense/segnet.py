"""SegNet: the encoder–decoder of the dense experiments (``001`` Table 1 via MTAN, ``003`` §5).

Badrinarayanan, Kendall and Cipolla, *SegNet*, TPAMI 2017, in the layout of the
code the papers ran: MTAN's ``model_segnet_mtan.py`` (Liu, Johns and Davison,
CVPR 2019) and Maximum Roaming's ``SegNet`` (Pascal et al., ``003``):

- a conv layer is Conv3x3 (padding 1, bias) -> BatchNorm -> ReLU;
- encoder stage ``i`` (filters ``f = [64, 128, 256, 512, 512]``): one conv
  ``f[i-1] -> f[i]`` (3 -> 64 at ``i = 0``), one more conv (``i = 0, 1``) or two
  (``i >= 2``), then 2x2 max-pooling that keeps each window's argmax (13 convs,
  VGG-16's);
- decoder stage ``j`` (``i = 4 - j``): max-unpooling with stage ``i``'s positions,
  one conv ``f[i] -> f[i-1]`` (64 -> 64 at ``i = 0``), then two more convs
  (``j = 0, 1, 2``) or one (13 convs);
- the output is the last decoder conv's feature: ``f[0]`` channels at the input
  resolution. Heads are ``tf_mtl.dense.heads``.

Init as both codes: Xavier-normal kernels (untruncated, PyTorch's
``xavier_normal_``), zero biases, BatchNorm gamma 1, beta 0; BatchNorm with PyTorch's
defaults (``epsilon=1e-5``, moving-average momentum 0.9 in Keras's convention = PyTorch's 0.1),
not Keras's (1e-3, 0.99).

Pooling and unpooling are written as reshapes of each 2x2 window (``max_pool_2x2``,
``max_unpool_2x2``): the forward equals ``tf.nn.max_pool_with_argmax`` followed by a
scatter of the pooled values to their argmax (the tests check both against NumPy),
but it runs under XLA (``MaxPoolWithArgmax`` has no XLA kernel) and on chunked per-task
batches alike, and the gradient goes to the window's first maximum only, as PyTorch's
``MaxPool2d``/``MaxUnpool2d`` send it. Height and width must be multiples of
``2 ** len(filters)`` (32 by default), so that unpooling restores every shape.

Routing (``003``'s Maximum Roaming / Task Routing SegNet): ``routing`` is the
encoders' option (``tf_mtl.encoders``): every one of the 26 convs gets a mask layer
after its BatchNorm, before its ReLU, as ``003``'s code places it, and BatchNorm
becomes ``TaskBatchNormalization``. Stage ``k`` (encoder 0-4, then decoder 5-9) draws
its masks from seed ``seed + 100 k``.

Example:
    >>> encoder = tf_mtl.dense.segnet.SegNet()                   # MTAN's / 003's SegNet
    >>> routed = tf_mtl.dense.segnet.SegNet(routing={"kind": "maximum_roaming", "num_tasks": 15,
    ...     "sharing_ratio": 0.6, "update_every": 398})
"""

import functools

import keras
import tensorflow as tf

from tf_mtl.encoders import _Stack, _conv_block, _offset

FILTERS = (64, 128, 256, 512, 512)
# Convs after the first one of each stage (MTAN's conv_block_enc / conv_block_dec).
_ENCODER_EXTRA = (1, 1, 2, 2, 2)
_DECODER_EXTRA = (2, 2, 2, 1, 1)   # decoder stage j = 0..4


def xavier_normal():
    """PyTorch's ``xavier_normal_``: N(0, 2 / (fan_in + fan_out)), not truncated."""
    return keras.initializers.VarianceScaling(1.0, mode="fan_avg",
                                              distribution="untruncated_normal")


# PyTorch's BatchNorm2d defaults (eps 1e-5, momentum 0.1 = Keras's 0.9), as the references ran.
TORCH_BATCH_NORM = {"epsilon": 1e-5, "momentum": 0.9}


def conv(filters, kernel_size=3):
    """Conv ``kernel_size`` (same padding, bias) with the reference codes' init."""
    return keras.layers.Conv2D(filters, kernel_size, padding="same",
                               kernel_initializer=xavier_normal(), bias_initializer="zeros")


def check_filters(filters):
    filters = list(filters) if isinstance(filters, (list, tuple)) else filters
    if (not isinstance(filters, list) or not filters
            or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters)):
        raise ValueError(f"`filters` must be a non-empty list of positive ints. "
                         f"Received: filters={filters!r}")
    return filters


def check_spatial(shape, levels, name):
    """Raises unless height and width are multiples of ``2 ** levels`` (where known)."""
    step = 2 ** levels
    for size in shape[1:3]:
        if size is not None and size % step:
            raise ValueError(
                f"{name} pools {levels} times: the input's height and width must be "
                f"multiples of {step}. Received: input shape {tuple(shape)}")


def _windows(x):
    """``[B, H, W, C]`` -> ``[B, H/2, W/2, C, 4]``: each 2x2 window, row-major."""
    shape = tf.shape(x)
    b, h, w, c = shape[0], shape[1] // 2, shape[2] // 2, shape[3]
    x = tf.reshape(x, [b, h, 2, w, 2, c])
    return tf.reshape(tf.transpose(x, [0, 1, 3, 5, 2, 4]), [b, h, w, c, 4])


def max_pool_2x2(x):
    """2x2/2 max-pooling keeping positions: ``(pooled, positions)``.

    ``positions`` ``[B, H/2, W/2, C]`` int32 is each maximum's place in its window
    (``2 dy + dx``), the first maximum on ties (PyTorch's choice). The pooled value is
    read at that place, so its gradient goes there only (``reduce_max`` would split
    it between ties).
    """
    windows = _windows(x)
    positions = tf.argmax(windows, axis=-1, output_type=tf.int32)
    pooled = tf.reduce_sum(windows * tf.one_hot(positions, 4, dtype=x.dtype), axis=-1)
    return pooled, positions


def max_unpool_2x2(pooled, positions):
    """Inverse of ``max_pool_2x2``: each value back at its position, zeros elsewhere."""
    shape = tf.shape(pooled)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    values = tf.one_hot(positions, 4, dtype=pooled.dtype) * pooled[..., None]
    values = tf.transpose(tf.reshape(values, [b, h, w, c, 2, 2]), [0, 1, 4, 2, 5, 3])
    return tf.reshape(values, [b, 2 * h, 2 * w, c])


class ConvStage(_Stack):
    """Conv3x3-BN-[mask]-ReLU layers, one per entry of ``widths``."""

    def __init__(self, widths, routing=None, **kwargs):
        super().__init__(routing=routing, **kwargs)
        self.widths = list(widths)
        norm = functools.partial(self.norm_layer, **TORCH_BATCH_NORM)
        self.blocks = [layer for width in self.widths for layer in _conv_block(
            conv(width), self.mask_factory, norm, keras.layers.ReLU())]

    def get_config(self):
        return {**super().get_config(), "widths": self.widths}


@keras.saving.register_keras_serializable(package="tf_mtl")
class SegNet(keras.layers.Layer):
    """SegNet as a shared encoder: ``[B, H, W, 3]`` -> ``[B, H, W, filters[0]]``.

    See the module docstring for the layout.

    Args:
        filters: widths of the 5 stages (default ``[64, 128, 256, 512, 512]``, the
            papers'); any length >= 1 (tests use narrow ones).
        routing: ``None`` (fully shared) or the encoders' routing dict.
    """

    def __init__(self, filters=FILTERS, routing=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.routing = None if routing is None else dict(routing)
        f, levels = self.filters, len(self.filters)
        extra_enc = [_ENCODER_EXTRA[min(i, 4)] for i in range(levels)]
        extra_dec = [_DECODER_EXTRA[max(0, 5 - levels + j)] for j in range(levels)]
        self.encoder_stages = [
            ConvStage([f[i]] * (1 + extra_enc[i]), routing=_offset(self.routing, 100 * i),
                      name=f"encoder_{i}") for i in range(levels)]
        self.decoder_stages = []
        for j in range(levels):
            i = levels - 1 - j
            out = f[max(i - 1, 0)]
            self.decoder_stages.append(ConvStage(
                [out] * (1 + extra_dec[j]), routing=_offset(self.routing, 100 * (levels + j)),
                name=f"decoder_{j}"))

    def build(self, input_shape):
        check_spatial(input_shape, len(self.filters), "SegNet")
        shape = tuple(input_shape)
        for stage in self.encoder_stages:
            stage.build(shape)
            shape = stage.compute_output_shape(shape)
            shape = (shape[0], _half(shape[1]), _half(shape[2]), shape[3])
        for stage in self.decoder_stages:
            shape = (shape[0], _double(shape[1]), _double(shape[2]), shape[3])
            stage.build(shape)
            shape = stage.compute_output_shape(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (self.filters[0],)

    def call(self, x, training=None):
        return self.stages(x, training=training)["decoder_outputs"][-1]

    def stages(self, x, training=None):
        """Every intermediate MTAN's attention reads, as lists over the 5 levels:

        ``encoder_first`` (stage ``i``'s first conv), ``encoder_outputs`` (stage ``i``'s
        last conv, before pooling), ``unpooled`` (decoder stage ``j``'s input after
        unpooling) and ``decoder_outputs`` (decoder stage ``j``'s last conv)."""
        check_spatial(x.shape, len(self.filters), type(self).__name__)
        out = {"encoder_first": [], "encoder_outputs": [], "unpooled": [], "decoder_outputs": []}
        positions = []
        for stage in self.encoder_stages:
            first, x = _run_stage(stage, x, training)
            out["encoder_first"].append(first)
            out["encoder_outputs"].append(x)
            x, where = max_pool_2x2(x)
            positions.append(where)
        for j, stage in enumerate(self.decoder_stages):
            x = max_unpool_2x2(x, positions[-1 - j])
            out["unpooled"].append(x)
            x = stage(x, training=training)
            out["decoder_outputs"].append(x)
        return out

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters}
        return config if self.routing is None else {**config, "routing": self.routing}


def _run_stage(stage, x, training):
    """``(output of the stage's first conv layer, output of the stage)``."""
    per_conv = len(stage.blocks) // len(stage.widths)
    first = None
    for k, block in enumerate(stage.blocks):
        x = block(x, training=training)
        if k == per_conv - 1:
            first = x
    return first, x


def _half(size):
    return None if size is None else size // 2


def _double(size):
    return None if size is None else size * 2
