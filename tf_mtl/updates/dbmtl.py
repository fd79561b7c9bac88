"""DB-MTL (Lin, Ye, Xu, Shi, Zhang, Kwok; "Dual-Balancing for Multi-Task Learning", 2023).

Two balances, as in the authors' code (``DB_MTL`` in LibMTL, written by the
paper's authors):

* **loss scale**: every task's loss enters through ``log(L_i + ε)``
  (``ε = 1e-8``), so the task gradients are ``h_i = ∇ log(L_i + ε) =
  g_i / (L_i + ε)`` and the heads get ``sum_i ∇ log(L_i + ε)``: this step's
  global losses give the weights ``1 / (L_i + ε)`` (without gradient);
* **gradient magnitude**: a per-task moving average of the shared gradients,
  ``ĝ_i ← β_t ĝ_i + (1 - β_t) h_i`` with ``β_t = β / t^γ`` (``t = 1, 2, ...``;
  ``ĝ_i = 0`` before the first step), and the direction

      ``d = sum_i α_i ĝ_i``,  ``α_i = max_j ||ĝ_j|| / (||ĝ_i|| + 1e-8)``,

  i.e. every averaged task gradient rescaled to the largest norm, *summed*
  (not averaged) as the authors' code does. Norms are over all shared
  variables at once (the authors flatten the shared parameters).

Defaults ``β = 0.9``, ``γ = 0`` are the authors' code's (``DB_beta``,
``DB_beta_sigma``); the paper's ``β_t = β / t^γ`` schedule is the ``γ`` option.
With the model's loss weights ``lw`` (or an IT-MTL weighting's ``b``) the
scaled losses ``b_i L_i`` are balanced: ``h_i = b_i g_i / (b_i L_i + ε)``.
The log transform is DB-MTL's own loss weighting, so it takes no ``weighting``.
The logged ``loss`` is the heads' objective, the losses weighted by these
``1 / (L_i + ε)`` (``≈ m``), not a task loss: read the tasks' own losses in
``<task>_loss``.

Example:
    >>> update = tf_mtl.updates.DBMTL(beta=0.9, gamma=0.0)
"""

import keras
import tensorflow as tf

from tf_mtl import distribute
from tf_mtl.updates.direction import (DirectionRule, check_rate, decayed, norms, scale_rows,
                                      weighted_sum)

EPSILON = 1e-8  # log(L + ε) and the norm guard, as the authors' code.


@keras.saving.register_keras_serializable(package="tf_mtl")
class DBMTL(DirectionRule):
    """Dual-balancing MTL: log losses and max-norm-rescaled moving-average task gradients.

    Args:
        beta: moving-average rate ``β`` in ``[0, 1)``.
        gamma: decay power ``γ >= 0`` of ``β_t = β / t^γ``.

    Example:
        >>> update = tf_mtl.updates.DBMTL()
    """

    per_task_state = ("average",)

    def __init__(self, beta=0.9, gamma=0.0, **kwargs):
        kwargs.setdefault("name", "dbmtl")
        kwargs.pop("weighting", None)  # From get_config: DB-MTL weighs the losses itself.
        super().__init__(weighting=None, **kwargs)
        self.beta = check_rate(beta, "beta", 0.0, 1.0, high_open=True)
        self.gamma = check_rate(gamma, "gamma", 0.0)

    def log_weights(self, losses, base):
        """``[m]``: ``∂ log(b_i L_i + ε) / ∂ L_i = b_i / (b_i L_i + ε)`` (no gradient)."""
        losses = tf.stop_gradient(tf.cast(losses, tf.float32))
        return base / (base * losses + EPSILON)

    def objective(self, losses, weights):
        # The heads get sum_i ∇ log(lw_i L_i + ε) at this step's global losses.
        global_losses = distribute.replica_sum(losses)
        return tf.reduce_sum(self.log_weights(global_losses, weights) * losses)

    def _direction(self, step, base):
        t = self._next_step()
        beta_t = decayed(self.beta, self.gamma, t)
        h = scale_rows(step.per_task(), self.log_weights(step.global_losses(), base))
        averages = self.task_state("average")
        new = [tf.cast(beta_t, g.dtype) * a + tf.cast(1 - beta_t, g.dtype) * g
               for a, g in zip(averages, h)]
        for a, value in zip(averages, new):
            a.assign(value)
        size = norms(new)
        alpha = tf.reduce_max(size) / (size + EPSILON)
        logs = {f"{self.name}/{task}": alpha[i] for i, task in enumerate(self.tasks)}
        return weighted_sum(new, alpha), logs

    def get_config(self):
        config = super().get_config()
        config.pop("weighting", None)
        return {**config, "beta": self.beta, "gamma": self.gamma}
