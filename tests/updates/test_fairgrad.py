import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import least_squares

from tests.updates import rule_checks
from tf_mtl.updates.fairgrad import FairGrad, fair_weights
from tf_mtl.updates.nash_mtl import NashMTL
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _solve(jac, alpha):
    return fair_weights(tf.constant(jac @ jac.T), alpha).numpy().astype(np.float64)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 10.0])
def test_solves_the_fairness_system(seed, alpha):
    """(G w)_i = w_i^{-1/α}, w > 0, on random full-rank Jacobians (2-6 tasks)."""
    jac = rule_checks.random_jacobian(seed)
    w = _solve(jac, alpha)
    assert np.all(w > 0)
    rhs = w ** (-1 / alpha)
    np.testing.assert_allclose((jac @ jac.T) @ w, rhs, rtol=1e-5)


def test_matches_scipy_least_squares_as_the_authors_solve_it():
    jac = rule_checks.random_jacobian(7, m=4, dim=9)
    gram = jac @ jac.T
    ref = least_squares(lambda x: gram @ x - x ** (-1 / 2.0), np.ones(4) / 4, bounds=(0, np.inf),
                        xtol=1e-15, ftol=1e-15, gtol=1e-15).x
    np.testing.assert_allclose(_solve(jac, 2.0), ref, rtol=1e-5)


def test_orthogonal_closed_form():
    """Orthogonal gradients: ||g_i||² w_i = w_i^{-1/α}, so w_i = ||g_i||^{-2α/(α+1)}."""
    jac = np.diag([0.5, 3.0, 7.0])
    for alpha in [0.5, 1.0, 3.0]:
        np.testing.assert_allclose(_solve(jac, alpha), np.diag(jac) ** (-2 * alpha / (alpha + 1)),
                                   rtol=1e-6)


def test_alpha_one_is_nash_mtl_and_large_alpha_tends_to_max_min_fairness():
    jac = rule_checks.random_jacobian(3, m=3, dim=8)
    d = {a: _solve(jac, a) @ jac for a in [1.0, 100.0]}
    # Proportional fairness: <g_i, d> w_i = 1 (Nash-MTL's condition).
    np.testing.assert_allclose(jac @ d[1.0] * _solve(jac, 1.0), 1.0, rtol=1e-5)
    # α → ∞: (G w)_i = w_i^{-1/α} → 1: every task improves equally (max-min fairness).
    np.testing.assert_allclose(jac @ d[100.0], 1.0, rtol=0.1)
    assert np.ptp(jac @ d[100.0]) < 0.2 * np.ptp(jac @ d[1.0])


def test_no_solution_gives_the_regularised_zero_direction():
    """g_2 = -g_1: no positive solution; the ridge gives equal large weights, d ≈ 0."""
    jac = np.array([[1.0, 2.0], [-1.0, -2.0]])
    w = _solve(jac, 1.0)
    assert np.all(np.isfinite(w)) and w[0] > 100
    np.testing.assert_allclose(w[0], w[1], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0}, "Received: alpha=0"),
    ({"alpha": -1.0}, "Received: alpha=-1.0"),
    ({"alpha": float("inf")}, "Received: alpha=inf"),
    ({"alpha": "1"}, "Received: alpha='1'"),
    ({"max_iter": 0}, "Received: max_iter=0"),
    ({"weighting": "uw"}, "Received: weighting='uw'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FairGrad(**kwargs)


def _reference(alpha):
    def direction(shared, feats, losses):
        gram = shared @ shared.T
        w = least_squares(lambda x: gram @ x - x ** (-1 / alpha), np.ones(len(gram)),
                          bounds=(0, np.inf), xtol=1e-15, ftol=1e-15, gtol=1e-15).x
        return w @ shared
    return direction


def test_train_step_equals_stepping_a_copy():
    net = rule_checks.model(FairGrad(alpha=2.0))
    rule_checks.check_step(net, *rule_checks.batch(), _reference(2.0))


def test_composes_with_a_weighting():
    """UW at init scales every task gradient by ½: FairGrad of the ½ g_i."""
    net = rule_checks.model(FairGrad(weighting=UncertaintyWeights()))
    ref = _reference(1.0)
    rule_checks.check_step(net, *rule_checks.batch(),
                           lambda s, f, l: ref(0.5 * s, f, l))


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(FairGrad(alpha=2.0))
    rule_checks.check_config_round_trip(FairGrad(alpha=3.0, max_iter=50))
    rule_checks.check_save_load(lambda: FairGrad(alpha=2.0), tmp_path)


def test_nash_and_fairgrad_alpha_one_agree_in_a_step():
    """NashMTL(max_norm=0) and FairGrad(1) are the same rule."""
    a = rule_checks.model(NashMTL(max_norm=0))
    b = rule_checks.model(FairGrad(alpha=1.0))
    for net in (a, b):
        net.train_on_batch(*rule_checks.batch())
    for u, v in zip(a.shared_variables, b.shared_variables):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-6)


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: FairGrad(alpha=2.0))
