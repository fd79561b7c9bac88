"""``MultiTaskModel``: a shared encoder, one head per task, one loss per task.

The train step is built from three concerns kept in their own modules:

1. the **update rule** (``tf_mtl.updates``) forms the shared gradient from the
   per-task losses; heads get the gradient of the rule's objective;
2. **probes** (``tf_mtl.probes``, e.g. ``tf_mtl.transference.Transference``)
   measure without changing training, every ``every`` steps;
3. the **lookahead** (``tf_mtl.lookahead``) is what rules and probes use to see
   where the compiled optimizer's next step would take the shared weights.
"""

import functools

import keras
import tensorflow as tf

from tf_mtl import distribute, keras_internals, lookahead, per_task_steps, step_schedule
from tf_mtl.routing import task_paths
from tf_mtl.gradients import PER_TASK_METHODS, record_step
from tf_mtl.losses import as_loss
from tf_mtl.updates.base import Update
from tf_mtl.updates.equal_weights import EqualWeights
from tf_mtl.probes import Probe


def _check_task_keys(name, got, tasks):
    got, tasks = set(got), set(tasks)
    if got != tasks:
        missing, unknown = sorted(tasks - got), sorted(got - tasks)
        raise ValueError(
            f"`{name}` must have exactly one entry per task {sorted(tasks)}. "
            f"Missing: {missing}; unknown: {unknown}. Received keys: {sorted(got)}"
        )


def _check_optimizer(optimizer):
    """The train step differentiates unscaled losses: a loss-scaling optimizer would
    divide every step by its scale."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        raise ValueError(
            "MultiTaskModel does not support loss scaling (the 'mixed_float16' policy wraps "
            "the optimizer in a LossScaleOptimizer): use the 'mixed_bfloat16' or 'float32' "
            f"policy. Received: optimizer of type {type(optimizer).__name__}")


@keras.saving.register_keras_serializable(package="tf_mtl")
class MultiTaskModel(keras.Model):
    """Multi-task model with pluggable update rule and probes.

    Args:
        encoder: Keras layer/model holding the shared parameters. It may also hold
            task-specific ones, exposed as ``encoder.task_variables(task)`` (they are
            then ``task_variables(task)``, trained with the heads, not shared), and
            may return one feature per task as a dict keyed by exactly the tasks
            (``tf_mtl.dense.mtan.SegNetMTAN``).
        heads: ``{task: layer}``, each applied to the encoder's output (to its
            entry ``task`` where that is a per-task dict).
        losses: ``{task: keras.losses.Loss | name}``; each is a batch mean.
        loss_weights: optional ``{task: float}``; missing tasks weigh 1.
        update: a ``tf_mtl.updates.Update``; default ``EqualWeights()``.
        probes: list of ``tf_mtl.probes.Probe`` (e.g. transference).
        per_task_gradients: ``"loop"`` or ``"jacobian"``: how per-task shared
            gradients are formed when a rule or probe needs them.
        lookahead_execution: how candidate lookahead forwards run:
            ``"auto"`` (``lookahead.AUTO_EXECUTION``, the fastest measured), ``"sequential"``,
            ``"unrolled"`` or ``"vectorized"`` (``lookahead.evaluate_losses``);
            same values, different speed.
        task_steps: ``"summed"`` (one optimizer step on the rule's combined gradient per
            batch) or ``"sequential"`` (one step per task in ``tasks`` order, each on that
            task's loss: ``003``'s released CelebA code; ``tf_mtl.per_task_steps``).

    Example:
        >>> model = tf_mtl.MultiTaskModel(
        ...     encoder=tf_mtl.encoders.MLP([32, 8]),
        ...     heads={"a": keras.layers.Dense(1), "b": keras.layers.Dense(1)},
        ...     losses={"a": "mse", "b": "mse"})
        >>> model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        >>> model.fit(ds, epochs=2)   # ds yields (x, {"a": ya, "b": yb})
    """

    def __init__(self, encoder, heads, losses, loss_weights=None, update=None,
                 probes=None, per_task_gradients="loop", lookahead_execution="auto",
                 task_steps="summed", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(heads, dict) or not heads:
            raise ValueError(
                f"`heads` must be a non-empty dict {{task: layer}}. Received: {heads!r}"
            )
        if not isinstance(losses, dict):
            raise ValueError(
                f"`losses` must be a dict {{task: loss}}. Received: {losses!r}"
            )
        if set(heads) != set(losses):
            raise ValueError(
                "`heads` and `losses` must name the same tasks. Received: heads "
                f"for {sorted(heads)}, losses for {sorted(losses)}"
            )
        tasks = sorted(heads)
        loss_weights = dict(loss_weights or {})
        unknown = sorted(set(loss_weights) - set(tasks))
        if unknown:
            raise ValueError(
                f"`loss_weights` names tasks that do not exist: {unknown}. "
                f"Tasks: {tasks}. Received: loss_weights={loss_weights}"
            )
        if per_task_gradients not in PER_TASK_METHODS:
            raise ValueError(
                f"`per_task_gradients` must be one of {PER_TASK_METHODS}. "
                f"Received: per_task_gradients={per_task_gradients!r}"
            )
        lookahead.check_execution(lookahead_execution)
        update = EqualWeights() if update is None else update
        if not isinstance(update, Update):
            raise TypeError(
                "`update` must be a tf_mtl.updates.Update. "
                f"Received: {update!r} of type {type(update).__name__}"
            )
        probes = list(probes or [])
        for p in probes:
            if not isinstance(p, Probe):
                raise TypeError(
                    f"`probes` must hold tf_mtl.probes.Probe objects. Received: {p!r}"
                )
        per_task_steps.check_task_steps(task_steps, update, probes)

        self.tasks = tasks
        self.task_steps = task_steps
        self.encoder = encoder
        self.heads = {t: heads[t] for t in tasks}
        self.task_losses = {t: as_loss(t, losses[t]) for t in tasks}
        self.loss_weights = {t: float(loss_weights.get(t, 1.0)) for t in tasks}
        self.per_task_gradients = per_task_gradients
        self.lookahead_execution = lookahead_execution
        self.update = update
        self.update.build_tasks(tasks)
        self.probes = probes
        for p in self.probes:
            p.build_tasks(tasks)
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t}_loss") for t in tasks]

    # ------------------------------------------------------------------ forward
    def call(self, x, training=None):
        return self.forward(x, training=training)[1]

    def forward(self, x, training=None):
        """``(features, {task: prediction})``: the encoder's output and the heads'.

        ``x`` is one batch for all tasks, or ``{task: x_t}`` (one sub-batch per
        task). With routing layers in the encoder or per-task inputs, this is one
        batched per-task forward (``tf_mtl.routing.task_paths.forward``).
        """
        return task_paths.forward(self, x, training=training)

    def recorded_forward(self, x, training=None):
        """The forward the train step records: ``(features or None, predictions)``.

        ``features`` is returned only where a task's shared gradient may start
        from its own head's cotangent at the encoder's output (no zero
        cotangents from the other heads formed and summed): the output is one
        floating-point tensor, no head uses an encoder variable itself, and
        ``call`` is not overridden by a subclass (which then runs as written),
        and the forward is not a chunked per-task forward (``tf_mtl.routing.task_paths``:
        its features are not one representation every head reads).
        Elsewhere the gradient is taken from the stacked losses.
        """
        if type(self).call is not MultiTaskModel.call or task_paths.is_batched(self, x):
            return None, self(x, training=training)
        features, y_pred = self.forward(x, training=training)
        single = tf.is_tensor(features) and features.dtype.is_floating
        return (features if single and not self._heads_share_encoder_variables() else None,
                y_pred)

    def _heads_share_encoder_variables(self):
        shared = {id(v) for v in self.shared_variables}
        return any(id(v) in shared for v in self.head_variables)

    def _apply_head(self, task, features, training):
        """Head ``task`` on the encoder's output, or on its entry ``task`` where the
        encoder returns one feature per task (a dict keyed by exactly the tasks, e.g.
        ``tf_mtl.dense.mtan.SegNetMTAN``'s attention paths)."""
        if isinstance(features, dict) and set(features) == set(self.tasks):
            features = features[task]
        head = self.heads[task]
        if head.built:
            return head(features, training=training)
        try:
            return head(features, training=training)
        except Exception as e:  # First call: say which head rejects what.
            raise ValueError(
                f"Head '{task}' cannot take the encoder's output. Received: encoder output "
                f"of shape {tf.nest.map_structure(lambda f: tuple(f.shape), features)}; the head "
                f"raised {type(e).__name__}: {e}"
            ) from e

    @property
    def shared_variables(self):
        """The encoder's trainable variables less every task's own (``task_variables``):
        what the update rule, transference and IT-MTL act on."""
        own = {id(v) for t in self.tasks for v in self._encoder_task_variables(t)}
        return [v for v in self.encoder.trainable_variables if id(v) not in own]

    @property
    def head_variables(self):
        return [v for t in self.tasks for v in self.heads[t].trainable_variables]

    def task_variables(self, task):
        """Task ``task``'s own trainable variables: its head's, then the encoder's for
        that task where the encoder exposes ``task_variables(task)`` (SegNet-MTAN's
        attention modules). They enter only task ``task``'s loss and, like heads, get
        the gradient of the rule's objective and step with their head in lookaheads."""
        return list(self.heads[task].trainable_variables) + self._encoder_task_variables(task)

    @property
    def task_specific_variables(self):
        """Every task's ``task_variables``, in ``tasks`` order."""
        return [v for t in self.tasks for v in self.task_variables(t)]

    def _encoder_task_variables(self, task):
        own = getattr(self.encoder, "task_variables", None)
        return list(own(task)) if callable(own) else []

    def loss_weight_vector(self):
        return tf.constant([self.loss_weights[t] for t in self.tasks], tf.float32)

    def check_labels(self, y):
        """Raises ``ValueError`` unless ``y`` is ``{task: labels}`` for exactly our tasks."""
        if not isinstance(y, dict):
            raise ValueError(
                "Labels must be a dict {task: labels} with tasks "
                f"{self.tasks}. Received: {type(y).__name__}"
            )
        _check_task_keys("y (labels)", y.keys(), self.tasks)

    def compute_task_losses(self, y, y_pred, sample_weight=None, factors="global"):
        """Per-task batch-mean losses stacked as ``[m]`` in ``tasks`` order.

        ``sample_weight`` may be one array for all tasks or ``{task: array}``
        (e.g. MovieLens masks the rating where a movie was not watched);
        ``factors``: see ``task_loss_list``.
        """
        return tf.stack(self.task_loss_list(y, y_pred, sample_weight, factors))

    def task_loss_list(self, y, y_pred, sample_weight=None, factors="global"):
        """``compute_task_losses`` as a list of ``m`` scalars (float32).

        Under several replicas each is this replica's share of the global batch's
        loss: Keras's value times ``factors`` (``"global"``: ``loss_factors``, one
        all-reduce; a ``[m]`` tensor; ``None``: Keras's value as is)."""
        self.check_labels(y)
        if isinstance(sample_weight, dict):
            _check_task_keys("sample_weight", sample_weight.keys(), self.tasks)
        if isinstance(factors, str):
            factors = self.loss_factors(y_pred, sample_weight)
        values = []
        for i, t in enumerate(self.tasks):
            sw = sample_weight.get(t) if isinstance(sample_weight, dict) else sample_weight
            values.append(tf.cast(self.task_losses[t](y[t], y_pred[t], sample_weight=sw),
                                  tf.float32))
            if factors is not None:
                values[-1] = values[-1] * factors[i]
        return values

    def loss_factors(self, y_pred, sample_weight=None):
        """``distribute.global_mean_factors`` of this batch (``None`` on one replica)."""
        if distribute.num_replicas() <= 1:
            return None
        sw = sample_weight if isinstance(sample_weight, dict) else {
            t: sample_weight for t in self.tasks}
        return distribute.global_mean_factors([distribute.loss_divisor(
            self.task_losses[t], y_pred[t], sw[t]) for t in self.tasks])

    # ------------------------------------------------------------------- steps
    def train_step(self, data):
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        self.check_labels(y)
        self._build_for_step(x)
        if self.task_steps == "sequential":  # One optimizer step per task (per_task_steps).
            losses, objective, y_pred = per_task_steps.train_step(self, x, y, sw)
            self._track_losses(losses, objective)
            return self._logs(x, y, y_pred, sw, include_probes=False)
        own_vars = self.task_specific_variables + list(self.update.trainable_variables)
        out = step_schedule.run_step(  # With the probes due on this step (step_schedule).
            self, functools.partial(self._gradients, x, y, sw, own_vars))
        y_pred, losses, objective, grads, rule_logs, done = out
        with tf.control_dependencies([done]):  # No weight changes before lookaheads ran.
            distribute.apply_global(self.optimizer, grads, self.shared_variables + own_vars)
        task_paths.after_step(self)  # e.g. Maximum Roaming's plan, on its schedule
        self._track_losses(losses, objective)
        logs = self._logs(x, y, y_pred, sw, include_probes=True)
        logs.update(distribute.step_logs(rule_logs))
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras's own reduces a nested batch across replicas: MultiWorkerMirroredStrategy fails.
        return keras_internals.maybe_symbolic_build(self, iterator, data_batch)

    def make_train_function(self, force=False):
        return step_schedule.make_train_function(self, force)

    def build_for(self, x):
        """Creates every variable for inputs like ``x`` with a symbolic call:
        no forward pass runs, no state changes."""
        if not self.built:
            self(tf.nest.map_structure(
                lambda t: keras.KerasTensor(tuple(t.shape), tf.as_dtype(t.dtype).name), x))
        # State shaped like the shared variables (DB-MTL's, MoCo's gradient averages) exists
        # before a checkpoint is restored into it or a step is traced.
        self.update.build_for_variables(self.shared_variables)

    def compile(self, optimizer="rmsprop", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        _check_optimizer(self.optimizer)
        self._exclude_rule_variables_from_weight_decay()

    def _exclude_rule_variables_from_weight_decay(self):
        """The update rule's own trainable variables (uncertainty log-variances, IMTL's
        scales) parametrise the loss weighting, not the network: the optimizer's
        ``weight_decay`` would pull them to 0 (UW's weights to their initial ½ or 1).
        Excluded here, before the optimizer is built, for every rule at once.

        ``exclude_from_weight_decay`` replaces the optimizer's earlier exclusions: those
        on variables that exist now are carried over (a ``var_names`` pattern becomes the
        list of the variables it matches now; build the model first, e.g.
        ``model.build_for(x)``, for it to cover the encoder and heads).
        """
        own = list(self.update.trainable_variables)
        optimizer = self.optimizer
        if not own:
            return
        if optimizer.built:   # e.g. compiled again with the same optimizer
            decayed = [v.path for v in own if keras_internals.optimizer_decays(optimizer, v)]
            if optimizer.weight_decay and decayed:
                raise ValueError(
                    "The optimizer was built before `compile`, with weight decay on the update "
                    f"rule's variables {decayed}: pass an optimizer that is not built yet. "
                    f"Received: optimizer={optimizer!r} (built)")
            return
        ids = {id(v) for v in own}
        kept = [v for v in self.variables
                if id(v) not in ids and not keras_internals.optimizer_decays(optimizer, v)]
        optimizer.exclude_from_weight_decay(var_list=kept + own)

    def _build_for_step(self, x):
        """Creates every variable before any branch of the step is traced."""
        _check_optimizer(self.optimizer)
        self.build_for(x)
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def _gradients(self, x, y, sw, own_vars, probes):
        """Forward, losses and global gradients (the rule's shared gradients, the
        heads' and the rule's own); runs ``probes`` on this step's state, before
        the optimizer applies."""
        step = record_step(self, x, y, sw, objective_fn=self.update.objective,
                           per_task=self.per_task_gradients)
        for probe in probes:  # First: the rule may reuse their per-task gradients.
            probe.measure(self, step)
        shared_grads, rule_logs = self.update.shared_gradients(step)
        own_grads = distribute.replica_sum(step.gradient(step.objective, own_vars)) if own_vars else []
        # Lookaheads read weights the optimizer then updates in place; automatic control
        # dependencies order the reads before the writes but not the ops consuming them,
        # and a consumer ran after the update in about 1 of 3 runs (IT-MTL, Adam). Reads of
        # the rule's and probes' variables come after their (lookahead-fed) updates:
        # the train step applies only once this token exists.
        reads = [tf.reduce_sum(tf.cast(v, tf.float32)) for layer in [self.update, *probes]
                 for v in list(layer.variables) + [w for m in layer.metrics for w in m.variables]]
        done = tf.add_n(reads) if reads else tf.zeros([])
        return (step.y_pred, step.losses, step.objective, list(shared_grads) + list(own_grads),
                dict(rule_logs), done)

    def test_step(self, data):
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        losses = self.compute_task_losses(y, y_pred, sw)
        objective = tf.reduce_sum(self.loss_weight_vector() * losses)
        if self.losses:  # The same terms as the training loss, so loss and val_loss compare.
            objective += distribute.replica_share(
                tf.add_n([tf.cast(v, tf.float32) for v in self.losses]))
        self._track_losses(losses, objective)
        return self._logs(x, y, y_pred, sw, include_probes=False)

    def _track_losses(self, losses, objective):
        losses = distribute.unscale(losses)
        for i, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(losses[i])
        keras_internals.loss_tracker(self).update_state(distribute.unscale(objective))

    def _logs(self, x, y, y_pred, sw, include_probes):
        logs = self.compute_metrics(x, y, y_pred, sw)
        if not include_probes:
            for key in [k for p in self.probes for k in p.log_names()] + self.update.log_names():
                logs.pop(key, None)
        return distribute.step_logs(logs)

    # ----------------------------------------------------------- serialization
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "encoder": ser(self.encoder),
            "heads": {t: ser(self.heads[t]) for t in self.tasks},
            "losses": {t: ser(self.task_losses[t]) for t in self.tasks},
            "loss_weights": dict(self.loss_weights),
            "update": ser(self.update),
            "probes": [ser(p) for p in self.probes],
            "per_task_gradients": self.per_task_gradients,
            "lookahead_execution": self.lookahead_execution,
            "task_steps": self.task_steps,
        }

    @classmethod
    def from_config(cls, config):
        de = keras.saving.deserialize_keras_object
        config = dict(config)
        config["encoder"] = de(config["encoder"])
        config["heads"] = {t: de(h) for t, h in config["heads"].items()}
        config["losses"] = {t: de(l) for t, l in config["losses"].items()}
        config["update"] = de(config["update"])
        config["probes"] = [de(p) for p in config["probes"]]
        return cls(**config)
