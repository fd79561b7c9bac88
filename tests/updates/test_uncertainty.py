import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.updates import UncertaintyWeights


def _model(update, lr=0.1):
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.layers.Dense(5, activation="tanh")])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in "ab"},
                                  {t: "mse" for t in "ab"}, loss_weights={"a": 2.0},
                                  update=update)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    return model


def _batch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 3)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in "ab"}


@pytest.mark.parametrize("form", ["kendall", "log1p"])
def test_one_sgd_step_follows_the_formula(form):
    """Kendall: objective sum ½e^{-s}lw L + ½s; log1p: sum lw L/ε² + log(1+ε²).
    Shared parameters step along sum w_i lw_i g_i; the variables along d objective."""
    rule = UncertaintyWeights(form=form)
    model = _model(rule)
    x, y = _batch()
    model.build_for(x)
    v = np.array([0.3, -0.2]) if form == "kendall" else np.array([0.8, 1.5])
    rule.log_vars.assign(v)
    with tf.GradientTape(persistent=True) as tape:
        pred = model(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"]
    L = np.array([float(l) for l in losses])
    lw = np.array([2.0, 1.0])
    if form == "kendall":
        w = 0.5 * np.exp(-v)
        dv = -0.5 * np.exp(-v) * lw * L + 0.5
    else:
        w = 1 / v ** 2
        dv = -2 * lw * L / v ** 3 + 2 * v / (1 + v ** 2)
    grads = [np.concatenate([g.numpy().ravel() for g in tape.gradient(l, model.shared_variables)])
             for l in losses]
    before = np.concatenate([x.numpy().ravel() for x in model.shared_variables])
    logs = model.train_on_batch(x, y, return_dict=True)
    after = np.concatenate([x.numpy().ravel() for x in model.shared_variables])
    np.testing.assert_allclose(after, before - 0.1 * (w[0] * lw[0] * grads[0]
                                                        + w[1] * lw[1] * grads[1]),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rule.log_vars.numpy(), v - 0.1 * dv, rtol=1e-5)
    penalty = 0.5 * v.sum() if form == "kendall" else np.log1p(v ** 2).sum()
    np.testing.assert_allclose(logs["loss"], (w * lw * L).sum() + penalty, rtol=1e-5)
    np.testing.assert_allclose(logs["uncertainty/a"], w[0] * lw[0], rtol=1e-5)


def test_bad_form():
    with pytest.raises(ValueError, match="Received: form='kendal'"):
        UncertaintyWeights(form="kendal")
