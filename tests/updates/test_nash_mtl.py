import numpy as np
import pytest
import tensorflow as tf

from tests.updates import rule_checks
from tf_mtl.updates.fairgrad import fair_weights
from tf_mtl.updates.nash_mtl import NashMTL
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _alpha(jac):
    return fair_weights(tf.constant(jac @ jac.T), 1.0).numpy().astype(np.float64)


@pytest.mark.parametrize("seed", range(6))
def test_every_task_gets_the_same_share(seed):
    """α_i <g_i, d> = 1 with d = sum α_i g_i, α > 0, on random full-rank Jacobians."""
    jac = rule_checks.random_jacobian(seed)
    alpha = _alpha(jac)
    assert np.all(alpha > 0)
    np.testing.assert_allclose(alpha * (jac @ (alpha @ jac)), 1.0, rtol=1e-5)


def test_two_orthogonal_tasks_closed_form():
    jac = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.25]])
    np.testing.assert_allclose(_alpha(jac), [0.5, 4.0], rtol=1e-6)   # 1 / ||g_i||


def test_two_tasks_closed_form():
    """Two tasks, G = [[a, c], [c, b]]: a x + c y = 1/x and c x + b y = 1/y give
    y = (1 - a x²)/(c x) and (a²b - a c²) x⁴ - 2ab x² + b = 0; its one root with
    x, y > 0 is the solution."""
    jac = np.array([[1.0, 0.5], [-0.3, 2.0]])
    (a, c), (_, b) = jac @ jac.T
    x = np.roots([a * a * b - a * c * c, 0, -2 * a * b, 0, b])
    x = [r.real for r in x if abs(r.imag) < 1e-12 and r.real > 0]
    sols = [(r, (1 - a * r * r) / (c * r)) for r in x if (1 - a * r * r) / (c * r) > 0]
    assert len(sols) == 1
    np.testing.assert_allclose(_alpha(jac), sols[0], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"update_weights_every": 0}, "Received: update_weights_every=0"),
    ({"update_weights_every": 1.5}, "Received: update_weights_every=1.5"),
    ({"max_norm": -1.0}, "Received: max_norm=-1.0"),
    ({"max_norm": None}, "Received: max_norm=None"),
    ({"max_iter": 0}, "Received: max_iter=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NashMTL(**kwargs)


def _nash_direction(shared, max_norm):
    gram = shared @ shared.T
    alpha = _alpha(shared)
    assert np.allclose(gram @ alpha, 1 / alpha, rtol=1e-5)
    d = alpha @ shared
    norm = np.linalg.norm(d)
    return d * min(1.0, max_norm / norm) if max_norm > 0 else d


@pytest.mark.parametrize("max_norm", [0.0, 1.0, 0.05])
def test_train_step_equals_stepping_a_copy(max_norm):
    net = rule_checks.model(NashMTL(max_norm=max_norm))
    x, y = rule_checks.batch()
    rule_checks.check_step(net, x, y, lambda s, f, l: _nash_direction(s, max_norm))


def test_update_weights_every_reuses_the_last_weights():
    rule = NashMTL(update_weights_every=2, max_norm=0)
    net = rule_checks.model(rule)
    x0, y0 = rule_checks.batch(0)
    net.build_for(x0)
    shared, _, _ = rule_checks.task_gradients(net, x0, y0)
    net.train_on_batch(x0, y0)
    first = rule.alpha.numpy().copy()
    np.testing.assert_allclose(first, _alpha(shared), rtol=1e-5)
    x1, y1 = rule_checks.batch(1)
    shared, _, _ = rule_checks.task_gradients(net, x1, y1)
    rule_checks.check_step(net, x1, y1, lambda s, f, l: first @ s)   # step 2: the old α
    np.testing.assert_array_equal(rule.alpha.numpy(), first)
    net.train_on_batch(*rule_checks.batch(2))                       # step 3: new α
    assert not np.allclose(rule.alpha.numpy(), first)
    assert int(rule.calls.numpy()) == 3


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(NashMTL())
    rule_checks.check_config_round_trip(NashMTL(update_weights_every=3, max_norm=0.5))
    _, loaded = rule_checks.check_save_load(lambda: NashMTL(update_weights_every=2), tmp_path)
    assert np.any(loaded.update.alpha.numpy() != 0)


def test_composes_with_a_weighting():
    """UW at init scales every task gradient by ½: Nash-MTL of the ½ g_i."""
    net = rule_checks.model(NashMTL(max_norm=0, weighting=UncertaintyWeights()))
    rule_checks.check_step(net, *rule_checks.batch(),
                           lambda s, f, l: _nash_direction(0.5 * s, 0.0))


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: NashMTL())


@pytest.mark.parametrize("ratio", [1e-2, 1e-4, 1e-6])
def test_a_task_with_a_tiny_gradient_keeps_its_equation(ratio):
    """Found in review: a ridge on the mean diagonal swamped a small task's G_ii
    (alpha_3 (G alpha)_3 = 0.56 at ratio 1e-4). Three unit gradients in 10-D, the third
    scaled by ``ratio``: alpha_i (G alpha)_i = 1 for every task."""
    rng = np.random.default_rng(3)
    g = rng.standard_normal((3, 10))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    g[2] *= ratio
    gram = g @ g.T
    alpha = fair_weights(tf.constant(gram), 1.0).numpy().astype(np.float64)
    np.testing.assert_allclose(alpha * (gram @ alpha), 1.0, rtol=1e-4)
