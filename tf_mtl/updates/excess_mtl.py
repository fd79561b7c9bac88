"""ExcessMTL (He, Zhou, Zhang, Yun, Xu, Zeng, Chilimbi, Zhao; "Robust Multi-Task Learning
with Excess Risks", ICML 2024).

Task weights from each task's *excess* risk (its loss above the best it could
reach), estimated with a diagonal second-order model: the distance to the
minimum is about ``gᵀ H⁻¹ g``, with ``H`` AdaGrad's diagonal preconditioner
``diag(sqrt(G))`` (``G``: the accumulated squared gradients). Exactly as the
authors' code (``ExcessMTL.py`` in their LibMTL fork; LibMTL's copy), at every
step:

    ``G_i ← G_i + g_i ∘ g_i``                          (per-task sums, elementwise)
    ``r_i = sum_k g_ik² / sqrt(G_ik + 1e-7)``          (``g_iᵀ H_i⁻¹ g_i``)
    first step:   ``r⁰ = r``, weights unchanged (``w = 1``)
    later steps:  ``w_i ← w_i exp(η r_i / r⁰_i)``, then ``w ← m w / sum_j w_j``

and the shared gradient is ``sum_i w_i g_i`` — a weight row (so the rule is a
``GradientRule``: composable as an IT-MTL candidate). The first step's risks
normalize the later ones (the code's ``first_epoch`` flag is cleared after the
first call, i.e. after one *step*). ``η = robust_step_size = 0.01`` (LibMTL's
default for it). Weights sum to ``m`` (not 1), as in the code. A task whose
first risk is 0 (a zero gradient) gets ratio 0 where the code divides by zero.
``g_i`` are the gradients of the scaled losses ``b_i L_i`` (``b``: the model's
loss weights, or IT-MTL's weighting); the returned coefficients are ``w_i b_i``.
The rule weighs the losses itself, so it takes no ``weighting``.

The heads get ``sum_i w_i lw_i L_i`` with the weights *before* this step's
update (the objective is formed in the forward pass, before the shared
gradients exist); the authors' heads use the updated weights — a one-step lag
(no lag needs the model to form the heads' gradient after the rule).

Example:
    >>> update = tf_mtl.updates.ExcessMTL(robust_step_size=0.01)
"""

import keras
import tensorflow as tf

from tf_mtl.updates.direction import PerTaskState, check_rate, scale_rows
from tf_mtl.updates.weighted import GradientRule, state_variable


@keras.saving.register_keras_serializable(package="tf_mtl")
class ExcessMTL(PerTaskState, GradientRule):
    """Robust task weights from AdaGrad-estimated excess risks.

    Args:
        robust_step_size: ``η > 0``, the exponentiated-gradient step of the weights.

    Example:
        >>> update = tf_mtl.updates.ExcessMTL()
    """

    per_task_state = ("squares",)

    def __init__(self, robust_step_size=0.01, **kwargs):
        kwargs.setdefault("name", "excess_mtl")
        kwargs.pop("weighting", None)  # From get_config: the rule weighs the losses itself.
        super().__init__(weighting=None, **kwargs)
        self.robust_step_size = check_rate(robust_step_size, "robust_step_size", 0.0,
                                           low_open=True)

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self._per_task = None
        m = len(self.tasks)
        self.task_weights = state_variable(self, "task_weights", (m,), initializer="ones")
        self.initial_risks = state_variable(self, "initial_risks", (m,), initializer="ones")
        self.steps = state_variable(self, "steps", (), dtype="int64")

    def objective(self, losses, weights):
        return tf.reduce_sum(tf.convert_to_tensor(self.task_weights) * weights * losses)

    def combination(self, step, base):
        self.build_for_variables(step.shared_variables)
        base = tf.cast(base, tf.float32)
        grads = scale_rows(step.per_task(), base)
        squares = self.task_state("squares")
        new = [s + tf.square(g) for s, g in zip(squares, grads)]
        risks = tf.add_n([
            tf.reduce_sum(tf.reshape(tf.cast(tf.square(g) / tf.sqrt(s + 1e-7), tf.float32),
                                     [g.shape[0], -1]), 1)
            for g, s in zip(grads, new)])
        first = tf.equal(tf.convert_to_tensor(self.steps), 0)
        initial = tf.where(first, risks, tf.convert_to_tensor(self.initial_risks))
        weights = tf.convert_to_tensor(self.task_weights)
        ratio = tf.where(initial > 0, risks / tf.where(initial > 0, initial, 1.0), 0.0)
        updated = weights * tf.exp(self.robust_step_size * ratio)
        updated = updated / tf.reduce_sum(updated) * len(self.tasks)
        weights = tf.where(first, weights, updated)
        for s, value in zip(squares, new):
            s.assign(value)
        self.initial_risks.assign(initial)
        self.task_weights.assign(weights)
        self.steps.assign_add(1)
        return weights * base

    def get_config(self):
        config = super().get_config()
        config.pop("weighting", None)
        return {**config, "robust_step_size": self.robust_step_size}
