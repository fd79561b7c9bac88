"""MoCo (Fernando, Shen, Liu, Chaudhury, Murugesan, Chen; "Mitigating Gradient Bias in
Multi-objective Learning: A Provably Convergent Approach", ICLR 2023).

Stochastic MGDA is biased: the min-norm weights of one batch's gradients are not
those of the expected gradients. MoCo tracks each task's gradient and moves the
weights by a projected gradient step instead of solving per batch. At step
``t = 1, 2, ...`` (``y_i = 0``, ``λ = 1/m`` before the first):

    ``y_i ← y_i - β_t (y_i - h_i)``                      (tracked gradients)
    ``λ ← P(λ - γ_t (YᵀY + ρ I) λ)``                     (``YᵀY``: Gram of the ``y_i``)
    ``d = sum_i λ_i y_i``                                (the shared gradient)

with ``β_t = β / t^σ_β`` and ``γ_t = γ / t^σ_γ``. Defaults and conventions
follow the authors' shared code (as LibMTL's ``MoCo``, "implemented based on
the author's sharing code"): ``β = 0.5``, ``σ_β = 0.5``, ``γ = 0.1``,
``σ_γ = 0.5``, ``ρ = 0``; ``h_i = g_i / (||g_i|| + 1e-8) · L_i`` (each task
gradient rescaled to its loss, ``normalize_gradients=True``); ``P`` a softmax
(``lambda_update="softmax"``). The paper's Algorithm 1 writes ``h_i = g_i``
and ``P`` the Euclidean projection onto the simplex: ``normalize_gradients=False,
lambda_update="projection"``. With a ``weighting`` (or the model's loss
weights) MoCo acts on the scaled tasks ``b_i L_i``; the heads get the
weighting's objective (the plain loss sum without one), as in the authors' code.

Example:
    >>> update = tf_mtl.updates.MoCo()
"""

import keras
import tensorflow as tf

from tf_mtl.gradients import inner
from tf_mtl.updates.direction import (DirectionRule, check_rate, decayed, norms, scale_rows,
                                      weighted_sum)
from tf_mtl.updates.weighted import state_variable

LAMBDA_UPDATES = ("softmax", "projection")


def project_to_simplex(v):
    """Euclidean projection of ``v`` ``[m]`` onto the probability simplex (sort-based)."""
    m = v.shape[0]
    u = tf.sort(v, direction="DESCENDING")
    cumulative = tf.cumsum(u) - 1.0
    index = tf.range(1, m + 1, dtype=v.dtype)
    support = tf.cast(u - cumulative / index > 0, tf.int32)
    rho = tf.reduce_sum(support)                    # >= 1: u[0] - (u[0] - 1) = 1 > 0
    theta = tf.gather(cumulative, rho - 1) / tf.cast(rho, v.dtype)
    return tf.maximum(v - theta, 0.0)


@keras.saving.register_keras_serializable(package="tf_mtl")
class MoCo(DirectionRule):
    """Tracked task gradients, weights by a projected Gram step (MoCo).

    Args:
        beta, beta_sigma: tracking rate ``β`` in ``(0, 1]`` and its decay power.
        gamma, gamma_sigma: weight step ``γ > 0`` and its decay power.
        rho: ``ρ >= 0``, the ``ℓ2`` regularisation of the weight step.
        normalize_gradients: track ``g_i / ||g_i|| · L_i`` (authors' code) or ``g_i``.
        lambda_update: ``"softmax"`` (authors' code) or ``"projection"`` (paper).
        weighting: optional loss weighting scaling the tasks first.

    Example:
        >>> update = tf_mtl.updates.MoCo(lambda_update="projection")
    """

    per_task_state = ("tracked",)

    def __init__(self, beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0,
                 normalize_gradients=True, lambda_update="softmax", weighting=None, **kwargs):
        kwargs.setdefault("name", "moco")
        super().__init__(weighting=weighting, **kwargs)
        self.beta = check_rate(beta, "beta", 0.0, 1.0, low_open=True)
        self.beta_sigma = check_rate(beta_sigma, "beta_sigma", 0.0)
        self.gamma = check_rate(gamma, "gamma", 0.0, low_open=True)
        self.gamma_sigma = check_rate(gamma_sigma, "gamma_sigma", 0.0)
        self.rho = check_rate(rho, "rho", 0.0)
        if not isinstance(normalize_gradients, bool):
            raise ValueError(f"`normalize_gradients` must be True or False. Received: "
                             f"normalize_gradients={normalize_gradients!r}")
        if lambda_update not in LAMBDA_UPDATES:
            raise ValueError(f"`lambda_update` must be one of {LAMBDA_UPDATES}. Received: "
                             f"lambda_update={lambda_update!r}")
        self.normalize_gradients, self.lambda_update = normalize_gradients, lambda_update

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        m = len(self.tasks)
        self.task_weights = state_variable(self, "task_weights", (m,),
                                           initializer=keras.initializers.Constant(1.0 / m))

    def _direction(self, step, base):
        t = self._next_step()
        per_task = scale_rows(step.per_task(), base)
        if self.normalize_gradients:
            losses = tf.cast(step.global_losses(), tf.float32) * base
            per_task = scale_rows(per_task, losses / (norms(per_task) + 1e-8))
        tracked = self.task_state("tracked")
        beta_t = decayed(self.beta, self.beta_sigma, t)
        new = [y - tf.cast(beta_t, y.dtype) * (y - h) for y, h in zip(tracked, per_task)]
        m = len(self.tasks)
        gram = tf.cast(inner(new, new), tf.float32) + self.rho * tf.eye(m)
        lam = tf.convert_to_tensor(self.task_weights)
        lam = lam - decayed(self.gamma, self.gamma_sigma, t) * tf.linalg.matvec(gram, lam)
        lam = tf.nn.softmax(lam) if self.lambda_update == "softmax" else project_to_simplex(lam)
        for y, value in zip(tracked, new):
            y.assign(value)
        self.task_weights.assign(lam)
        logs = {f"{self.name}/{task}": lam[i] for i, task in enumerate(self.tasks)}
        return weighted_sum(new, lam), logs

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "beta_sigma": self.beta_sigma,
                "gamma": self.gamma, "gamma_sigma": self.gamma_sigma, "rho": self.rho,
                "normalize_gradients": self.normalize_gradients,
                "lambda_update": self.lambda_update}
