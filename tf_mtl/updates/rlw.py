"""Random loss weighting (Lin et al., TMLR 2022, "Reasonable Effectiveness of
Random Weighting: A Litmus Test for Multi-Task Learning").

Every step draws fresh task weights ``w = f(λ̃)``, ``λ̃ ~ p``, independent of
the losses and of the previous steps, and the model trains on ``sum_i w_i lw_i L_i``
(``lw``: the model's loss weights). The distributions are those of the
authors' code (LibMTL, by the same authors; ``distribution=``):

* ``"normal"`` (default; LibMTL's only one today): ``λ̃_i ~ N(0, 1)``, ``f = softmax``.
* ``"uniform"``: ``λ̃_i ~ U(0, 1)``, ``f = softmax``.
* ``"dirichlet"``: ``λ̃ ~ Dir(1, …, 1)`` (uniform on the simplex), ``f = softmax``
  (the authors' code passes the Dirichlet sample through the softmax too).
* ``"bernoulli"``: ``λ̃_i ~ Bernoulli(½)`` redrawn while all are 0, ``f = identity``
  (weights in {0, 1}: a random non-empty subset of the tasks, each subset equally likely).
* ``"constrained_bernoulli"``: one task drawn uniformly gets weight 1, the others 0.

The softmax weights sum to 1, so each has mean ``1/m`` (the paper's scale: the
sum of the weights is 1, not ``m``).

Randomness: the ``k``-th uniform of draw ``n`` is an integer hash of
``(seed, n, stream, k)`` (``tf_mtl.updates.pcgrad._hash32``) turned into a float
in ``(0, 1)``; normals come from pairs of uniforms by Box–Muller, Dirichlet(1)
samples from normalised ``-log u`` (unit exponentials). The draw counter is a
checkpointed variable that advances once per step (in ``update_state``): a fixed
seed repeats, a resumed run continues the sequence, every replica draws the same
weights, and so does XLA (TensorFlow's stateless RNG does not, for a seed
computed in the graph).
"""

import math

import keras
import tensorflow as tf

from tf_mtl.updates.pcgrad import _hash32, _logical_shift
from tf_mtl.updates.weighted import LossWeighting, state_variable

DISTRIBUTIONS = ("normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli")


def hashed_uniforms(seed, draw, stream, n):
    """``[n]`` float32 uniforms in ``(0, 1)``: a pure function of the int32 scalars
    ``seed``, ``draw``, ``stream`` (24 random bits each, centred in their bin)."""
    key = _hash32(_hash32(_hash32(seed) + draw) + stream)
    bits = _logical_shift(_hash32(key + tf.range(n, dtype=tf.int32)), 8)   # [0, 2^24)
    return (tf.cast(bits, tf.float32) + 0.5) * (1.0 / (1 << 24))


def standard_normals(seed, draw, stream, n):
    """``[n]`` N(0, 1) samples by Box–Muller from ``2n`` hashed uniforms."""
    u = hashed_uniforms(seed, draw, stream, 2 * n)
    return tf.sqrt(-2.0 * tf.math.log(u[:n])) * tf.cos(2.0 * math.pi * u[n:])


def _bernoulli_nonzero(seed, draw, m):
    """Bernoulli(½) bits, redrawn (stream 1, 2, …) while all are 0."""
    def bits(attempt):
        return tf.cast(hashed_uniforms(seed, draw, attempt, m) < 0.5, tf.float32)

    _, w = tf.while_loop(lambda attempt, w: tf.reduce_sum(w) == 0.0,
                         lambda attempt, w: (attempt + 1, bits(attempt + 1)),
                         (tf.constant(1, tf.int32), bits(tf.constant(1, tf.int32))))
    return w


def random_weights(distribution, seed, draw, m):
    """``[m]`` weights of draw ``draw`` (int32 scalar tensor) for ``seed``."""
    seed = tf.constant(seed, tf.int32)
    if distribution == "normal":
        return tf.nn.softmax(standard_normals(seed, draw, 0, m))
    if distribution == "uniform":
        return tf.nn.softmax(hashed_uniforms(seed, draw, 0, m))
    if distribution == "dirichlet":
        e = -tf.math.log(hashed_uniforms(seed, draw, 0, m))   # unit exponentials
        return tf.nn.softmax(e / tf.reduce_sum(e))
    if distribution == "bernoulli":
        return _bernoulli_nonzero(seed, draw, m)
    u = hashed_uniforms(seed, draw, 0, 1)[0]
    task = tf.minimum(tf.cast(u * m, tf.int32), m - 1)
    return tf.one_hot(task, m, dtype=tf.float32)


@keras.saving.register_keras_serializable(package="tf_mtl")
class RLW(LossWeighting):
    """Random loss weighting: fresh random task weights every step.

    Args:
        distribution: one of ``"normal"`` (softmax of standard normals, the
            default), ``"uniform"``, ``"dirichlet"``, ``"bernoulli"``,
            ``"constrained_bernoulli"`` (see the module docstring).
        seed: integer seed of the weight sequence.

    Example:
        >>> update = tf_mtl.updates.RLW()
        >>> update = tf_mtl.updates.PCGrad(weighting=tf_mtl.updates.RLW(seed=1))
    """

    def __init__(self, distribution="normal", seed=0, **kwargs):
        kwargs.setdefault("name", "rlw")
        super().__init__(**kwargs)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"`distribution` must be one of {DISTRIBUTIONS}. "
                             f"Received: distribution={distribution!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not -2**31 <= seed < 2**31:
            raise ValueError(f"`seed` must be an int32 integer. Received: seed={seed!r}")
        self.distribution, self.seed = distribution, seed

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self.draws = state_variable(self, "draws", (), dtype="int64")

    def current_weights(self):
        # A pure function of the counter: the heads' objective and the shared
        # gradient read the same weights; update_state moves to the next draw.
        draw = tf.cast(tf.convert_to_tensor(self.draws), tf.int32)
        return random_weights(self.distribution, self.seed, draw, len(self.tasks))

    def update_state(self, step, losses):
        del step, losses
        self.draws.assign_add(1)

    def get_config(self):
        return {**super().get_config(), "distribution": self.distribution, "seed": self.seed}
