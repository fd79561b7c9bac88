"""PCGrad (Yu et al., NeurIPS 2020): project away conflicting gradient components.

For each task ``i`` (Yu et al., Alg. 1): start from ``g_i``; for each other task
``j`` in a random order, if ``<g_i^PC, g_j> < 0`` set
``g_i^PC ← g_i^PC - <g_i^PC, g_j> / ||g_j||² g_j``. The projections are always
against the other tasks' *original* gradients ``g_j`` (not their projected
versions), and the shared gradient is the *sum* ``sum_i g_i^PC`` (the official
code sums; some ports average, which only rescales the step). The order is one
random permutation per step shared by every task, as in the official
TensorFlow code (which shuffles the task list once per step); ``j = i`` is
skipped, as the paper's algorithm writes.

Every ``g_i^PC`` stays a linear combination ``sum_k C[i, k] g_k`` of the task
gradients, and every inner product above is read from the Gram matrix
``G = [<g_a, g_b>]``: the rule computes ``C`` from ``G`` alone (``m²`` work per
projection, never touching the gradients), and its shared gradient is
``sum_k (sum_i C[i, k]) g_k``, a weight row like any other rule's.

The permutation sorts integer hashes of ``(seed, step counter, task)``
(``_hash32``); the counter is a checkpointed variable, so a resumed run
continues the sequence, and every replica draws the same order. Integer
arithmetic rather than TensorFlow's stateless RNG: that one draws other
numbers under XLA for a seed computed in the graph, which would give another
order (and another update) with ``jit_compile=True``.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import GradientRule, state_variable


def _logical_shift(x, bits):
    """``x >>> bits`` on int32 (TensorFlow's right shift keeps the sign)."""
    return tf.bitwise.bitwise_and(tf.bitwise.right_shift(x, bits), (1 << (32 - bits)) - 1)


def _hash32(x):
    """A 32-bit integer mix (``lowbias32``, C. Wellons): wrapping int32
    arithmetic, the same on CPU, GPU and under XLA."""
    x = tf.bitwise.bitwise_xor(x, _logical_shift(x, 16)) * tf.constant(0x7FEB352D, tf.int32)
    x = tf.bitwise.bitwise_xor(x, _logical_shift(x, 15)) * tf.constant(-2073254261, tf.int32)
    return tf.bitwise.bitwise_xor(x, _logical_shift(x, 16))


def task_order(seed, draw, num_tasks):
    """A permutation of ``range(num_tasks)`` from integer hashes of ``(seed, draw, task)``.

    ``draw`` is a step counter (a tensor): the same order on every replica, on
    CPU, GPU and under XLA, for PCGrad's and GradVac's per-step task order.
    """
    task = tf.range(num_tasks, dtype=tf.int32)
    keys = _hash32(_hash32(_hash32(tf.constant(seed, tf.int32)) + tf.cast(draw, tf.int32))
                   + task)
    return tf.argsort(keys)


def pcgrad_combination(gram, order):
    """``[m]`` coefficients of ``sum_i g_i^PC`` over the task gradients.

    ``gram`` is ``[m, m]`` (of the gradients PCGrad sees); ``order`` a
    permutation of ``range(m)`` (int32 ``[m]``).
    """
    m = gram.shape[0]
    eye = tf.eye(m, dtype=gram.dtype)
    coeffs = eye                                   # row i: g_i^PC = coeffs[i] @ g
    for position in range(m):                      # m static steps, all tasks at once
        j = order[position]
        g_j = tf.gather(gram, j, axis=1)           # <g_k, g_j> for every k: [m]
        dots = tf.linalg.matvec(coeffs, g_j)       # <g_i^PC, g_j> for every i
        norm = tf.gather(g_j, j)
        not_self = tf.range(m) != j
        conflict = (dots < 0) & not_self & (norm > 0)
        scale = tf.where(conflict, dots / tf.where(norm > 0, norm, 1.0), 0.0)
        coeffs = coeffs - scale[:, None] * tf.one_hot(j, m, dtype=gram.dtype)[None, :]
    return tf.reduce_sum(coeffs, axis=0)


@keras.saving.register_keras_serializable(package="tf_mtl")
class PCGrad(GradientRule):
    """Projecting conflicting gradients.

    Args:
        weighting: optional loss weighting; it scales the task gradients before
            projecting (``PCGrad(weighting=UncertaintyWeights())`` = UW-PCGrad)
            and the heads get its objective.
        seed: integer seed of the per-step task order.

    Example:
        >>> update = tf_mtl.updates.PCGrad()
    """

    def __init__(self, weighting=None, seed=0, **kwargs):
        kwargs.setdefault("name", "pcgrad")
        super().__init__(weighting=weighting, **kwargs)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
        self.seed = seed

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self.draws = state_variable(self, "draws", (), dtype="int64")

    def order(self):
        """This step's task order; advances the counter."""
        draw = tf.convert_to_tensor(self.draws)
        self.draws.assign_add(1)
        return task_order(self.seed, draw, len(self.tasks))

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() * base[:, None] * base[None, :]   # of the scaled gradients
        return pcgrad_combination(gram, self.order()) * base

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
