"""Smooth Tchebycheff scalarization (Lin et al., ICML 2024, "Smooth Tchebycheff
Scalarization for Multi-Objective Optimization"), as the authors' multi-task
code (``Xi-L/STCH``, ``STCH_MTL/LibMTL/weighting/STCH.py``) applies it.

Three phases, counted in steps (a rule does not see epochs; pass
``steps_per_epoch`` to count the authors' epochs):

1. the first ``warmup_epochs`` epochs: the objective is ``sum_i log(L_i + ε)``;
2. the next epoch: the same objective, and the nadir point ``N`` (ideal point
   0) is estimated as the mean of the global losses over that epoch;
3. then ``STCH = m · μ · log sum_i exp(log(L_i / N_i + ε) / μ)``, the smooth
   Tchebycheff scalarization of the log of the nadir-normalised losses (the
   authors multiply by the number of tasks ``m``; as ``μ → 0`` it tends to the
   Tchebycheff ``m · max_i log(L_i / N_i + ε)``).

The weights are the partial derivatives of the phase's objective at this step's
global losses (the same on every replica): ``w_i = 1 / (L_i + ε)`` in phases 1
and 2, and ``w_i = m · softmax(ℓ / μ)_i / (N_i (L_i / N_i + ε))`` with
``ℓ_i = log(L_i / N_i + ε)`` in phase 3 (the authors subtract ``max ℓ`` inside
the log-sum-exp for stability; the softmax does the same). Defaults are the
authors': ``μ = 1``, ``warmup_epochs = 4``, ``ε = 1e-20``. The model's loss
weights ``lw`` multiply each task's term (``sum_i w_i lw_i ∇L_i``); ``N`` and
``w`` use the unweighted losses. The logged ``loss`` is the objective the
heads get, ``sum_i w_i lw_i L_i`` (``≈ m`` in the warm-up), not a task loss: read
the tasks' own losses in ``<task>_loss``.

The logarithm needs losses ``> 0``: ``ε`` keeps it finite at ``L = 0``, but the
warm-up weight ``1/ε = 1e20`` would then swamp the step, so a step whose global
losses are not all positive raises ``InvalidArgumentError`` ("Received:
losses=…") in graph mode (XLA drops the check).
"""

import keras
import tensorflow as tf

from tf_mtl.updates.gls import assert_positive_losses
from tf_mtl.updates.weighted import LossWeighting, state_variable


@keras.saving.register_keras_serializable(package="tf_mtl")
class STCH(LossWeighting):
    """Smooth Tchebycheff scalarization of the log nadir-normalised losses.

    Args:
        mu: smoothing ``μ > 0`` (authors: 1); smaller is closer to the max.
        warmup_epochs: epochs of ``sum log L`` before the nadir epoch (authors: 4).
        steps_per_epoch: steps per epoch (``>= 1``); the default 1 counts steps.
        epsilon: ``ε >= 0`` inside the logarithms (authors: 1e-20).

    Example:
        >>> update = tf_mtl.updates.STCH()      # the authors' defaults, phases in steps
        >>> update = tf_mtl.updates.STCH(mu=1.0, warmup_epochs=4, steps_per_epoch=100)
    """

    uses_step_losses = True

    def __init__(self, mu=1.0, warmup_epochs=4, steps_per_epoch=1, epsilon=1e-20, **kwargs):
        kwargs.setdefault("name", "stch")
        super().__init__(**kwargs)
        if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not 0 < mu < float("inf"):
            raise ValueError(f"`mu` must be a finite number > 0. Received: mu={mu!r}")
        for name, value, low in (("warmup_epochs", warmup_epochs, 0),
                                 ("steps_per_epoch", steps_per_epoch, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}. "
                                 f"Received: {name}={value!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
                or not 0 <= epsilon < float("inf"):
            raise ValueError(f"`epsilon` must be a finite number >= 0. Received: epsilon={epsilon!r}")
        self.mu, self.epsilon = float(mu), float(epsilon)
        self.warmup_epochs, self.steps_per_epoch = warmup_epochs, steps_per_epoch

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self.steps = state_variable(self, "steps", (), dtype="int64")
        self.nadir_sum = state_variable(self, "nadir_sum", (len(self.tasks),))

    def _phase_ends(self):
        warmup = self.warmup_epochs * self.steps_per_epoch
        return warmup, warmup + self.steps_per_epoch   # end of phase 1, of phase 2

    def nadir(self):
        """``[m]`` the nadir point (meaningful once the nadir epoch is over)."""
        return tf.convert_to_tensor(self.nadir_sum) / float(self.steps_per_epoch)

    def weights_for(self, losses):
        losses = assert_positive_losses(losses, "STCH")
        m = len(self.tasks)
        log_weights = 1.0 / (losses + self.epsilon)                 # ∂ sum log(L + ε)
        nadir = self.nadir()
        # Phase 1 and 2 give nadir 0: keep the unused branch finite.
        nadir = tf.where(nadir > 0, nadir, 1.0)
        normalised = losses / nadir + self.epsilon
        soft = tf.nn.softmax(tf.math.log(normalised) / self.mu)
        stch_weights = m * soft / (nadir * normalised)
        after_nadir = tf.convert_to_tensor(self.steps) >= self._phase_ends()[1]
        return tf.where(after_nadir, stch_weights, log_weights)

    def current_weights(self):
        raise TypeError("STCH weights depend on the step's losses: use weights_for(losses).")

    def update_state(self, step, losses):
        del step
        steps = tf.convert_to_tensor(self.steps)
        start, end = self._phase_ends()
        in_nadir_epoch = (steps >= start) & (steps < end)
        self.nadir_sum.assign_add(tf.where(in_nadir_epoch, tf.stop_gradient(losses), 0.0))
        self.steps.assign_add(1)

    def get_config(self):
        return {**super().get_config(), "mu": self.mu, "warmup_epochs": self.warmup_epochs,
                "steps_per_epoch": self.steps_per_epoch, "epsilon": self.epsilon}
