import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.updates import DWA


def _reference(history, temperature, period):
    """Liu et al.: w(t) = m softmax(r / T), r_k = Lbar_k(t-1) / Lbar_k(t-2) over the
    last two complete periods of mean losses; 1 before two periods are complete."""
    history = np.asarray(history, np.float64)
    m = 3
    means = [history[p * period:(p + 1) * period].mean(0)
             for p in range(len(history) // period)]
    if len(means) < 2:
        return np.ones(m)
    r = means[-1] / means[-2]
    e = np.exp(r / temperature)
    return m * e / e.sum()


@pytest.mark.parametrize("temperature, period", [(2.0, 1), (0.5, 1), (2.0, 3)])
def test_weights_follow_the_definition_on_a_fixed_loss_sequence(temperature, period):
    rng = np.random.default_rng(1)
    losses = np.abs(rng.standard_normal((10, 3))) + 0.2
    rule = DWA(temperature=temperature, period=period)
    rule.build_tasks(["a", "b", "c"])
    for t in range(len(losses)):
        np.testing.assert_allclose(rule.current_weights().numpy(),
                                   _reference(losses[:t], temperature, period), rtol=1e-5)
        rule.update_state(None, tf.constant(losses[t], tf.float32))


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0}, "Received: temperature=0"),
    ({"temperature": -1.0}, "Received: temperature=-1.0"),
    ({"period": 0}, "Received: period=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DWA(**kwargs)


def test_a_period_of_zero_loss_gives_ratio_one_not_nan():
    """Liu et al. divide by L̄(t-2); a task masked out of a whole period has L̄ = 0: its
    rate is unknown, so r = 1 (the other tasks' r follow the definition)."""
    rule = DWA(temperature=2.0, period=1)
    rule.build_tasks(["a", "b", "c"])
    for losses in ([0.5, 0.0, 1.0], [0.4, 0.3, 0.8]):
        rule.update_state(None, tf.constant(losses, tf.float32))
    r = np.array([0.4 / 0.5, 1.0, 0.8 / 1.0])
    np.testing.assert_allclose(rule.current_weights().numpy(),
                               3 * np.exp(r / 2) / np.exp(r / 2).sum(), rtol=1e-5)
