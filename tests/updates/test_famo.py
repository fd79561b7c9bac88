import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.famo import FAMO
from tf_mtl.updates.pcgrad import PCGrad

TASKS = ["a", "b", "c"]
LOSS_WEIGHTS = np.array([2.0, 1.0, 1.0])


class _Reference:
    """Liu et al.'s FAMO in float64, written from the paper and the authors' code: logits
    xi, z = softmax(xi), weights c z_i / D_i; the logits' gradient is the softmax's
    vector-Jacobian product with the decrease of log D plus gamma xi, stepped by torch's
    Adam (or plain SGD, Alg. 1). L_{t+1} = the next step's losses."""

    def __init__(self, m, lr=0.025, gamma=1e-3, floor=0.0, eps=1e-8, optimizer="adam"):
        self.xi, self.m1, self.v1, self.n = np.zeros(m), np.zeros(m), np.zeros(m), 0
        self.lr, self.gamma, self.floor, self.eps, self.optimizer = lr, gamma, floor, eps, optimizer
        self.previous = None

    def step(self, losses):
        losses = np.asarray(losses, np.float64)
        d = losses - self.floor + self.eps
        if self.previous is not None:
            z = np.exp(self.xi) / np.exp(self.xi).sum()
            jacobian = np.diag(z) - np.outer(z, z)        # ∂z/∂xi
            decrease = np.log(self.previous - self.floor + self.eps) - np.log(d)
            grad = jacobian.T @ decrease + self.gamma * self.xi
            if self.optimizer == "sgd":
                self.xi = self.xi - self.lr * grad
            else:
                self.n += 1
                self.m1 = 0.9 * self.m1 + 0.1 * grad
                self.v1 = 0.999 * self.v1 + 0.001 * grad ** 2
                m_hat, v_hat = self.m1 / (1 - 0.9 ** self.n), self.v1 / (1 - 0.999 ** self.n)
                self.xi = self.xi - self.lr * m_hat / (np.sqrt(v_hat) + 1e-8 * 1.0)
        self.previous = losses
        z = np.exp(self.xi) / np.exp(self.xi).sum()
        return (z / d) / (z / d).sum()


def _run(rule, sequence):
    weights = []
    for losses in sequence:
        losses = tf.constant(losses, tf.float32)
        weights.append(rule.weights_for(losses).numpy())
        rule.update_state(None, losses)
    return np.array(weights)


def test_two_steps_by_hand_sgd():
    """ξ = 0: w = (1/L)/sum(1/L). Then L (2, 1) -> (1, 1): log decrease (ln 2, 0),
    J_z δ = z ⊙ (δ − z·δ) = (ln2/4, −ln2/4), ξ = −0.025 (ln2/4, −ln2/4)."""
    rule = FAMO(logits_optimizer="sgd", gamma=0.0)
    rule.build_tasks(["a", "b"])
    w = _run(rule, [[2.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(w[0], [1 / 3, 2 / 3], rtol=1e-6)
    xi = 0.025 * np.log(2) / 4
    np.testing.assert_allclose(rule.logits.numpy(), [-xi, xi], rtol=1e-5)
    np.testing.assert_allclose(w[1], np.exp([-xi, xi]) / np.exp([-xi, xi]).sum(), rtol=1e-6)


def test_first_adam_step_by_hand():
    """Adam's first bias-corrected step is lr · sign(g) (|g| >> 1e-8)."""
    rule = FAMO(gamma=0.0)
    rule.build_tasks(["a", "b"])
    _run(rule, [[2.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(rule.logits.numpy(), [-0.025, 0.025], rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("m", [2, 5])
def test_several_steps_follow_the_reference(optimizer, m):
    rng = np.random.default_rng(m)
    sequence = np.exp(-np.linspace(0, 2, 8)[:, None] * rng.uniform(0.2, 1.5, m)) \
        * rng.uniform(0.8, 1.2, (8, m)) + 0.3
    kwargs = {"learning_rate": 0.3, "gamma": 0.01, "min_losses": 0.2,
              "logits_optimizer": optimizer}
    rule = FAMO(**kwargs)
    rule.build_tasks([f"t{i}" for i in range(m)])
    ref = _Reference(m, lr=0.3, gamma=0.01, floor=0.2, optimizer=optimizer)
    want = np.array([ref.step(l) for l in sequence])
    got = _run(rule, sequence)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(rule.logits.numpy(), ref.xi, rtol=1e-3, atol=1e-6)
    assert np.abs(ref.xi).max() > 5e-3   # the logits really moved


def test_per_task_min_losses():
    rule = FAMO(min_losses={"b": 0.5})
    rule.build_tasks(["a", "b"])
    d = np.array([1.0, 1.0 - 0.5]) + 1e-8
    np.testing.assert_allclose(rule.weights_for(tf.constant([1.0, 1.0])).numpy(),
                               (1 / d) / (1 / d).sum(), rtol=1e-6)


def test_a_loss_below_its_minimum_is_refused_in_the_graph():
    rule = FAMO(min_losses=0.5)
    rule.build_tasks(["a", "b"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="FAMO.*Received: losses - min"):
        tf.function(rule.weights_for)(tf.constant([1.0, 0.25]))


@pytest.mark.parametrize("kwargs, match", [
    ({"learning_rate": 0}, "Received: learning_rate=0"),
    ({"gamma": -1e-3}, "Received: gamma=-0.001"),
    ({"epsilon": 0.0}, "Received: epsilon=0.0"),
    ({"min_losses": float("nan")}, "Received: min_losses=nan"),
    ({"min_losses": {"a": "x"}}, "Received: min_losses='x'"),
    ({"logits_optimizer": "rmsprop"}, "Received: logits_optimizer='rmsprop'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FAMO(**kwargs)


def test_min_losses_of_an_unknown_task():
    with pytest.raises(ValueError, match=r"Received: min_losses=\{'z': 0.1\}"):
        FAMO(min_losses={"z": 0.1}).build_tasks(TASKS)


def _model(update):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(
        keras.Sequential([keras.layers.Dense(6, activation="tanh")]),
        {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
        loss_weights={"a": float(LOSS_WEIGHTS[0])}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in TASKS}


def test_train_steps_equal_stepping_a_copy_with_the_reference_weights():
    model = _model(FAMO(learning_rate=0.5))
    x, _ = _batch(0)
    model.build_for(x)
    clone, opt = copy_model(model, x)
    ref = _Reference(3, lr=0.5)
    for step in range(4):
        x, y = _batch(step)
        with tf.GradientTape() as tape:
            pred = clone(x, training=True)
            losses = tf.stack([keras.losses.MeanSquaredError()(y[t], pred[t]) for t in TASKS])
            w = ref.step(losses.numpy())
            objective = tf.reduce_sum(tf.constant(w * LOSS_WEIGHTS, tf.float32) * losses)
        opt.apply(tape.gradient(objective, clone.trainable_variables), clone.trainable_variables)
        logs = model.train_on_batch(x, y, return_dict=True)
        np.testing.assert_allclose([logs[f"famo/{t}"] for t in TASKS], w * LOSS_WEIGHTS,
                                   rtol=1e-4)
        for a, b in zip(model.trainable_variables, clone.trainable_variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.update.logits.numpy(), ref.xi, rtol=1e-3, atol=1e-6)


def test_pcgrad_with_famo_runs_steps():
    model = _model(PCGrad(weighting=FAMO()))
    for i in range(2):
        logs = model.train_on_batch(*_batch(i), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert float(model.update.weighting.has_previous.numpy()) == 1.0
    assert np.abs(model.update.weighting.logits.numpy()).max() > 0


def test_config_round_trip_and_save_keeps_the_state(tmp_path):
    rule = FAMO(learning_rate=0.1, gamma=0.0, min_losses={"a": 0.1}, epsilon=1e-6,
                logits_optimizer="sgd", name="fast")
    again = FAMO.from_config(rule.get_config())
    assert again.get_config() == rule.get_config() and again.name == "fast"
    assert FAMO().name == "famo"
    model = _model(FAMO(learning_rate=0.5))
    for i in range(3):
        model.train_on_batch(*_batch(i))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.update.get_config() == model.update.get_config()
    for a, b in zip(model.update.variables, loaded.update.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    loaded.optimizer.build(loaded.trainable_variables)
    for dst, src in zip(loaded.optimizer.variables, model.optimizer.variables):
        dst.assign(src)
    for i in range(3, 5):   # resumes: the same next weights
        w_model = model.train_on_batch(*_batch(i), return_dict=True)
        w_loaded = loaded.train_on_batch(*_batch(i), return_dict=True)
        np.testing.assert_allclose([w_loaded[f"famo/{t}"] for t in TASKS],
                                   [w_model[f"famo/{t}"] for t in TASKS], rtol=1e-6)
    assert np.abs(model.update.logits.numpy()).max() > 0
