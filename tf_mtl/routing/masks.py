"""Fixed binary task masks over a layer's channels, and Task Routing (Strezoski et al. 2019).

A mask layer sits after a shared convolution or dense layer (after its
BatchNorm, before the activation, as ``003``'s code places it) and holds one
binary mask per task over the output channels, ``masks [T, S]``. In a
per-task forward (``tf_mtl.routing.task_paths``) chunk ``k`` is multiplied by its
task's mask (``003`` Eq. 2), so a channel's parameters get gradient only from
the tasks that use it.

Initialisation: every ``m_{i,t}`` is Bernoulli(``sharing_ratio``) and a channel
no task uses goes to one uniformly drawn task (constraint (3)). Drawn from
``seed`` with NumPy when the layer is built; the masks are Keras variables, so
a checkpoint restores them. ``TaskRouting`` keeps its masks fixed;
``MaximumRoaming`` (``maximum_roaming.py``) moves them.

Example:
    >>> import tf_mtl
    >>> tr = tf_mtl.routing.TaskRouting(num_tasks=8, sharing_ratio=0.8, seed=0)
    >>> tr.build((None, 16)); tuple(tr.masks.shape)
    (8, 16)
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.routing.task_paths import RoutingLayer



def check_ratio(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}")
    return float(value)


def initial_masks(num_tasks, channels, sharing_ratio, seed):
    """``[T, S]`` float32: Bernoulli(p) per (task, channel), then constraint (3)."""
    rng = np.random.default_rng(seed)
    masks = (rng.random((num_tasks, channels)) < sharing_ratio).astype(np.float32)
    unused = np.flatnonzero(masks.sum(axis=0) == 0)
    masks[rng.integers(0, num_tasks, size=unused.size), unused] = 1.0
    return masks


class TaskMasks(RoutingLayer):
    """Holds ``masks [T, S]`` and multiplies each chunk by its task's mask."""

    def __init__(self, num_tasks, sharing_ratio, seed=0, **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.sharing_ratio = check_ratio("sharing_ratio", sharing_ratio)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
        self.seed = int(seed)

    def build(self, input_shape):
        self.channels = int(input_shape[-1])
        init = initial_masks(self.num_tasks, self.channels, self.sharing_ratio, self.seed)
        self.initial_masks = init
        self.masks = self.add_weight(
            shape=init.shape, initializer=keras.initializers.Constant(init), trainable=False,
            name="masks", aggregation="only_first_replica")

    def call(self, inputs):
        if inputs.shape[-1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was built for {self.channels} channels; "
                "a routing layer's channel count cannot change after build. Received: input "
                f"with {inputs.shape[-1]} channels (shape {tuple(inputs.shape)})")
        layout = self.layout()
        masks = tf.cast(tf.convert_to_tensor(self.masks), inputs.dtype)
        ones = [1] * (len(inputs.shape) - 2)
        if layout.equal_chunks:  # [K, rows, ..., S] times chunk k's mask
            k = layout.num_chunks
            grouped = tf.reshape(inputs, tf.concat([[k, -1], tf.shape(inputs)[1:]], 0))
            per_chunk = tf.reshape(tf.gather(masks, layout.tasks), [k, 1] + ones + [self.channels])
            return tf.reshape(grouped * per_chunk, tf.shape(inputs))
        rows = layout.expand(masks, inputs)
        return inputs * tf.reshape(rows, [-1] + ones + [self.channels])

    def get_config(self):
        return {**super().get_config(), "sharing_ratio": self.sharing_ratio, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tf_mtl")
class TaskRouting(TaskMasks):
    """Fixed random task masks (Strezoski et al. 2019): ``MaximumRoaming`` without roaming.

    Args:
        num_tasks: ``T``, the model's number of tasks.
        sharing_ratio: ``p``, each task uses each channel with probability ``p``
            (Strezoski et al. fix the number of active units per task; ``003``'s
            Bernoulli initialisation with constraint (3) is used here, so the two
            layers differ only by roaming).
        seed: draws the masks.
    """
