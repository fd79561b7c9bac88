"""One training step's forward pass and gradients, shared by update rules, probes and IT-MTL.

``record_step`` runs the model's forward pass once, under a persistent tape,
and keeps a snapshot of the non-trainable state it started from (BatchNorm
statistics, the model's dropout seeds). In the train step the forward is the
model's own call; ``tf_mtl.transference.measure`` runs it with
``model.stateless_call`` and drops the new state, so a measurement changes
nothing. Every lookahead forward restarts from the snapshot, so a task's loss
before and after a candidate step is measured with the same dropout masks
(layers that draw from Keras's global seed generator get fresh noise).

``StepGradients`` then hands out what rules and probes ask for, each at most
once per step: per-task shared gradients (global: summed over replicas, so
choices made from them agree on every replica), the gradient of the
regularization terms, and the weighted sum the plain MTL step applies.
"""

import tensorflow as tf

from tf_mtl import distribute

PER_TASK_METHODS = ("loop", "jacobian")


def record_step(model, x, y, sample_weight=None, objective_fn=None, per_task="loop",
                stateless=False):
    """The forward pass of one step, recorded for gradients.

    Args:
        model: a built ``MultiTaskModel``.
        x, y, sample_weight: the step's batch (``y`` is ``{task: labels}``).
        objective_fn: ``(losses [m], loss_weights [m]) -> scalar`` whose
            gradient the heads get (an update rule's ``objective``); default
            the weighted sum of the losses. The regularization terms are added.
        per_task: ``"loop"`` or ``"jacobian"`` (see ``StepGradients``).
        stateless: run the forward with ``model.stateless_call`` and drop
            the state it advances (``measure``: nothing may change). Otherwise
            the forward is the model's own call, so BatchNorm statistics, seed
            generators and metrics inside layers advance as in any Keras step.

    Returns:
        ``StepGradients``; ``step.state`` holds the non-trainable values the
        forward started from, in ``model.non_trainable_variables`` order.
    """
    weights = model.loss_weight_vector()
    # Read before the forward: in a tf.function, reads and the forward's
    # assignments to one variable run in program order.
    state = [tf.convert_to_tensor(v) for v in model.non_trainable_variables]
    features = None
    with tf.GradientTape(persistent=True) as tape:
        if stateless:
            # Reading the variables inside the tape records the reads, so
            # gradients with respect to the variables flow through the call.
            trainable = [tf.convert_to_tensor(v) for v in model.trainable_variables]
            y_pred, _, extra = model.stateless_call(
                trainable, state, x, training=True, return_losses=True)
        else:
            features, y_pred = model.recorded_forward(x, training=True)
            extra = model.losses
        # Each replica's exact share of the global batch's losses (distribute.py).
        factors = model.loss_factors(y_pred, sample_weight)
        task_losses = model.task_loss_list(y, y_pred, sample_weight, factors)
        losses = tf.stack(task_losses)
        regularization = None
        if extra:  # Regularizers and add_loss terms, scaled per replica as Keras does.
            regularization = distribute.replica_share(
                tf.add_n([tf.cast(v, tf.float32) for v in extra]))
        objective = (objective_fn or _weighted_sum)(losses, weights)
        if regularization is not None:
            objective = objective + regularization
    return StepGradients(
        tape, losses, objective, model.shared_variables, per_task=per_task,
        loss_weights=weights, regularization=regularization, x=x, y=y,
        sample_weight=sample_weight, y_pred=y_pred, state=state, features=features,
        task_losses=task_losses, model=model, loss_factors=factors)


def _weighted_sum(losses, weights):
    return tf.reduce_sum(weights * losses)


class StepGradients:
    """Gradients of one training step, computed lazily and at most once.

    Built by ``record_step`` inside ``tf.function``. Caching is per trace, so
    a rule and a probe that both ask for per-task gradients share one
    computation.

    Args:
        tape: the persistent ``tf.GradientTape`` that recorded the forward pass.
        losses: float tensor ``[m]``, per-task losses stacked inside the tape, in
            ``tasks`` order (replica-scaled as Keras losses are).
        objective: the scalar the heads' gradient is taken of.
        shared_variables: the encoder's trainable variables.
        per_task: ``"loop"`` (one ``tape.gradient`` per task) or ``"jacobian"``
            (one vectorized ``tape.jacobian``); same values, different speed
            per device.
        loss_weights: ``[m]`` the model's loss weights.
        regularization: the per-replica regularization scalar, or None.
        x, y, sample_weight, y_pred: the step's batch and predictions.
        state: non-trainable values the forward started from.
        features, task_losses: the encoder's output and the unstacked losses,
            both recorded by the tape, when the forward exposes them; a task's
            shared gradient then starts from its own head's cotangent.
        model: the model the step belongs to (IT-MTL scores its candidates
            with the model's optimizer and lookahead).
    """

    def __init__(self, tape, losses, objective, shared_variables, per_task="loop",
                 loss_weights=None, regularization=None, x=None, y=None,
                 sample_weight=None, y_pred=None, state=None, features=None,
                 task_losses=None, model=None, loss_factors=None):
        if per_task not in PER_TASK_METHODS:
            raise ValueError(
                f"`per_task` must be one of {PER_TASK_METHODS}. Received: per_task={per_task!r}")
        self.tape = tape
        self.loss_factors = loss_factors  # [m] or None: model.loss_factors of the batch
        self.losses = losses
        self.objective = objective
        self.shared_variables = list(shared_variables)
        self.per_task_method = per_task
        self.loss_weights = loss_weights
        self.regularization = regularization
        self.x, self.y, self.sample_weight, self.y_pred = x, y, sample_weight, y_pred
        self.state = state
        self.features, self.task_losses = features, task_losses
        self.model = model
        self._cache = {}  # name -> (graph it was built in, value)

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
        """``d (scale * losses[index]) / d variables`` for one task, per replica.

        With ``features`` recorded (``MultiTaskModel.recorded_forward`` says
        when), the gradient runs through head ``index`` alone to the features,
        then through the encoder. Otherwise the stacked losses are
        differentiated with a one-hot output gradient (slicing ``losses`` here,
        outside the tape, would not be recorded).
        """
        if self.features is not None and variables is None:
            # Through head ``index`` alone to the features, then the encoder:
            # the other heads' zero cotangents are never formed or summed.
            cotangent = self.tape.gradient(self.task_losses[index], self.features,
                                           unconnected_gradients=tf.UnconnectedGradients.ZERO)
            cotangent = tf.nest.map_structure(lambda c: c * scale, cotangent)
            return self.gradient(self.features, output_gradients=cotangent)
        seed = tf.one_hot(index, self.num_tasks, dtype=self.losses.dtype) * scale
        return self.gradient(self.losses, variables, output_gradients=seed)

    def _cached(self, name, build):
        """``build()`` once per step, reused only where its graph is visible.

        A probe computes per-task gradients inside a ``tf.switch_case``
        branch; tensors from there must not be reused by code outside it (or in
        another branch), while tensors from an enclosing graph may be captured.
        """
        hit = self._cache.get(name)
        if hit is not None and _visible_from(hit[0]):
            return hit[1]
        value = build()
        self._cache[name] = (tf.compat.v1.get_default_graph(), value)
        return value

    def has_per_task(self):
        """Whether per-task gradients were already formed where this code runs."""
        hit = self._cache.get("per_task")
        return hit is not None and _visible_from(hit[0])

    def per_task(self):
        """Global per-task shared gradients: one ``[m, *var.shape]`` per variable."""
        return self._cached("per_task", self._per_task)

    def _per_task(self):
        if self.per_task_method == "jacobian":
            grads = self.tape.jacobian(
                self.losses, _tf_variables(self.shared_variables),
                unconnected_gradients=tf.UnconnectedGradients.ZERO)
        else:
            rows = [self.task_gradient(i) for i in range(self.num_tasks)]
            grads = [tf.stack(g, axis=0) for g in zip(*rows)]
        return distribute.replica_sum(grads)

    def gram(self):
        """``[m, m]`` inner products of the global per-task shared gradients.

        PCGrad's projections and MGDA's min-norm point are functions of this
        matrix alone, so those rules never touch the gradients themselves.
        """
        return self._cached("gram", lambda: inner(self.per_task(), self.per_task()))

    def feature_gram(self, rule="this rule"):
        """``[m, m]`` Gram of ``d L_i / d Z``, the task gradients w.r.t. the encoder's output.

        One backward through each head, none through the encoder (MGDA-UB,
        IMTL and Aligned-MTL on features). Features are per example, so the
        global Gram is the sum of the replicas' Grams. ``rule`` names the
        caller in the error raised when the step recorded no features.
        """
        if self.features is None or self.task_losses is None:
            raise ValueError(
                f"{rule} on the encoder's output needs it recorded in the step: the train step "
                "records it where the encoder returns one floating-point tensor, no head uses an "
                "encoder variable and `call` is not overridden (MultiTaskModel.recorded_forward). "
                "Received: a step without features; use the rule on the shared parameters")

        def build():
            rows = []
            for i in range(self.num_tasks):
                d = self.tape.gradient(self.task_losses[i], self.features,
                                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
                rows.append(tf.concat([tf.reshape(tf.cast(x, tf.float32), [-1])
                                       for x in tf.nest.flatten(d)], 0))
            d = tf.stack(rows)
            return distribute.replica_sum(tf.matmul(d, d, transpose_b=True))

        return self._cached("feature_gram", build)

    def regularization_gradient(self, variables=None):
        """Global gradient of the regularization terms (shared by default), or None."""
        if self.regularization is None:
            return None
        if variables is not None:
            return distribute.replica_sum(self.gradient(self.regularization, variables))
        return self._cached("regularization", lambda: distribute.replica_sum(
            self.gradient(self.regularization)))

    def weighted_gradient(self):
        """Global shared gradient of ``sum_i loss_weights[i] * L_i`` (+ regularization).

        Summed from the per-task gradients when this step already formed them
        (a probe measured), saving a backward pass; otherwise one backward pass
        of ``objective``, which must then be that weighted sum.
        """
        if self.loss_weights is None or not self.has_per_task():
            return distribute.replica_sum(self.gradient(self.objective))
        return [g[0] for g in combine(self.per_task(), self.loss_weights[None, :],
                                      self.regularization_gradient())]

    def own_task_gradients(self, task_variables):
        """Global ``d L_t / d theta_t`` for each task's own variables (unweighted).

        ``task_variables``: ``{task: [variables]}`` in the losses' task order, each
        task's own parameters (``MultiTaskModel.task_variables``: its head and any
        task-specific encoder variables, e.g. SegNet-MTAN's attention modules).
        """
        return self._cached("own", lambda: {
            t: distribute.replica_sum(self.task_gradient(i, variables))
            for i, (t, variables) in enumerate(task_variables.items())})

    def own_gradients(self, task_variables):
        """Global gradient of ``loss_weights[t] * L_t`` (+ regularization) for each
        task's own variables (``own_task_gradients``).

        Task ``t``'s own variables only enter task ``t``'s loss, so this is also
        their part of the weighted-sum gradient the train step applies.
        """
        out = {}
        for i, (t, grads) in enumerate(self.own_task_gradients(task_variables).items()):
            grads = [g * self.loss_weights[i] for g in grads]
            extra = self.regularization_gradient(task_variables[t])
            out[t] = grads if extra is None else [g + e for g, e in zip(grads, extra)]
        return out

    def global_losses(self):
        """Per-task losses averaged over the global batch (same on all replicas)."""
        return self._cached("losses", lambda: distribute.replica_sum(self.losses))


def combine(per_task, rows, extra=None):
    """Gradients of weighted task sums: ``rows [n, m] @ per_task`` (+ ``extra`` on each).

    Returns one ``[n, *var.shape]`` tensor per variable: row ``s`` is
    ``sum_i rows[s, i] * g_i`` (+ ``extra``, e.g. the regularization gradient).
    """
    out = [tf.tensordot(tf.cast(rows, g.dtype), g, axes=1) for g in per_task]
    if extra is not None:
        out = [g + e[None] for g, e in zip(out, extra)]
    return out


def inner(a, b):
    """``sum_v <a_v[s], b_v[j]>`` over variables: ``[n, ...] x [k, ...] -> [n, k]``."""
    return tf.add_n([tf.matmul(tf.reshape(x, [x.shape[0], -1]),
                               tf.reshape(y, [y.shape[0], -1]), transpose_b=True)
                     for x, y in zip(a, b)])


def _tf_variables(variables):
    """The backing ``tf.Variable`` of each Keras variable.

    The tape's zeros for unconnected sources need a TF dtype; a Keras
    variable's ``dtype`` is a string.
    """
    return [getattr(v, "value", v) for v in variables]


def _visible_from(graph):
    """Whether tensors built in ``graph`` can be used in the current graph."""
    current = tf.compat.v1.get_default_graph()
    while current is not None:
        if current is graph:
            return True
        current = getattr(current, "outer_graph", None)
    return False
