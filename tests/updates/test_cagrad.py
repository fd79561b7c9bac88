import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import minimize

from tests.updates import rule_checks
from tf_mtl.updates.cagrad import CAGrad, cagrad_weights
from tf_mtl.updates.uncertainty import UncertaintyWeights

_weights = tf.function(cagrad_weights)  # graph mode: a fast loop


def _coefficients(jac, c):
    return _weights(tf.constant(jac @ jac.T), c).numpy().astype(np.float64)


def _direction(jac, c):
    """CAGrad's d (before rescaling) from the rule's coefficients, in float64."""
    return _coefficients(jac, c) @ jac


def _ball_optimum(jac, c):
    """The primal problem, written from the paper with SciPy (SLSQP over (d, s)):
    max s  subject to  <g_i, d> >= s,  ||d - g0||² <= c²||g0||²."""
    m, n = jac.shape
    g0 = jac.mean(0)
    radius = c * np.linalg.norm(g0)
    cons = [{"type": "ineq", "fun": lambda z: jac @ z[:n] - z[n], "jac": lambda z: np.hstack(
                [jac, -np.ones((m, 1))])},
            {"type": "ineq", "fun": lambda z: radius ** 2 - np.sum((z[:n] - g0) ** 2),
             "jac": lambda z: np.concatenate([-2 * (z[:n] - g0), [0.0]])}]
    start = np.concatenate([g0, [np.min(jac @ g0)]])
    res = minimize(lambda z: -z[n], start, jac=lambda z: np.concatenate([np.zeros(n), [-1.0]]),
                   constraints=cons, method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000})
    return res.x[:n]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("c", [0.4, 5.0])
def test_d_maximises_the_worst_task_over_the_ball(seed, c):
    """Dual optimality: d is in the ball and its worst-task value matches SciPy's
    maximiser within 1e-6 of the problem's scale; the two d agree."""
    jac = rule_checks.random_jacobian(seed)
    d, ref = _direction(jac, c), _ball_optimum(jac, c)
    g0 = jac.mean(0)
    radius = c * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) <= radius * (1 + 1e-6)
    scale = np.linalg.norm(jac, axis=1).max() * np.linalg.norm(d)
    assert np.min(jac @ d) >= np.min(jac @ ref) - 1e-6 * scale
    np.testing.assert_allclose(d, ref, rtol=0, atol=1e-6 * np.linalg.norm(ref) * 10)


@pytest.mark.parametrize("seed", range(4))
def test_duality_gap_certifies_the_simplex_solution(seed):
    """For the w behind d: F(w) = <g_w, g0> + r||g_w|| equals min_i <g_i, d> (zero gap)."""
    jac = rule_checks.random_jacobian(seed + 10)
    m = len(jac)
    coeffs = _coefficients(jac, 0.4)
    g0 = jac.mean(0)
    r = 0.4 * np.linalg.norm(g0)
    lam_w = coeffs - 1.0 / m                 # λ w with λ = r / ||g_w||, w on the simplex
    w = lam_w / lam_w.sum()
    gw = w @ jac
    primal = gw @ g0 + r * np.linalg.norm(gw)
    dual = np.min(jac @ (coeffs @ jac))
    assert np.all(w >= -1e-7)
    assert abs(primal - dual) <= 1e-6 * abs(primal) + 1e-9


def test_c_zero_is_the_mean_gradient():
    jac = rule_checks.random_jacobian(0)
    np.testing.assert_allclose(_coefficients(jac, 0.0),
                               np.full(len(jac), 1 / len(jac)), rtol=1e-7)


def test_mean_gradient_when_zero_is_in_the_hull():
    """g_2 = -g_1: the min over the simplex has g_w = 0, and d = g0 (= 0 here)."""
    jac = np.array([[1.0, 2.0], [-1.0, -2.0], [0.5, 0.0]])
    d = _direction(jac, 0.4)
    np.testing.assert_allclose(d, _ball_optimum(jac, 0.4), atol=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_opposite_gradients_reach_the_balls_best_worst_case(seed):
    """Found in review: with g_m = -k g_1 the optimal g_w vanishes, λ exploded and the
    float32 coefficients cancelled (d off the ball, min_i <g_i, d> = -1.56 where 0 is
    attainable). Now d stays in the ball and its worst task reaches SciPy's optimum (0 where
    some d in the ball has every <g_i, d> >= 0, negative otherwise)."""
    rng = np.random.default_rng(seed)
    m, n = rng.integers(3, 6), rng.integers(7, 14)
    jac = rng.standard_normal((m, n))
    jac[-1] = -rng.uniform(0.5, 2.0) * jac[0]
    d, g0 = _direction(jac, 0.4), jac.mean(0)
    radius = 0.4 * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) <= radius * (1 + 1e-5)
    scale = np.linalg.norm(jac, axis=1).max() * max(np.linalg.norm(d), radius)
    assert np.min(jac @ d) <= 1e-9 * scale  # 0 is in the hull: no d does better than 0
    assert np.min(jac @ d) >= np.min(jac @ _ball_optimum(jac, 0.4)) - 1e-5 * scale


def test_runs_under_xla():
    jac = rule_checks.random_jacobian(2)
    fn = tf.function(lambda g: cagrad_weights(g, 0.4), jit_compile=True)
    np.testing.assert_allclose(fn(tf.constant(jac @ jac.T, tf.float32)).numpy(),
                               cagrad_weights(tf.constant(jac @ jac.T, tf.float32), 0.4).numpy(),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kwargs, match", [
    ({"c": -0.1}, "Received: c=-0.1"),
    ({"c": "big"}, "Received: c='big'"),
    ({"rescale": 3}, "Received: rescale=3"),
    ({"rescale": True}, "Received: rescale=True"),
    ({"max_iter": 0}, "Received: max_iter=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CAGrad(**kwargs)


@pytest.mark.parametrize("rescale, divisor", [(1, 1 + 0.4 ** 2), (2, 1.4)])
def test_train_step_equals_stepping_a_copy(rescale, divisor):
    net = rule_checks.model(CAGrad(c=0.4, rescale=rescale))
    rule_checks.check_step(net, *rule_checks.batch(),
                           lambda s, f, l: _ball_optimum(s, 0.4) / divisor)


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(CAGrad())
    rule_checks.check_config_round_trip(CAGrad(c=0.5, rescale=2, max_iter=100))
    rule_checks.check_save_load(lambda: CAGrad(), tmp_path)


def test_composes_with_a_weighting():
    """UW at init scales every task gradient by ½: CAGrad of the ½ g_i."""
    net = rule_checks.model(CAGrad(weighting=UncertaintyWeights()))
    rule_checks.check_step(net, *rule_checks.batch(),
                           lambda s, f, l: _ball_optimum(0.5 * s, 0.4) / (1 + 0.4 ** 2))


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: CAGrad())
