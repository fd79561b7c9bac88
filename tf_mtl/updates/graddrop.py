"""GradDrop (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov; "Just Pick a Sign:
Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020).

Applied, as the paper does, at an activation layer: the encoder's output ``Z``
(``[B, *f]``). With ``c_i = ∂(b_i L_i)/∂Z`` each task's cotangent there (``b``:
the weighting's weights times the model's loss weights):

1. batch-separated gradients are summed over the batch with the sign of the
   activation (paper §3.3; the authors' and LibMTL's code):
   ``∇_i = sum_batch sign(Z) ∘ c_i`` (``[*f]``; summed over the *global* batch:
   over every replica's examples);
2. positive sign purity ``P = ½ (1 + sum_i ∇_i / (sum_i |∇_i| + 1e-7))``;
3. ``U`` uniform on ``[0, 1)`` per element of ``[*f]``; the masks
   ``M_i = 1[P > U] 1[∇_i > 0] + 1[P < U] 1[∇_i < 0]``;
4. each example's cotangent becomes ``sum_i (ℓ + (1 - ℓ) M_i) ∘ c_i`` (``M_i``
   broadcast over the batch; ``ℓ`` the ``leak``: ``1`` gives the plain sum),
   back-propagated through the encoder in one backward pass.

``U`` must be the same on every replica, and "the same element" is a feature
position: ``P`` and the masks live on ``[*f]`` (the batch is summed away), so
every replica draws ``U[k] = hash(seed, step counter, k)`` for flat feature
index ``k`` (``pcgrad._hash32``, 23 bits; integer arithmetic, so the same
under XLA), computes the same masks from the same global ``∇_i``, and applies
them to its own examples' cotangents. The counter is a checkpointed variable.

Needs the encoder's output recorded in the step (``StepGradients.features``):
a ``ValueError`` otherwise.

Example:
    >>> update = tf_mtl.updates.GradDrop(leak=0.0)
"""

import keras
import tensorflow as tf

from tf_mtl import distribute
from tf_mtl.updates.direction import DirectionRule, check_rate
from tf_mtl.updates.pcgrad import _hash32


def uniform(seed, draw, shape):
    """``U`` ``[*shape]`` on ``[0, 1)`` from ``(seed, draw, flat index)``: same on every replica."""
    size = 1
    for s in shape:
        size *= int(s)
    key = _hash32(_hash32(tf.constant(seed, tf.int32)) + tf.cast(draw, tf.int32))
    bits = _hash32(key + tf.range(size, dtype=tf.int32))
    u = tf.cast(tf.bitwise.bitwise_and(bits, (1 << 23) - 1), tf.float32) / float(1 << 23)
    return tf.reshape(u, shape)


def graddrop_masks(signed, u):
    """``M`` ``[m, *f]`` from batch-summed signed gradients ``[m, *f]`` and ``U`` ``[*f]``."""
    purity = 0.5 * (1.0 + tf.reduce_sum(signed, 0) / (tf.reduce_sum(tf.abs(signed), 0) + 1e-7))
    keep_positive = tf.cast(purity > u, tf.float32)[None] * tf.cast(signed > 0, tf.float32)
    keep_negative = tf.cast(purity < u, tf.float32)[None] * tf.cast(signed < 0, tf.float32)
    return keep_positive + keep_negative


@keras.saving.register_keras_serializable(package="tf_mtl")
class GradDrop(DirectionRule):
    """Gradient sign dropout at the encoder's output.

    Args:
        leak: ``ℓ`` in ``[0, 1]``: the part of each task's gradient kept
            unmasked (``0``: pure GradDrop, the paper's default; ``1``: plain sum).
        seed: integer seed of the per-element draws.
        weighting: optional loss weighting scaling the task gradients first.

    Example:
        >>> update = tf_mtl.updates.GradDrop()
    """

    def __init__(self, leak=0.0, seed=0, weighting=None, **kwargs):
        kwargs.setdefault("name", "graddrop")
        super().__init__(weighting=weighting, **kwargs)
        self.leak = check_rate(leak, "leak", 0.0, 1.0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
        self.seed = seed

    def _direction(self, step, base):
        if step.features is None or step.task_losses is None:
            raise ValueError(
                "GradDrop masks the gradients at the encoder's output, which the step must "
                "record: the train step records it where the encoder returns one "
                "floating-point tensor, no head uses an encoder variable and `call` is not "
                "overridden (MultiTaskModel.recorded_forward). Received: a step without "
                "features")
        draw = self._next_step() - 1
        z = step.features
        cotangents = tf.stack([
            tf.cast(step.tape.gradient(step.task_losses[i], z,
                                       unconnected_gradients=tf.UnconnectedGradients.ZERO),
                    tf.float32) * base[i]
            for i in range(step.num_tasks)])                              # [m, B, *f]
        sign = tf.sign(tf.cast(z, tf.float32))[None]
        signed = distribute.replica_sum(tf.reduce_sum(sign * cotangents, axis=1))   # [m, *f]
        masks = graddrop_masks(signed, uniform(self.seed, draw, z.shape[1:]))
        factors = self.leak + (1.0 - self.leak) * masks                   # [m, *f]
        cotangent = tf.reduce_sum(factors[:, None] * cotangents, axis=0)  # [B, *f]
        grads = distribute.replica_sum(step.gradient(z, output_gradients=tf.cast(cotangent,
                                                                                  z.dtype)))
        kept = tf.reduce_mean(masks)
        return grads, {f"{self.name}/kept": kept}

    def get_config(self):
        return {**super().get_config(), "leak": self.leak, "seed": self.seed}
