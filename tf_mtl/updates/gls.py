"""Geometric loss strategy (Chennupati et al., CVPR Workshops 2019, "MultiNet++:
Multi-Stream Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning").

The objective is the geometric mean of the task losses,
``GLS = (prod_i L_i)^{1/m}``. Its gradient is ``sum_i ∂GLS/∂L_i ∇L_i`` with

    ``w_i = ∂GLS/∂L_i = GLS / (m L_i)``,

weights computed from this step's global losses (the same on every replica);
the heads and the shared parameters get the gradient of ``sum_i w_i lw_i L_i``
with ``w`` held constant, i.e. exactly ``∇GLS`` when the model's loss weights
``lw`` are 1. The rule states no convention for loss weights; here they
multiply each task's term: the step is ``sum_i lw_i GLS/(m L_i) ∇L_i``, the
gradient of the weighted geometric mean ``prod_i L_i^{lw_i/m}`` rescaled by
``GLS / prod_i L_i^{lw_i/m}`` (``GLS`` is of the unweighted losses, as in
LibMTL, which weights nothing). The geometric mean is formed as
``exp(mean(log L))``, which neither overflows nor underflows for many tasks.

The geometric mean needs every loss ``> 0`` (a zero loss gives ``w = 0/0``, a
negative one a complex mean): a step whose global losses are not all positive
raises ``InvalidArgumentError`` naming the losses ("Received: losses=…") in
graph mode. XLA drops assertions (``jit_compile=True``): there such a step gives
non-finite weights.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import LossWeighting


def geometric_weights(losses):
    """``[m]`` weights ``GLS / (m L_i)`` of the geometric mean of ``losses`` ``[m]``."""
    m = losses.shape[0]
    gls = tf.exp(tf.reduce_mean(tf.math.log(losses)))
    return gls / (m * losses)


def assert_positive_losses(losses, rule):
    """``losses``, after an in-graph check that all are ``> 0`` (dropped under XLA)."""
    message = (f"{rule} needs every task loss > 0 (it takes their logarithm or divides by "
               f"them). Received: losses=")
    check = tf.debugging.Assert(tf.reduce_all(losses > 0), [message, losses], summarize=-1)
    with tf.control_dependencies([check]):
        return tf.identity(losses)


@keras.saving.register_keras_serializable(package="tf_mtl")
class GLS(LossWeighting):
    """Geometric loss strategy: minimise the geometric mean of the task losses.

    Example:
        >>> update = tf_mtl.updates.GLS()
        >>> update = tf_mtl.updates.PCGrad(weighting=tf_mtl.updates.GLS())
    """

    uses_step_losses = True

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "gls")
        super().__init__(**kwargs)

    def weights_for(self, losses):
        return geometric_weights(assert_positive_losses(losses, "GLS"))

    def current_weights(self):
        raise TypeError("GLS weights depend on the step's losses: use weights_for(losses).")
