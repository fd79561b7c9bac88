"""Nash-MTL (Navon et al., ICML 2022, "Multi-Task Learning as a Bargaining Game").

The Nash bargaining solution over the ball: weights ``α > 0`` with

    ``(G α)_i = 1 / α_i``  for every task ``i``,   ``d = sum_i α_i g_i``,

i.e. ``α_i <g_i, d> = 1``: every task's share of the update is the same. This is
FairGrad's system at ``α = 1`` (proportional fairness), solved the same way —
Newton's method on a strictly convex potential, to convergence, in float64
(``tf_mtl.updates.fairgrad.fair_weights``; read there what happens when the
gradients are linearly dependent and no solution exists).

The authors' code approximates the solution with ``optim_niter=20`` steps of a
concave–convex procedure (cvxpy, on ``G`` divided by its Frobenius norm, then
``α / sqrt(norm)``: the same solution, as the system's is ``α(sG) = α(G)/√s``);
this solves to convergence instead, so ``optim_niter`` is not offered (``max_iter``
caps the Newton steps). Offered, with the authors' defaults:

* ``max_norm=1.0``: ``d`` is scaled to norm ``max_norm`` when longer, as their
  ``clip_grad_norm_`` on the shared parameters (``0`` turns it off). The norm is
  ``sqrt(cᵀ G c)`` of the task gradients' part; a regularization gradient is
  added afterwards, unclipped.
* ``update_weights_every=1``: recompute ``α`` every that many calls and reuse the
  last ``α`` in between (a state variable, saved with the model). Here the Gram
  matrix is formed every step anyway (a cross-replica sum cannot sit in a
  conditional branch), so this changes the update, not the cost.

The authors back-propagate ``sum_i α_i L_i`` through the whole model, heads
included; here, as for every rule of this library, the heads get the rule's
objective (the loss-weighted sum) and ``α`` acts on the shared parameters.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.fairgrad import check_iterations, fair_weights
from tf_mtl.updates.weighted import GradientRule, state_variable


def clip_to_norm(coefficients, gram, max_norm):
    """``coefficients`` scaled so that ``||sum_i c_i g_i|| <= max_norm`` (``gram`` of the ``g_i``)."""
    norm = tf.sqrt(tf.maximum(tf.reduce_sum(coefficients * tf.linalg.matvec(gram, coefficients)),
                              0.0))
    return coefficients * tf.minimum(1.0, max_norm / tf.maximum(norm, 1e-30))


@keras.saving.register_keras_serializable(package="tf_mtl")
class NashMTL(GradientRule):
    """Multi-task learning as a bargaining game (Nash-MTL).

    Args:
        update_weights_every: recompute the weights every that many steps
            (integer >= 1; the authors' default 1).
        max_norm: clip the combined task gradient to this norm (``> 0``), or
            ``0`` for no clipping (the authors' default 1.0).
        weighting: optional loss weighting; it scales the task gradients first.
        max_iter: Newton steps at most (integer >= 1).

    Example:
        >>> update = tf_mtl.updates.NashMTL()
    """

    def __init__(self, update_weights_every=1, max_norm=1.0, weighting=None, max_iter=100,
                 **kwargs):
        kwargs.setdefault("name", "nash_mtl")
        super().__init__(weighting=weighting, **kwargs)
        if (isinstance(update_weights_every, bool) or not isinstance(update_weights_every, int)
                or update_weights_every < 1):
            raise ValueError("`update_weights_every` must be an integer >= 1. Received: "
                             f"update_weights_every={update_weights_every!r}")
        if (isinstance(max_norm, bool) or not isinstance(max_norm, (int, float))
                or not 0 <= max_norm < float("inf")):
            raise ValueError("`max_norm` must be a finite number >= 0 (0: no clipping). "
                             f"Received: max_norm={max_norm!r}")
        self.update_weights_every, self.max_norm = update_weights_every, float(max_norm)
        self.max_iter = check_iterations(max_iter)

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self.alpha = state_variable(self, "alpha", (len(self.tasks),))
        self.calls = state_variable(self, "calls", (), dtype="int64")

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() * base[:, None] * base[None, :]   # of the scaled gradients
        calls = tf.convert_to_tensor(self.calls)
        due = calls % self.update_weights_every == 0
        alpha = tf.cond(due, lambda: fair_weights(gram, 1.0, self.max_iter),
                        lambda: tf.convert_to_tensor(self.alpha))
        self.alpha.assign(alpha)
        self.calls.assign_add(1)
        if self.max_norm > 0:
            alpha = clip_to_norm(alpha, gram, self.max_norm)
        return alpha * base

    def get_config(self):
        return {**super().get_config(), "update_weights_every": self.update_weights_every,
                "max_norm": self.max_norm, "max_iter": self.max_iter}
