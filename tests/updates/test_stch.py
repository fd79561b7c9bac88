import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.pcgrad import PCGrad
from tf_mtl.updates.stch import STCH

TASKS = ["a", "b", "c"]
LOSS_WEIGHTS = np.array([2.0, 1.0, 1.0])
EPS = 1e-20


def _stch(losses, nadir, mu):
    """The authors' objective after warm-up, in float64: m μ log sum exp(log(L/N + ε)/μ)."""
    v = np.log(losses / nadir + EPS) / mu
    top = v.max()
    return len(losses) * mu * (top + np.log(np.exp(v - top).sum()))


def _numerical_gradient(f, losses, h=1e-6):
    return np.array([(f(losses * (1 + h * e)) - f(losses * (1 - h * e))) / (2 * h * losses @ e)
                     for e in np.eye(len(losses))])


class _Reference:
    """The authors' phases: ``warmup`` epochs of sum log(L + ε), one epoch that also
    averages the losses into the nadir point, then the smooth Tchebycheff objective;
    weights = its numerical gradient at the step's losses."""

    def __init__(self, mu, warmup_epochs, steps_per_epoch):
        self.mu, self.warmup, self.spe = mu, warmup_epochs, steps_per_epoch
        self.step, self.nadir_losses = 0, []

    def weights(self, losses):
        losses = np.asarray(losses, np.float64)
        epoch = self.step // self.spe
        self.step += 1
        if epoch <= self.warmup:
            if epoch == self.warmup:
                self.nadir_losses.append(losses)
            return _numerical_gradient(lambda v: np.log(v + EPS).sum(), losses)
        nadir = np.mean(self.nadir_losses, axis=0)
        return _numerical_gradient(lambda v: _stch(v, nadir, self.mu), losses)


def _run(rule, sequence):
    out = []
    for losses in sequence:
        losses = tf.constant(losses, tf.float32)
        out.append(rule.weights_for(losses).numpy())
        rule.update_state(None, losses)
    return np.array(out)


@pytest.mark.parametrize("mu, m, seed", [(1.0, 2, 0), (0.5, 3, 1), (2.0, 6, 2), (0.1, 4, 3)])
def test_weights_are_the_numerical_gradient_in_every_phase(mu, m, seed):
    rng = np.random.default_rng(seed)
    sequence = rng.uniform(0.1, 3.0, (9, m))
    rule = STCH(mu=mu, warmup_epochs=1, steps_per_epoch=2)
    rule.build_tasks([f"t{i}" for i in range(m)])
    ref = _Reference(mu, 1, 2)
    want = np.array([ref.weights(l) for l in sequence])
    np.testing.assert_allclose(_run(rule, sequence), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rule.nadir().numpy(), sequence[2:4].mean(0), rtol=1e-6)


def test_two_tasks_mu_one_closed_form():
    """μ = 1: m log sum (L_j/N_j) has ∂/∂L_i = m / (N_i sum_j L_j/N_j)."""
    rule = STCH(mu=1.0, warmup_epochs=0)
    rule.build_tasks(["a", "b"])
    nadir = np.array([2.0, 0.5])
    _run(rule, [nadir])                      # the nadir epoch (one step)
    losses = np.array([1.0, 1.0])
    np.testing.assert_allclose(rule.weights_for(tf.constant(losses, tf.float32)).numpy(),
                               2 / (nadir * (losses / nadir).sum()), rtol=1e-6)


def test_small_mu_approaches_the_tchebycheff_max():
    """μ → 0: the gradient of m · max_i log(L_i / N_i): m / L_k on the worst task k, 0 elsewhere."""
    nadir, losses = np.array([1.0, 2.0, 4.0]), np.array([0.9, 1.5, 2.4])   # ratios .9 .75 .6
    expected = np.array([3 / 0.9, 0.0, 0.0])
    errors = []
    for mu in (1.0, 0.1, 0.01, 0.001):
        rule = STCH(mu=mu, warmup_epochs=0)
        rule.build_tasks(TASKS)
        _run(rule, [nadir])
        w = rule.weights_for(tf.constant(losses, tf.float32)).numpy()
        errors.append(np.abs(w - expected).max())
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-6
    np.testing.assert_allclose(_stch(losses, nadir, 1e-4), 3 * np.log(0.9), rtol=1e-3)


def test_a_zero_loss_is_refused_in_the_graph():
    rule = STCH()
    rule.build_tasks(TASKS)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"STCH.*Received: losses=\] \[1 0 2\]"):
        tf.function(rule.weights_for)(tf.constant([1.0, 0.0, 2.0]))


@pytest.mark.parametrize("kwargs, match", [
    ({"mu": 0}, "Received: mu=0"),
    ({"mu": -1.0}, "Received: mu=-1.0"),
    ({"mu": float("inf")}, "Received: mu=inf"),
    ({"warmup_epochs": -1}, "Received: warmup_epochs=-1"),
    ({"warmup_epochs": 1.5}, "Received: warmup_epochs=1.5"),
    ({"steps_per_epoch": 0}, "Received: steps_per_epoch=0"),
    ({"epsilon": -1e-20}, "Received: epsilon=-1e-20"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        STCH(**kwargs)


def _model(update):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(
        keras.Sequential([keras.layers.Dense(6, activation="tanh")]),
        {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
        loss_weights={"a": float(LOSS_WEIGHTS[0])}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in TASKS}


def test_train_steps_equal_stepping_a_copy_through_all_phases():
    model = _model(STCH(mu=0.5, warmup_epochs=1, steps_per_epoch=1))
    x, _ = _batch(0)
    model.build_for(x)
    clone, opt = copy_model(model, x)
    ref = _Reference(0.5, 1, 1)
    for step in range(4):   # log, log + nadir, STCH, STCH
        x, y = _batch(step)
        with tf.GradientTape() as tape:
            pred = clone(x, training=True)
            losses = tf.stack([keras.losses.MeanSquaredError()(y[t], pred[t]) for t in TASKS])
            w = ref.weights(losses.numpy())
            objective = tf.reduce_sum(tf.constant(w * LOSS_WEIGHTS, tf.float32) * losses)
        opt.apply(tape.gradient(objective, clone.trainable_variables), clone.trainable_variables)
        logs = model.train_on_batch(x, y, return_dict=True)
        np.testing.assert_allclose([logs[f"stch/{t}"] for t in TASKS], w * LOSS_WEIGHTS,
                                   rtol=1e-4)
        for a, b in zip(model.trainable_variables, clone.trainable_variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_pcgrad_with_stch_runs_steps():
    model = _model(PCGrad(weighting=STCH(warmup_epochs=0)))
    for i in range(2):
        logs = model.train_on_batch(*_batch(i), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert int(model.update.weighting.steps.numpy()) == 2


def test_config_round_trip_and_save_keeps_the_state(tmp_path):
    rule = STCH(mu=0.3, warmup_epochs=2, steps_per_epoch=10, epsilon=1e-8, name="tch")
    again = STCH.from_config(rule.get_config())
    assert again.get_config() == rule.get_config() and again.name == "tch"
    assert STCH().name == "stch"
    model = _model(STCH(warmup_epochs=1, steps_per_epoch=2))
    for i in range(4):
        model.train_on_batch(*_batch(i))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.update.get_config() == model.update.get_config()
    assert int(loaded.update.steps.numpy()) == 4
    np.testing.assert_array_equal(loaded.update.nadir().numpy(), model.update.nadir().numpy())
    assert np.all(model.update.nadir().numpy() > 0)
