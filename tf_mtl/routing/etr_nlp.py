"""Explicit task routing with non-learnable primitives (ETR-NLP, ``004``).

``ETRNLP`` is one layer of ``004``'s network: a **non-learnable primitive
block** (NLP) extracts features with operators that have nothing to train,
then an **explicit task-routing layer** (ETR) maps them through a shared
branch and one branch per task, in parallel, each a 1×1 convolution. Chunk
``k`` of a per-task forward (``tf_mtl.routing.task_paths``) leaves with the shared
branch's channels followed by its task's branch's channels.

Primitives (Table S1's operators; any non-empty subset, in this order):

* ``"avg_pool"``: 3×3 average pooling, stride 1, same padding;
* ``"max_pool"``: 3×3 max pooling, stride 1, same padding;
* ``"conv"``: a 3×3 convolution ``C -> C`` with fixed weights drawn from ``seed``
  (He normal), never trained;
* ``"shift"``: every channel moved by one pixel in one of the 8 directions (or
  kept), the direction drawn per channel from ``seed``; zeros enter at the border;
* ``"noise"``: additive noise, a fixed mask ``noise_level * N(0, 1)`` of the
  input's ``[H, W, C]`` drawn from ``seed`` (perturbative networks, ``004`` ref. 23).

Choices ``004`` leaves open, made here: the primitives' outputs are
concatenated along channels (``k`` primitives give ``k·C`` channels) and
followed by a ReLU before the ETR; fixed weights are non-trainable Keras
variables (saved, restored, never in ``trainable_variables``); the branches
have no bias (a following BatchNorm centres them); ``shared_ratio`` is the share of
the ``filters`` output channels from the shared branch, rounded to the nearest
channel: ``round(shared_ratio * filters)`` shared, the rest per task. Shared
parameters: ``k·C · shared``; task-specific: ``T · k·C · (filters - shared)``.

Example:
    >>> layer = tf_mtl.routing.ETRNLP(num_tasks=8, filters=64, shared_ratio=0.5,
    ...                               primitives=("avg_pool", "conv", "shift", "noise"))
"""

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.routing.task_paths import RoutingLayer

PRIMITIVES = ("avg_pool", "max_pool", "conv", "shift", "noise")


@keras.saving.register_keras_serializable(package="tf_mtl")
class ETRNLP(RoutingLayer):
    """Non-learnable primitives, then shared and per-task 1×1 branches (``004``).

    Args:
        num_tasks: ``T``.
        filters: output channels (shared + task-specific).
        shared_ratio: share of ``filters`` from the shared branch, in [0, 1].
        primitives: non-empty subset of ``PRIMITIVES``.
        noise_level: standard deviation of the ``"noise"`` mask.
        seed: the fixed weights' draw.
    """

    def __init__(self, num_tasks, filters, shared_ratio=0.5,
                 primitives=("avg_pool", "conv", "shift", "noise"), noise_level=0.1, seed=0,
                 **kwargs):
        super().__init__(num_tasks, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"`filters` must be a positive int. Received: filters={filters!r}")
        if (isinstance(shared_ratio, bool) or not isinstance(shared_ratio, (int, float))
                or not 0 <= shared_ratio <= 1):
            raise ValueError("`shared_ratio` must be a number in [0, 1]. "
                             f"Received: shared_ratio={shared_ratio!r}")
        primitives = list(primitives) if isinstance(primitives, (list, tuple)) else [primitives]
        unknown = [p for p in primitives if p not in PRIMITIVES]
        if not primitives or unknown or len(set(primitives)) != len(primitives):
            raise ValueError(f"`primitives` must be a non-empty subset of {PRIMITIVES}. "
                             f"Received: primitives={primitives!r}")
        self.filters, self.shared_ratio, self.noise_level, self.seed = (
            filters, float(shared_ratio), float(noise_level), int(seed))
        self.primitives = [p for p in PRIMITIVES if p in primitives]
        self.shared_filters = int(round(self.shared_ratio * filters))
        self.task_filters = filters - self.shared_filters

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.channels = c
        rng = np.random.default_rng(self.seed)
        fixed = dict(trainable=False, aggregation="only_first_replica")
        if "conv" in self.primitives:
            w = rng.normal(0, np.sqrt(2.0 / (9 * c)), (3, 3, c, c)).astype("float32")
            self.fixed_kernel = self.add_weight(
                shape=w.shape, initializer=keras.initializers.Constant(w), name="fixed_conv",
                **fixed)
        if "shift" in self.primitives:
            w = np.zeros((3, 3, c, 1), "float32")
            cells = rng.integers(0, 9, size=c)
            w[cells // 3, cells % 3, np.arange(c), 0] = 1.0
            self.shift_kernel = self.add_weight(
                shape=w.shape, initializer=keras.initializers.Constant(w), name="shift",
                **fixed)
        if "noise" in self.primitives:
            w = (self.noise_level * rng.normal(size=tuple(input_shape[1:]))).astype("float32")
            self.noise = self.add_weight(
                shape=w.shape, initializer=keras.initializers.Constant(w), name="noise", **fixed)
        width = c * len(self.primitives)
        self.shared_kernel = self.add_weight(
            shape=(width, self.shared_filters), initializer="he_normal", name="shared_branch")
        self.task_kernels = self.add_weight(
            shape=(self.num_tasks, width, self.task_filters), initializer="he_normal",
            name="task_branches")

    def primitive_features(self, x):
        """The NLP block's output: the primitives concatenated, then ReLU."""
        if x.shape[-1] != self.channels:
            raise ValueError(
                f"ETRNLP '{self.name}' was built for {self.channels} channels; a routing layer's "
                f"channel count cannot change after build. Received: input with {x.shape[-1]} "
                f"channels (shape {tuple(x.shape)})")
        ops = {
            "avg_pool": lambda: tf.nn.avg_pool2d(x, 3, 1, "SAME"),
            "max_pool": lambda: tf.nn.max_pool2d(x, 3, 1, "SAME"),
            "conv": lambda: tf.nn.conv2d(x, tf.cast(self.fixed_kernel, x.dtype), 1, "SAME"),
            "shift": lambda: tf.nn.depthwise_conv2d(x, tf.cast(self.shift_kernel, x.dtype),
                                                    [1, 1, 1, 1], "SAME"),
            "noise": lambda: x + tf.cast(self.noise, x.dtype)[None],
        }
        return tf.nn.relu(tf.concat([ops[p]() for p in self.primitives], axis=-1))

    def call(self, inputs):
        layout = self.layout()
        h = self.primitive_features(inputs)
        dtype = h.dtype
        shared = tf.einsum("nhwc,cd->nhwd", h, tf.cast(self.shared_kernel, dtype))
        kernels = tf.cast(self.task_kernels, dtype)
        if layout.sizes is None:          # one chunk: one task's branch
            own = tf.einsum("nhwc,cd->nhwd", h, kernels[layout.tasks[0]])
        elif layout.equal_chunks:         # [K, B, ...]: chunk k through its task's kernel
            k = layout.num_chunks
            hk = tf.reshape(h, tf.concat([[k, -1], tf.shape(h)[1:]], 0))
            own = tf.einsum("kbhwc,kcd->kbhwd", hk, tf.gather(kernels, layout.tasks))
            own = tf.reshape(own, tf.concat([[-1], tf.shape(own)[2:]], 0))
        else:                             # unequal chunks: each row its task's kernel
            own = tf.einsum("nhwc,ncd->nhwd", h, layout.expand(kernels, h))
        return tf.concat([shared, own], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "shared_ratio": self.shared_ratio, "primitives": list(self.primitives),
                "noise_level": self.noise_level, "seed": self.seed}
