import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.updates.small_model import batch as _batch
from tests.updates.small_model import flat as _flat
from tests.updates.small_model import model as _model
from tests.updates.small_model import task_gradients as _task_gradients
from tf_mtl.updates.moco import MoCo, project_to_simplex
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _simplex(v):
    """Projection onto the simplex by bisection on the threshold (not the sort formula)."""
    lo, hi = v.min() - 1.0, v.max()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.maximum(v - mid, 0).sum() > 1 else (lo, mid)
    return np.maximum(v - (lo + hi) / 2, 0)


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


@pytest.mark.parametrize("kwargs", [
    {},                                                        # authors' code
    {"normalize_gradients": False, "lambda_update": "projection", "rho": 0.1, "gamma": 0.5},
])
def test_three_steps_follow_the_update_by_hand(kwargs):
    rule = MoCo(**kwargs)
    beta, bs = rule.beta, rule.beta_sigma
    gamma, gs, rho = rule.gamma, rule.gamma_sigma, rule.rho
    model = _model(rule)
    tracked, lam = 0.0, np.full(3, 1 / 3)
    for t in range(1, 4):
        x, y = _batch(t)
        model.build_for(x)
        losses, g = _task_gradients(model, x, y)
        if rule.normalize_gradients:
            g = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-8) * losses[:, None]
        tracked = tracked - beta / t ** bs * (tracked - g)
        step = lam - gamma / t ** gs * (tracked @ tracked.T + rho * np.eye(3)) @ lam
        lam = _softmax(step) if rule.lambda_update == "softmax" else _simplex(step)
        before = _flat(model)
        model.train_on_batch(x, y)
        np.testing.assert_allclose(_flat(model), before - 0.1 * lam @ tracked, rtol=1e-4,
                                   atol=1e-6)
        np.testing.assert_allclose(rule.task_weights.numpy(), lam, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_projection_is_the_nearest_simplex_point(seed):
    v = np.random.default_rng(seed).standard_normal(2 + seed) * 2
    np.testing.assert_allclose(project_to_simplex(tf.constant(v, tf.float32)).numpy(),
                               _simplex(v), atol=1e-5)


def test_weighting_composes_and_trains():
    uw = UncertaintyWeights()
    model = _model(MoCo(weighting=uw))
    model.train_on_batch(*_batch(1))
    model.train_on_batch(*_batch(2))
    assert not np.allclose(uw.log_vars.numpy(), 0.0)


def test_config_round_trip_and_save_load_keep_the_state(tmp_path):
    rule = MoCo(beta=0.3, lambda_update="projection", weighting=UncertaintyWeights())
    again = MoCo.from_config(rule.get_config())
    assert again.get_config() == rule.get_config()
    model = _model(rule)
    model.train_on_batch(*_batch(1))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").update
    assert isinstance(loaded.weighting, UncertaintyWeights)
    for a, b in zip(rule.variables, loaded.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(loaded.task_state("tracked")[0].numpy(), 0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": 0.0}, "Received: beta=0.0"),
    ({"beta": 1.5}, "Received: beta=1.5"),
    ({"gamma": 0}, "Received: gamma=0"),
    ({"rho": -1.0}, "Received: rho=-1.0"),
    ({"beta_sigma": -0.5}, "Received: beta_sigma=-0.5"),
    ({"gamma_sigma": "a"}, "Received: gamma_sigma='a'"),
    ({"normalize_gradients": 1}, "Received: normalize_gradients=1"),
    ({"lambda_update": "sparsemax"}, "Received: lambda_update='sparsemax'"),
    ({"weighting": "uw"}, "Received: weighting='uw'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MoCo(**kwargs)
