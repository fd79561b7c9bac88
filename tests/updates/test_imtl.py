import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.updates import rule_checks
from tf_mtl.updates.imtl import IMTL, imtl_g_weights
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _alpha(jac):
    return imtl_g_weights(tf.constant(jac @ jac.T)).numpy().astype(np.float64)


def _unit(jac):
    return jac / np.linalg.norm(jac, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
def test_equal_projections_on_every_unit_gradient(seed):
    jac = rule_checks.random_jacobian(seed)
    alpha = _alpha(jac)
    d = alpha @ jac
    proj = _unit(jac) @ d
    np.testing.assert_allclose(proj, proj[0], rtol=1e-5)
    np.testing.assert_allclose(alpha.sum(), 1.0, rtol=1e-6)


def test_two_tasks_closed_form_bisects_the_angle():
    """Two tasks: d lies on the line through g_1 and g_2 and along u_1 + u_2."""
    jac = np.array([[3.0, 0.0, 1.0], [-1.0, 2.0, 0.0]])
    u = _unit(jac)
    # s (u_1 + u_2) = g_1 + t (g_2 - g_1): least squares in (s, t), exact here.
    (s, t), *_ = np.linalg.lstsq(np.stack([u[0] + u[1], jac[0] - jac[1]], 1), jac[0], rcond=None)
    np.testing.assert_allclose(_alpha(jac) @ jac, s * (u[0] + u[1]), rtol=1e-6)
    np.testing.assert_allclose(_alpha(jac), [1 - t, t], rtol=1e-6)


def _imtl_g_direction(jac, shared):
    """IMTL-G weights written from the paper on explicit vectors (NumPy inverse)."""
    u = _unit(jac)
    dmat, umat = jac[:1] - jac[1:], u[:1] - u[1:]
    rest = jac[0] @ umat.T @ np.linalg.inv(dmat @ umat.T)
    return np.concatenate([[1 - rest.sum()], rest]) @ shared


def _set_scales(net, scales):
    x, _ = rule_checks.batch()
    net.build_for(x)
    net.update.loss_scales.assign(scales)


@pytest.mark.parametrize("on", ["parameters", "features"])
def test_gradient_mode_step(on):
    net = rule_checks.model(IMTL(mode="gradient", on=on))
    rule_checks.check_step(net, *rule_checks.batch(), lambda s, f, l: _imtl_g_direction(
        s if on == "parameters" else f, s))


def test_loss_mode_step_and_the_scales_gradient():
    """IMTL-L: shared step along sum e^{s_i} g_i; s moves by -lr (e^{s_i} L_i - 1)."""
    scales = np.array([0.3, -0.5, 0.1])
    net = rule_checks.model(IMTL(mode="loss"))
    _set_scales(net, scales)
    x, y = rule_checks.batch()
    _, _, losses = rule_checks.task_gradients(net, x, y)
    rule_checks.check_step(net, x, y, lambda s, f, l: np.exp(scales) @ s)
    np.testing.assert_allclose(net.update.loss_scales.numpy(),
                               scales - 0.1 * (np.exp(scales) * losses - 1.0), rtol=1e-5)


@pytest.mark.parametrize("on", ["parameters", "features"])
def test_hybrid_balances_the_scaled_losses_gradients(on):
    scales = np.array([0.7, -0.2, 0.0])
    net = rule_checks.model(IMTL(mode="hybrid", on=on))
    _set_scales(net, scales)
    e = np.exp(scales)[:, None]
    rule_checks.check_step(net, *rule_checks.batch(), lambda s, f, l: _imtl_g_direction(
        e * (s if on == "parameters" else f), e * s))


def test_loss_weights_scale_the_gradients_it_balances():
    net = rule_checks.model(IMTL(mode="gradient", on="parameters"),
                            loss_weights={"a": 2.0, "b": 1.0, "c": 0.5})
    w = np.array([2.0, 1.0, 0.5])[:, None]
    rule_checks.check_step(net, *rule_checks.batch(),
                           lambda s, f, l: _imtl_g_direction(w * s, w * s))


def test_one_task_is_refused():
    keras.utils.set_random_seed(0)
    with pytest.raises(ValueError, match=r"IMTL .*Received: tasks=\['a'\]"):
        tf_mtl.MultiTaskModel(keras.Sequential([keras.layers.Dense(3)]),
                              {"a": keras.layers.Dense(1)}, {"a": "mse"}, update=IMTL())


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "grad"}, "Received: mode='grad'"),
    ({"on": "encoder"}, "Received: on='encoder'"),
    ({"weighting": 1}, "Received: weighting=1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IMTL(**kwargs)


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(IMTL(mode="gradient"))
    rule_checks.check_config_round_trip(IMTL(mode="loss", on="parameters"))
    _, loaded = rule_checks.check_save_load(lambda: IMTL(), tmp_path)
    assert np.any(loaded.update.loss_scales.numpy() != 0)   # trained, saved, reloaded


def test_composes_with_a_weighting():
    """UW at init (½ e^{-0}) times e^{s} = ½: IMTL-G of the ½ g_i, and UW's own
    variables still train (the heads' objective is the weighting's, scaled by e^{s})."""
    net = rule_checks.model(IMTL(mode="hybrid", on="parameters", weighting=UncertaintyWeights()))
    rule_checks.check_step(net, *rule_checks.batch(),
                           lambda s, f, l: _imtl_g_direction(0.5 * s, 0.5 * s))
    assert np.all(net.update.weighting.log_vars.numpy() != 0)
    assert np.all(net.update.loss_scales.numpy() != 0)


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: IMTL())
