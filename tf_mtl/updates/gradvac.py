"""GradVac (Wang et al., ICLR 2021, "Gradient Vaccine: Investigating and Improving
Multi-task Optimization in Massively Multilingual Models").

PCGrad (``tf_mtl.updates.pcgrad``) acts only when two gradients conflict
(``cos < 0``); GradVac pulls every pair towards a *similarity goal* ``φ̂_ij``, an
exponential moving average of the pair's observed cosines (the paper's algorithm).
For each task ``i``, start from ``g'_i = g_i``; for each other task ``j`` in a
random order, with ``φ_ij = cos(g'_i, g_j)``:

    if ``φ_ij < φ̂_ij``:  ``g'_i ← g'_i + ||g'_i|| (φ̂_ij sqrt(1-φ_ij²) - φ_ij sqrt(1-φ̂_ij²))
                                         / (||g_j|| sqrt(1-φ̂_ij²)) · g_j``
    then always:         ``φ̂_ij ← (1-β) φ̂_ij + β φ_ij``,

and the update is the sum ``sum_i g'_i``. The vaccine makes ``cos(g'_i, g_j) =
φ̂_ij`` exactly; the goals start at 0 (where the first step is PCGrad). As in
the paper's algorithm the goal moves on every step (LibMTL moves it only
when the vaccine is applied). ``β = 0.01`` is the paper's default (LibMTL's is
0.5). The projections are against the other tasks' original gradients, every
inner product is read from the Gram matrix (``g'_i = sum_k C[i, k] g_k``), and the
order is one random permutation per step shared by every task, drawn exactly as
PCGrad draws it (``task_order``), so every replica and a resumed run agree. The
goals ``φ̂`` ([m, m], row ``i`` column ``j``) are a saved state variable.

Granularity: the whole shared model (one ``φ̂`` per pair). The paper also applies
GradVac per layer (one goal per pair and layer; LibMTL's ``group_type=1, 2``);
that needs per-layer Gram matrices and is not offered.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.pcgrad import task_order
from tf_mtl.updates.weighted import GradientRule, state_variable


def gradvac_combination(gram, goals, order, beta):
    """``([m] coefficients of sum_i g'_i, [m, m] new goals)`` for one step.

    ``gram`` ``[m, m]`` of the gradients GradVac sees, ``goals`` the current
    ``φ̂``, ``order`` a permutation of ``range(m)``; float64 inside.
    """
    gram = tf.cast(gram, tf.float64)
    goals = tf.cast(goals, tf.float64)
    m = gram.shape[0]
    coeffs = tf.eye(m, dtype=tf.float64)                   # row i: g'_i = coeffs[i] @ g
    for position in range(m):                              # m static steps, all tasks at once
        j = order[position]
        onehot = tf.one_hot(j, m, dtype=tf.float64)
        g_j = tf.gather(gram, j, axis=1)                   # <g_k, g_j>
        dots = tf.linalg.matvec(coeffs, g_j)               # <g'_i, g_j>
        norms_i = tf.sqrt(tf.maximum(tf.reduce_sum(coeffs * tf.matmul(coeffs, gram), 1), 0.0))
        norm_j = tf.sqrt(tf.maximum(tf.gather(g_j, j), 0.0))
        denom = norms_i * norm_j
        cos = tf.where(denom > 0, dots / tf.where(denom > 0, denom, 1.0), 0.0)
        goal = tf.gather(goals, j, axis=1)                 # φ̂_ij for every i
        other = tf.range(m) != j
        root = tf.sqrt(tf.maximum(1.0 - goal ** 2, 0.0))
        bottom = norm_j * root
        vaccine = other & (cos < goal) & (bottom > 0)
        w = norms_i * (goal * tf.sqrt(tf.maximum(1.0 - cos ** 2, 0.0)) - cos * root)
        w = tf.where(vaccine, w / tf.where(bottom > 0, bottom, 1.0), 0.0)
        coeffs = coeffs + w[:, None] * onehot[None, :]
        moved = (1.0 - beta) * goal + beta * cos
        goals = goals + (tf.where(other, moved, goal) - goal)[:, None] * onehot[None, :]
    return tf.cast(tf.reduce_sum(coeffs, 0), tf.float32), tf.cast(goals, tf.float32)


@keras.saving.register_keras_serializable(package="tf_mtl")
class GradVac(GradientRule):
    """Gradient vaccine: pull each pair's gradient cosine to its moving goal.

    Args:
        beta: EMA rate of the similarity goals, in ``(0, 1]`` (the paper's 0.01).
        seed: integer seed of the per-step task order.
        weighting: optional loss weighting; it scales the task gradients first.

    Example:
        >>> update = tf_mtl.updates.GradVac(beta=0.01)
    """

    def __init__(self, beta=0.01, seed=0, weighting=None, **kwargs):
        kwargs.setdefault("name", "gradvac")
        super().__init__(weighting=weighting, **kwargs)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta <= 1:
            raise ValueError(f"`beta` must be a number in (0, 1]. Received: beta={beta!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
        self.beta, self.seed = float(beta), seed

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        m = len(self.tasks)
        self.goals = state_variable(self, "goals", (m, m))
        self.draws = state_variable(self, "draws", (), dtype="int64")

    def order(self):
        """This step's task order (PCGrad's draw); advances the counter."""
        draw = tf.convert_to_tensor(self.draws)
        self.draws.assign_add(1)
        return task_order(self.seed, draw, len(self.tasks))

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() * base[:, None] * base[None, :]   # of the scaled gradients
        coeffs, goals = gradvac_combination(gram, self.goals, self.order(), self.beta)
        self.goals.assign(goals)
        return coeffs * base

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "seed": self.seed}
