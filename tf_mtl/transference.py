"""Transference (inter-task affinity, TAG): how one task's step changes another's loss.

``Z[S][j] = 1 - L_j(theta_s + Delta_S, theta_j) / L_j(theta_s, theta_j)`` where
``Delta_S`` is the compiled optimizer's next update for the gradient
``g_S = sum_{i in S} w_i grad_{theta_s} L_i`` (``001`` §3.1, with the
momentum/Adam lookahead of App. D.4–D.5). ``w`` are the model's loss weights
and ``L_i`` its losses with their sample weights, so the all-tasks source is
exactly the shared update the model's own (plain MTL) step takes. The
regularization terms of the model (``model.losses``) enter every source, as
weight decay does: they are part of every step the optimizer takes. Per-task
gradients are computed once per step and every source gradient is a weighted
sum of them (``source_weights @ G``).

Methods (``method=``):
    ``"exact"``        the ratio above, one stateless forward per source.
    ``"first_order"``  its first-order Taylor form ``-<grad L_j, Delta_S> / L_j``
                       (``lr <grad L_j, g_S> / L_j`` for plain SGD, ``001`` §3.2).
    ``"cosine"``       ``cos(g_S, g_j)`` on the shared parameters (TAG's CS
                       baseline): gradient directions only, no optimizer and no
                       regularization term.

Options: ``scale_by_lr`` divides by the learning rate of that update (the TAG
notebook does this); ``update_heads`` also steps each head on its own weighted
loss, as Algorithm 1 of ``001`` writes it (default: heads held at ``theta_j``,
as the original code does); a task's other own variables
(``MultiTaskModel.task_variables``, e.g. SegNet-MTAN's attention modules) move
or stay with its head, and never with the shared weights. Losses before and
after a step are evaluated from the same non-trainable state (BatchNorm uses
batch statistics; dropout draws the same masks). Entries whose loss before the
step is zero or non-finite, or whose value is non-finite, are skipped and
counted, never NaN.
"""

import itertools
import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from tf_mtl import distribute, lookahead
from tf_mtl.gradients import combine, record_step
from tf_mtl.probes import Probe

METHODS = ("exact", "first_order", "cosine")


def source_names(tasks, order=1):
    """Sources in a fixed order: ``order=1`` every task then all tasks; ``-1`` all subsets."""
    return [name for name, _ in _sources(tasks, order)]


def _sources(tasks, order):
    tasks = list(tasks)
    if order == 1:
        subsets = [(t,) for t in tasks]
        if len(tasks) > 1:
            subsets.append(tuple(tasks))
    elif order == -1:
        subsets = [c for r in range(1, len(tasks) + 1)
                   for c in itertools.combinations(tasks, r)]
    else:
        raise ValueError(f"`order` must be 1 or -1. Received: order={order!r}")
    return [("|".join(s), s) for s in subsets]


def sources_matrix(tasks, order=1):
    """``(names, float32 [n_sources, m])``: row ``s`` marks the tasks summed in ``s``
    (``source_weights`` turns the marks into loss-weighted rows)."""
    pairs = _sources(tasks, order)
    index = {t: i for i, t in enumerate(tasks)}
    matrix = np.zeros((len(pairs), len(tasks)), np.float32)
    for row, (_, subset) in enumerate(pairs):
        matrix[row, [index[t] for t in subset]] = 1.0
    return [name for name, _ in pairs], matrix


def _inner(a, b):
    """``sum_v <a_v[s], b_v[j]>`` over variables: ``[n, ...] x [k, ...] -> [n, k]``."""
    return tf.add_n([tf.matmul(tf.reshape(x, [x.shape[0], -1]),
                               tf.reshape(y, [y.shape[0], -1]), transpose_b=True)
                     for x, y in zip(a, b)])


def _check(method, order, chunk_size=None, scale_by_lr=False):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    if method == "cosine" and scale_by_lr:
        raise ValueError("A cosine similarity has no learning rate to divide by. Received: "
                         "method='cosine' with scale_by_lr=True")
    if order not in (1, -1):
        raise ValueError(f"`order` must be 1 or -1. Received: order={order!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(
            chunk_size, bool) or chunk_size < 1):
        raise ValueError(f"`chunk_size` must be None or an int >= 1. Received: "
                         f"chunk_size={chunk_size!r}")


def source_weights(model, sources):
    """Rows over the per-task gradients for 0/1 ``sources [n, m]``: ``g_S = sum w_i g_i``."""
    return tf.constant(sources, tf.float32) * model.loss_weight_vector()[None, :]


def compute(model, step, rows, *, method="exact", scale_by_lr=False, update_heads=False,
            chunk_size=None, directions=None):
    """Transference of ``n`` candidate steps on every task (graph-friendly core).

    Args:
        model: a built, compiled ``MultiTaskModel``.
        step: the step's ``tf_mtl.gradients.StepGradients``.
        rows: float ``[n, m]``: candidate ``s`` steps along ``sum_i rows[s, i] g_i``
            (plus the regularization gradient). ``source_weights`` makes them
            from 0/1 ``sources_matrix`` rows and the loss weights.
        chunk_size: lookahead candidates per chunk (``lookahead.lookahead_losses``).
        directions: optional ``k`` further candidates that are not weight rows:
            one global ``[k, *var.shape]`` gradient per shared variable (plus
            the regularization gradient, as the rows), scored after the rows
            in the same chunks (``lookahead.candidate_basis``).

    Returns:
        ``(Z [n + k, m], valid [n + k, m] bool)``; invalid entries are 0 in ``Z``.
    """
    rows = tf.convert_to_tensor(rows, tf.float32)
    optimizer = model.optimizer
    per_task, losses = step.per_task(), step.global_losses()
    if method == "cosine":
        # Directions of the weighted task gradients only: no optimizer, no regularizer.
        basis, rows = lookahead.candidate_basis(step, rows, directions)
        gram = _inner(per_task, per_task)                                # [m, m]
        dots = tf.matmul(rows, _inner(basis, per_task))                  # [n, m]
        source_norm = tf.sqrt(tf.reduce_sum(tf.matmul(rows, _inner(basis, basis)) * rows, 1))
        task_norm = tf.sqrt(tf.linalg.diag_part(gram))
        z = dots / (source_norm[:, None] * task_norm[None, :])
        valid = tf.math.is_finite(z)
    else:
        task_weights = None
        if update_heads:  # Each head, with its task's encoder variables (MTAN's attention).
            own = {t: model.task_variables(t) for t in model.tasks}
            task_weights = {}
            for t, grads in step.own_gradients(own).items():
                new = lookahead.next_weights(optimizer, [g[None] for g in grads], own[t])
                task_weights[t] = [w[0] for w in new]
        if method == "exact":
            after = distribute.replica_sum(lookahead.lookahead_losses(
                model, step, rows, task_weights, chunk_size,
                lookahead.resolve_execution(model.lookahead_execution), directions))
            z = 1.0 - after / losses[None, :]
        else:
            z = -_first_order_change(model, step, rows, task_weights, chunk_size,
                                     directions) / losses[None, :]
        valid = tf.logical_and(tf.math.is_finite(z), (tf.math.is_finite(losses)
                                                       & (losses > 0))[None, :])
    if scale_by_lr:
        z = z / lookahead.current_learning_rate(optimizer)
    valid = tf.logical_and(valid, tf.math.is_finite(z))
    return tf.where(valid, z, tf.zeros_like(z)), valid


def _first_order_change(model, step, rows, task_weights, chunk_size, directions=None):
    """``<grad L_j, Delta_s>`` ``[n, m]``: the first-order change of each loss."""
    per_task, extra = step.per_task(), step.regularization_gradient()
    basis, rows = lookahead.candidate_basis(step, rows, directions)
    shared = model.shared_variables
    head_change = 0.0
    if task_weights is not None:  # Task t's own variables only move L_t: <grad L_t, Delta>.
        own = {t: model.task_variables(t) for t in model.tasks}
        grads = step.own_task_gradients(own)
        head_change = tf.stack([
            tf.add_n([tf.reduce_sum(g * (w - tf.convert_to_tensor(v)))
                      for g, w, v in zip(grads[t], task_weights[t], own[t])])
            for t in model.tasks])[None, :]

    def chunk(chunk_rows):
        new = lookahead.next_weights(model.optimizer, combine(basis, chunk_rows, extra),
                                     shared)
        deltas = [w - tf.convert_to_tensor(v)[None] for w, v in zip(new, shared)]
        return tf.transpose(_inner(per_task, deltas))                   # [c, m]

    size = lookahead.chunk_size_for(shared, rows.shape[0], chunk_size)
    return lookahead.map_chunks(chunk, rows, size) + head_change


class AffinityMean(keras.metrics.Metric):
    """Running mean of per-step transference matrices, per (source, target).

    ``result()`` is the Keras-log view: ``<prefix>/steps`` (measured steps),
    ``<prefix>/skipped`` (entries skipped for a zero or non-finite loss),
    ``<prefix>/self`` (mean over tasks of ``Z[t][t]``) and ``<prefix>/cross``
    (mean over ordered pairs ``s != t`` of ``Z[s][t]``), and with
    ``log_pairs=True`` every ``<prefix>/<source>>target``. A value nothing was
    measured for (yet, in this epoch) is NaN in the logs — Keras's progress bar
    averages log values, so ``None`` cannot go there — and ``None`` in
    ``scores()`` and the files ``AffinityLogger`` writes; never 0.
    ``mean()`` and ``scores()`` give the epoch's means to callbacks. Keras
    resets it every epoch.

    Every replica adds the same global values, so the variables read the
    first replica's copy (a sum over replicas would read ``n`` times too high).
    """

    def __init__(self, source_names, tasks, prefix, log_pairs=False, **kwargs):
        super().__init__(**kwargs)
        self.source_names, self.tasks = list(source_names), list(tasks)
        self.prefix, self.log_pairs = prefix, log_pairs
        shape = (len(self.source_names), len(self.tasks))
        self.total, self.count = self._variable("total", shape), self._variable("count", shape)
        self.steps, self.skipped = self._variable("steps", ()), self._variable("skipped", ())
        index = {s: i for i, s in enumerate(self.source_names)}
        singles = [(index[t], j) for j, t in enumerate(self.tasks) if t in index]
        self._self = singles
        self._cross = [(s, j) for s, _ in singles for j in range(len(self.tasks))
                       if self.source_names[s] != self.tasks[j]]

    def _variable(self, name, shape):
        return self.add_variable(shape=shape, initializer="zeros", name=name,
                                 aggregation="only_first_replica")

    def log_names(self):
        """The keys ``result()`` puts in the logs."""
        names = [f"{self.prefix}/{k}" for k in ("steps", "skipped", "self", "cross")]
        if self.log_pairs:
            names += [f"{self.prefix}/{s}>{t}" for s in self.source_names for t in self.tasks]
        return names

    def update_state(self, z, valid):
        valid = tf.cast(valid, tf.float32)
        self.total.assign_add(z * valid)
        self.count.assign_add(valid)
        self.steps.assign_add(1.0)
        self.skipped.assign_add(tf.reduce_sum(1.0 - valid))

    def mean(self):
        """Epoch means ``[n, m]``; NaN where nothing was measured."""
        count = tf.convert_to_tensor(self.count)
        return tf.where(count > 0, tf.convert_to_tensor(self.total) / tf.maximum(count, 1.0),
                        tf.fill(tf.shape(count), math.nan))

    @staticmethod
    def _summary(mean, entries):
        """Mean of the measured ``mean[entries]``; NaN if none was measured."""
        if not entries:
            return tf.constant(math.nan)
        values = tf.gather_nd(mean, entries)
        measured = tf.math.is_finite(values)
        return (tf.reduce_sum(tf.where(measured, values, 0.0))
                / tf.reduce_sum(tf.cast(measured, tf.float32)))

    def result(self):
        mean = self.mean()
        out = {f"{self.prefix}/steps": tf.convert_to_tensor(self.steps),
               f"{self.prefix}/skipped": tf.convert_to_tensor(self.skipped),
               f"{self.prefix}/self": self._summary(mean, self._self),
               f"{self.prefix}/cross": self._summary(mean, self._cross)}
        if self.log_pairs:
            for s, src in enumerate(self.source_names):
                for j, tgt in enumerate(self.tasks):
                    out[f"{self.prefix}/{src}>{tgt}"] = mean[s, j]
        return out

    def scores(self):
        """``{source: {target: epoch mean}}`` (None where nothing was measured)."""
        mean = self.mean().numpy()
        return {src: {tgt: (None if math.isnan(mean[s, j]) else float(mean[s, j]))
                      for j, tgt in enumerate(self.tasks)}
                for s, src in enumerate(self.source_names)}


@keras.saving.register_keras_serializable(package="tf_mtl")
class Transference(Probe):
    """Measures transference inside the compiled train step every ``every`` steps.

    Args:
        order: ``1`` (each task + all tasks) or ``-1`` (every non-empty subset).
        every: measure when ``optimizer.iterations % every == 0``.
        method: ``"exact"``, ``"first_order"`` or ``"cosine"``.
        scale_by_lr: divide by the learning rate (TAG notebook convention).
        update_heads: also step the heads (each task's own variables) in the
            lookahead (``001`` Alg. 1).
        log_pairs: also put every ``source>target`` epoch mean in the Keras
            logs (progress bar, History, CSV). By default the logs carry the
            summary (``steps``, ``skipped``, ``self``, ``cross``); every pair
            is always in ``scores()`` and ``AffinityLogger``'s files.
        chunk_size: lookahead candidates evaluated at once (default: as many
            as fit in ``lookahead.CHUNK_BYTES`` of weights); bounds memory for
            ``order=-1`` on large encoders, same values.

    Example:
        >>> probe = tf_mtl.transference.Transference(order=1, every=10)
        >>> model = tf_mtl.MultiTaskModel(encoder, heads, losses, probes=[probe])
        >>> model.fit(ds, epochs=3, callbacks=[tf_mtl.callbacks.AffinityLogger(workdir)])
    """

    def __init__(self, order=1, every=10, method="exact", scale_by_lr=False,
                 update_heads=False, log_pairs=False, chunk_size=None, name="transference",
                 **kwargs):
        super().__init__(every=every, name=name, **kwargs)
        _check(method, order, chunk_size, scale_by_lr)
        self.order, self.method, self.chunk_size = order, method, chunk_size
        self.scale_by_lr, self.update_heads, self.log_pairs = scale_by_lr, update_heads, log_pairs

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self.source_names, self.sources = sources_matrix(self.tasks, self.order)
        self.accumulator = AffinityMean(self.source_names, self.tasks, self.name,
                                        self.log_pairs, name=f"{self.name}_mean")

    def measure(self, model, step):
        z, valid = compute(model, step, source_weights(model, self.sources),
                           method=self.method, scale_by_lr=self.scale_by_lr,
                           update_heads=self.update_heads, chunk_size=self.chunk_size)
        self.accumulator.update_state(z, valid)

    def scores(self):
        return self.accumulator.scores()

    def get_config(self):
        return {**super().get_config(), "order": self.order, "method": self.method,
                "scale_by_lr": self.scale_by_lr, "update_heads": self.update_heads,
                "log_pairs": self.log_pairs, "chunk_size": self.chunk_size}


# model -> {key: (weak reference to the optimizer it was traced for, names, fn)}
_MEASURE_FNS = weakref.WeakKeyDictionary()


def measure(model, x, y, *, sample_weight=None, order=1, method="exact",
            scale_by_lr=False, update_heads=False, chunk_size=None):
    """Transference on one batch at the model's current weights and optimizer state.

    The model must be compiled (the lookahead simulates its optimizer; an
    optimizer that has not stepped yet is simulated from zero state). Each call
    reads the optimizer's state at that moment; a re-compiled model is measured
    with its new optimizer. No variable changes: not the weights, not the
    BatchNorm statistics, not the optimizer, not the seeds.

    Returns:
        ``{source: {target: float}}`` — the ``scores[source][target]``
        orientation ``tf_mtl.grouping.select_groups`` reads. Skipped entries
        (zero or non-finite losses) are ``None``.

    Example:
        >>> Z = tf_mtl.transference.measure(model, x, {"a": ya, "b": yb})
        >>> Z["a"]["b"]    # how a's step changes b's loss
    """
    _check(method, order, chunk_size, scale_by_lr)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError("`measure` simulates the compiled optimizer: call "
                         "model.compile(optimizer=...) first. Received: an uncompiled model")
    lookahead.check_optimizer(optimizer)
    if tf.distribute.has_strategy() and distribute.num_replicas() > 1:
        raise ValueError(
            "`measure` runs on one device on the whole batch: call it outside "
            "`strategy.scope()` (a model built under MirroredStrategy is measured correctly "
            "there). Received: a call inside the scope of a strategy with "
            f"{distribute.num_replicas()} replicas")
    model.check_labels(y)
    model.build_for(x)
    names, fn = _measure_fn(model, optimizer, (order, method, scale_by_lr, update_heads,
                                               chunk_size))
    z, valid = fn(x, y, sample_weight)
    z, valid = z.numpy(), valid.numpy()
    return {src: {t: (float(z[s, j]) if valid[s, j] else None)
                  for j, t in enumerate(model.tasks)} for s, src in enumerate(names)}


def _measure_fn(model, optimizer, options):
    """The compiled measurement for ``model`` with ``optimizer`` as it is now.

    A trace bakes in Python-level facts: the optimizer object and its settings
    (clipping, decay, the rule; while it is not built, zero slots), which
    variables are trainable, the loss weights. It is reused only while all of
    them are unchanged. The function refers to the model weakly, so the cache
    does not keep models alive.
    """
    cache = _MEASURE_FNS.setdefault(model, {})
    key = (options, id(optimizer), optimizer.built, repr(optimizer.get_config()),
           tuple(id(v) for v in model.trainable_variables),
           tuple(model.loss_weights[t] for t in model.tasks), model.per_task_gradients,
           model.lookahead_execution)
    hit = cache.get(key)
    if hit is not None and hit[0]() is optimizer:
        return hit[1], hit[2]
    order, method, scale_by_lr, update_heads, chunk_size = options
    names, sources = sources_matrix(model.tasks, order)
    model_ref = weakref.ref(model)

    @tf.function(autograph=False)
    def fn(x, y, sample_weight):
        model = model_ref()
        step = record_step(model, x, y, sample_weight, stateless=True,
                           per_task=model.per_task_gradients)
        return compute(model, step, source_weights(model, sources), method=method,
                       scale_by_lr=scale_by_lr, update_heads=update_heads,
                       chunk_size=chunk_size)

    for stale in [k for k in cache if k[0] == options]:  # Traces of older settings.
        del cache[stale]
    cache[key] = (weakref.ref(optimizer), names, fn)
    return names, fn
