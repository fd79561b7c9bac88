"""MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the task gradients.

Weights ``α`` on the simplex minimise ``||sum_i α_i d_i||²``, computed from the
Gram matrix of the ``d_i`` by Frank–Wolfe as the authors' ``MinNormSolver``
does: start from the best pair (the closed form below, over every pair), then
move towards the vertex of the smallest ``(Gα)_t`` with an exact line search,
until the step changes ``α`` by less than ``1e-5`` in total (at most
``max_iter`` steps). For two tasks the pair solution is the exact optimum:
``γ = clip(<d_2 - d_1, d_2> / ||d_1 - d_2||², 0, 1)``, ``α = (γ, 1 - γ)``. The
line search is exact (the authors clamp it to ``[0.001, 0.999]``).

``upper_bound=True`` (MGDA-UB) takes ``d_i = ∇_Z L_i``, the gradient with respect
to the encoder's *output* ``Z`` — one backward through each head, none through
the encoder — and so cannot be written over the per-task shared gradients; it
still ends as weights: the shared gradient is ``sum_i α_i lw_i ∇_θ L_i``, one
weighted backward pass. ``upper_bound=False`` uses the shared-parameter
gradients themselves (their Gram matrix).

``normalization`` scales each ``d_i`` before solving, as in the authors' code:
``"none"``, ``"l2"`` (``/||d_i||``), ``"loss"`` (``/L_i``), ``"loss+"``
(``/(L_i ||d_i||)``). As there, ``α`` then weighs the *unnormalised* losses.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import GradientRule

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def _pair(aa, ab, bb):
    """``γ`` minimising ``||γ a + (1-γ) b||²`` from ``<a,a>, <a,b>, <b,b>``."""
    denom = aa + bb - 2.0 * ab
    gamma = tf.where(denom > 0, (bb - ab) / tf.where(denom > 0, denom, 1.0), 0.5)
    return tf.clip_by_value(gamma, 0.0, 1.0)


def min_norm_weights(gram, max_iter=250, tol=1e-5):
    """``[m]`` simplex weights of the min-norm point of vectors with ``gram`` ``[m, m]``."""
    gram = tf.cast(gram, tf.float32)
    m = gram.shape[0]
    if m == 1:
        return tf.ones([1])
    diag = tf.linalg.diag_part(gram)
    gamma = _pair(diag[:, None], gram, diag[None, :])                  # [m, m]: pair (i, j)
    cost = (gamma ** 2 * diag[:, None] + (1 - gamma) ** 2 * diag[None, :]
            + 2 * gamma * (1 - gamma) * gram)
    cost = tf.where(tf.eye(m, dtype=tf.bool), tf.fill([m, m], float("inf")), cost)
    best = tf.argmin(tf.reshape(cost, [-1]), output_type=tf.int32)
    i, j = best // m, best % m
    g = tf.reshape(gamma, [-1])[best]
    alpha = g * tf.one_hot(i, m) + (1 - g) * tf.one_hot(j, m)
    if m == 2:
        return alpha

    def body(k, alpha, change):
        grad = tf.linalg.matvec(gram, alpha)
        t = tf.argmin(grad, output_type=tf.int32)
        aa = tf.reduce_sum(alpha * grad)
        ab = grad[t]
        bb = gram[t, t]
        step = _pair(aa, ab, bb)
        new = step * alpha + (1 - step) * tf.one_hot(t, m)
        return k + 1, new, tf.reduce_sum(tf.abs(new - alpha))

    _, alpha, _ = tf.while_loop(
        lambda k, a, change: (k < max_iter) & (change >= tol), body,
        (tf.constant(0), alpha, tf.constant(float("inf"))))
    return alpha


@keras.saving.register_keras_serializable(package="tf_mtl")
class MGDA(GradientRule):
    """Multiple-gradient descent (min-norm task weights).

    Args:
        upper_bound: ``True`` (MGDA-UB): gradients w.r.t. the encoder's output;
            ``False``: w.r.t. the shared parameters.
        normalization: ``"none"``, ``"l2"``, ``"loss"`` or ``"loss+"``.
        weighting: optional loss weighting scaling the task losses first.
        max_iter: Frank–Wolfe iterations at most (integer >= 1).

    Example:
        >>> update = tf_mtl.updates.MGDA(upper_bound=True, normalization="loss+")
    """

    def __init__(self, upper_bound=True, normalization="none", weighting=None, max_iter=250,
                 **kwargs):
        kwargs.setdefault("name", "mgda")
        super().__init__(weighting=weighting, **kwargs)
        if not isinstance(upper_bound, bool):
            raise ValueError(f"`upper_bound` must be True or False. Received: "
                             f"upper_bound={upper_bound!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}. Received: "
                             f"normalization={normalization!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"`max_iter` must be an integer >= 1. Received: "
                             f"max_iter={max_iter!r}")
        self.upper_bound, self.normalization, self.max_iter = upper_bound, normalization, max_iter

    def _gram(self, step):
        """Gram matrix of the (unscaled) task gradients MGDA solves over."""
        if not self.upper_bound:
            return step.gram()
        return step.feature_gram("MGDA(upper_bound=True)")

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = self._gram(step) * base[:, None] * base[None, :]
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
        losses = step.global_losses() * base
        scale = {"none": tf.ones_like(norms), "l2": norms, "loss": losses,
                 "loss+": losses * norms}[self.normalization]
        scale = tf.where(scale > 0, scale, tf.ones_like(scale))
        gram = gram / (scale[:, None] * scale[None, :])
        return min_norm_weights(gram, self.max_iter) * base

    def get_config(self):
        return {**super().get_config(), "upper_bound": self.upper_bound,
                "normalization": self.normalization, "max_iter": self.max_iter}
