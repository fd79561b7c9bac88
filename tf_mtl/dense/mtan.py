"""SegNet-MTAN: SegNet with a soft-attention path per task (``001`` Tables 1 and 4).

Liu, Johns and Davison, *End-to-End Multi-Task Learning with Attention*, CVPR 2019;
the layout of their ``im2im_pred/model_segnet_mtan.py`` (at ``001``'s pinned commit
``b6504093`` and at HEAD), which ``001`` and CAGrad/Nash-MTL ran:

- the shared network is ``tf_mtl.dense.SegNet`` (filters ``f``, 5 levels);
- an attention module is Conv1x1 -> BN -> ReLU -> Conv1x1 -> BN -> Sigmoid; every
  task has 5 encoder and 5 decoder modules (its task-specific parameters);
- encoder level ``j``: the task's module reads SegNet's stage-``j`` first conv output
  (``j = 0``), concatenated with the task's previous level feature (``j >= 1``); its
  mask multiplies the stage's output (before pooling); then a conv-BN-ReLU
  ``f[j] -> f[j+1]`` (``f[4] -> f[4]`` at the last level) **shared by all tasks**,
  and 2x2 max-pooling;
- decoder level ``j``: bilinear x2 upsampling with ``align_corners=True``
  (``upsample_bilinear_2x``), a shared conv-BN-ReLU (``f[4] -> f[4]`` at ``j = 0``,
  then ``f[i] -> f[i-1]``, ``64 -> 64`` at the last), concatenation with SegNet's
  unpooled feature of that level (the unpooled feature first), the task's module,
  whose mask multiplies SegNet's decoder stage output;
- each task's output: its last decoder level, ``f[0]`` channels at the input size.

Init: Xavier-normal convs, zero biases, BN gamma 1, beta 0, BN with PyTorch's epsilon and
momentum (as the reference; ``tf_mtl.dense.segnet.TORCH_BATCH_NORM``).

``call`` returns ``{task: features}``. ``task_variables(task)`` gives the task's
attention modules' trainable variables, its task-specific parameters like a head's:
the shared gradient, transference, IT-MTL and the update rules act on the other
variables (SegNet and the shared attention-path convs) only. ``MultiTaskModel`` reads
both: head ``t`` gets ``features[t]``; ``model.task_variables(t)`` is head ``t``'s and
these variables (trained with the heads, stepped with head ``t`` in lookaheads with
``update_heads=True``), and ``model.shared_variables`` leaves them out.

Example:
    >>> encoder = tf_mtl.dense.SegNetMTAN(["segmentation", "depth", "normal"])
    >>> len(encoder.task_variables("depth"))     # built on its first call
    0
"""

import keras
import tensorflow as tf

from tf_mtl.encoders import _Stack
from tf_mtl.dense.segnet import (FILTERS, TORCH_BATCH_NORM, ConvStage, SegNet, check_filters,
                                 check_spatial, conv, max_pool_2x2)


def upsample_bilinear_2x(x):
    """``[B, H, W, C]`` -> ``[B, 2H, 2W, C]``, bilinear with ``align_corners=True``.

    Output index ``o`` reads source coordinate ``o (n - 1) / (2n - 1)`` (corners
    align), as PyTorch's ``F.interpolate(scale_factor=2, mode="bilinear",
    align_corners=True)``; Keras's ``UpSampling2D`` uses half-pixel centers instead.
    Written with gathers, so it runs under XLA and differentiates.
    """
    return _resize_axis(_resize_axis(x, 1), 2)


def _resize_axis(x, axis):
    n = tf.shape(x)[axis]
    out = 2 * n
    scale = tf.cast(n - 1, tf.float32) / tf.cast(tf.maximum(out - 1, 1), tf.float32)
    source = tf.cast(tf.range(out), tf.float32) * scale
    low = tf.minimum(tf.cast(tf.floor(source), tf.int32), n - 1)
    high = tf.minimum(low + 1, n - 1)
    frac = tf.cast(source - tf.cast(low, tf.float32), x.dtype)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    frac = tf.reshape(frac, shape)
    return tf.gather(x, low, axis=axis) * (1 - frac) + tf.gather(x, high, axis=axis) * frac


@keras.saving.register_keras_serializable(package="tf_mtl")
class AttentionModule(_Stack):
    """Conv1x1 -> BN -> ReLU -> Conv1x1 -> BN -> Sigmoid: a soft mask of ``channels``."""

    def __init__(self, hidden, channels, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.channels = hidden, channels
        self.blocks = [conv(hidden, 1), keras.layers.BatchNormalization(**TORCH_BATCH_NORM),
                       keras.layers.ReLU(), conv(channels, 1),
                       keras.layers.BatchNormalization(**TORCH_BATCH_NORM),
                       keras.layers.Activation("sigmoid")]

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "channels": self.channels}


class _TaskAttention(keras.layers.Layer):
    """One task's encoder and decoder attention modules."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        levels = len(filters)
        self.encoder_modules = [AttentionModule(f, f, name=f"encoder_{j}")
                                for j, f in enumerate(filters)]
        # Decoder level j refines SegNet's decoder stage j: f[i-1] channels, i = levels-1-j.
        self.decoder_modules = [AttentionModule(filters[max(i - 1, 0)], filters[max(i - 1, 0)],
                                                name=f"decoder_{levels - 1 - i}")
                                for i in reversed(range(levels))]


@keras.saving.register_keras_serializable(package="tf_mtl")
class SegNetMTAN(keras.layers.Layer):
    """SegNet-MTAN for ``tasks``: ``[B, H, W, 3]`` -> ``{task: [B, H, W, filters[0]]}``.

    See the module docstring.

    Args:
        tasks: the task names (a list of distinct strings; the model's tasks).
        filters: SegNet's widths (default ``[64, 128, 256, 512, 512]``, the paper's).
    """

    # One output per task and shared convs inside the task paths: no representation all
    # heads read, so rules on the encoder's output (MGDA-UB, IMTL/Aligned-MTL on features)
    # have nothing to act on (``Update.reads_encoder_output``); the config checks refuse them.
    per_task_outputs = True

    def __init__(self, tasks, filters=FILTERS, **kwargs):
        super().__init__(**kwargs)
        if (not isinstance(tasks, (list, tuple)) or not tasks
                or any(not isinstance(t, str) for t in tasks) or len(set(tasks)) != len(tasks)):
            raise ValueError(f"`tasks` must be a non-empty list of distinct task names. "
                             f"Received: tasks={tasks!r}")
        self.tasks = list(tasks)
        self.filters = check_filters(filters)
        f, levels = self.filters, len(self.filters)
        if levels > 1 and f[-1] != f[-2]:
            # The attention path's last shared conv maps the deepest level to its own width
            # (MTAN's 512 -> 512), which the decoder's first attention level then reads.
            raise ValueError("SegNetMTAN's last two widths must be equal, as MTAN's "
                             f"[64, 128, 256, 512, 512]. Received: filters={list(filters)!r}")
        self.segnet = SegNet(f, name="segnet")
        self.encoder_convs = [ConvStage([f[min(j + 1, levels - 1)]], name=f"attention_encoder_{j}")
                              for j in range(levels)]
        self.decoder_convs = []
        for j in range(levels):
            i = levels - 1 - j
            width = f[i] if j == 0 else f[max(i - 1, 0)]
            self.decoder_convs.append(ConvStage([width], name=f"attention_decoder_{j}"))
        self.attention = [_TaskAttention(f, name=f"attention_{t}") for t in self.tasks]

    def task_variables(self, task):
        """The trainable variables of ``task``'s attention modules (task-specific)."""
        if task not in self.tasks:
            raise ValueError(f"Unknown task {task!r}; this SegNetMTAN has tasks {self.tasks}. "
                             f"Received: task={task!r}")
        return list(self.attention[self.tasks.index(task)].trainable_variables)

    def build(self, input_shape):
        check_spatial(input_shape, len(self.filters), "SegNetMTAN")
        self.segnet.build(input_shape)
        b, h, w = input_shape[0], input_shape[1], input_shape[2]
        f, levels = self.filters, len(self.filters)

        def at(level, channels):
            scale = 2 ** level
            return (b, None if h is None else h // scale, None if w is None else w // scale,
                    channels)

        for j, stage in enumerate(self.encoder_convs):
            stage.build(at(j, f[j]))
        for j, stage in enumerate(self.decoder_convs):
            stage.build(at(levels - 1 - j, self.encoder_convs[-1].widths[0] if j == 0
                           else self.decoder_convs[j - 1].widths[0]))
        for task in self.attention:
            # Under the task's own scope, so that its variables' paths name the task
            # (``seg_net_mtan/attention_depth/encoder_0/...``), as a call would.
            with keras.name_scope(task.name):
                for j, module in enumerate(task.encoder_modules):
                    module.build(at(j, f[j] if j == 0 else 2 * f[j]))
                for j, module in enumerate(task.decoder_modules):
                    i = levels - 1 - j
                    module.build(at(i, f[i] + self.decoder_convs[j].widths[0]))
            task.built = True
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[:3]) + (self.filters[0],)
        return {t: shape for t in self.tasks}

    def call(self, x, training=None):
        shared = self.segnet.stages(x, training=training)
        return {t: self._task_path(shared, self.attention[k], training)
                for k, t in enumerate(self.tasks)}

    def _task_path(self, shared, attention, training):
        feature = None
        for j, module in enumerate(attention.encoder_modules):
            inputs = shared["encoder_first"][j]
            if feature is not None:
                inputs = tf.concat([inputs, feature], axis=-1)
            feature = module(inputs, training=training) * shared["encoder_outputs"][j]
            feature = max_pool_2x2(self.encoder_convs[j](feature, training=training))[0]
        for j, module in enumerate(attention.decoder_modules):
            feature = self.decoder_convs[j](upsample_bilinear_2x(feature), training=training)
            mask = module(tf.concat([shared["unpooled"][j], feature], axis=-1), training=training)
            feature = mask * shared["decoder_outputs"][j]
        return feature

    def get_config(self):
        return {**super().get_config(), "tasks": self.tasks, "filters": self.filters}
