"""One optimizer step per task per batch: the train step of ``003``'s released CelebA code.

``MultiTaskModel(task_steps="sequential")`` trains as the Maximum Roaming reference
scripts for Maximum Roaming and Task Routing on CelebA do (``celeba/train_MR.py``,
``celeba/train_TR.py`` of lucaspascal/Maximum-Roaming-Mutli-Task-Learning; its MTL,
GradNorm and MGDA scripts take one summed step instead). For each batch, for each task
``t`` in order (the reference: its ``task_groups`` order; here ``model.tasks``, sorted
names):

1. forward the batch along task ``t``'s path only (``change_task(t)``; here
   ``tf_mtl.routing.task_paths.path_of``) and task ``t``'s head, at the weights the
   previous task's step left;
2. ``L_t`` = task ``t``'s loss (``003``: the binary cross-entropy averaged over the
   group's attributes), times its loss weight (1 by default, the reference has none),
   plus the model's regularization terms;
3. ``zero_grad(); L_t.backward(); optimizer.step()``: one step of the one optimizer on
   **every** parameter: the shared ones get ``∇L_t`` (zero on the channels task ``t``'s
   mask switches off), head ``t`` gets its gradient, the other heads a **zero** gradient.
   Under PyTorch 1.x, which the code was written for, ``zero_grad`` zeroes the
   gradients of the other heads (it set them to ``None`` only from PyTorch 2.0), so
   Adam still moves them by their momentum on every task's step; here they are handed
   zeros too.

The optimizer's iteration counter (and so Adam's bias correction and any
learning-rate schedule) advances once per task, ``T`` times per batch, as the
reference's per-parameter step counts do (there each head also starts counting at
its own task's first step, a few steps' difference in the bias correction of
the first batch). A schedule written in epochs must count ``T`` optimizer steps per
batch (``tf_mtl.experiments.experiment.build_optimizer`` is given them); routing layers
roam on their batch schedule: their hook (``on_train_step``) gets the number of batches,
``iterations // T``, once per batch after the last task's step, as the reference updates
its masks once per batch.

The summed step (``task_steps="summed"``, the default) applies one step of
``∇ Σ_t w_t L_t`` per batch, which is what ``003``'s paper describes for every method
("the losses of all attributes of the same task are averaged to form a task-specific
loss") and what its MTL script does. ``"sequential"`` moves the shared weights by ``T``
Adam steps per batch, each normalized on its own, so the two differ in effective step
size as well as order. It combines only with ``EqualWeights`` (a rule forms one
direction from all tasks' gradients at once) and without probes (they measure the
summed step's lookahead).

Example:
    >>> model = tf_mtl.MultiTaskModel(encoder, heads, losses, task_steps="sequential")
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-4))
    >>> model.fit(ds)   # T Adam steps per batch, one per task in model.tasks order
"""

import tensorflow as tf

from tf_mtl import distribute
from tf_mtl.gradients import _tf_variables  # Keras variables as the tape's sources.
from tf_mtl.routing import task_paths
from tf_mtl.updates.equal_weights import EqualWeights

TASK_STEPS = ("summed", "sequential")


def check_task_steps(task_steps, update, probes):
    """Raises ``ValueError`` for a ``task_steps`` value, or a combination, that has no meaning."""
    if task_steps not in TASK_STEPS:
        raise ValueError(f"`task_steps` must be one of {TASK_STEPS}. "
                         f"Received: task_steps={task_steps!r}")
    if task_steps == "summed":
        return
    if type(update) is not EqualWeights:
        raise ValueError(
            "`task_steps='sequential'` steps on each task's own loss in turn, so only "
            "EqualWeights applies (a rule forms one direction from every task's gradient "
            f"at once). Received: task_steps='sequential' with update={type(update).__name__}")
    if probes:
        raise ValueError(
            "`task_steps='sequential'` does not take probes: they measure the lookahead of "
            "one summed step, which this mode does not take. Received: task_steps="
            f"'sequential' with probes={[type(p).__name__ for p in probes]}")


def train_step(model, x, y, sample_weight):
    """``MultiTaskModel.train_step`` in ``"sequential"`` mode: returns the step's logs.

    The logged loss of task ``t`` and its metrics are those of its own forward, before
    its step (what the reference accumulates)."""
    variables = model.trainable_variables
    tasks, losses, objectives, y_pred = model.tasks, [], [], {}
    inputs = task_paths.per_task_inputs(tasks, x, model.encoder)
    for k, task in enumerate(tasks):
        with tf.GradientTape() as tape:
            pred, loss, objective = _task_loss(
                model, k, x if inputs is None else inputs[k], y[task],
                sample_weight.get(task) if isinstance(sample_weight, dict) else sample_weight)
        grads = tape.gradient(objective, _tf_variables(variables),
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        with tf.control_dependencies([pred, loss]):  # This task's reads, before its step.
            distribute.apply_global(model.optimizer, distribute.replica_sum(grads), variables)
        y_pred[task] = pred
        losses.append(loss)
        objectives.append(objective)
    _after_batch(model, len(tasks))
    return tf.stack(losses), tf.add_n(objectives), y_pred


def _task_loss(model, k, x, y, sample_weight):
    """Task ``k``'s prediction, its (replica-share) loss and its step's objective."""
    task = model.tasks[k]
    with task_paths.path_of(k, len(model.tasks)):  # Task k's path alone (003's change_task).
        features = model.encoder(x, training=True)
    pred = model._apply_head(task, features, True)
    loss_fn = model.task_losses[task]
    loss = tf.cast(loss_fn(y, pred, sample_weight=sample_weight), tf.float32)
    factors = distribute.global_mean_factors(
        [distribute.loss_divisor(loss_fn, pred, sample_weight)])
    if factors is not None:  # This replica's exact share of the global batch's loss.
        loss = loss * factors[0]
    objective = model.loss_weights[task] * loss
    if model.losses:  # Regularizers: in every step, as a torch optimizer's weight decay.
        objective += distribute.replica_share(
            tf.add_n([tf.cast(v, tf.float32) for v in model.losses]))
    return pred, loss, objective


def _after_batch(model, num_tasks):
    """Routing layers' once-per-batch hook, counted in batches (``iterations // T``)."""
    batches = model.optimizer.iterations // num_tasks
    for layer in task_paths.routing_layers(model.encoder):
        hook = getattr(layer, "on_train_step", None)
        if hook is not None:
            hook(batches)


def optimizer_steps_per_batch(task_steps, num_tasks):
    """How many times the optimizer's iteration counter advances per batch."""
    return num_tasks if task_steps == "sequential" else 1
