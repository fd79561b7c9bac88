"""One SAC gradient step, checked piece by piece against independent computations: the
policy's update equals a copy of the policy and its Adam stepped on the loss written out
here, each task's temperature moves by Adam's first step on its own batch, and the target
critics are the Polyak average of the *updated* critics."""

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.rl.critic import TwinQNetwork
from tf_mtl.rl.policy import TanhGaussianPolicy
from tf_mtl.rl.sac import MultiTaskSAC

TASKS, OBS, ACT, B = ["a", "b"], 4, 2, 5


def _batch(rng):
    return {"observations": rng.normal(size=(2, B, OBS)),
            "actions": rng.uniform(-1, 1, (2, B, ACT)),
            "rewards": rng.normal(size=(2, B)),
            "next_observations": rng.normal(size=(2, B, OBS)),
            "terminals": np.zeros((2, B))}


def test_one_step_against_copies():
    rng = np.random.default_rng(0)
    sac = MultiTaskSAC(TASKS, OBS, ACT, hidden_units=[8], seed=5)
    # Temperatures apart, so a per-task mix-up changes the numbers.
    sac.log_alpha.assign([0.3, -0.4])
    batch = _batch(rng)
    task = np.repeat([0, 1], B)
    states = np.concatenate([batch["observations"].reshape(-1, OBS), np.eye(2)[task]], 1)
    states = tf.constant(states, tf.float32)
    policy = TanhGaussianPolicy(ACT, [8])
    policy.build(states.shape)
    policy.set_weights(sac.policy.get_weights())
    critic = TwinQNetwork([8])
    critic.build((None, OBS + 2 + ACT))
    critic.set_weights(sac.critic.encoder.get_weights())
    target_before = [v.numpy() for v in sac.target_critic.variables]
    alpha = np.exp([0.3, -0.4])[task]
    noise = tf.random.stateless_normal([2 * B, ACT], seed=tf.constant([5 * 4 + 2, 0], tf.int64))
    with tf.GradientTape() as tape:
        mean, log_std = policy.distribution(states)
        u = mean + tf.exp(log_std) * noise
        log_prob = tf.reduce_sum(
            -0.5 * ((u - mean) / tf.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
            - tf.math.log(1 - tf.tanh(u) ** 2), -1)
        q = critic(tf.concat([states, tf.tanh(u)], -1))
        per_row = alpha * log_prob - tf.reduce_min(q, -1)
        loss = tf.reduce_mean(per_row[:B]) + tf.reduce_mean(per_row[B:])
    grads = tape.gradient(loss, policy.trainable_variables)
    opt = keras.optimizers.Adam(3e-4)
    opt.apply(grads, policy.trainable_variables)

    sac.train_step(batch)

    for mine, theirs in zip(sac.policy.trainable_variables, policy.trainable_variables):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-7)
    # Temperature: Adam's first step is lr * g / |g|, g = -mean_t(log pi + H), H = -|A|.
    g = [-np.mean(log_prob.numpy()[i * B:(i + 1) * B] - ACT) for i in range(2)]
    np.testing.assert_allclose(sac.log_alpha.numpy(), [0.3, -0.4] - 3e-4 * np.sign(g),
                               rtol=0, atol=1e-6)
    # Polyak after the critic's update: target = tau * new critic + (1 - tau) * old target.
    for t, c, before in zip(sac.target_critic.variables, sac.critic.encoder.variables,
                            target_before):
        np.testing.assert_allclose(t.numpy(), 5e-3 * c.numpy() + (1 - 5e-3) * before,
                                   rtol=1e-5, atol=1e-7)
    assert int(sac.gradient_steps.numpy()) == 1
