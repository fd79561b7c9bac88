import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.gls import GLS
from tf_mtl.updates.pcgrad import PCGrad

TASKS = ["a", "b", "c"]
LOSS_WEIGHTS = np.array([2.0, 1.0, 1.0])


def _gls_gradient(losses):
    """∂/∂L_i (prod_j L_j)^{1/m} by central differences in float64 (no closed form used)."""
    losses = np.asarray(losses, np.float64)
    m, h = len(losses), 1e-6
    f = lambda v: np.prod(v) ** (1.0 / m)
    return np.array([(f(losses + h * e) - f(losses - h * e)) / (2 * h) for e in np.eye(m)])


@pytest.mark.parametrize("seed", range(4))
def test_weights_are_the_gradient_of_the_geometric_mean(seed):
    rng = np.random.default_rng(seed)
    m = 2 + seed
    losses = rng.uniform(0.05, 3.0, m)
    rule = GLS()
    rule.build_tasks([f"t{i}" for i in range(m)])
    np.testing.assert_allclose(rule.weights_for(tf.constant(losses, tf.float32)).numpy(),
                               _gls_gradient(losses), rtol=1e-5)


def test_two_tasks_closed_form():
    """sqrt(L1 L2): w1 = sqrt(L2/L1)/2, w2 = sqrt(L1/L2)/2."""
    rule = GLS()
    rule.build_tasks(["a", "b"])
    np.testing.assert_allclose(rule.weights_for(tf.constant([4.0, 1.0])).numpy(),
                               [0.25, 1.0], rtol=1e-6)


def test_many_tasks_do_not_underflow():
    rule = GLS()
    rule.build_tasks([f"t{i}" for i in range(200)])
    w = rule.weights_for(tf.fill([200], 1e-3)).numpy()   # the product is 1e-600
    np.testing.assert_allclose(w, np.full(200, 1e-3 / (200 * 1e-3)), rtol=1e-4)


@pytest.mark.parametrize("losses", [[1.0, 0.0, 2.0], [1.0, -0.5, 2.0]])
def test_a_loss_that_is_not_positive_is_refused_in_the_graph(losses):
    rule = GLS()
    rule.build_tasks(TASKS)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"GLS needs every task loss > 0.*Received: losses=\] \[1 -?0\.?5? 2\]"):
        tf.function(rule.weights_for)(tf.constant(losses))


def test_a_train_step_with_a_zero_loss_is_refused():
    model = _model(GLS())
    x, y = _batch(0)
    model.build_for(x)
    model.heads["b"].set_weights([np.zeros_like(w) for w in model.heads["b"].get_weights()])
    y["b"] = np.zeros_like(y["b"])   # head b predicts 0 exactly: L_b = 0
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"GLS.*Received: losses=\] \[.* 0 "):
        model.train_on_batch(x, y)


def _model(update, optimizer=None):
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.layers.Dense(6, activation="tanh")])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in TASKS},
                                  {t: "mse" for t in TASKS},
                                  loss_weights={"a": float(LOSS_WEIGHTS[0])}, update=update)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in TASKS}


def _step_copy(clone, opt, x, y, weights):
    """Steps the copy along sum_i w_i lw_i ∇L_i with w = weights(L) computed in NumPy."""
    with tf.GradientTape() as tape:
        pred = clone(x, training=True)
        losses = tf.stack([keras.losses.MeanSquaredError()(y[t], pred[t]) for t in TASKS])
        w = weights(losses.numpy().astype(np.float64))
        objective = tf.reduce_sum(tf.constant(w * LOSS_WEIGHTS, tf.float32) * losses)
    opt.apply(tape.gradient(objective, clone.trainable_variables), clone.trainable_variables)
    return w


def test_train_steps_equal_stepping_a_copy_along_the_geometric_gradient():
    model = _model(GLS())
    x, y = _batch(0)
    model.build_for(x)
    clone, opt = copy_model(model, x)
    for i in range(3):
        x, y = _batch(i)
        w = _step_copy(clone, opt, x, y, _gls_gradient)
        logs = model.train_on_batch(x, y, return_dict=True)
        np.testing.assert_allclose(logs["gls/a"], w[0] * LOSS_WEIGHTS[0], rtol=1e-4)
        for a, b in zip(model.get_weights(), clone.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_pcgrad_with_gls_runs_a_step():
    model = _model(PCGrad(weighting=GLS()))
    x, y = _batch(1)
    model.build_for(x)
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_config_round_trip_and_save(tmp_path):
    rule = GLS(name="geo")
    again = GLS.from_config(rule.get_config())
    assert again.get_config() == rule.get_config() and again.name == "geo"
    assert GLS().name == "gls"
    model = _model(GLS())
    model.train_on_batch(*_batch(0))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.update) is GLS and loaded.update.get_config() == model.update.get_config()


def test_one_task_is_its_own_loss():
    """m = 1: the geometric mean is L itself, weight 1 (nothing to balance, nothing refused)."""
    rule = GLS()
    rule.build_tasks(["a"])
    np.testing.assert_allclose(rule.weights_for(tf.constant([0.7])).numpy(), [1.0], rtol=1e-6)
