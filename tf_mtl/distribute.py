"""Cross-replica reductions: the one place where replicas talk to each other.

Keras losses called inside a replica are already scaled by ``1 / num_replicas``
(``keras.losses.Loss.__call__`` does it so that the optimizer's all-reduce *sum*
of gradients yields the global mean). Everything in tf_mtl that must agree
across replicas — per-task gradients fed to a lookahead, losses in a
transference ratio, IT-MTL candidate scores — is therefore reduced with
``replica_sum`` on values that carry that scaling, and logged values are
unscaled with ``unscale``.

Outside a strategy (or with one replica) both functions are the identity, so
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


def unscale(value):
    """Undoes the ``1 / num_replicas`` scaling Keras applies to replica losses."""
    n = num_replicas()
    if n > 1:
        value = value * tf.cast(n, value.dtype)
    return value
