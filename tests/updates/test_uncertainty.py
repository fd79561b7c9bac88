import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.uncertainty import UncertaintyWeights


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


FORMS = {  # per task: (weight, d weight / d v, penalty, d penalty / d v), by hand
    "regression": (lambda v: 0.5 * np.exp(-v), lambda v: -0.5 * np.exp(-v),
                   lambda v: 0.5 * v, lambda v: 0.5 + 0 * v),
    "classification": (lambda v: np.exp(-v), lambda v: -np.exp(-v),
                       lambda v: 0.5 * v, lambda v: 0.5 + 0 * v),
    "log1p": (lambda v: 1 / v ** 2, lambda v: -2 / v ** 3,
              lambda v: np.log1p(v ** 2), lambda v: 2 * v / (1 + v ** 2)),
}
FORMS["kendall"] = FORMS["regression"]
VALUES = {"regression": 0.3, "kendall": 0.3, "classification": -0.2, "log1p": 1.5}


@pytest.mark.parametrize("forms", [
    ("regression", "regression"), ("kendall", "kendall"), ("classification", "classification"),
    ("log1p", "log1p"), ("classification", "regression"), ("log1p", "classification"),
])
def test_one_sgd_step_follows_the_formula(forms):
    """Objective sum_i w(v_i) lw_i L_i + pen(v_i) with, per task, regression
    ½e^{-s}, ½s; classification e^{-s}, ½s; log1p 1/ε², log(1+ε²). Shared parameters step
    along sum w_i lw_i g_i; the variables along d objective / d v."""
    form = forms[0] if forms[0] == forms[1] else dict(zip("ab", forms))
    rule = UncertaintyWeights(form=form)
    model = _model(rule)
    x, y = _batch()
    model.build_for(x)
    np.testing.assert_array_equal(rule.log_vars.numpy(),
                                  [1.0 if f == "log1p" else 0.0 for f in forms])   # the inits
    v = np.array([VALUES[f] for f in forms]) + np.array([0.1, -0.1])
    rule.log_vars.assign(v)
    with tf.GradientTape(persistent=True) as tape:
        pred = model(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"]
    L = np.array([float(l) for l in losses])
    lw = np.array([2.0, 1.0])
    parts = [[FORMS[f][k](v[i]) for i, f in enumerate(forms)] for k in range(4)]
    w, dw, pen, dpen = map(np.array, parts)
    dv = dw * lw * L + dpen
    grads = [np.concatenate([g.numpy().ravel() for g in tape.gradient(l, model.shared_variables)])
             for l in losses]
    before = np.concatenate([x.numpy().ravel() for x in model.shared_variables])
    logs = model.train_on_batch(x, y, return_dict=True)
    after = np.concatenate([x.numpy().ravel() for x in model.shared_variables])
    np.testing.assert_allclose(after, before - 0.1 * (w[0] * lw[0] * grads[0]
                                                        + w[1] * lw[1] * grads[1]),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rule.log_vars.numpy(), v - 0.1 * dv, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], (w * lw * L).sum() + pen.sum(), rtol=1e-5)
    np.testing.assert_allclose(logs["uncertainty/a"], w[0] * lw[0], rtol=1e-5)


@pytest.mark.parametrize("form, match", [
    ("kendal", "Received: form='kendal'"),
    (None, "Received: form=None"),
    ({"a": "regression", "b": "softmax"}, "`form` values .*Received: form=.*'softmax'"),
])
def test_bad_form(form, match):
    with pytest.raises(ValueError, match=match):
        UncertaintyWeights(form=form)


@pytest.mark.parametrize("form, match", [
    ({"a": "regression"}, "`form` must name every task.*Missing: \\['b'\\].*Received"),
    ({"a": "log1p", "b": "log1p", "c": "log1p"}, "`form`.*unknown: \\['c'\\].*Received"),
])
def test_per_task_form_must_name_every_task(form, match):
    with pytest.raises(ValueError, match=match):
        _model(UncertaintyWeights(form=form))


def test_old_configs_load_and_configs_round_trip():
    old = UncertaintyWeights.from_config({"name": "uncertainty", "form": "kendall"})
    assert old.form == "regression"
    mixed = UncertaintyWeights(form={"b": "kendall", "a": "classification"})
    again = UncertaintyWeights.from_config(mixed.get_config())
    assert again.form == {"a": "classification", "b": "regression"}


def test_train_step_under_adam_equals_stepping_a_copy():
    """Mixed forms under Adam, after a warm-up step: a copy stepped with the hand-computed
    gradients (shared: sum w_i lw_i g_i; heads: of sum w_i lw_i L_i; the uncertainty
    variables: d objective / d v) matches the real step, variable by variable."""
    forms = ("log1p", "classification")
    rule = UncertaintyWeights(form=dict(zip("ab", forms)))
    model = _model(rule)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.train_on_batch(*_batch())
    x, y = _batch()
    x, y = x[::-1].copy(), {t: v[::-1].copy() for t, v in y.items()}
    clone, opt = copy_model(model, x)
    v = clone.update.log_vars.numpy().astype(np.float64)
    w, dw, _, dpen = (np.array([FORMS[f][k](v[i]) for i, f in enumerate(forms)])
                      for k in range(4))
    lw = np.array([2.0, 1.0])
    with tf.GradientTape() as tape:
        pred = clone(x, training=True)
        losses = tf.stack([keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"])
        weighted = tf.reduce_sum(tf.constant(w * lw, tf.float32) * losses)
    net = clone.shared_variables + clone.head_variables
    grads = tape.gradient(weighted, net)
    dv = dw * lw * losses.numpy() + dpen
    opt.apply(grads + [tf.constant(dv, tf.float32)], net + [clone.update.log_vars])
    model.train_on_batch(x, y)
    for got, want in zip(model.shared_variables + model.head_variables + [rule.log_vars],
                         net + [clone.update.log_vars]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_mixed_forms_save_and_load(tmp_path):
    model = _model(UncertaintyWeights(form={"a": "classification", "b": "log1p"}))
    model.train_on_batch(*_batch())
    path = str(tmp_path / "uw.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.update.form == {"a": "classification", "b": "log1p"}
    np.testing.assert_array_equal(loaded.update.log_vars.numpy(), model.update.log_vars.numpy())
    np.testing.assert_allclose(loaded.update.current_weights().numpy(),
                               model.update.current_weights().numpy())


def test_initial_log_variance_is_mtans_start():
    # MTAN starts logsigma at -0.5: regression weight 1 / (2 e^{-0.5}), by hand 0.8243606.
    update = UncertaintyWeights(form={"a": "regression", "b": "log1p"}, initial_log_variance=-0.5)
    _model(update)
    np.testing.assert_allclose(update.current_weights().numpy(), [0.8243606, 1.0], rtol=1e-6)
    again = UncertaintyWeights.from_config(update.get_config())
    assert again.initial_log_variance == -0.5
    built = tf_mtl.updates.build_update({"name": "uw", "initial_log_variance": -0.5})
    assert built.initial_log_variance == -0.5
    for bad in (float("nan"), "0", True):
        with pytest.raises(ValueError, match="Received: initial_log_variance="):
            UncertaintyWeights(initial_log_variance=bad)
