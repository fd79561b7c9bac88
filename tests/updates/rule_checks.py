"""Checks every Gram-based gradient rule's tests share: a real train step equals
stepping a copy along the rule's direction computed in NumPy, one IT-MTL step
runs, the config round-trips, and ``model.save`` keeps the rule's state."""

import keras
import numpy as np
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.itmtl import ITMTL

TASKS = ["a", "b", "c"]


def random_jacobian(seed, m=None, dim=None):
    """``[m, dim]`` random task gradients of different scales (full rank for m <= dim)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 7)) if m is None else m
    dim = int(rng.integers(m + 2, 3 * m + 4)) if dim is None else dim
    return rng.standard_normal((m, dim)) * rng.uniform(0.2, 5.0, (m, 1))


def model(update, tasks=TASKS, seed=0, loss_weights=None):
    keras.utils.set_random_seed(seed)
    enc = keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])
    out = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in tasks},
                                {t: "mse" for t in tasks}, loss_weights=loss_weights,
                                update=update)
    out.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return out


def batch(seed=1, tasks=TASKS, n=12):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    return x, {t: rng.standard_normal((n, 1)).astype("float32") for t in tasks}


def task_gradients(net, x, y, features=False):
    """On a copy: ``([m, n] flat shared gradients, [m, k] flat feature gradients, losses)``."""
    clone, _ = copy_model(net, x)
    with tf.GradientTape(persistent=True) as tape:
        z = clone.encoder(x, training=True)
        pred = {t: clone.heads[t](z) for t in clone.tasks}
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in clone.tasks]
    shared = np.stack([np.concatenate([g.numpy().ravel() for g in tape.gradient(
        l, clone.shared_variables)]) for l in losses]).astype(np.float64)
    feats = np.stack([tape.gradient(l, z).numpy().ravel() for l in losses]).astype(np.float64)
    return shared, feats, np.array([float(l) for l in losses])


def check_step(net, x, y, direction_fn, rtol=1e-4, atol=1e-6):
    """One ``train_on_batch`` moves the encoder as the copy's optimizer does along
    ``direction_fn(shared [m, n], features [m, k], losses [m]) -> [n]`` (NumPy)."""
    net.build_for(x)
    shared, feats, losses = task_gradients(net, x, y)
    direction = direction_fn(shared, feats, losses)
    clone, opt = copy_model(net, x)
    flat, grads = direction.astype(np.float32), []
    for v in clone.shared_variables:
        size = int(np.prod(v.shape))
        grads.append(tf.constant(flat[:size].reshape(v.shape)))
        flat = flat[size:]
    opt.apply(grads, clone.shared_variables)
    net.train_on_batch(x, y)
    for got, want in zip(net.shared_variables, clone.shared_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=rtol, atol=atol)


def check_itmtl_step(rule):
    """``ITMTL(["all", rule])`` trains one step and scores both candidates."""
    net = model(ITMTL(["all", rule], lookahead="first_order"))
    logs = net.train_on_batch(*batch(), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert np.all(np.isfinite(net.update.last_scores.numpy()))


def check_config_round_trip(rule):
    config = rule.get_config()
    again = type(rule).from_config(config)
    assert again.get_config() == config
    serialized = keras.saving.serialize_keras_object(rule)
    assert keras.saving.deserialize_keras_object(serialized).get_config() == config


def check_save_load(make_rule, tmp_path, steps=3):
    """Saved after ``steps`` steps, reloaded: same config and state, same next steps."""
    net = model(make_rule())
    for i in range(steps):
        net.train_on_batch(*batch(i))
    path = str(tmp_path / "model.keras")
    net.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.update) is type(net.update)
    assert loaded.update.get_config() == net.update.get_config()

    def state(m):
        return [v.numpy().copy() for v in m.update.variables] + m.get_weights()

    for a, b in zip(state(net), state(loaded)):
        np.testing.assert_array_equal(a, b)
    assert len(loaded.update.variables) == len(net.update.variables)
    loaded.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    net.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))  # both from fresh slots
    for i in range(steps, steps + 2):
        net.train_on_batch(*batch(i))
        loaded.train_on_batch(*batch(i))
    for a, b in zip(state(net), state(loaded)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return net, loaded


def check_xla_step(make_rule, steps=2):
    """``steps`` steps compiled with XLA (``jit_compile=True``) equal the steps without it."""
    weights = []
    for jit in (False, True):
        net = model(make_rule())
        net.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=jit)
        for i in range(steps):
            net.train_on_batch(*batch(i))
        weights.append(net.get_weights() + [v.numpy() for v in net.update.variables])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
