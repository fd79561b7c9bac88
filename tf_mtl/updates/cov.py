"""CoV weighting (Groenendijk et al., WACV 2021) with the full loss history, as ``000`` uses it.

Per task, the loss ratio ``l_t = L_t / mean(L_0..L_{t-1})`` (``l_0 = 1``); its
coefficient of variation ``c = std(l) / mean(l)`` over all past steps (Welford,
population variance, ``+1e-8`` inside the square root) gives the weights
``α = c / sum(c)``. As in the authors' code, the weights of a step use the
statistics of the steps *before* it, and the first two steps weigh every task
``1/m``. ``000`` §3.3 multiplies the weights by the number of tasks so that
they are on the scale of other weightings: ``w = m α`` (so ``1`` at the start).

The statistics live in non-trainable variables (checkpointed; a resumed run
continues the history).
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import LossWeighting, state_variable


@keras.saving.register_keras_serializable(package="tf_mtl")
class CoV(LossWeighting):
    """Coefficient-of-variation loss weighting, weights summing to ``m``.

    Example:
        >>> update = tf_mtl.updates.CoV()
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "cov")
        super().__init__(**kwargs)

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        m = (len(self.tasks),)
        self.steps = state_variable(self, "steps", ())
        self.mean_loss = state_variable(self, "mean_loss", m)     # mean of L over history
        self.mean_ratio = state_variable(self, "mean_ratio", m)   # mean of l
        self.sum_sq_ratio = state_variable(self, "sum_sq_ratio", m)  # Welford's S of l

    def current_weights(self):
        m = len(self.tasks)
        steps = tf.convert_to_tensor(self.steps)
        var = tf.convert_to_tensor(self.sum_sq_ratio) / tf.maximum(steps, 1.0)
        c = tf.sqrt(var + 1e-8) / tf.convert_to_tensor(self.mean_ratio)
        alpha = tf.where(steps >= 2.0, c / tf.reduce_sum(c), tf.fill([m], 1.0 / m))
        return m * alpha

    def update_state(self, step, losses):
        losses = tf.stop_gradient(losses)
        steps = tf.convert_to_tensor(self.steps)
        first = tf.equal(steps, 0.0)
        # A history of zero loss (e.g. a task masked out of every batch so far)
        # gives no scale to compare with: ratio 1, not inf/NaN.
        mean_loss = tf.convert_to_tensor(self.mean_loss)
        known = tf.logical_not(first) & (mean_loss > 0)
        ratio = tf.where(known, losses / tf.where(known, mean_loss, 1.0), tf.ones_like(losses))
        keep = tf.where(first, 0.0, 1.0 - 1.0 / (steps + 1.0))  # running-mean factor
        old_mean = tf.convert_to_tensor(self.mean_ratio)
        new_mean = keep * old_mean + (1.0 - keep) * ratio
        self.sum_sq_ratio.assign_add((ratio - old_mean) * (ratio - new_mean))
        self.mean_ratio.assign(new_mean)
        self.mean_loss.assign(keep * tf.convert_to_tensor(self.mean_loss) + (1.0 - keep) * losses)
        self.steps.assign_add(1.0)
