"""``task_steps="sequential"``: one optimizer step per task per batch (``003``'s CelebA code)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.routing.masks import TaskRouting
from tf_mtl.updates.pcgrad import PCGrad
from tests.model_copies import copy_model

TASKS = ("a", "b", "c")
UNITS = {"a": 2, "b": 1, "c": 3}


def _model(task_steps="sequential", routed=False, optimizer=None, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.layers.Dense(8, activation="tanh")]
    if routed:  # Each task its own channels: a task's step must run its own path.
        layers.append(TaskRouting(len(TASKS), 0.5, seed=3))
    layers.append(keras.layers.Dense(5, activation="tanh"))
    model = tf_mtl.MultiTaskModel(
        encoder=keras.Sequential(layers),
        heads={t: keras.layers.Dense(UNITS[t]) for t in TASKS},
        losses={t: "mse" for t in TASKS}, loss_weights={"a": 2.0, "c": 0.5},
        task_steps=task_steps)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(0.05))
    return model


def _batch(seed=0, n=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, {t: rng.normal(size=(n, UNITS[t])).astype("float32") for t in TASKS}


def _mse(y, p):
    return tf.reduce_mean(tf.reduce_mean(tf.square(y - p), -1))


def _hand_sequential(clone, opt, x, y):
    """Written from the reference loop: for each task in order, its weighted loss at the
    then-current weights (the model's full forward: task t's head on task t's path),
    its gradient for every variable (zeros where it does not reach) and one step."""
    weights, before = {"a": 2.0, "b": 1.0, "c": 0.5}, {}
    for t in sorted(TASKS):
        with tf.GradientTape() as tape:
            loss = _mse(y[t], clone(x, training=True)[t])
            objective = weights[t] * loss
        grads = tape.gradient(objective, clone.trainable_variables)
        grads = [tf.zeros(v.shape) if g is None else g  # The other heads: zeros.
                 for g, v in zip(grads, clone.trainable_variables)]
        opt.apply(grads, clone.trainable_variables)
        before[t] = float(loss)
    return before


@pytest.mark.parametrize("routed", [False, True])
def test_sequential_step_is_one_optimizer_step_per_task_in_order(routed):
    model = _model(routed=routed)
    x, y = _batch()
    model.train_on_batch(x, y)  # Adam's moments exist: the zero-gradient heads move too.
    clone, opt = copy_model(model, x)
    x, y = _batch(seed=1)
    before = _hand_sequential(clone, opt, x, y)
    logs = model.train_on_batch(x, y, return_dict=True)
    for got, want in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert int(model.optimizer.iterations) == 2 * len(TASKS)  # One per task per batch.
    for t in TASKS:  # Each task's loss of its own forward, before its step.
        np.testing.assert_allclose(logs[f"{t}_loss"], before[t], rtol=1e-5)


def test_summed_step_differs_from_sequential_on_a_curved_problem():
    x, y = _batch()
    summed, sequential = (_model(mode, optimizer=keras.optimizers.SGD(0.5))
                          for mode in ("summed", "sequential"))
    for model in (summed, sequential):
        model.build_for(x)
    sequential.set_weights(summed.get_weights())
    clone, opt = copy_model(summed, x)
    with tf.GradientTape() as tape:  # The summed step: one SGD step on sum_t w_t L_t.
        pred = clone(x, training=True)
        total = sum(w * _mse(y[t], pred[t]) for t, w in {"a": 2.0, "b": 1.0, "c": 0.5}.items())
    opt.apply(tape.gradient(total, clone.trainable_variables), clone.trainable_variables)
    summed.train_on_batch(x, y)
    sequential.train_on_batch(x, y)
    for got, want in zip(summed.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    gap = max(np.abs(a - b).max() for a, b in zip(summed.get_weights(), sequential.get_weights()))
    assert gap > 1e-2


def test_config_round_trip_and_saved_model_keep_the_mode(tmp_path):
    model = _model()
    x, y = _batch()
    model.train_on_batch(x, y)
    assert tf_mtl.MultiTaskModel.from_config(model.get_config()).task_steps == "sequential"
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.task_steps == "sequential"
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["a"], model.predict(x, verbose=0)["a"],
                               rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"task_steps": "parallel"}, "task_steps='parallel'"),
    ({"task_steps": "sequential", "update": PCGrad()}, "update=PCGrad"),
    ({"task_steps": "sequential", "probes": [tf_mtl.transference.Transference()]},
     "probes=\\['Transference'\\]"),
])
def test_meaningless_combinations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match="Received: .*" + message):
        tf_mtl.MultiTaskModel(encoder=keras.layers.Dense(3),
                              heads={t: keras.layers.Dense(1) for t in TASKS},
                              losses={t: "mse" for t in TASKS}, **kwargs)


def test_maximum_roaming_counts_batches_not_optimizer_steps():
    """The reference updates its masks once per batch, every ``update_every`` batches: with
    3 tasks, ``update_every=3`` roams after the third batch (not after the first, when the
    optimizer has taken 3 steps)."""
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(
        encoder=tf_mtl.encoders.MLP([16], routing={
            "kind": "maximum_roaming", "num_tasks": 3, "sharing_ratio": 0.5, "update_every": 3}),
        heads={t: keras.layers.Dense(UNITS[t]) for t in TASKS},
        losses={t: "mse" for t in TASKS}, task_steps="sequential")
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    x, y = _batch()
    model.build_for(x)
    roaming = tf_mtl.routing.routing_layers(model.encoder)[0]
    masks = [np.asarray(roaming.masks).copy()]
    for _ in range(3):
        model.train_on_batch(x, y)
        masks.append(np.asarray(roaming.masks).copy())
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[1], masks[2])
    assert not np.array_equal(masks[2], masks[3])
