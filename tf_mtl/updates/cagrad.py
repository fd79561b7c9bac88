"""CAGrad (Liu et al., NeurIPS 2021, "Conflict-Averse Gradient Descent for Multi-task Learning").

The update maximises the worst task's improvement in a ball around the average
gradient ``g0 = (1/m) sum_i g_i``:

    ``max_d min_i <g_i, d>``  subject to  ``||d - g0|| <= sqrt(φ)``,  ``φ = c² ||g0||²``.

Its dual is the simplex problem ``min_{w ∈ Δ} F(w) = <g_w, g0> + sqrt(φ) ||g_w||``
(``g_w = sum_i w_i g_i``), whose solution gives the maximiser

    ``d = g0 + (sqrt(φ) / ||g_w||) g_w``,

all from the Gram matrix ``G``: ``<g_w, g0> = wᵀ G 1/m``, ``||g_w||² = wᵀ G w``.
The authors' code then divides by ``1 + c²`` (``rescale=1``, their default and
this one's); ``rescale=0`` keeps ``d``, ``rescale=2`` divides by ``1 + c`` (both
options as in their code and LibMTL). ``c = 0`` gives ``g0``. Where ``0`` is in the
convex hull of the gradients (e.g. two opposite gradients) the optimal ``g_w``
vanishes, ``λ`` explodes and the dual formula loses its meaning in floating point
(the authors' ``c/(||g_w|| + 1e-8)`` too). The best worst-case improvement in the
ball is then ``<= 0``, and it is ``0``, reached by the projection of ``g0`` onto the
dual cone ``{d : <g_i, d> >= 0}`` (exact, ``qp.py``), whenever that projection lies
in the ball: ``d`` is that projection where it is in the ball and its worst task
does strictly better than the dual formula's ``d``; else the dual formula.

The simplex problem is convex and small (``m`` variables); it is solved to high
accuracy in float64 by a log-barrier interior-point method: Newton steps on
``t F(w) - sum_i log w_i`` restricted to ``sum_i w_i = 1`` (the KKT system with
the constraint), a backtracking line search over all step lengths ``2^{-k}`` at
once, ``t`` multiplied by 10 whenever the Newton decrement is below ``1e-10``,
until the barrier's bound ``m / t`` on the suboptimality is below ``1e-12`` of the
problem's scale (``G`` divided by its mean diagonal). One loop, XLA-compilable.
The authors solve it with ``scipy.optimize.minimize`` (SLSQP) and add ``1e-8``
inside the square root and to ``sqrt(φ)``; this adds ``1e-20`` of the scale.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.fairgrad import check_iterations
from tf_mtl.updates.qp import dual_cone_weights
from tf_mtl.updates.weighted import GradientRule

RESCALES = (0, 1, 2)
# Line-search step lengths; a tensor made per call: a module-level one would start
# TensorFlow at import (before a test can split the CPU into logical devices).
_STEP_LENGTHS = [2.0 ** -k for k in range(50)]


def _objective(w, gram, g0_dots, radius):
    """``F`` at each row of ``w`` ``[k, m]``, and its pieces; rows must be feasible."""
    quad = tf.reduce_sum(w * tf.linalg.matvec(gram, w), -1)
    return tf.reduce_sum(w * g0_dots, -1) + radius * tf.sqrt(tf.maximum(quad, 0.0) + 1e-20)


def cagrad_weights(gram, c=0.4, max_iter=500):
    """``[m]`` coefficients ``1/m + (sqrt(φ)/||g_w||) w`` of CAGrad's ``d`` (before rescaling).

    ``gram`` is ``[m, m]``; returns float32.
    """
    lengths = tf.constant(_STEP_LENGTHS, tf.float64)
    gram = tf.cast(gram, tf.float64)
    m = gram.shape[0]
    scale = tf.reduce_mean(tf.linalg.diag_part(gram))
    scale = tf.where(scale > 0, scale, 1.0)
    g = gram / scale
    g0_dots = tf.reduce_mean(g, axis=1)                         # <g_i, g0>
    radius = c * tf.sqrt(tf.maximum(tf.reduce_mean(g), 0.0))    # sqrt(φ) = c ||g0||
    ones = tf.ones([m, 1], tf.float64)
    kkt_corner = tf.concat([tf.ones([1, m], tf.float64), tf.zeros([1, 1], tf.float64)], 1)

    def barrier(w, t):
        return t * _objective(w, g, g0_dots, radius) - tf.reduce_sum(
            tf.math.log(tf.where(w > 0, w, 1.0)), -1)

    def body(k, w, t, decrement):
        gw = tf.linalg.matvec(g, w)
        q = tf.sqrt(tf.maximum(tf.reduce_sum(w * gw), 0.0) + 1e-20)       # ||g_w||
        grad = t * (g0_dots + radius * gw / q) - 1.0 / w
        hess = (t * radius * (g / q - gw[:, None] * gw[None, :] / q ** 3)
                + tf.linalg.diag(1.0 / w ** 2))
        kkt = tf.concat([tf.concat([hess, ones], 1), kkt_corner], 0)
        rhs = tf.concat([-grad, tf.zeros([1], tf.float64)], 0)
        step = tf.linalg.solve(kkt, rhs[:, None])[:m, 0]                    # keeps sum(w) = 1
        slope = tf.reduce_sum(grad * step)
        trials = w[None, :] + lengths[:, None] * step[None, :]
        feasible = tf.reduce_all(trials > 0, axis=-1)
        current = barrier(w[None, :], t)[0]
        # Armijo with room for rounding (t F grows to ~1e12); near the centre (decrement² <
        # 1e-3) a feasible full step is taken, where Newton converges quadratically.
        ok = feasible & ((barrier(trials, t) <= current + 0.25 * lengths * slope
                          + 1e-13 * tf.abs(current)) | (-slope < 1e-3))
        first = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
        w = w + tf.where(tf.reduce_any(ok), lengths[first], tf.zeros_like(slope)) * step
        centred = -slope < 1e-10                                  # Newton decrement² small
        return k + 1, w, tf.where(centred, 10.0 * t, t), tf.where(centred, tf.zeros_like(slope), -slope)

    def running(k, w, t, decrement):
        return (k < max_iter) & ((m / t > 1e-12) | (decrement > 1e-10))

    w0 = tf.fill([m], tf.constant(1.0 / m, tf.float64))
    _, w, _, _ = tf.while_loop(running, body, (tf.constant(0), w0,
                                               tf.constant(1.0, tf.float64),
                                               tf.constant(float("inf"), tf.float64)))
    norm = tf.sqrt(tf.maximum(tf.reduce_sum(w * tf.linalg.matvec(g, w)), 0.0))
    lam = radius / tf.maximum(norm, 1e-300)
    dual = 1.0 / m + lam * w
    # Where the optimal g_w (nearly) vanishes, 0 is (nearly) in the hull of the gradients,
    # the ball's best worst-case improvement is ~0, and λ = sqrt(φ)/||g_w|| explodes: the
    # coefficients cancel in float32 (review: d left the ball, min_i <g_i, d> = -1.56 where 0
    # is attainable). Then the projection of g0 onto the dual cone {d: <g_i, d> >= 0} is a
    # maximiser whenever it lies in the ball (a d in the ball reaching 0 is in the cone, and
    # the projection is the cone's point nearest g0): exact, from the active-set QP.
    # The dual's minimisers then form a ray along which ||g_w|| need not be small, so no
    # threshold on ||g_w|| detects it: the projection is taken whenever it lies in the ball
    # and its worst task does strictly better than the dual formula's (in float64).
    dual = tf.where(norm > 0, dual, tf.fill([m], tf.constant(1.0 / m, tf.float64)))
    cone = dual_cone_weights(g, tf.fill([1, m], tf.constant(1.0 / m, tf.float64)))[0]
    offset = cone - 1.0 / m
    in_ball = tf.reduce_sum(offset * tf.linalg.matvec(g, offset)) <= (radius * (1 + 1e-9)) ** 2
    better = tf.reduce_min(tf.linalg.matvec(g, cone)) > tf.reduce_min(tf.linalg.matvec(g, dual))
    return tf.cast(tf.where(in_ball & better, cone, dual), tf.float32)


@keras.saving.register_keras_serializable(package="tf_mtl")
class CAGrad(GradientRule):
    """Conflict-averse gradient descent.

    Args:
        c: the ball's radius relative to ``||g0||`` (``>= 0``; the paper's
            multi-task experiments use 0.4).
        rescale: ``1`` divides ``d`` by ``1 + c²`` (the authors' default), ``2``
            by ``1 + c``, ``0`` keeps it.
        weighting: optional loss weighting; it scales the task gradients first.
        max_iter: interior-point Newton steps at most (integer >= 1).

    Example:
        >>> update = tf_mtl.updates.CAGrad(c=0.4)
    """

    def __init__(self, c=0.4, rescale=1, weighting=None, max_iter=500, **kwargs):
        kwargs.setdefault("name", "cagrad")
        super().__init__(weighting=weighting, **kwargs)
        if (isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c < float("inf")):
            raise ValueError(f"`c` must be a finite number >= 0. Received: c={c!r}")
        if isinstance(rescale, bool) or rescale not in RESCALES:
            raise ValueError(f"`rescale` must be one of {RESCALES}. Received: rescale={rescale!r}")
        self.c, self.rescale, self.max_iter = float(c), rescale, check_iterations(max_iter)

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() * base[:, None] * base[None, :]   # of the scaled gradients
        divisor = {0: 1.0, 1: 1.0 + self.c ** 2, 2: 1.0 + self.c}[self.rescale]
        return cagrad_weights(gram, self.c, self.max_iter) / divisor * base

    def get_config(self):
        return {**super().get_config(), "c": self.c, "rescale": self.rescale,
                "max_iter": self.max_iter}
