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
optimizer with the per-replica share the optimizer expects.
"""

import keras
import tensorflow as tf

from tf_mtl import distribute


class StepGradients:
    """Gradients of one training step, computed lazily and at most once.

    Built by ``MultiTaskModel.train_step`` inside ``tf.function``. Caching is
    per trace, so a rule and a probe that both ask for per-task gradients share
    one computation.

    Args:
        tape: the persistent ``tf.GradientTape`` that recorded the forward pass.
        losses: float tensor ``[m]``, per-task losses stacked inside the tape, in
            ``tasks`` order (replica-scaled as Keras losses are).
        objective: the scalar the update rule's ``objective`` returned.
        shared_variables: the encoder's trainable variables.
        per_task: ``"loop"`` (one ``tape.gradient`` per task) or ``"jacobian"``
            (one vectorized ``tape.jacobian``); same values, different speed
            per device.
    """

    def __init__(self, tape, losses, objective, shared_variables, per_task="loop",
                 loss_weights=None, regularization=None):
        if per_task not in ("loop", "jacobian"):
            raise ValueError(
                "`per_task` must be 'loop' or 'jacobian'. "
                f"Received: per_task={per_task!r}"
            )
        self.tape = tape
        self.losses = losses
        self.objective = objective
        self.shared_variables = list(shared_variables)
        self.per_task_method = per_task
        self.loss_weights = loss_weights
        self.regularization = regularization
        self._per_task = None  # (graph it was built in, gradients)

    @property
    def num_tasks(self):
        return int(self.losses.shape[0])

    def gradient(self, target, variables=None, output_gradients=None):
        """``d target / d variables`` (shared by default); zeros if unconnected.

        ``target`` must have been computed inside the tape. Per replica.
        """
        variables = self.shared_variables if variables is None else variables
        grads = self.tape.gradient(
            target, _tf_variables(variables), output_gradients=output_gradients,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        # Embedding gradients arrive as IndexedSlices; rules and lookaheads do
        # dense arithmetic on them (sums, scaling, stacking per task).
        return [tf.convert_to_tensor(g) for g in grads]

    def task_gradient(self, index, variables=None, scale=1.0):
        """``d (scale * losses[index]) / d variables`` for one task.

        Slicing ``losses`` here, outside the tape, would not be recorded, so the
        stacked losses are differentiated with a one-hot output gradient.
        """
        seed = tf.one_hot(index, self.num_tasks, dtype=self.losses.dtype) * scale
        return self.gradient(self.losses, variables, output_gradients=seed)

    def has_per_task(self):
        """Whether per-task gradients were already formed where this code runs."""
        return self._per_task is not None and _visible_from(self._per_task[0])

    def weighted_gradient(self):
        """Global shared gradient of ``sum_i loss_weights[i] * L_i`` (+ regularization).

        Summed from the per-task gradients when this step already formed them
        (a probe measured), saving a backward pass; otherwise one backward pass
        of ``objective``, which must then be that weighted sum.
        """
        if self.loss_weights is None or not self.has_per_task():
            return distribute.replica_sum(self.gradient(self.objective))
        grads = [tf.tensordot(self.loss_weights, g, axes=1) for g in self.per_task()]
        if self.regularization is not None:
            extra = distribute.replica_sum(self.gradient(self.regularization))
            grads = [g + e for g, e in zip(grads, extra)]
        return grads

    def per_task(self):
        """Global per-task shared gradients: one ``[m, *var.shape]`` per variable."""
        if self.has_per_task():
            return self._per_task[1]
        if self.per_task_method == "jacobian":
            grads = self.tape.jacobian(
                self.losses,
                _tf_variables(self.shared_variables),
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
        else:
            rows = [self.task_gradient(i) for i in range(self.num_tasks)]
            grads = [tf.stack(g, axis=0) for g in zip(*rows)]
        grads = distribute.replica_sum(grads)
        self._per_task = (tf.compat.v1.get_default_graph(), grads)
        return grads

    def global_losses(self):
        """Per-task losses averaged over the global batch (same on all replicas)."""
        return distribute.replica_sum(self.losses)


def _tf_variables(variables):
    """The backing ``tf.Variable`` of each Keras variable.

    The tape's zeros for unconnected sources need a TF dtype; a Keras
    variable's ``dtype`` is a string.
    """
    return [getattr(v, "value", v) for v in variables]


def _visible_from(graph):
    """Whether tensors built in ``graph`` can be used in the current graph.

    A probe computes per-task gradients inside a ``tf.cond`` branch; tensors
    from there must not be reused by code outside it (or in another branch),
    while tensors from an enclosing graph may be captured.
    """
    current = tf.compat.v1.get_default_graph()
    while current is not None:
        if current is graph:
            return True
        current = getattr(current, "outer_graph", None)
    return False


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

    def objective(self, losses, weights):
        """Scalar whose gradient the heads get: ``sum_i weights[i] * losses[i]``."""
        return tf.reduce_sum(weights * losses)

    def shared_gradients(self, step):
        """Returns ``(global shared gradients, {name: scalar})`` for ``step``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement shared_gradients(step)."
        )

    def call(self, *args, **kwargs):  # Layers need a call; rules are not called.
        raise TypeError(
            f"{type(self).__name__} is an update rule: MultiTaskModel uses its "
            "`objective` and `shared_gradients`, it is not called on tensors."
        )
