"""SAC's pieces against hand computations: soft target, temperature loss, Polyak update,
the tanh-Gaussian log-probability (NumPy formula and a numerical change of variables)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import norm

from tf_mtl.rl.critic import TwinBellmanLoss, TwinQNetwork, polyak_update
from tf_mtl.rl.policy import TanhGaussianPolicy, tanh_gaussian_log_prob
from tf_mtl.rl.sac import soft_target, temperature_loss

RNG = np.random.default_rng(0)


def test_soft_target_by_hand():
    r = np.array([1.0, -0.5, 2.0], np.float32)
    terminal = np.array([0.0, 1.0, 0.0], np.float32)
    next_q = np.array([[3.0, 1.0], [5.0, 6.0], [-1.0, 2.0]], np.float32)  # min: col 1, 0, 0
    log_pi = np.array([-1.5, 0.3, 0.8], np.float32)
    alpha = np.array([0.2, 0.5, 0.1], np.float32)
    want = 2.0 * r + 0.9 * (1 - terminal) * (np.array([1.0, 5.0, -1.0]) - alpha * log_pi)
    got = soft_target(r, terminal, next_q, log_pi, alpha, discount=0.9, reward_scale=2.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # The larger of the two critics would give another value: the minimum is used.
    assert not np.allclose(got.numpy(), 2.0 * r + 0.9 * (1 - terminal) * (
        next_q.max(1) - alpha * log_pi))


def test_temperature_loss_value_and_gradient():
    log_alpha = tf.Variable(0.3)
    log_pi = tf.constant(RNG.normal(size=16).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(log_pi)
        loss = temperature_loss(log_alpha, log_pi, target_entropy=-4.0)
    np.testing.assert_allclose(loss.numpy(), -np.mean(0.3 * (log_pi.numpy() - 4.0)), rtol=1e-6)
    # d/d log_alpha = -mean(log_pi + H); log_pi is held constant (no gradient to the policy).
    np.testing.assert_allclose(tape.gradient(loss, log_alpha).numpy(),
                               -np.mean(log_pi.numpy() - 4.0), rtol=1e-6)
    assert tape.gradient(loss, log_pi) is None


def test_polyak_update_by_hand():
    target = [tf.Variable(RNG.normal(size=(3, 2)).astype(np.float32)), tf.Variable(1.0)]
    source = [tf.Variable(RNG.normal(size=(3, 2)).astype(np.float32)), tf.Variable(5.0)]
    before = [t.numpy() for t in target]
    polyak_update(target, source, 0.05)
    for t, s, b in zip(target, source, before):
        np.testing.assert_allclose(t.numpy(), 0.05 * s.numpy() + 0.95 * b, rtol=1e-6)
    with pytest.raises(ValueError, match="pair up"):
        polyak_update(target, source[:1], 0.05)


def test_twin_bellman_loss_by_hand():
    y = RNG.normal(size=(5, 1)).astype(np.float32)
    q = RNG.normal(size=(5, 2)).astype(np.float32)
    want = 0.5 * np.mean((q[:, 0] - y[:, 0]) ** 2) + 0.5 * np.mean((q[:, 1] - y[:, 0]) ** 2)
    np.testing.assert_allclose(TwinBellmanLoss()(y, q).numpy(), want, rtol=1e-6)


def test_tanh_gaussian_log_prob_against_numpy():
    u = RNG.normal(size=(6, 3)) * 2
    mean, log_std = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3)) * 0.5
    gaussian = norm.logpdf(u, mean, np.exp(log_std))
    want = np.sum(gaussian - np.log(1 - np.tanh(u) ** 2), axis=1)
    got = tanh_gaussian_log_prob(*(tf.constant(a, tf.float64) for a in (u, mean, log_std)))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)


def test_tanh_gaussian_density_is_the_change_of_variables():
    """exp(log_prob) is the derivative of P(tanh(u) <= a) = prod Phi((atanh(a) - mu) / sigma)."""
    mean, log_std = np.array([0.3, -0.7]), np.array([-0.2, 0.4])
    a = np.array([0.45, -0.6])
    h = 1e-5

    def cdf(point):
        return np.prod(norm.cdf((np.arctanh(point) - mean) / np.exp(log_std)))

    # Mixed second difference of the 2-d CDF: the joint density at a.
    density = (cdf(a + [h, h]) - cdf(a + [h, -h]) - cdf(a + [-h, h]) + cdf(a - [h, h])) / (
        4 * h * h)
    got = tanh_gaussian_log_prob(tf.constant(np.arctanh(a)[None]), tf.constant(mean[None]),
                                 tf.constant(log_std[None]))
    np.testing.assert_allclose(np.exp(got.numpy()[0]), density, rtol=1e-4)


def test_policy_sample_is_reparameterized_and_clipped():
    policy = TanhGaussianPolicy(action_dim=2, hidden_units=[8])
    states = tf.constant(RNG.normal(size=(4, 5)).astype(np.float32))
    policy.build(states.shape)
    seed = tf.constant([3, 9], tf.int64)
    action, log_prob = policy.sample(states, seed)
    mean, log_std = (t.numpy() for t in policy.distribution(states))
    noise = tf.random.stateless_normal([4, 2], seed=seed).numpy()
    u = mean + np.exp(log_std) * noise
    np.testing.assert_allclose(action.numpy(), np.tanh(u), rtol=1e-5, atol=1e-6)
    want = np.sum(norm.logpdf(u, mean, np.exp(log_std)) - np.log(1 - np.tanh(u) ** 2), 1)
    np.testing.assert_allclose(log_prob.numpy(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(policy(states).numpy(), np.tanh(mean), rtol=1e-6)
    # log sigma is clipped to [-20, 2] (softlearning).
    out = policy.net[-1]
    out.kernel.assign(np.zeros_like(out.kernel.numpy()))
    out.bias.assign(np.array([0, 0, 50.0, -50.0], np.float32))
    np.testing.assert_allclose(policy.distribution(states)[1].numpy(),
                               np.tile([2.0, -20.0], (4, 1)))


def test_twin_q_network_has_two_independent_critics():
    critic = TwinQNetwork(hidden_units=[4, 4])
    x = tf.constant(RNG.normal(size=(3, 6)).astype(np.float32))
    q = critic(x)
    assert q.shape == (3, 2)
    with tf.GradientTape() as tape:
        first = tf.reduce_sum(critic(x)[:, 0])
    q2 = {id(v) for layer in critic.q2 for v in layer.trainable_variables}
    grads = tape.gradient(first, critic.trainable_variables,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    norms = [(id(v) in q2, float(tf.norm(g))) for v, g in zip(critic.trainable_variables, grads)]
    assert all(n == 0 for is_q2, n in norms if is_q2)
    assert any(n > 0 for is_q2, n in norms if not is_q2)


@pytest.mark.parametrize("kwargs, match", [
    ({"action_dim": 0}, "action_dim"), ({"action_dim": 2, "hidden_units": []}, "hidden_units")])
def test_policy_refuses_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=f"Received: {match}"):
        TanhGaussianPolicy(**kwargs)
