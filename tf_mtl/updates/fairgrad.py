"""FairGrad (Ban & Ji, ICML 2024, "Fair Resource Allocation in Multi-Task Learning").

Task weights ``w > 0`` solve the ``α``-fair allocation's optimality system

    ``(G w)_i = w_i^{-1/α}``  for every task ``i``,   ``d = sum_i w_i g_i``,

with ``G`` the Gram matrix of the task gradients. ``α = 1`` is proportional
fairness, the system of Nash-MTL (``tf_mtl.updates.nash_mtl``); ``α = 2`` the
paper's minimum potential delay fairness; ``α → ∞`` max–min fairness. ``α = 0``
(the utilitarian sum) is no solution of this system and is refused.

Solved to convergence, in TensorFlow and float64: the system is the
stationarity condition of the strictly convex

    ``φ(w) = ½ wᵀ G w - sum_i h(w_i)``,   ``h' (w) = w^{-1/α}``
    (``h = log`` for ``α = 1``, ``h(w) = w^{1-1/α} / (1 - 1/α)`` otherwise),

minimised by damped Newton steps (Hessian ``G + diag(w^{-1/α-1}) / α``) with a
backtracking line search that keeps ``w > 0`` — all step lengths ``2^{-k}`` are
tried at once, so there is one loop, no nested one, and XLA compiles it. ``G`` is
first divided by its mean diagonal (the solution rescales exactly by
``s^{-α/(α+1)}``) and started from the diagonal solution
``w_i = G_ii^{-α/(α+1)}`` (exact for orthogonal gradients).

Where no positive solution exists (linearly dependent gradients with a
non-negative combination summing to zero, e.g. ``g_2 = -g_1``: ``φ`` is then
unbounded below), the ridge ``1e-8 · G_ii`` (plus ``1e-16 · mean(diag G)``) added
to each diagonal entry makes one exist — relative to each task's own squared
norm, so the solution keeps Nash-MTL's scale invariance (``α_i ∝ 1/||g_i||`` for
orthogonal gradients of any norms): ``w`` is then large (``~1e4`` relative) along that combination, and ``d``
tends to the small direction of the regularised system (zero for ``g_2 = -g_1``).

LibMTL's port of the authors' code solves the same system with
``scipy.optimize.least_squares`` from ``w = 1/m`` and takes ``d = sum_i w_i g_i``
(no rescaling); so does this. There the heads get the gradient of ``sum_i w_i L_i``
too; here, as for every rule of this library, the heads get the rule's
objective (the loss-weighted sum), and ``w`` acts on the shared parameters.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import GradientRule

RIDGE = 1e-8
# Line-search step lengths; a tensor made per call: a module-level one would start
# TensorFlow at import (before a test can split the CPU into logical devices).
_STEP_LENGTHS = [2.0 ** -k for k in range(40)]  # line-search candidates


def _potential(w, gram, alpha):
    """``φ`` at each row of ``w`` (``[k, m]``); ``inf`` where a row leaves ``w > 0``."""
    positive = tf.reduce_all(w > 0, axis=-1)
    safe = tf.where(w > 0, w, 1.0)
    if alpha == 1.0:
        h = tf.math.log(safe)
    else:
        h = safe ** (1.0 - 1.0 / alpha) / (1.0 - 1.0 / alpha)
    value = 0.5 * tf.reduce_sum(w * tf.linalg.matvec(gram, w), -1) - tf.reduce_sum(h, -1)
    return tf.where(positive, value, tf.constant(float("inf"), tf.float64))


def fair_weights(gram, alpha=1.0, max_iter=100):
    """``[m]`` weights ``w > 0`` with ``(G w)_i = w_i^{-1/alpha}`` (float32).

    ``gram`` is ``[m, m]``; ``alpha > 0`` a Python float.
    """
    lengths = tf.constant(_STEP_LENGTHS, tf.float64)
    alpha = float(alpha)
    gram = tf.cast(gram, tf.float64)
    m = gram.shape[0]
    scale = tf.reduce_mean(tf.linalg.diag_part(gram))
    scale = tf.where(scale > 0, scale, 1.0)
    g = gram / scale
    # Relative to each task's own squared norm, so a task with a small gradient keeps its
    # equation (a ridge on the mean diagonal swamped it: α_i (Gα)_i = 0.56 at norm ratio
    # 1e-4); the floor only matters for a zero gradient, which has no solution.
    g = g + tf.linalg.diag(RIDGE * tf.linalg.diag_part(g) + RIDGE ** 2)
    w0 = tf.linalg.diag_part(g) ** (-alpha / (alpha + 1.0))

    def body(k, w, decrement):
        grad = tf.linalg.matvec(g, w) - w ** (-1.0 / alpha)
        hess = g + tf.linalg.diag(w ** (-1.0 / alpha - 1.0) / alpha)
        step = -tf.linalg.cholesky_solve(tf.linalg.cholesky(hess), grad[:, None])[:, 0]
        slope = tf.reduce_sum(grad * step)                # -(Newton decrement)²
        trials = w[None, :] + lengths[:, None] * step[None, :]
        values = _potential(trials, g, alpha)
        current = _potential(w[None, :], g, alpha)[0]
        # Armijo; near the solution (decrement² < 1e-8) the full step is taken even
        # when rounding hides the decrease, and Newton converges quadratically.
        ok = (values <= current + 0.25 * lengths * slope) | ((-slope < 1e-8) & (
            tf.reduce_all(trials > 0, axis=-1)))
        first = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
        t = tf.where(tf.reduce_any(ok), lengths[first], tf.zeros_like(slope))
        return k + 1, w + t * step, -slope

    _, w, _ = tf.while_loop(lambda k, w, dec: (k < max_iter) & (dec > 1e-24), body,
                            (tf.constant(0), w0, tf.constant(float("inf"), tf.float64)))
    return tf.cast(w * scale ** (-alpha / (alpha + 1.0)), tf.float32)


def check_iterations(max_iter):
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"`max_iter` must be an integer >= 1. Received: max_iter={max_iter!r}")
    return max_iter


@keras.saving.register_keras_serializable(package="tf_mtl")
class FairGrad(GradientRule):
    """``α``-fair task weights (FairGrad).

    Args:
        alpha: the fairness exponent ``α > 0`` (the paper's default 1.0:
            proportional fairness, Nash-MTL's weights; 2.0 minimum potential
            delay; large values approach max–min fairness).
        weighting: optional loss weighting; it scales the task gradients first.
        max_iter: Newton steps at most (integer >= 1; convergence takes ~5–20).

    Example:
        >>> update = tf_mtl.updates.FairGrad(alpha=2.0)
    """

    def __init__(self, alpha=1.0, weighting=None, max_iter=100, **kwargs):
        kwargs.setdefault("name", "fairgrad")
        super().__init__(weighting=weighting, **kwargs)
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                or not alpha > 0 or alpha == float("inf")):
            raise ValueError(f"`alpha` must be a finite number > 0. Received: alpha={alpha!r}")
        self.alpha, self.max_iter = float(alpha), check_iterations(max_iter)

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() * base[:, None] * base[None, :]   # of the scaled gradients
        return fair_weights(gram, self.alpha, self.max_iter) * base

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "max_iter": self.max_iter}
