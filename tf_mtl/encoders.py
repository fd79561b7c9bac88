"""Shared encoders of the papers' experiments, as serializable Keras layers.

* ``ResNetLite`` — the CelebA encoder of the TAG experiments (``001`` App. D.1):
  conv3x3-64, BN, ReLU, max-pool 3/2, one residual block of 64 channels,
  average-pool 2, flatten. Heads are one projection layer each.
* ``LeNet`` — the MultiMNIST/MultiFashion encoder (``001`` App. D.4, the
  multi-task LeNet of Lin et al. 2019): conv9x9-10, max-pool 2, ReLU,
  conv5x5-20, max-pool 2, ReLU, flatten, dense-50, ReLU (36x36 inputs give
  5x5x20 features, as theirs).
* ``ResNet18`` — ResNet-18 up to global average pooling (``003`` CelebA).
* ``MLP`` — dense layers; the planted-groups benchmark uses a narrow one.
* ``ETRNLPNet`` — ``004``'s kind of network: a learnable stem, then stages of
  ``tf_mtl.routing.ETRNLP`` (non-learnable primitives + task-routed 1×1 branches).

Task routing: every encoder takes ``routing`` (default None: fully shared), a
dict ``{"kind": "maximum_roaming" | "task_routing", "num_tasks": T,
"sharing_ratio": p, "seed": s, ...}`` (``tf_mtl.routing.MaskFactory``): a
mask layer then follows every shared convolution or dense layer — after its
BatchNorm, before the activation, as ``003``'s code places it (ResNets: also
after the shortcut's projection) — and BatchNorm becomes
``tf_mtl.routing.task_norm.TaskBatchNormalization`` (each task path's own batch
statistics, and its own moving statistics for evaluation). Mask layer ``k`` in build order gets seed ``s + k``.

Example:
    >>> encoder = tf_mtl.encoders.ResNet18(routing={
    ...     "kind": "maximum_roaming", "num_tasks": 8, "sharing_ratio": 0.8,
    ...     "update_every": 79})
"""

import functools

import keras

from tf_mtl.routing.factory import MaskFactory
from tf_mtl.routing.etr_nlp import ETRNLP
from tf_mtl.routing.task_norm import TaskBatchNormalization


def _routing_parts(routing):
    """``(mask factory or None, BatchNorm class)`` for an encoder's ``routing`` option."""
    if routing is None:
        return None, keras.layers.BatchNormalization
    return MaskFactory(dict(routing)), functools.partial(TaskBatchNormalization,
                                                         num_tasks=routing.get("num_tasks"))


def _conv_block(conv, masks, norm=None, activation=None):
    """``conv`` [-> ``norm``()] [-> mask] [-> ``activation``]."""
    layers = [conv] + ([norm()] if norm is not None else [])
    if masks is not None:
        layers.append(masks(conv))
    return layers + ([activation] if activation is not None else [])


class _Stack(keras.layers.Layer):
    """Runs ``self.blocks`` in order; builds them shape by shape."""

    def __init__(self, routing=None, **kwargs):
        super().__init__(**kwargs)
        self.routing = None if routing is None else dict(routing)
        self.mask_factory, self.norm_layer = _routing_parts(self.routing)

    def get_config(self):
        config = super().get_config()
        return config if self.routing is None else {**config, "routing": self.routing}

    def build(self, input_shape):
        shape = input_shape
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.built = True

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        return shape


def _offset(routing, offset):
    """``routing`` with its seed moved by ``offset`` (each block draws its own masks)."""
    if routing is None:
        return None
    return {**routing, "seed": routing.get("seed", 0) + offset}


@keras.saving.register_keras_serializable(package="tf_mtl")
class ResidualBlock(_Stack):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN plus shortcut, then ReLU (ResNet basic block).

    The shortcut is the identity when shape is kept, else a strided 1x1
    convolution with BN (He et al. 2016, option B).
    """

    def __init__(self, filters=64, strides=1, routing=None, **kwargs):
        super().__init__(routing=routing, **kwargs)
        self.filters, self.strides = filters, strides
        self.blocks = (
            _conv_block(keras.layers.Conv2D(filters, 3, strides=strides, padding="same",
                                            use_bias=False), self.mask_factory, self.norm_layer,
                        keras.layers.ReLU())
            + _conv_block(keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
                          self.mask_factory, self.norm_layer))
        self.projection = None

    def build(self, input_shape):
        if input_shape[-1] != self.filters or self.strides != 1:
            self.projection = _conv_block(
                keras.layers.Conv2D(self.filters, 1, strides=self.strides, use_bias=False),
                self.mask_factory, self.norm_layer)
            shape = input_shape
            for layer in self.projection:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        super().build(input_shape)

    def call(self, x, training=None):
        shortcut = x
        for layer in self.projection or []:
            shortcut = layer(shortcut, training=training)
        return keras.ops.relu(shortcut + super().call(x, training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="tf_mtl")
class ResNetLite(_Stack):
    """The TAG CelebA encoder (``001`` App. D.1). Input ``[B, H, W, C]`` floats."""

    def __init__(self, filters=64, routing=None, **kwargs):
        super().__init__(routing=routing, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"`filters` must be a positive int. Received: filters={filters!r}")
        self.filters = filters
        self.blocks = _conv_block(
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False), self.mask_factory,
            self.norm_layer, keras.layers.ReLU()) + [
            keras.layers.MaxPooling2D(pool_size=3, strides=2),
            ResidualBlock(filters, routing=_offset(self.routing, 100)),
            keras.layers.AveragePooling2D(pool_size=2),
            keras.layers.Flatten(),
        ]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="tf_mtl")
class ResNet18(_Stack):
    """ResNet-18 truncated after global average pooling (the shared network of
    ``003``'s CelebA experiments): 512 features."""

    def __init__(self, width=64, routing=None, **kwargs):
        super().__init__(routing=routing, **kwargs)
        self.width = width
        w = width
        stem = keras.layers.Conv2D(w, 7, strides=2, padding="same", use_bias=False)
        self.blocks = _conv_block(stem, self.mask_factory, self.norm_layer, keras.layers.ReLU())
        self.blocks.append(keras.layers.MaxPooling2D(3, strides=2, padding="same"))
        for stage, filters in enumerate([w, 2 * w, 4 * w, 8 * w]):
            self.blocks += [
                ResidualBlock(filters, strides=1 if stage == 0 else 2,
                              routing=_offset(self.routing, 100 * (2 * stage + 1))),
                ResidualBlock(filters, routing=_offset(self.routing, 100 * (2 * stage + 2)))]
        self.blocks.append(keras.layers.GlobalAveragePooling2D())

    def get_config(self):
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="tf_mtl")
class LeNet(_Stack):
    """The multi-task LeNet of MultiMNIST (``001`` App. D.4, Lin et al. 2019)."""

    def __init__(self, hidden=50, first_kernel=9, routing=None, **kwargs):
        super().__init__(routing=routing, **kwargs)
        self.hidden, self.first_kernel = hidden, first_kernel
        m = self.mask_factory
        self.blocks = (
            _conv_block(keras.layers.Conv2D(10, first_kernel), m)
            + [keras.layers.MaxPooling2D(2), keras.layers.ReLU()]
            + _conv_block(keras.layers.Conv2D(20, 5), m)
            + [keras.layers.MaxPooling2D(2), keras.layers.ReLU(), keras.layers.Flatten()])
        if m is None:
            self.blocks.append(keras.layers.Dense(hidden, activation="relu"))
        else:
            self.blocks += _conv_block(keras.layers.Dense(hidden), m, None, keras.layers.ReLU())

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden,
                "first_kernel": self.first_kernel}


@keras.saving.register_keras_serializable(package="tf_mtl")
class MLP(_Stack):
    """Dense layers ``units[0] -> ... -> units[-1]``, each followed by ``activation``.

    Example:
        >>> encoder = tf_mtl.encoders.MLP([64, 8])   # an 8-wide shared bottleneck
    """

    def __init__(self, units=(64,), activation="relu", routing=None, **kwargs):
        super().__init__(routing=routing, **kwargs)
        units = list(units)
        if not units or any(not isinstance(u, int) or u < 1 for u in units):
            raise ValueError(
                f"`units` must be a non-empty list of positive ints. Received: units={units!r}"
            )
        self.units, self.activation = units, activation
        if self.mask_factory is None:
            self.blocks = [keras.layers.Dense(u, activation=activation) for u in units]
        else:
            self.blocks = [layer for u in units for layer in _conv_block(
                keras.layers.Dense(u), self.mask_factory, None, keras.layers.Activation(activation))]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation}


class _CifarBlock(_Stack):
    """conv3x3(stride)-norm-act-conv3x3-norm plus the parameter-free shortcut of He et al.
    2016's CIFAR ResNets (option A: subsample, zero-pad the new channels), then act."""

    def __init__(self, filters, strides, norm, activation, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides = filters, strides
        self.blocks = [
            keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False),
            _norm(norm, filters), keras.layers.Activation(activation),
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            _norm(norm, filters)]
        self.activation = keras.layers.Activation(activation)

    def call(self, x, training=None):
        shortcut = x
        if self.strides != 1:
            shortcut = shortcut[:, ::self.strides, ::self.strides, :]
        extra = self.filters - shortcut.shape[-1]
        if extra:
            shortcut = keras.ops.pad(shortcut, [[0, 0], [0, 0], [0, 0],
                                                [extra // 2, extra - extra // 2]])
        return self.activation(shortcut + super().call(x, training=training))


def _norm(norm, channels):
    if norm == "batch":  # Per-chunk statistics: a multi-domain forward = per-task forwards.
        return TaskBatchNormalization()
    # 000 S1: min(32, channels / 2) groups.
    return keras.layers.GroupNormalization(groups=min(32, max(1, channels // 2)))


@keras.saving.register_keras_serializable(package="tf_mtl")
class ResNetCifar(_Stack):
    """The CIFAR ResNets of He et al. 2016 (depth 6n+2: three stages of n basic blocks with
    16, 32, 64 filters, global average pooling) with a width multiplier: ``000``'s
    ResNet-32 at widths 0.25x-2x (29K, 116K, 463K, 1848K parameters), GroupNorm with
    ``min(32, channels/2)`` groups and Mish (``000`` S1) by default. ``norm="batch"``
    uses ``TaskBatchNormalization``: in a multi-domain (per-task input) forward each
    domain's chunk is normalized with its own batch statistics, as separate forwards would.

    Example:
        >>> encoder = tf_mtl.encoders.ResNetCifar(depth=32, width=0.5)
    """

    def __init__(self, depth=32, width=1.0, norm="group", activation="mish", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"`depth` must be 6n+2 with n >= 1 (8, 14, 20, 32, 56...). "
                             f"Received: depth={depth!r}")
        if not isinstance(width, (int, float)) or isinstance(width, bool) or width <= 0:
            raise ValueError(f"`width` must be a positive number. Received: width={width!r}")
        if norm not in ("group", "batch"):
            raise ValueError(f"`norm` must be 'group' or 'batch'. Received: norm={norm!r}")
        self.depth, self.width, self.norm, self.activation = depth, float(width), norm, activation
        filters = [max(1, int(round(f * width))) for f in (16, 32, 64)]
        self.blocks = [keras.layers.Conv2D(filters[0], 3, padding="same", use_bias=False),
                       _norm(norm, filters[0]), keras.layers.Activation(activation)]
        for stage, f in enumerate(filters):
            for i in range((depth - 2) // 6):
                self.blocks.append(_CifarBlock(f, 2 if stage and not i else 1, norm, activation))
        self.blocks.append(keras.layers.GlobalAveragePooling2D())

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "width": self.width,
                "norm": self.norm, "activation": self.activation}


@keras.saving.register_keras_serializable(package="tf_mtl")
class ETRNLPNet(_Stack):
    """conv3x3-BN-ReLU stem (shared, learnable), then per width: ``ETRNLP`` ->
    ``TaskBatchNormalization`` -> ReLU -> max-pool 2; global average pooling.

    The supplement of ``004`` does not give the CelebA network's layout; this
    one keeps ResNet-18's widths (64, 128, 256, 512) and resolution steps.
    Stage ``i``'s ``ETRNLP`` gets seed ``seed + i``.

    Example:
        >>> encoder = tf_mtl.encoders.ETRNLPNet(num_tasks=8, shared_ratio=0.5)
    """

    def __init__(self, num_tasks, widths=(64, 128, 256, 512), shared_ratio=0.5,
                 primitives=("avg_pool", "conv", "shift", "noise"), noise_level=0.1, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_tasks, self.widths, self.shared_ratio = num_tasks, list(widths), shared_ratio
        self.primitives, self.noise_level, self.seed = list(primitives), noise_level, seed
        self.blocks = [keras.layers.Conv2D(self.widths[0], 3, padding="same", use_bias=False),
                       TaskBatchNormalization(num_tasks), keras.layers.ReLU()]
        for i, w in enumerate(self.widths):
            self.blocks += [ETRNLP(num_tasks, w, shared_ratio, primitives, noise_level, seed + i),
                            TaskBatchNormalization(num_tasks), keras.layers.ReLU(),
                            keras.layers.MaxPooling2D(2)]
        self.blocks.append(keras.layers.GlobalAveragePooling2D())

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks, "widths": self.widths,
                "shared_ratio": self.shared_ratio, "primitives": self.primitives,
                "noise_level": self.noise_level, "seed": self.seed}
