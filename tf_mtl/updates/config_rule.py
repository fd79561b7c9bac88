"""ConFIG (Liu et al., ICLR 2025, "ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks").

The direction is the one with equal cosine to every task gradient, its length
the sum of the gradients' projections onto it:

    ``g_u = unit(A⁺ 1)``, rows ``A_i = g_i / ||g_i||``,   ``d = (sum_i <g_i, g_u>) g_u``.

From the Gram matrix alone: ``A⁺ = Aᵀ (A Aᵀ)⁺`` and ``A Aᵀ = C`` is the cosine
matrix ``G_ij / (n_i n_j)``, so ``A⁺ 1 = sum_i (β_i / n_i) g_i`` with ``β = C⁺ 1``;
with ``c_i = β_i / n_i``, ``d = (1ᵀ G c / cᵀ G c) · sum_i c_i g_i``. When the
unit gradients are linearly independent (full rank, ``m <= dim``), ``<d, u_i>``
is the same positive number for every task; otherwise ``A⁺ 1`` is the
least-squares solution, as the authors' ``torch.linalg.lstsq`` gives
(their default ``use_least_square=True``, ``EqualWeight``, ``ProjectionLength``).
``C⁺`` is the pseudo-inverse (float64, ``tf.linalg.pinv``); a zero task gradient
contributes nothing. The momentum variant (ConFIG-M) is not offered.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import GradientRule


def config_weights(gram):
    """``[m]`` coefficients of ConFIG's ``d`` over vectors with Gram ``gram`` (float32)."""
    gram = tf.cast(gram, tf.float64)
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
    inv = tf.where(norms > 0, 1.0 / tf.where(norms > 0, norms, 1.0), 0.0)
    cosines = gram * inv[:, None] * inv[None, :]
    beta = tf.linalg.matvec(tf.linalg.pinv(cosines), tf.ones_like(norms))
    c = beta * inv                                           # A⁺1 = sum_i c_i g_i
    norm2 = tf.reduce_sum(c * tf.linalg.matvec(gram, c))     # ||A⁺1||²
    length = tf.reduce_sum(tf.linalg.matvec(gram, c))        # ||A⁺1|| sum_i <g_i, g_u>
    out = tf.where(norm2 > 0, length / tf.where(norm2 > 0, norm2, 1.0), 0.0) * c
    return tf.cast(out, tf.float32)


@keras.saving.register_keras_serializable(package="tf_mtl")
class ConFIG(GradientRule):
    """Conflict-free inverse gradients.

    Args:
        weighting: optional loss weighting; it scales the task gradients first.

    Example:
        >>> update = tf_mtl.updates.ConFIG()
    """

    def __init__(self, weighting=None, **kwargs):
        kwargs.setdefault("name", "con_fig")
        super().__init__(weighting=weighting, **kwargs)

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() * base[:, None] * base[None, :]   # of the scaled gradients
        return config_weights(gram) * base
