"""Dynamic Weight Average (Liu et al., CVPR 2019, MTAN).

``w_i(t) = m · exp(r_i / T) / sum_j exp(r_j / T)`` with ``r_i = L̄_i(t-1) / L̄_i(t-2)``,
the ratio of task ``i``'s mean loss over the last two completed periods;
``w = 1`` until two periods are complete. Liu et al. average over epochs:
pass ``period=steps_per_epoch`` for that; the default ``period=1`` uses the
previous two steps' losses (the per-iteration variant some ports use). A rule
does not see epoch boundaries, so the period is counted in steps.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import LossWeighting, state_variable


@keras.saving.register_keras_serializable(package="tf_mtl")
class DWA(LossWeighting):
    """Dynamic Weight Average.

    Args:
        temperature: ``T > 0``; larger is closer to equal weights (paper: 2).
        period: steps averaged into one ``L̄`` (``steps_per_epoch`` = the paper).

    Example:
        >>> update = tf_mtl.updates.DWA(temperature=2.0, period=steps_per_epoch)
    """

    def __init__(self, temperature=2.0, period=1, **kwargs):
        kwargs.setdefault("name", "dwa")
        super().__init__(**kwargs)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not temperature > 0:
            raise ValueError(f"`temperature` must be a number > 0. Received: "
                             f"temperature={temperature!r}")
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"`period` must be an integer >= 1. Received: period={period!r}")
        self.temperature, self.period = float(temperature), period

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        m = (len(self.tasks),)
        self.window_sum = state_variable(self, "window_sum", m)
        self.window_steps = state_variable(self, "window_steps", ())
        self.completed = state_variable(self, "completed", ())   # periods completed
        self.last = state_variable(self, "last", m, "ones")      # L̄(t-1)
        self.before_last = state_variable(self, "before_last", m, "ones")  # L̄(t-2)

    def current_weights(self):
        m = len(self.tasks)
        # A period whose mean loss was 0 (e.g. a task masked out of every
        # batch) says nothing about its rate of descent: ratio 1, not inf/NaN.
        before = tf.convert_to_tensor(self.before_last)
        r = tf.where(before > 0, tf.convert_to_tensor(self.last) /
                     tf.where(before > 0, before, 1.0), 1.0)
        w = m * tf.nn.softmax(r / self.temperature)
        return tf.where(tf.convert_to_tensor(self.completed) >= 2.0, w, tf.ones([m]))

    def update_state(self, step, losses):
        total = tf.convert_to_tensor(self.window_sum) + tf.stop_gradient(losses)
        count = tf.convert_to_tensor(self.window_steps) + 1.0
        done = count >= self.period
        last = tf.convert_to_tensor(self.last)
        self.before_last.assign(tf.where(done, last, tf.convert_to_tensor(self.before_last)))
        self.last.assign(tf.where(done, total / count, last))
        self.completed.assign_add(tf.where(done, 1.0, 0.0))
        self.window_sum.assign(tf.where(done, tf.zeros_like(total), total))
        self.window_steps.assign(tf.where(done, 0.0, count))

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "period": self.period}
