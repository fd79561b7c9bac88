import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.updates import CoV


def _reference(history):
    """Weights at step t from Groenendijk et al.'s definition over the full history
    of losses L_0..L_{t-1} (batch formulas, not the running ones): l_0 = 1,
    l_k = L_k / mean(L_0..L_{k-1}); c = std(l) / mean(l) (population std,
    +1e-8 inside the root); w = m c / sum(c); uniform (1) for t < 2."""
    history = np.asarray(history, np.float64)
    t, m = history.shape if history.size else (0, None)
    if t < 2:
        return np.ones(m)
    ratios = [np.ones(m)] + [history[k] / history[:k].mean(0) for k in range(1, t)]
    ratios = np.stack(ratios)
    c = np.sqrt(ratios.var(0) + 1e-8) / ratios.mean(0)
    return m * c / c.sum()


def test_weights_follow_the_definition_on_a_fixed_loss_sequence():
    rng = np.random.default_rng(0)
    losses = np.abs(rng.standard_normal((9, 3))) + np.linspace(2, 0.5, 9)[:, None]
    rule = CoV()
    rule.build_tasks(["a", "b", "c"])
    for t in range(len(losses)):
        expected = _reference(losses[:t]) if t else np.ones(3)
        np.testing.assert_allclose(rule.current_weights().numpy(), expected, rtol=1e-4)
        rule.update_state(None, tf.constant(losses[t], tf.float32))
    assert abs(rule.current_weights().numpy().sum() - 3) < 1e-5


def test_a_task_with_steady_loss_weighs_less():
    rule = CoV()
    rule.build_tasks(["steady", "moving"])
    for t in range(6):
        rule.update_state(None, tf.constant([1.0, 1.0 + 0.5 * (-1) ** t]))
    w = rule.current_weights().numpy()
    assert w[0] < 0.01 and abs(w.sum() - 2) < 1e-5


def test_a_task_with_no_loss_yet_stays_finite():
    """A task masked out of the first batches has mean loss 0: its ratio is 1 (no scale
    to compare with) until it has a loss, and no weight is ever NaN."""
    rule = CoV()
    rule.build_tasks(["a", "b"])
    for losses in ([0.7, 0.0], [0.6, 0.0], [0.5, 0.5], [0.45, 0.4], [0.4, 0.3]):
        rule.update_state(None, tf.constant(losses, tf.float32))
        assert np.all(np.isfinite(rule.current_weights().numpy())), losses
