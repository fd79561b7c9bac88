"""Cross-replica reductions: the one place where replicas talk to each other.

Keras losses called inside a replica are already scaled by ``1 / num_replicas``
(``keras.losses.Loss.__call__`` does it so that the optimizer's all-reduce *sum*
of gradients yields the global mean), and so are additional losses
(regularizers): ``replica_share`` applies the same scaling to the terms
tf_mtl adds itself. Everything that must agree across replicas — per-task
gradients fed to a lookahead, losses in a transference ratio, IT-MTL candidate
scores — is reduced with ``replica_sum`` on values that carry that scaling, and
logged values are unscaled with ``unscale``.

``apply_global`` hands *global* gradients to the optimizer so that its step is
the step one device takes on the same global batch, clipping included.

Outside a strategy (or with one replica) every function is the identity, so
single-device code pays nothing.
"""

import tensorflow as tf


def num_replicas():
    """Number of replicas of the current ``tf.distribute`` strategy (1 if none)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def replica_sum(values):
    """All-reduce-sums a (nested) structure of tensors across replicas.

    Called from replica context (inside ``train_step`` under a strategy), this
    returns the same summed values on every replica; elsewhere it returns
    ``values`` unchanged.
    """
    ctx = _replica_context()
    if ctx is None:
        return values
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)


def replica_share(value):
    """``value / num_replicas``: a replica's share of a term that ``replica_sum``
    (or the optimizer's all-reduce) adds up over replicas."""
    n = num_replicas()
    if n > 1:
        value = value / tf.cast(n, value.dtype)
    return value


def unscale(value):
    """Undoes the ``1 / num_replicas`` scaling Keras applies to replica losses."""
    n = num_replicas()
    if n > 1:
        value = value * tf.cast(n, value.dtype)
    return value


def apply_global(optimizer, grads, variables):
    """``optimizer.apply`` of global (already replica-summed) gradients.

    Keras clips each replica's gradient (``clipnorm``, ``clipvalue``) *before*
    its all-reduce sums them, so handing every replica ``g / n`` would clip
    ``g / n`` and step by ``n * clip(g / n)``. Replica 0 gets the global
    gradient and the others zeros instead: clipping zeros leaves zeros, the
    sum is exactly ``clip(g)``, the step one device takes.
    """
    ctx = _replica_context()
    if ctx is not None:
        first = tf.equal(ctx.replica_id_in_sync_group, 0)
        grads = [tf.where(first, g, tf.zeros_like(g)) for g in grads]
    optimizer.apply(grads, variables)
