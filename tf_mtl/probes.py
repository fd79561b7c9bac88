"""The probe interface: measurements that run inside the train step and change nothing.

A probe is a Keras layer owned by ``MultiTaskModel(probes=[...])``. Every
``every`` optimizer steps (counted with ``optimizer.iterations``) the model runs
the step that calls ``measure`` — chosen on the host among one compiled step per
set of due probes (``tf_mtl.step_schedule``), so there is no re-trace and no
branch in the graph, under any ``tf.distribute`` strategy — before the optimizer
applies the step, so the probe sees exactly the weights and optimizer state the
update is computed from. Results accumulate in the probe's own Keras metrics:
Keras resets them at every epoch and their ``result()`` lands in the training logs.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_mtl")
class Probe(keras.layers.Layer):
    """Base class of probes.

    Args:
        every: measure on steps where ``optimizer.iterations % every == 0``.
    """

    def __init__(self, every=1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(
                f"`every` must be an integer >= 1. Received: every={every!r}"
            )
        self.every = every

    def build_tasks(self, tasks):
        """Called once by the model with the sorted task names."""
        self.tasks = list(tasks)
        self.built = True

    def measure(self, model, step):
        """Measures on this step and updates the probe's metrics. Returns None.

        ``step`` is the step's ``tf_mtl.gradients.StepGradients``: the batch
        (``step.x``, ``step.y``, ``step.sample_weight``), the losses, and
        per-task gradients on demand.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement measure().")

    def log_names(self):
        """The keys this probe's metrics put in the logs (evaluation drops them)."""
        names = []
        for metric in self.metrics:
            names += metric.log_names() if hasattr(metric, "log_names") else [metric.name]
        return names

    def due(self, iteration):
        """``1`` (int32) on steps where this probe measures, else ``0``."""
        return tf.cast(tf.equal(iteration % self.every, 0), tf.int32)

    def get_config(self):
        return {**super().get_config(), "every": self.every}

    def call(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} is a probe: MultiTaskModel calls its "
            "`measure`, it is not called on tensors."
        )
