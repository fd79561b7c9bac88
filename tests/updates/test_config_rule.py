import numpy as np
import pytest
import tensorflow as tf

from tests.updates import rule_checks
from tf_mtl.updates.config_rule import ConFIG, config_weights
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _direction_from_rule(jac):
    return config_weights(tf.constant(jac @ jac.T)).numpy().astype(np.float64) @ jac


def _reference(jac):
    """The authors' construction on explicit vectors: least squares A x = 1 (min-norm),
    unit, then length sum_i <g_i, g_u>."""
    unit = jac / np.linalg.norm(jac, axis=1, keepdims=True)
    x, *_ = np.linalg.lstsq(unit, np.ones(len(jac)), rcond=None)
    g_u = x / np.linalg.norm(x)
    return np.sum(jac @ g_u) * g_u


@pytest.mark.parametrize("seed", range(6))
def test_equal_positive_projections_on_every_unit_gradient(seed):
    jac = rule_checks.random_jacobian(seed)
    d = _direction_from_rule(jac)
    proj = (jac / np.linalg.norm(jac, axis=1, keepdims=True)) @ d
    assert np.all(proj > 0)
    np.testing.assert_allclose(proj, proj[0], rtol=1e-5)
    np.testing.assert_allclose(d, _reference(jac), rtol=1e-5, atol=1e-7)


def test_two_tasks_closed_form():
    """Two tasks: g_u bisects the angle (unit(u_1 + u_2)); length <g_1 + g_2, g_u>."""
    jac = np.array([[2.0, 0.0], [-1.0, 3.0]])
    u = jac / np.linalg.norm(jac, axis=1, keepdims=True)
    g_u = (u[0] + u[1]) / np.linalg.norm(u[0] + u[1])
    np.testing.assert_allclose(_direction_from_rule(jac), (jac.sum(0) @ g_u) * g_u, rtol=1e-6)


def test_more_tasks_than_dimensions_is_the_least_squares_direction():
    jac = rule_checks.random_jacobian(3, m=5, dim=3)
    np.testing.assert_allclose(_direction_from_rule(jac), _reference(jac), rtol=1e-4, atol=1e-6)


def test_train_step_equals_stepping_a_copy():
    net = rule_checks.model(ConFIG())
    rule_checks.check_step(net, *rule_checks.batch(), lambda s, f, l: _reference(s))


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: weighting='uw'"):
        ConFIG(weighting="uw")


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(ConFIG())
    rule_checks.check_config_round_trip(ConFIG())
    rule_checks.check_save_load(lambda: ConFIG(), tmp_path)


def test_composes_with_a_weighting():
    """UW at init scales every task gradient by ½: ConFIG of the ½ g_i."""
    net = rule_checks.model(ConFIG(weighting=UncertaintyWeights()))
    rule_checks.check_step(net, *rule_checks.batch(), lambda s, f, l: _reference(0.5 * s))


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: ConFIG())
