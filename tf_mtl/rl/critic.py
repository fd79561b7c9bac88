"""Twin Q networks, their target copies and Polyak averaging (SAC's critic).

Two independent Q networks ``Q_1, Q_2`` (clipped double-Q, Fujimoto et al. 2018, as
softlearning's SAC), each an MLP on ``s ++ a`` where ``s`` is the observation with the
task's one-hot appended (Meta-World's multi-task convention): the whole critic is shared
by every task. ``TwinQNetwork`` returns ``[B, 2]`` (both Q values), so one Keras layer
holds every critic weight and the library's ``MultiTaskModel`` can treat it as its shared
encoder (``tf_mtl.rl.critic_transference``).

Each critic's loss is softlearning's ``0.5 * mean((Q_k(s, a) - y)^2)`` against the soft
target ``y`` (``tf_mtl.rl.sac.soft_target``); ``TwinBellmanLoss`` is their sum, ``J_Q``
of ``001`` App. D.3 summed over the two critics. One Adam over both networks equals
softlearning's one Adam per critic: Adam is elementwise and ``Q_k``'s weights get
gradient from ``Q_k``'s loss alone.

The target networks (``Q_hat``) follow with Polyak averaging after every gradient step
(softlearning: ``target_update_interval=1``, ``tau=5e-3``):
``theta_hat <- tau * theta + (1 - tau) * theta_hat``.
"""

import keras
import tensorflow as tf

from tf_mtl.rl.policy import check_hidden_units, mlp


@keras.saving.register_keras_serializable(package="tf_mtl")
class TwinQNetwork(keras.layers.Layer):
    """``[Q_1(x), Q_2(x)]`` ``[B, 2]`` for ``x`` = observation ++ task one-hot ++ action.

    Args:
        hidden_units: hidden widths of each Q network (``001`` D.3: six layers of 400).

    Example:
        >>> critic = tf_mtl.rl.TwinQNetwork(hidden_units=[16])
        >>> tuple(critic(tf.zeros([8, 48])).shape)   # 39 + 5 (task) + 4 (action) inputs
        (8, 2)
    """

    def __init__(self, hidden_units=(400,) * 6, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = check_hidden_units(hidden_units)
        self.q1 = mlp(self.hidden_units, 1, "q1")
        self.q2 = mlp(self.hidden_units, 1, "q2")

    def build(self, input_shape):
        for net in (self.q1, self.q2):
            shape = tuple(input_shape)
            for layer in net:
                layer.build(shape)
                shape = shape[:-1] + (layer.units,)
        self.built = True

    def call(self, inputs):
        values = []
        for net in (self.q1, self.q2):
            h = inputs
            for layer in net:
                h = layer(h)
            values.append(h)
        return tf.concat(values, axis=-1)

    def get_config(self):
        return {**super().get_config(), "hidden_units": list(self.hidden_units)}


@keras.saving.register_keras_serializable(package="tf_mtl")
class TwinBellmanLoss(keras.losses.Loss):
    """``J_Q = 0.5 mean((Q_1 - y)^2) + 0.5 mean((Q_2 - y)^2)``: ``y_true`` ``[B, 1]`` (the soft
    target, held constant), ``y_pred`` ``[B, 2]`` (``TwinQNetwork``'s output).

    Example:
        >>> float(tf_mtl.rl.TwinBellmanLoss()(np.array([[1.0]]), np.array([[3.0, 0.0]])))
        2.5
    """

    def __init__(self, name="twin_bellman", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = tf.cast(tf.reshape(y_true, [-1, 1]), y_pred.dtype)
        return 0.5 * tf.reduce_sum(tf.square(y_pred - y_true), axis=-1)


def check_tau(tau):
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not 0.0 < tau <= 1.0:
        raise ValueError(f"`tau` must be a number in (0, 1]. Received: tau={tau!r}")
    return float(tau)


def polyak_update(target_variables, source_variables, tau):
    """``target <- tau * source + (1 - tau) * target`` for each pair (in place).

    Example:
        >>> target, source = [keras.Variable([0.0, 4.0])], [keras.Variable([1.0, 0.0])]
        >>> tf_mtl.rl.polyak_update(target, source, tau=0.25)
        >>> target[0].numpy()
        array([0.25, 3.  ], dtype=float32)
    """
    target_variables, source_variables = list(target_variables), list(source_variables)
    if len(target_variables) != len(source_variables):
        raise ValueError("`target_variables` and `source_variables` must pair up. Received: "
                         f"{len(target_variables)} and {len(source_variables)} variables")
    for target, source in zip(target_variables, source_variables):
        target.assign(tau * source + (1.0 - tau) * target)
