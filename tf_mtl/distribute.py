"""Cross-replica reductions: the one place where replicas talk to each other.

Keras losses called inside a replica are divided by the replica's own sample
count and scaled by ``1 / num_replicas`` (``keras.losses.Loss.__call__``), so
that the optimizer's all-reduce *sum* of gradients yields the global mean, but
only when the global batch splits evenly. ``global_mean_factors`` rescales each
task loss to the replica's exact share of the global batch loss (``local sum /
global count``), so a last partial batch (15 examples on 2 replicas: 8 and 7)
gives the numbers of one device too. Additional losses (weight regularizers,
the same on every replica) are scaled by ``1 / num_replicas`` as Keras does:
``replica_share`` applies that scaling to the terms tf_mtl adds itself.
Everything that must agree across replicas — per-task
gradients fed to a lookahead, losses in a transference ratio, IT-MTL candidate
scores — is reduced with ``replica_sum`` on values that carry that scaling, and
logged values are unscaled with ``unscale``.

``apply_global`` hands *global* gradients to the optimizer so that its step is
the step one device takes on the same global batch, clipping included.

Outside a strategy (or with one replica) every function is the identity, so
single-device code pays nothing.
"""

import json
import os

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


def loss_divisor(loss, y_pred, sample_weight=None):
    """What ``loss`` (a ``keras.losses.Loss``) divides a replica's batch sum by, up to a
    factor equal on every replica; ``None`` where it does not divide (``"sum"``).

    ``"sum_over_batch_size"``/``"mean"`` divide by the number of loss values (the
    batch size times dimensions every replica shares), also with sample weights;
    ``"mean_with_sample_weight"`` by the sum of the sample weights. (Keras masks on
    ``y_pred`` are not accounted for: they divide by the valid count.)"""
    if loss.reduction in (None, "none", "sum"):
        return None
    if loss.reduction == "mean_with_sample_weight" and sample_weight is not None:
        return tf.reduce_sum(tf.cast(sample_weight, tf.float32))
    return tf.shape(tf.nest.flatten(y_pred)[0])[0]


def global_mean_factors(divisors):
    """``[m]`` factors making the replicas' Keras task losses add up to the global batch loss.

    A replica's Keras loss is ``local sum / local divisor / num_replicas``; times
    ``num_replicas * local divisor / global divisor`` it is ``local sum / global
    divisor``, its exact share of the one-device loss on the global batch, also when
    the batch splits unevenly. ``divisors``: per task, ``loss_divisor``'s value
    (``None``: factor 1). One all-reduce; call it in replica context, outside loops.
    Returns ``None`` outside a multi-replica strategy (no rescaling)."""
    ctx = _replica_context()
    if ctx is None:
        return None
    divided = [d is not None for d in divisors]
    local = tf.stack([tf.cast(d, tf.float32) if d is not None else tf.ones([])
                      for d in divisors])
    total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
    factors = tf.cast(ctx.num_replicas_in_sync, tf.float32) * tf.math.divide_no_nan(local, total)
    return tf.where(tf.constant(divided), factors, tf.ones_like(factors))


def replica_share(value):
    """``value / num_replicas``: a replica's share of a term that ``replica_sum``
    (or the optimizer's all-reduce) adds up over replicas."""
    n = num_replicas()
    if n > 1:
        value = value / tf.cast(n, value.dtype)
    return value


def unscale(value):
    """``value * num_replicas``: a replica's share of a global loss as a value whose
    mean over the replicas (what a Keras ``Mean`` metric reports) is the global loss."""
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


def is_multi_worker(strategy=None):
    """Whether ``strategy`` (default: the current one) spans several workers (processes)."""
    strategy = strategy or tf.distribute.get_strategy()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))


def step_logs(logs):
    """The train/test step's logs as Keras can reduce them across workers.

    Across several workers Keras averages each log with ``strategy.reduce("MEAN", v,
    axis=0)``, which fails on a scalar ("Invalid reduction dimension 0", TensorFlow issue
    #72388): there each scalar becomes shape ``[1]`` (the mean over axis 0 of all
    replicas' values is then the scalar Keras averages elsewhere). Elsewhere, unchanged.
    """
    if not is_multi_worker():
        return logs
    return tf.nest.map_structure(
        lambda v: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0 else v, logs)


STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def get_strategy(name="default", tpu=""):
    """The ``tf.distribute`` strategy ``name`` names; build the model in its ``scope()``.

    * ``"default"``: TensorFlow's default strategy (one device, no replicas).
    * ``"mirrored"``: ``MirroredStrategy`` over every GPU, or, without a GPU, over
      every logical CPU device (two after ``set_logical_cpus(2)``).
    * ``"multiworker"``: ``MultiWorkerMirroredStrategy``; the cluster and this
      process's task come from the ``TF_CONFIG`` environment variable. Create it
      before TensorFlow runs anything else in the process.
    * ``"tpu"``: ``TPUStrategy`` on ``TPUClusterResolver(tpu=tpu)`` (``""``: the
      TPU of this VM / the ``TPU_NAME`` environment).

    Batch sizes stay global: Keras splits each batch of the dataset over the replicas.

    Example:
        >>> strategy = tf_mtl.distribute.get_strategy("mirrored")
        >>> with strategy.scope():
        ...     model = tf_mtl.MultiTaskModel(...); model.compile(optimizer="sgd")
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")


def set_logical_cpus(count):
    """Splits the CPU into ``count`` logical devices (``"mirrored"`` then has ``count``
    replicas on a CPU-only machine). Must run before TensorFlow initialises its devices
    (before the first op); raises ``RuntimeError`` after."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`count` must be an integer >= 1. Received: count={count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def is_chief(strategy=None):
    """Whether this process writes the run's files: always, except on the non-chief
    workers of a multi-worker run (``TF_CONFIG``'s ``chief``, else worker 0, writes).

    ``strategy`` defaults to the current one."""
    strategy = strategy or tf.distribute.get_strategy()
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def is_chief_process(strategy_name):
    """``is_chief`` before the strategy ``strategy_name`` exists (``get_strategy`` must come
    first in a process): for ``"multiworker"``, whether ``TF_CONFIG`` names this task the
    chief (type ``"chief"``, or worker 0 of a cluster without one); else ``True``."""
    if strategy_name != "multiworker":
        return True
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def write_dir(workdir, strategy=None):
    """``workdir`` on the chief; a fresh temporary directory on other workers, for the
    writes every worker must make (``model.save`` reads variables collectively) but
    only the chief keeps. Delete it with ``shutil.rmtree`` when done."""
    if is_chief(strategy):
        return workdir
    import tempfile
    return tempfile.mkdtemp(prefix="tf_mtl_worker_")
