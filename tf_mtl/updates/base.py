"""The update-rule interface and the per-step gradient source it reads.

An update rule decides how the *shared* gradient is formed from the per-task
losses (equal weights, uncertainty weighting, GradNorm, PCGrad, MGDA-UB,
IT-MTL, ...). Heads always get the gradient of the rule's ``objective`` — the
(weighted) sum of task losses — so a rule only has to say two things:

* ``objective(losses, weights)``: the scalar whose gradient the heads (and the
  rule's own trainable variables, e.g. uncertainty log-variances) receive;
* ``shared_gradients(step)``: the gradient for the shared variables, plus
  scalar values to log.

Gradients returned by ``shared_gradients`` are *global*: already summed over
replicas (see ``tf_mtl.distribute``), so that a rule that is non-linear in the
per-task gradients (PCGrad, MGDA, IT-MTL) sees the same gradients on every
replica and makes the same choice. ``MultiTaskModel`` hands them to the
optimizer with ``tf_mtl.distribute.apply_global``.
"""

import keras
import tensorflow as tf

from tf_mtl.gradients import StepGradients  # noqa: F401  (re-exported: rules read it)


@keras.saving.register_keras_serializable(package="tf_mtl")
class Update(keras.layers.Layer):
    """Base class of update rules. Subclasses override ``shared_gradients``.

    A rule is a Keras layer so that any state it keeps (weights, counters) is a
    Keras variable that checkpoints and ``model.save`` carry. ``build_tasks``
    is called once by ``MultiTaskModel`` with the sorted task names; create
    variables there.
    """

    def build_tasks(self, tasks):
        self.tasks = list(tasks)
        self.built = True

    def build_for_variables(self, variables):
        """Creates state shaped like the shared ``variables`` (``MultiTaskModel.build_for``
        calls it once they exist); most rules keep none."""
        del variables

    def objective(self, losses, weights):
        """Scalar whose gradient the heads get: ``sum_i weights[i] * losses[i]``.

        Under a ``tf.distribute`` strategy with ``n`` replicas, ``losses`` are each
        replica's share (Keras scales them by ``1 / n`` so that the sum over
        replicas is the global mean): a term a rule adds that is not
        proportional to the losses (e.g. uncertainty weighting's ``log sigma``)
        must be scaled the same way, with ``tf_mtl.distribute.replica_share``.
        """
        return tf.reduce_sum(weights * losses)

    @property
    def reads_encoder_output(self):
        """Whether this rule needs the task gradients w.r.t. the encoder's output
        (``StepGradients.feature_gram``): one representation every head reads, which
        an encoder with per-task outputs (``tf_mtl.dense.SegNetMTAN``) does not have."""
        return False

    def shared_gradients(self, step):
        """Returns ``(global shared gradients, {name: scalar})`` for ``step``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement shared_gradients(step)."
        )

    def log_names(self):
        """Keys this rule's metrics put in the logs (evaluation drops them)."""
        return []

    def call(self, *args, **kwargs):  # Layers need a call; rules are not called.
        raise TypeError(
            f"{type(self).__name__} is an update rule: MultiTaskModel uses its "
            "`objective` and `shared_gradients`, it is not called on tensors."
        )
