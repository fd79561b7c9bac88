"""Transference (inter-task affinity, TAG): how one task's step changes another's loss.

``Z[S][j] = 1 - L_j(theta_s + Delta_S, theta_j) / L_j(theta_s, theta_j)`` where
``Delta_S`` is the compiled optimizer's next update for the gradient
``g_S = sum_{i in S} grad_{theta_s} L_i`` (``001`` §3.1, with the momentum/Adam
lookahead of App. D.4–D.5). Per-task gradients are computed once per step and
every source gradient is a sum of them (``sources_matrix @ G``).

Methods:
    ``"exact"``        the ratio above, one stateless forward per source.
    ``"first_order"``  its first-order Taylor form ``-<grad L_j, Delta_S> / L_j``
                       (``lr <grad L_j, g_S> / L_j`` for plain SGD, ``001`` §3.2).
    ``"cosine"``       ``cos(g_S, g_j)`` on the shared parameters (TAG's CS baseline).

Options: ``scale_by_lr`` divides by the learning rate of that update (the TAG
notebook does this); ``update_heads`` also steps each head on its own loss, as
Algorithm 1 of ``001`` writes it (default: heads held at ``theta_j``, as the
original code does). Entries whose loss before the step is zero or
non-finite, or whose value is non-finite, are skipped and counted, never NaN.
"""

import itertools
import weakref

import keras
import numpy as np
import tensorflow as tf

from tf_mtl import distribute, lookahead
from tf_mtl.probes import Probe
from tf_mtl.updates.base import StepGradients

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
    """``(names, float32 [n_sources, m])``: row ``s`` marks the tasks summed in ``s``."""
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


def _check(method, order):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
    if order not in (1, -1):
        raise ValueError(f"`order` must be 1 or -1. Received: order={order!r}")


def compute(model, per_task_grads, losses, x, y, sample_weight, sources, *,
            method="exact", scale_by_lr=False, update_heads=False, head_grads=None):
    """Transference matrix from per-task gradients (graph-friendly core).

    Args:
        model: a built, compiled ``MultiTaskModel``.
        per_task_grads: global per-task shared gradients, ``[m, *shape]`` per variable.
        losses: global per-task losses ``[m]`` at the current weights.
        sources: float ``[n, m]`` 0/1 matrix (``sources_matrix``).
        head_grads: ``{task: [grads]}`` for ``update_heads=True``.

    Returns:
        ``(Z [n, m], valid [n, m] bool)``; invalid entries are 0 in ``Z``.
    """
    sources = tf.constant(sources, tf.float32)
    source_grads = [tf.tensordot(sources, g, axes=1) for g in per_task_grads]
    optimizer = model.optimizer
    shared = model.shared_variables
    if method == "cosine":
        gram = _inner(per_task_grads, per_task_grads)                   # [m, m]
        dots = tf.matmul(sources, gram)                                  # [n, m]
        source_norm = tf.sqrt(tf.reduce_sum(dots * sources, 1))         # |g_S|
        task_norm = tf.sqrt(tf.linalg.diag_part(gram))
        z = dots / (source_norm[:, None] * task_norm[None, :])
        valid = tf.math.is_finite(z)
    else:
        head_weights = None
        if update_heads:
            head_weights = {}
            for t in model.tasks:
                vars_t = model.heads[t].trainable_variables
                new = lookahead.next_weights(optimizer, [g[None] for g in head_grads[t]], vars_t)
                head_weights[t] = [w[0] for w in new]
        new_shared = lookahead.next_weights(optimizer, source_grads, shared)
        if method == "exact":
            after = distribute.replica_sum(lookahead.evaluate_losses(
                model, new_shared, x, y, sample_weight, head_weights))
            z = 1.0 - after / losses[None, :]
        else:
            deltas = [w - tf.convert_to_tensor(v)[None] for w, v in zip(new_shared, shared)]
            # First-order change of L_j under Delta_s: <grad L_j, Delta_s>.
            change = tf.transpose(_inner(per_task_grads, deltas))       # [n, m]
            if update_heads:
                head_change = tf.stack([
                    tf.add_n([tf.reduce_sum(g * (w - tf.convert_to_tensor(v)))
                               for g, w, v in zip(head_grads[t], head_weights[t],
                                                  model.heads[t].trainable_variables)])
                    for t in model.tasks])
                change += head_change[None, :]
            z = -change / losses[None, :]
        valid = tf.logical_and(tf.math.is_finite(z), (tf.math.is_finite(losses)
                                                       & (losses > 0))[None, :])
    if scale_by_lr:
        z = z / lookahead.current_learning_rate(optimizer)
    valid = tf.logical_and(valid, tf.math.is_finite(z))
    return tf.where(valid, z, tf.zeros_like(z)), valid


def _head_grads(model, step):
    weights = model.loss_weight_vector()
    return {t: step.task_gradient(i, model.heads[t].trainable_variables, scale=weights[i])
            for i, t in enumerate(model.tasks)}


class AffinityMean(keras.metrics.Metric):
    """Running mean of per-step transference matrices, per (source, target).

    ``result()`` is a dict for the Keras logs; ``matrix()`` and ``scores()``
    give the epoch's means to callbacks. Keras resets it every epoch.
    """

    def __init__(self, source_names, tasks, prefix, log_pairs=True, **kwargs):
        super().__init__(**kwargs)
        self.source_names, self.tasks = list(source_names), list(tasks)
        self.prefix, self.log_pairs = prefix, log_pairs
        shape = (len(self.source_names), len(self.tasks))
        self.total = self.add_variable(shape=shape, initializer="zeros", name="total")
        self.count = self.add_variable(shape=shape, initializer="zeros", name="count")
        self.steps = self.add_variable(shape=(), initializer="zeros", name="steps")
        self.skipped = self.add_variable(shape=(), initializer="zeros", name="skipped")

    def update_state(self, z, valid):
        valid = tf.cast(valid, tf.float32)
        self.total.assign_add(z * valid)
        self.count.assign_add(valid)
        self.steps.assign_add(1.0)
        self.skipped.assign_add(tf.reduce_sum(1.0 - valid))

    def mean(self):
        return tf.math.divide_no_nan(tf.convert_to_tensor(self.total),
                                     tf.convert_to_tensor(self.count))

    def result(self):
        out = {f"{self.prefix}/steps": tf.convert_to_tensor(self.steps),
               f"{self.prefix}/skipped": tf.convert_to_tensor(self.skipped)}
        if self.log_pairs:
            mean = self.mean()
            for s, src in enumerate(self.source_names):
                for j, tgt in enumerate(self.tasks):
                    out[f"{self.prefix}/{src}>{tgt}"] = mean[s, j]
        return out

    def scores(self):
        """``{source: {target: epoch mean}}`` (None where nothing was measured)."""
        mean, count = self.mean().numpy(), np.asarray(self.count)
        return {src: {tgt: (float(mean[s, j]) if count[s, j] > 0 else None)
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
        update_heads: also step the heads in the lookahead (``001`` Alg. 1).
        log_pairs: put every ``source>target`` epoch mean in the Keras logs.

    Example:
        >>> probe = tf_mtl.transference.Transference(order=1, every=10)
        >>> model = tf_mtl.MultiTaskModel(encoder, heads, losses, probes=[probe])
        >>> model.fit(ds, epochs=3, callbacks=[tf_mtl.callbacks.AffinityLogger(workdir)])
    """

    def __init__(self, order=1, every=10, method="exact", scale_by_lr=False,
                 update_heads=False, log_pairs=True, name="transference", **kwargs):
        super().__init__(every=every, name=name, **kwargs)
        _check(method, order)
        self.order, self.method = order, method
        self.scale_by_lr, self.update_heads, self.log_pairs = scale_by_lr, update_heads, log_pairs

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self.source_names, self.sources = sources_matrix(self.tasks, self.order)
        self.accumulator = AffinityMean(self.source_names, self.tasks, self.name,
                                        self.log_pairs, name=f"{self.name}_mean")

    def measure(self, model, step, x, y, sample_weight):
        z, valid = compute(
            model, step.per_task(), step.global_losses(), x, y, sample_weight, self.sources,
            method=self.method, scale_by_lr=self.scale_by_lr, update_heads=self.update_heads,
            head_grads=_head_grads(model, step) if self.update_heads else None)
        self.accumulator.update_state(z, valid)

    def scores(self):
        return self.accumulator.scores()

    def get_config(self):
        return {**super().get_config(), "order": self.order, "method": self.method,
                "scale_by_lr": self.scale_by_lr, "update_heads": self.update_heads,
                "log_pairs": self.log_pairs}


_MEASURE_FNS = weakref.WeakKeyDictionary()


def measure(model, x, y, *, sample_weight=None, order=1, method="exact",
            scale_by_lr=False, update_heads=False):
    """Transference on one batch at the model's current weights and optimizer state.

    The model must be compiled (the lookahead simulates its optimizer; an
    optimizer that has not stepped yet is simulated from zero state). No
    variable changes.

    Returns:
        ``{source: {target: float}}`` — the ``scores[source][target]``
        orientation ``tf_mtl.grouping.select_groups`` reads. Skipped entries
        (zero or non-finite losses) are ``None``.

    Example:
        >>> Z = tf_mtl.transference.measure(model, x, {"a": ya, "b": yb})
        >>> Z["a"]["b"]    # how a's step changes b's loss
    """
    _check(method, order)
    if getattr(model, "optimizer", None) is None:
        raise ValueError("`measure` simulates the compiled optimizer: call "
                         "model.compile(optimizer=...) first. Received: an uncompiled model")
    lookahead.check_optimizer(model.optimizer)
    model.check_labels(y)
    if not model.built:
        model(x)
    key = (order, method, scale_by_lr, update_heads)
    cache = _MEASURE_FNS.setdefault(model, {})
    if key not in cache:
        names, sources = sources_matrix(model.tasks, order)

        @tf.function(autograph=False)
        def fn(x, y, sample_weight):
            with tf.GradientTape(persistent=True) as tape:
                y_pred = model(x, training=True)
                losses = model.compute_task_losses(y, y_pred, sample_weight)
                objective = tf.reduce_sum(model.loss_weight_vector() * losses)
            step = StepGradients(tape, losses, objective, model.shared_variables,
                                 per_task=model.per_task_gradients)
            return compute(model, step.per_task(), step.global_losses(), x, y,
                           sample_weight, sources, method=method, scale_by_lr=scale_by_lr,
                           update_heads=update_heads,
                           head_grads=_head_grads(model, step) if update_heads else None)

        cache[key] = (names, fn)
    names, fn = cache[key]
    z, valid = fn(x, y, sample_weight)
    z, valid = z.numpy(), valid.numpy()
    return {src: {t: (float(z[s, j]) if valid[s, j] else None)
                  for j, t in enumerate(model.tasks)} for s, src in enumerate(names)}
