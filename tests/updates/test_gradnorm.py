import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.updates import GradNorm


def _model(update):
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(4)])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in "ab"},
                                  {t: "mse" for t in "ab"}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def _batch(scale_b=5.0, seed=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 3)).astype("float32")
    return x, {"a": rng.standard_normal((16, 1)).astype("float32"),
               "b": scale_b * rng.standard_normal((16, 1)).astype("float32")}


def _norms(model, x, y, variables):
    with tf.GradientTape(persistent=True) as tape:
        pred = model(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"]
    norms = [np.sqrt(sum(np.sum(g.numpy() ** 2) for g in tape.gradient(l, variables)))
             for l in losses]
    return np.array([float(l) for l in losses]), np.array(norms)


@pytest.mark.parametrize("on", ["last_shared_layer", "all_shared"])
def test_one_step_matches_chen_et_al(on):
    """Weights w=(1.2, 0.8), L(0) known: w <- renorm(w - lr sign(G - Ḡ r^α) ||∇_W L||)."""
    rule = GradNorm(alpha=1.5, on=on, learning_rate=0.05)
    model = _model(rule)
    x, y = _batch()
    model.build_for(x)
    rule.task_weights.assign([1.2, 0.8])
    rule.initial_losses.assign([2.0, 10.0])
    layer = model.shared_variables[-2:-1] if on == "last_shared_layer" else model.shared_variables
    assert len(layer[0].shape) == 2
    L, unit = _norms(model, x, y, layer)
    w = np.array([1.2, 0.8])
    G = w * unit
    ratio = L / np.array([2.0, 10.0])
    target = G.mean() * (ratio / ratio.mean()) ** 1.5
    new = np.maximum(w - 0.05 * np.sign(G - target) * unit, 1e-6)
    model.train_on_batch(x, y)
    np.testing.assert_allclose(rule.task_weights.numpy(), 2 * new / new.sum(), rtol=1e-4)


def test_moves_weight_away_from_the_task_with_the_larger_gradient():
    """Equal training rates (first step: r = 1): the target is Ḡ for both, so the task
    whose weighted gradient norm is above the mean loses weight, the other gains."""
    rule = GradNorm(alpha=1.5, learning_rate=0.01)
    model = _model(rule)
    x, y = _batch(scale_b=5.0)
    model.build_for(x)
    L, unit = _norms(model, x, y, model.shared_variables[-2:-1])
    big = int(np.argmax(unit))
    model.train_on_batch(x, y)
    w = rule.task_weights.numpy()
    assert w[big] < 1.0 < w[1 - big]
    np.testing.assert_allclose(w.sum(), 2.0, rtol=1e-6)
    np.testing.assert_allclose(rule.initial_losses.numpy(), L, rtol=1e-5)  # L_i(0)


def test_slower_task_gains_weight_when_norms_are_equal():
    """Equal gradient norms, task a's loss ratio higher (it trains slower): r_a > 1 > r_b,
    so a's target exceeds its norm and its weight rises."""
    rule = GradNorm(alpha=1.5, learning_rate=0.01, on="all_shared")
    model = _model(rule)
    x, y = _batch(scale_b=1.0)
    model.build_for(x)
    L, unit = _norms(model, x, y, model.shared_variables)
    rule.task_weights.assign(2 * (1 / unit) / (1 / unit).sum())  # equal G_i
    rule.initial_losses.assign([L[0] / 2, L[1] * 2])   # a: L/L0 = 2; b: 1/2
    before = rule.task_weights.numpy()
    model.train_on_batch(x, y)
    after = rule.task_weights.numpy()
    assert after[0] > before[0] and after[1] < before[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": -0.5}, "Received: alpha=-0.5"),
    ({"on": "first"}, "Received: on='first'"),
    ({"learning_rate": 0}, "Received: learning_rate=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradNorm(**kwargs)


def test_a_task_masked_out_of_the_first_batch_takes_its_first_positive_loss_as_reference():
    """Sample weights 0 for task b (MovieLens's masked rating): L_b = 0 on the first step.
    The weights stay finite and L_b(0) is b's loss on the first batch that carries it."""
    rule = GradNorm(alpha=1.5, learning_rate=0.01)
    model = _model(rule)
    x, y = _batch()
    model.build_for(x)
    masked = {"a": np.ones(16, "float32"), "b": np.zeros(16, "float32")}
    model.train_on_batch(x, y, sample_weight=masked)
    assert rule.initial_losses.numpy()[1] == 0.0
    L, _ = _norms(model, x, y, model.shared_variables[-2:-1])
    model.train_on_batch(x, y)
    assert np.all(np.isfinite(rule.task_weights.numpy()))
    np.testing.assert_allclose(rule.initial_losses.numpy()[1], L[1], rtol=1e-5)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
