"""The tanh-Gaussian policy of soft actor-critic, with its log-probability correction.

``a = tanh(u)``, ``u ~ N(mu(s), diag(sigma(s)^2))``: one network outputs ``mu`` and
``log sigma`` (clipped to ``[-20, 2]``, softlearning's ``SCALE_DIAG_MIN_MAX``), the sample
is reparameterized (``u = mu + sigma * eps``, ``eps ~ N(0, I)``) so the policy loss has a
pathwise gradient (Haarnoja et al. 2018, App. C). The density of the squashed action is
the Gaussian's times the inverse Jacobian of ``tanh`` (change of variables):

    log pi(a | s) = sum_k [ log N(u_k; mu_k, sigma_k) - log(1 - tanh(u_k)^2) ],
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2 u))

(the right-hand form is softlearning's ``SquashBijector``: exact, and finite where
``1 - tanh(u)^2`` underflows). Noise comes from ``tf.random.stateless_normal`` with a
seed the caller passes, so a run's actions depend on (seed, step) and nothing else:
a resumed run draws what an uninterrupted one draws.
"""

import math

import keras
import tensorflow as tf

LOG_STD_BOUNDS = (-20.0, 2.0)  # softlearning's SCALE_DIAG_MIN_MAX


def tanh_gaussian_log_prob(pre_tanh, mean, log_std):
    """``log pi(tanh(u))`` ``[B]`` for pre-squash samples ``u`` ``[B, k]`` (formula above).

    Example:
        >>> zero = tf.zeros([1, 1])   # log N(0; 0, 1) - log(1 - tanh(0)^2)
        >>> float(tf_mtl.rl.tanh_gaussian_log_prob(zero, zero, zero)[0])
        -0.9189...
    """
    z = (pre_tanh - mean) * tf.exp(-log_std)
    gaussian = -0.5 * tf.square(z) - log_std - 0.5 * math.log(2.0 * math.pi)
    log_det = 2.0 * (math.log(2.0) - pre_tanh - tf.nn.softplus(-2.0 * pre_tanh))
    return tf.reduce_sum(gaussian - log_det, axis=-1)


def mlp(hidden_units, outputs, name):
    """``len(hidden_units)`` ReLU layers then a linear one (softlearning's feedforward)."""
    layers = [keras.layers.Dense(u, activation="relu", name=f"{name}_hidden_{i}")
              for i, u in enumerate(hidden_units)]
    return layers + [keras.layers.Dense(outputs, name=f"{name}_out")]


def check_hidden_units(hidden_units):
    units = list(hidden_units)
    if not units or any(not isinstance(u, int) or isinstance(u, bool) or u < 1 for u in units):
        raise ValueError("`hidden_units` must be a non-empty list of positive ints. "
                         f"Received: hidden_units={hidden_units!r}")
    return units


@keras.saving.register_keras_serializable(package="tf_mtl")
class TanhGaussianPolicy(keras.layers.Layer):
    """Tanh-squashed Gaussian policy ``pi(a | s)`` on inputs ``s`` = observation ++ task one-hot.

    Args:
        action_dim: size of the action (Meta-World: 4), each in ``[-1, 1]``.
        hidden_units: the MLP's hidden widths (``001`` D.3: six layers of 400).

    ``call(s)`` is the deterministic action ``tanh(mu(s))`` (evaluation, as softlearning's
    ``eval_deterministic``); ``sample(s, seed)`` returns ``(action, log_prob)``.

    Example:
        >>> policy = tf_mtl.rl.TanhGaussianPolicy(action_dim=4, hidden_units=[16, 16])
        >>> states = tf.zeros([3, 44])   # 39 observation numbers ++ 5-task one-hot
        >>> action, log_prob = policy.sample(states, seed=tf.constant([0, 7]))
        >>> tuple(action.shape), tuple(log_prob.shape)
        ((3, 4), (3,))
    """

    def __init__(self, action_dim, hidden_units=(400,) * 6, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(action_dim, int) or isinstance(action_dim, bool) or action_dim < 1:
            raise ValueError(f"`action_dim` must be a positive int. Received: "
                             f"action_dim={action_dim!r}")
        self.action_dim = action_dim
        self.hidden_units = check_hidden_units(hidden_units)
        self.net = mlp(self.hidden_units, 2 * action_dim, "policy")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.net:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.built = True

    def distribution(self, states):
        """``(mu, log_sigma)``, each ``[B, action_dim]``; ``log_sigma`` clipped."""
        h = states
        for layer in self.net:
            h = layer(h)
        mean, log_std = tf.split(h, 2, axis=-1)
        return mean, tf.clip_by_value(log_std, *LOG_STD_BOUNDS)

    def call(self, states):
        return tf.tanh(self.distribution(states)[0])

    def sample(self, states, seed):
        """``(tanh(u), log pi)`` with ``u = mu + sigma * eps``, ``eps`` from stateless ``seed``."""
        mean, log_std = self.distribution(states)
        noise = tf.random.stateless_normal(tf.shape(mean), seed=seed, dtype=mean.dtype)
        pre_tanh = mean + tf.exp(log_std) * noise
        return tf.tanh(pre_tanh), tanh_gaussian_log_prob(pre_tanh, mean, log_std)

    def get_config(self):
        return {**super().get_config(), "action_dim": self.action_dim,
                "hidden_units": list(self.hidden_units)}
