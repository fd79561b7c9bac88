"""Where the compiled optimizer's *next* step would take the weights — without taking it.

Both transference (``tf_mtl.transference``) and IT-MTL use this engine: given
candidate gradients for some variables, ``next_weights`` returns the weights
that ``optimizer.apply`` would produce from the optimizer's current state (same
learning rate or schedule value at the current ``iterations``, same momentum /
Adam moments, same bias correction, same weight decay and gradient clipping),
and ``evaluate_losses`` evaluates every task's loss at substituted weights with
``stateless_call(training=True)`` — BatchNorm uses batch statistics, as the
original transference code does — assigning no variable and touching no
metric tracker.

Candidates are batched: each gradient is ``[n, *var.shape]`` for ``n``
candidates, and so is each returned weight. The simulation is elementwise, so
``n`` candidates cost one pass of broadcast arithmetic.

Supported optimizers: ``keras.optimizers.SGD`` (plain, momentum, Nesterov),
``Adam`` (incl. ``amsgrad``) and ``AdamW``; any ``LearningRateSchedule``;
``weight_decay`` (with ``exclude_from_weight_decay``); ``clipnorm`` and
``clipvalue``. Refused with a ``ValueError``: other optimizers,
``global_clipnorm`` (its norm spans the heads' gradients, which a shared-weight
candidate does not define), ``use_ema`` (its periodic overwrite of the weights
is not a gradient step), loss scaling and gradient accumulation.

Many candidates at once (every subset of 8 tasks is 255) would materialise
``[n, *shape]`` per variable: ``lookahead_losses`` walks them in chunks whose
candidate weights stay under ``CHUNK_BYTES`` unless told otherwise.
"""

import math

import keras
import tensorflow as tf

from tf_mtl import distribute, keras_internals
from tf_mtl.gradients import combine

SUPPORTED_OPTIMIZERS = ("SGD", "Adam", "AdamW")


def check_optimizer(optimizer):
    """Raises ``ValueError`` unless ``next_weights`` can simulate ``optimizer``."""
    kind = type(optimizer).__name__
    if type(optimizer) not in (keras.optimizers.SGD, keras.optimizers.Adam,
                               keras.optimizers.AdamW):
        raise ValueError(
            f"The lookahead can simulate only {', '.join(SUPPORTED_OPTIMIZERS)} "
            f"(keras.optimizers). Received: optimizer of type {kind}"
        )
    refused = {
        "global_clipnorm": optimizer.global_clipnorm,
        "loss_scale_factor": optimizer.loss_scale_factor,
        "gradient_accumulation_steps": optimizer.gradient_accumulation_steps,
        "use_ema": optimizer.use_ema,
    }
    for name, value in refused.items():
        if value:
            raise ValueError(
                f"The lookahead cannot simulate {kind} with `{name}` set "
                f"(supported: clipnorm, clipvalue, weight_decay, schedules). "
                f"Received: {name}={value!r}"
            )
    return kind


def current_learning_rate(optimizer):
    """The learning rate the next ``apply`` uses (a schedule at ``iterations``)."""
    return tf.cast(optimizer.learning_rate, tf.float32)


def _clip(optimizer, g):
    """The optimizer's ``clipnorm`` / ``clipvalue``, per candidate (axis 0)."""
    if optimizer.clipnorm and optimizer.clipnorm > 0:
        axes = list(range(1, len(g.shape)))
        l2sum = tf.reduce_sum(tf.square(g), axis=axes, keepdims=True)
        norm = tf.sqrt(tf.where(l2sum > 0, l2sum, tf.ones_like(l2sum)))
        norm = tf.where(l2sum > 0, norm, l2sum)
        return g * optimizer.clipnorm / tf.maximum(norm, optimizer.clipnorm)
    if optimizer.clipvalue and optimizer.clipvalue > 0:
        return tf.clip_by_value(g, -optimizer.clipvalue, optimizer.clipvalue)
    return g


def _slots(optimizer, variable, names):
    """The optimizer's slot values for ``variable``; zeros before it is built."""
    if not optimizer.built:
        return [tf.zeros(variable.shape, variable.dtype) for _ in names]
    index = keras_internals.optimizer_slot_index(optimizer, variable)
    return [tf.convert_to_tensor(getattr(optimizer, n)[index]) for n in names]


def _sgd(optimizer, w, g, lr, variable):
    if optimizer.momentum == 0:
        return w - g * lr
    (m,) = _slots(optimizer, variable, ["momentums"])
    mu = tf.cast(optimizer.momentum, w.dtype)
    m = m * mu - g * lr
    return w + (m * mu - g * lr if optimizer.nesterov else m)


def _adam(optimizer, w, g, lr, variable):
    names = ["_momentums", "_velocities"] + (["_velocity_hats"] if optimizer.amsgrad else [])
    slots = _slots(optimizer, variable, names)
    m, v = slots[0], slots[1]
    t = tf.cast(optimizer.iterations + 1, w.dtype)
    b1, b2 = tf.cast(optimizer.beta_1, w.dtype), tf.cast(optimizer.beta_2, w.dtype)
    alpha = lr * tf.sqrt(1 - tf.pow(b2, t)) / (1 - tf.pow(b1, t))
    m = m + (g - m) * (1 - optimizer.beta_1)
    v = v + (tf.square(g) - v) * (1 - optimizer.beta_2)
    if optimizer.amsgrad:
        v = tf.maximum(slots[2], v)
    return w - (m * alpha) / (tf.sqrt(v) + optimizer.epsilon)


def next_weights(optimizer, gradients, variables):
    """Weights after the optimizer's next step, for each candidate gradient.

    Args:
        optimizer: the compiled optimizer (its state is read, never written).
        gradients: one tensor ``[n, *var.shape]`` per variable: ``n`` candidates.
        variables: the variables the gradients belong to.

    Returns:
        One tensor ``[n, *var.shape]`` per variable.

    Example:
        >>> g = [tf.stack([g1, g2]) for g1, g2 in zip(grads_a, grads_b)]
        >>> w_a, w_b = zip(*[tf.unstack(w) for w in next_weights(opt, g, vars)])
    """
    kind = check_optimizer(optimizer)
    rule = _sgd if kind == "SGD" else _adam
    lr = current_learning_rate(optimizer)
    out = []
    for g, variable in zip(gradients, variables):
        w = tf.convert_to_tensor(variable)[None]
        g = _clip(optimizer, tf.cast(g, w.dtype))
        var_lr = tf.cast(lr, w.dtype)
        if optimizer.weight_decay is not None and keras_internals.optimizer_decays(
                optimizer, variable):
            w = w - w * tf.cast(optimizer.weight_decay, w.dtype) * var_lr
        new = rule(optimizer, w, g, var_lr, variable)
        if variable.constraint is not None:
            new = tf.vectorized_map(variable.constraint, new)
        out.append(new)
    return out


CHUNK_BYTES = 256 * 2 ** 20  # Candidate weights held at once by default.


def chunk_size_for(variables, n, chunk_size=None):
    """Candidates per chunk: ``chunk_size``, or as many as fit in ``CHUNK_BYTES``."""
    if chunk_size is None:
        per_candidate = sum(4 * math.prod(v.shape) for v in variables) or 1
        chunk_size = max(1, CHUNK_BYTES // per_candidate)
    return max(1, min(int(chunk_size), n))


def map_chunks(fn, rows, chunk_size):
    """``fn`` over row chunks: ``rows [n, m] -> [n, k]`` with ``fn: [c, m] -> [c, k]``.

    Runs ``fn`` once on all rows when one chunk holds them; otherwise in a
    ``tf.map_fn`` over ``ceil(n / chunk_size)`` equal chunks (zero rows pad the
    last; their results are dropped), one at a time, so the graph does not grow
    with ``n`` and peak memory is one chunk's.
    """
    n, m = rows.shape
    if chunk_size >= n:
        return fn(rows)
    chunks = math.ceil(n / chunk_size)
    size = math.ceil(n / chunks)
    padded = tf.concat([rows, tf.zeros([chunks * size - n, m], rows.dtype)], 0)
    out = tf.map_fn(fn, tf.reshape(padded, [chunks, size, m]), parallel_iterations=1,
                    fn_output_signature=tf.float32)
    return tf.reshape(out, [chunks * size, -1])[:n]


def _substituted(model, shared_weights, task_weights=None):
    """The model's trainable values with the shared ones (and tasks' own) replaced."""
    variables = model.trainable_variables
    index = {id(v): i for i, v in enumerate(variables)}
    values = [tf.convert_to_tensor(v) for v in variables]
    replaced = list(zip(model.shared_variables, shared_weights))
    for t, weights in (task_weights or {}).items():
        replaced += list(zip(model.task_variables(t), weights))
    for v, w in replaced:
        values[index[id(v)]] = w
    return values


CREATED_IN_STEP = "_tf_mtl_created_in_step"  # Marks state a rule creates on its first step.


def _full_state(model, state):
    """``state`` completed for ``model.non_trainable_variables``.

    A rule that makes its state on its first step (``tf_mtl.updates.direction``)
    adds variables after ``record_step`` took the snapshot; they take no part in
    the forward, so their current values complete the list.
    """
    variables = model.non_trainable_variables
    if state is None:
        return [tf.convert_to_tensor(v) for v in variables]
    state = list(state)
    if len(state) == len(variables):
        return state
    late = [getattr(v, CREATED_IN_STEP, False) for v in variables]
    if len(state) != len(variables) - sum(late):
        raise ValueError(f"`state` must hold one value per non-trainable variable of the model. "
                         f"Received: {len(state)} values for {len(variables)} variables")
    values = iter(state)
    return [tf.convert_to_tensor(v) if is_late else next(values)
            for v, is_late in zip(variables, late)]


def losses_at(model, shared_weights, x, y, sample_weight=None, task_weights=None,
              state=None):
    """Per-task losses ``[m]`` with substituted shared (and task-specific) weights.

    ``shared_weights`` follow ``model.shared_variables``;
    ``task_weights`` (optional) is ``{task: [weights]}`` following
    ``model.task_variables(task)`` (the head's, then the encoder's task-specific
    ones); ``state`` the non-trainable values to start from
    (default: the current ones). Nothing is assigned; BatchNorm statistics
    and seeds the forward advances are dropped.
    """
    state = _full_state(model, state)
    y_pred, _ = model.stateless_call(_substituted(model, shared_weights, task_weights),
                                     list(state), x, training=True)
    # Keras's values: the factors need an all-reduce, which cannot run in the loops.
    return model.compute_task_losses(y, y_pred, sample_weight, factors=None)


EXECUTIONS = ("sequential", "unrolled", "vectorized")
UNROLL_LIMIT = 16  # Candidates written out per chunk by "unrolled".
# What "auto" runs. The rule, from README's benchmark (2-core CPU): "unrolled"
# was fastest or tied in every case measured (ResNet-lite: tied with
# "sequential", 9.3x vs 9.4x a plain step, "vectorized" 9.9x; a dense encoder:
# 4.5x vs 5.0x and 4.7x), at about twice the first-step compile time. No
# accelerator has been measured: run the benchmark there before changing it.
AUTO_EXECUTION = "unrolled"


def check_execution(execution):
    """Raises ``ValueError`` unless ``execution`` names a lookahead execution mode."""
    if execution not in EXECUTIONS + ("auto",):
        raise ValueError(f"`lookahead_execution` must be 'auto' or one of {EXECUTIONS}. "
                         f"Received: lookahead_execution={execution!r}")
    return execution


def resolve_execution(execution):
    """The mode ``execution`` runs: itself, or ``AUTO_EXECUTION`` for ``"auto"``."""
    check_execution(execution)
    return AUTO_EXECUTION if execution == "auto" else execution


def evaluate_losses(model, shared_weights, x, y, sample_weight=None,
                    task_weights=None, state=None, execution="sequential"):
    """Losses ``[n, m]`` for ``n`` candidate shared weights (each ``[n, *shape]``).

    ``execution`` (same values, different speed per device):

    * ``"sequential"``: one ``tf.map_fn`` over candidates; the graph does not
      grow with ``n``.
    * ``"unrolled"``: one forward per candidate written into the graph, which
      TensorFlow may run concurrently; no loop, so collective ops inside the
      forward (synchronized BatchNorm under a strategy) work.
    * ``"vectorized"``: ``tf.vectorized_map``, one forward over a candidate
      axis (TensorFlow falls back to a loop for ops it cannot vectorize, such
      as a convolution whose filter differs per candidate).
    """
    check_execution(execution)

    def one(ws):
        return losses_at(model, ws, x, y, sample_weight, task_weights, state)

    n = shared_weights[0].shape[0]
    if execution == "unrolled":
        return tf.stack([one([w[i] for w in shared_weights]) for i in range(n)])
    if execution == "vectorized":
        return tf.vectorized_map(one, list(shared_weights), warn=False)
    return tf.map_fn(one, list(shared_weights), parallel_iterations=n,
                     fn_output_signature=tf.TensorSpec([len(model.tasks)], tf.float32))


def candidate_basis(step, rows, directions=None):
    """``(basis, rows)``: candidate gradients as rows over the per-task gradients and
    precomputed ``directions``.

    Without ``directions`` the basis is ``step.per_task()`` and ``rows`` as given.
    ``directions`` (one ``[k, *var.shape]`` tensor per shared variable: ``k``
    candidates that are not weight rows, e.g. a rule's moving-average direction)
    extend the basis to ``m + k`` entries; the candidates are then the ``n`` rows
    (zero on the directions) followed by one unit row per direction, so every
    candidate's gradient is ``rows @ basis`` and goes through the same chunks.
    """
    per_task = step.per_task()
    if not directions:
        return per_task, rows
    k = int(directions[0].shape[0])
    n, m = rows.shape
    basis = [tf.concat([g, tf.cast(d, g.dtype)], 0) for g, d in zip(per_task, directions)]
    rows = tf.concat([tf.concat([rows, tf.zeros([n, k], rows.dtype)], 1),
                      tf.concat([tf.zeros([k, m], rows.dtype), tf.eye(k, dtype=rows.dtype)], 1)], 0)
    return basis, rows


def lookahead_losses(model, step, rows, task_weights=None, chunk_size=None,
                     execution="sequential", directions=None):
    """Each task's loss after the optimizer's next step along each row's gradient.

    Args:
        model: the ``MultiTaskModel`` (its optimizer is simulated, not stepped).
        step: the step's ``tf_mtl.gradients.StepGradients``.
        rows: ``[n, m]`` weights over the per-task gradients; row ``s`` steps
            along ``sum_i rows[s, i] g_i`` plus the regularization gradient.
        task_weights: ``{task: [weights]}`` following ``model.task_variables(task)``
            to evaluate with, else the current ones (heads and task-specific encoder
            variables held).
        chunk_size: candidates per chunk (default ``chunk_size_for``; at most
            ``UNROLL_LIMIT`` when unrolled).
        execution: how a chunk's forwards run (``evaluate_losses``).
        directions: optional ``k`` precomputed candidate gradients, one
            ``[k, *var.shape]`` per shared variable, scored after the rows
            (``candidate_basis``).

    Returns:
        ``[n + k, m]`` losses (replica-scaled like ``step.losses``), from the
        step's starting non-trainable state.
    """
    per_task, rows = candidate_basis(step, rows, directions)
    extra = step.regularization_gradient()
    shared = model.shared_variables

    def chunk(chunk_rows):
        new = next_weights(model.optimizer, combine(per_task, chunk_rows, extra), shared)
        return evaluate_losses(model, new, step.x, step.y, step.sample_weight,
                               task_weights, step.state, execution)

    size = chunk_size_for(shared, rows.shape[0], chunk_size)
    if execution == "unrolled":
        size = min(size, UNROLL_LIMIT)
    _check_collectives(model, execution, size, rows.shape[0])
    losses = map_chunks(chunk, rows, size)
    if step.loss_factors is not None:  # This replica's share of the global batch's losses.
        losses = losses * step.loss_factors[None, :]
    return losses


def _check_collectives(model, execution, chunk_size, n):
    """A layer that reduces across replicas cannot run inside a loop (TensorFlow
    refuses a synchronization point in a while loop's body): say which layer,
    and the setting that keeps every lookahead forward out of loops."""
    if distribute.num_replicas() == 1:
        return
    synchronized = keras_internals.synchronized_layers(model)
    if synchronized and (execution != "unrolled" or chunk_size < n):
        raise ValueError(
            f"Layers {synchronized} synchronize across replicas in their forward pass, "
            "which cannot run inside the lookahead's loop: all of a probe's sources must "
            "run in one unrolled chunk, i.e. lookahead_execution='unrolled' (or 'auto'), "
            f"at most {UNROLL_LIMIT} sources, and the probe's chunk_size at least the "
            f"number of sources. Received: lookahead_execution={model.lookahead_execution!r} "
            f"(runs {execution!r}), {n} sources in chunks of {chunk_size}.")
