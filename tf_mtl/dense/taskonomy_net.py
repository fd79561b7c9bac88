"""Standley et al.'s Taskonomy network (``002`` §4.2): an Xception-style encoder, light decoders.

Written from ``model_definitions/xception_taskonomy_new.py`` of
``tstandley/taskgrouping`` (the code ``002`` and ``001`` §5.1.2 / App. D.2 ran),
channels-last:

* **Encoder** (``TaskonomyEncoder``), channels ``sizes`` (13 numbers): Conv3x3
  stride 2 (padding 1) 3 -> s0 + BN + ReLU; Conv3x3 s0 -> s1 + BN + ReLU;
  Xception blocks s1 -> s2, s2 -> s3, s3 -> s4 (2 separable convs each, then a
  2x2 stride-2 conv with bias in place of max-pooling; the first block starts
  without ReLU) and 8 blocks s4 -> s4 of 3 separable convs; ReLU. A block is
  ``[ReLU -> SeparableConv3x3 -> BN] x reps`` plus a skip (Conv1x1 with the
  block's stride + BN where channels or stride change, else identity).
  Then the shared **representation**: SeparableConv3x3 s12 -> 512 + BN (no
  ReLU), 16x16x512 for a 256x256 input. Full size: ``FULL_SIZES`` = 32, 64,
  128, 256, 728 x 9; half size (``002``'s half-size single-task networks,
  ``xception_taskonomy_new_half``): ``HALF_SIZES`` = 24, 48, 96, 192, 512 x 9.
* **Gradient into the shared part scaled by 1/sqrt(T)** (``TrevorRepFunction``):
  the representation passes a ``GradientScale(1 / sqrt(num_tasks))`` layer:
  identity forward, the summed gradient of the T decoders times ``1/sqrt(T)``
  backward.
* **Decoder** (``TaskonomyDecoder``, one per task): ConvTranspose2x2 s2
  512 -> 128, 128 -> 64, 64 -> 48, 48 -> 32, each + BN + ReLU, the first three
  each followed by Conv3x3 + BN + ReLU, then Conv3x3 32 -> C (C: s 18 logits,
  d 1, n 3, k 1, e 1); output at the input resolution, no activation.
  ``half_sized_output=True`` drops the last ConvTranspose (output at half
  resolution), as the reference's option.

Init as the reference: every ``Conv2d`` (incl. depthwise and pointwise)
``N(0, sqrt(2 / (k^2 * out_channels)))``, BN gamma 1, beta 0. Deviations
(PyTorch defaults the reference did not override): ConvTranspose kernels take
PyTorch's default ``U(+-1/sqrt(out * k^2))`` (its fan-in convention for
transposed convs); biases start at 0 (PyTorch: uniform). BatchNorm with
PyTorch's epsilon 1e-5 and momentum 0.1. Padding: stride-1 convs pad 1
("same"); the stride-2 stem conv pads 1 on every side as PyTorch.

Example:
    >>> encoder = TaskonomyEncoder(num_tasks=5)
    >>> decoder = TaskonomyDecoder(18)
    >>> decoder(encoder(np.zeros((1, 32, 32, 3), "float32"))).shape
    TensorShape([1, 32, 32, 18])
"""

import math

import keras
import tensorflow as tf

from tf_mtl.dense.segnet import TORCH_BATCH_NORM

FULL_SIZES = (32, 64, 128, 256) + (728,) * 9
HALF_SIZES = (24, 48, 96, 192) + (512,) * 9
SIZES = {"full": FULL_SIZES, "half": HALF_SIZES}
REPRESENTATION = 512
DECODER_WIDTHS = (128, 64, 48, 32)
TASK_CHANNELS = {"s": 18, "d": 1, "n": 3, "k": 1, "e": 1}


def _conv_init():
    """The reference's ``N(0, sqrt(2 / (k*k*out)))``: fan_out of a (k, k, in, out) kernel."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out",
                                              distribution="untruncated_normal")


def _depthwise_init():
    """Depthwise (k, k, in, 1): the reference's out_channels = in, i.e. Keras's fan_in."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in",
                                              distribution="untruncated_normal")


def _transpose_init():
    """PyTorch's default for ConvTranspose2d: U(+-1/sqrt(out*k*k)); Keras's fan_in of a
    (k, k, out, in) transposed kernel is out*k*k."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


def _bn():
    return keras.layers.BatchNormalization(**TORCH_BATCH_NORM)


def _separable(filters):
    return keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                        depthwise_initializer=_depthwise_init(),
                                        pointwise_initializer=_conv_init())


def size_channels(size):
    """The 13 channel counts of ``size``: ``"full"``/``"half"`` (the reference's tables), a
    cost in percent of a full network (100: full, 50: half, else full channels times
    ``sqrt(size / 100)``: the cost of a conv grows with the product of its widths), or 13
    positive ints as given."""
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"`size` must be 'full', 'half', a percentage or 13 positive ints. "
                             f"Received: size={size!r}")
        return SIZES[size]
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0:
        if size in (100, 50):
            return FULL_SIZES if size == 100 else HALF_SIZES
        return tuple(max(1, int(round(c * math.sqrt(size / 100.0)))) for c in FULL_SIZES)
    if (not isinstance(size, (list, tuple)) or len(size) != 13
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in size)):
        raise ValueError(f"`size` must be 'full', 'half', a percentage or 13 positive ints. "
                         f"Received: size={size!r}")
    return tuple(size)


@keras.saving.register_keras_serializable(package="tf_mtl")
class GradientScale(keras.layers.Layer):
    """Identity forward; the gradient times ``scale`` backward (Standley's
    ``TrevorRepFunction`` with ``scale = 1/sqrt(number of decoders)``)."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"`scale` must be a number > 0. Received: scale={scale!r}")
        self.scale = float(scale)

    def call(self, x):
        scale = self.scale

        @tf.custom_gradient
        def scaled(v):
            return tf.identity(v), lambda g: g * tf.cast(scale, g.dtype)
        return scaled(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


class _Block(keras.layers.Layer):
    """One Xception block of the reference (module doc)."""

    def __init__(self, filters_in, filters_out, reps, stride, start_with_relu, **kwargs):
        super().__init__(**kwargs)
        self.start_with_relu = start_with_relu
        self.rep = []
        for _ in range(reps):
            self.rep += [_separable(filters_out), _bn()]
        self.pool = (keras.layers.Conv2D(filters_out, 2, strides=2, kernel_initializer=_conv_init(),
                                         bias_initializer="zeros") if stride != 1 else None)
        self.skip = None
        if filters_in != filters_out or stride != 1:
            self.skip = [keras.layers.Conv2D(filters_out, 1, strides=stride, use_bias=False,
                                             kernel_initializer=_conv_init()), _bn()]

    def call(self, inputs, training=None):
        x = inputs
        for i in range(0, len(self.rep), 2):
            if i > 0 or self.start_with_relu:
                x = tf.nn.relu(x)
            x = self.rep[i + 1](self.rep[i](x), training=training)
        if self.pool is not None:
            x = self.pool(x)
        skip = inputs
        if self.skip is not None:
            skip = self.skip[1](self.skip[0](inputs), training=training)
        return x + skip


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskonomyEncoder(keras.layers.Layer):
    """The shared part: Xception encoder, representation conv + BN, gradient scale (module doc).

    Args:
        num_tasks: decoders fed by the representation; the gradient into the
            encoder is scaled by ``1/sqrt(num_tasks)``.
        size: ``"full"`` or ``"half"`` (``002``'s half-size networks), a cost in percent
            (100, 50: the same; ``config.model.width`` scales it), or 13 channel counts
            (``size_channels``).
    """

    def __init__(self, num_tasks=1, size="full", **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"`num_tasks` must be an int >= 1. Received: num_tasks={num_tasks!r}")
        sizes = size_channels(size)
        self.num_tasks, self.size, self.sizes = num_tasks, size, tuple(sizes)
        s = self.sizes
        self.stem = [keras.layers.ZeroPadding2D(1),
                     keras.layers.Conv2D(s[0], 3, strides=2, use_bias=False,
                                         kernel_initializer=_conv_init()), _bn(),
                     keras.layers.Conv2D(s[1], 3, padding="same", use_bias=False,
                                         kernel_initializer=_conv_init()), _bn()]
        self.blocks = [_Block(s[i + 1], s[i + 2], 2, 2, start_with_relu=i > 0,
                              name=f"block{i + 1}") for i in range(3)]
        self.blocks += [_Block(s[i], s[i + 1], 3, 1, True, name=f"block{i}") for i in range(4, 12)]
        self.representation = [_separable(REPRESENTATION), _bn()]
        self.gradient_scale = GradientScale(1.0 / math.sqrt(num_tasks))

    def call(self, x, training=None):
        pad, conv1, bn1, conv2, bn2 = self.stem
        x = tf.nn.relu(bn1(conv1(pad(x)), training=training))
        x = tf.nn.relu(bn2(conv2(x), training=training))
        for block in self.blocks:
            x = block(x, training=training)
        x = tf.nn.relu(x)
        x = self.representation[1](self.representation[0](x), training=training)
        return self.gradient_scale(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, REPRESENTATION)

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "size": list(self.size) if not isinstance(self.size, str) else self.size}


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskonomyDecoder(keras.layers.Layer):
    """One task's decoder (module doc): 512 -> ``channels`` at 16x the representation's size."""

    def __init__(self, channels, half_sized_output=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"`channels` must be a positive int. Received: channels={channels!r}")
        if not isinstance(half_sized_output, bool):
            raise ValueError(f"`half_sized_output` must be a bool. Received: "
                             f"half_sized_output={half_sized_output!r}")
        self.channels, self.half_sized_output = channels, half_sized_output
        widths = DECODER_WIDTHS[:3] if half_sized_output else DECODER_WIDTHS
        self.stages = []
        for i, width in enumerate(widths):
            stage = [keras.layers.Conv2DTranspose(width, 2, strides=2,
                                                  kernel_initializer=_transpose_init(),
                                                  bias_initializer="zeros"), _bn()]
            if i < 3:
                stage += [keras.layers.Conv2D(width, 3, padding="same",
                                              kernel_initializer=_conv_init(),
                                              bias_initializer="zeros"), _bn()]
            self.stages.append(stage)
        self.output_conv = keras.layers.Conv2D(channels, 3, padding="same",
                                               kernel_initializer=_conv_init(),
                                               bias_initializer="zeros")

    def call(self, x, training=None):
        for stage in self.stages:
            for conv, bn in zip(stage[0::2], stage[1::2]):
                x = tf.nn.relu(bn(conv(x), training=training))
        return self.output_conv(x)

    def compute_output_shape(self, input_shape):
        factor = 8 if self.half_sized_output else 16
        scale = lambda n: None if n is None else n * factor
        return (input_shape[0], scale(input_shape[1]), scale(input_shape[2]), self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "half_sized_output": self.half_sized_output}


def taskonomy_decoders(tasks):
    """``{task: TaskonomyDecoder}`` for task letters (``TASK_CHANNELS``)."""
    unknown = [t for t in tasks if t not in TASK_CHANNELS]
    if unknown or not tasks:
        raise ValueError(f"`tasks` must be letters among {''.join(TASK_CHANNELS)}. Received: "
                         f"tasks={tasks!r}")
    return {t: TaskonomyDecoder(TASK_CHANNELS[t], name=f"decoder_{t}") for t in tasks}
