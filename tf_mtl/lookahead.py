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
candidate does not define), loss scaling and gradient accumulation.
"""

import keras
import tensorflow as tf

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
    index = optimizer._get_variable_index(variable)  # The optimizer's own lookup.
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
        if optimizer.weight_decay is not None and optimizer._use_weight_decay(variable):
            w = w - w * tf.cast(optimizer.weight_decay, w.dtype) * var_lr
        new = rule(optimizer, w, g, var_lr, variable)
        if variable.constraint is not None:
            new = tf.vectorized_map(variable.constraint, new)
        out.append(new)
    return out


def _stateless_forward(layer, trainable, x, training=True):
    outputs, _ = layer.stateless_call(
        list(trainable), [tf.convert_to_tensor(v) for v in layer.non_trainable_variables],
        x, training=training,
    )
    return outputs


def losses_at(model, shared_weights, x, y, sample_weight=None, head_weights=None):
    """Per-task losses ``[m]`` with substituted encoder (and head) weights.

    ``shared_weights`` follow ``model.encoder.trainable_variables``;
    ``head_weights`` (optional) is ``{task: [weights]}`` following each head's
    ``trainable_variables``. Nothing is assigned; BatchNorm statistics the
    forward computes are dropped.
    """
    features = _stateless_forward(model.encoder, shared_weights, x)
    y_pred = {}
    for t in model.tasks:
        head = model.heads[t]
        weights = head_weights[t] if head_weights is not None else [
            tf.convert_to_tensor(v) for v in head.trainable_variables]
        y_pred[t] = _stateless_forward(head, weights, features)
    return model.compute_task_losses(y, y_pred, sample_weight)


def evaluate_losses(model, shared_weights, x, y, sample_weight=None,
                    head_weights=None, parallel_iterations=None):
    """Losses ``[n, m]`` for ``n`` candidate encoder weights (each ``[n, *shape]``).

    Runs as one ``tf.map_fn`` so the graph does not grow with ``n``.
    """
    n = shared_weights[0].shape[0]
    return tf.map_fn(
        lambda ws: losses_at(model, ws, x, y, sample_weight, head_weights),
        list(shared_weights),
        fn_output_signature=tf.TensorSpec([len(model.tasks)], tf.float32),
        parallel_iterations=parallel_iterations or n or 10,
    )
