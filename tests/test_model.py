import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl

TASKS = ["left", "right_side"]


def _parts(seed=0):
    keras.utils.set_random_seed(seed)
    encoder = tf_mtl.encoders.MLP([6, 4])
    heads = {"left": keras.layers.Dense(3), "right_side": keras.layers.Dense(1)}
    losses = {"left": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              "right_side": "mse"}
    return encoder, heads, losses


def _batch(n=8):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 5)).astype("float32")
    y = {"left": rng.integers(0, 3, (n,)), "right_side": rng.standard_normal((n, 1)).astype("float32")}
    return x, y


def test_call_returns_one_output_per_task_and_exposes_parts():
    encoder, heads, losses = _parts()
    model = tf_mtl.MultiTaskModel(encoder, heads, losses)
    out = model(_batch()[0])
    assert set(out) == set(TASKS) and out["left"].shape == (8, 3)
    assert model.tasks == TASKS and model.encoder is encoder
    assert model.heads["left"] is heads["left"]


@pytest.mark.parametrize("per_task", ["loop", "jacobian"])
def test_logged_losses_equal_hand_computed_losses(per_task):
    encoder, heads, losses = _parts()
    probe = tf_mtl.transference.Transference(every=1, method="cosine")
    model = tf_mtl.MultiTaskModel(encoder, heads, losses, loss_weights={"left": 2.0},
                                  probes=[probe], per_task_gradients=per_task)
    model.compile(optimizer=keras.optimizers.SGD(0.0), metrics={"left": ["accuracy"]})
    x, y = _batch()
    logs = model.train_on_batch(x, y, return_dict=True)
    pred = model(x, training=True)
    left = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y["left"], pred["left"])
    right = keras.losses.MeanSquaredError()(y["right_side"], pred["right_side"])
    assert logs["left_loss"] == pytest.approx(float(left), rel=1e-5)
    assert logs["right_side_loss"] == pytest.approx(float(right), rel=1e-5)
    assert logs["loss"] == pytest.approx(2 * float(left) + float(right), rel=1e-5)
    acc = np.mean(np.argmax(pred["left"], -1) == y["left"])
    assert logs["left_accuracy"] == pytest.approx(acc)
    assert logs["transference/self"] == pytest.approx(1.0, abs=1e-5)  # cos(g_t, g_t)


def test_equal_weights_step_is_exactly_the_gradient_of_the_weighted_sum():
    encoder, heads, losses = _parts()
    model = tf_mtl.MultiTaskModel(encoder, heads, losses, loss_weights={"right_side": 0.5})
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    x, y = _batch()
    model(x)
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        total = (keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y["left"], pred["left"])
                 + 0.5 * keras.losses.MeanSquaredError()(y["right_side"], pred["right_side"]))
    grads = tape.gradient(total, model.trainable_variables)
    expected = [v.numpy() - g.numpy() for v, g in zip(model.trainable_variables, grads)]
    model.train_on_batch(x, y)
    for v, e in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)


def test_fit_on_planted_groups_decreases_loss_and_evaluate_predict_work():
    ds, _ = tf_mtl.data.synthetic("train", num_tasks=4, num_groups=2, num_examples=512)
    tasks = [f"t{i}" for i in range(4)]
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([32, 8]),
                                  {t: keras.layers.Dense(1) for t in tasks},
                                  {t: "mse" for t in tasks})
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  metrics={t: ["mae"] for t in tasks})
    history = model.fit(ds, epochs=4, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    evaluation = model.evaluate(ds, return_dict=True, verbose=0)
    assert set(evaluation) >= {"loss", "t0_loss", "t3_loss"}
    assert not any(k.startswith("transference") for k in evaluation)
    assert model.predict(ds, verbose=0)["t2"].shape == (512, 1)


def test_save_and_load_round_trip_gives_identical_predictions(tmp_path):
    encoder, heads, losses = _parts()
    probe = tf_mtl.transference.Transference(order=-1, every=3, method="first_order")
    model = tf_mtl.MultiTaskModel(encoder, heads, losses, loss_weights={"left": 0.3},
                                  probes=[probe])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    x, y = _batch()
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.tasks == TASKS and loaded.loss_weights == {"left": 0.3, "right_side": 1.0}
    assert loaded.probes[0].order == -1 and loaded.probes[0].every == 3
    for t in TASKS:
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[t],
                                   model.predict(x, verbose=0)[t], rtol=1e-6)


def test_heads_and_losses_with_different_tasks():
    encoder, heads, losses = _parts()
    with pytest.raises(ValueError, match=r"heads for \['left', 'right_side'\], losses for \['left'\]"):
        tf_mtl.MultiTaskModel(encoder, heads, {"left": "mse"})


def test_loss_weight_for_unknown_task():
    with pytest.raises(ValueError, match=r"loss_weights.*\['middle'\].*Received"):
        tf_mtl.MultiTaskModel(*_parts(), loss_weights={"middle": 1.0})


@pytest.mark.parametrize("labels, message", [
    ({"left": np.zeros(8)}, r"Missing: \['right_side'\]; unknown: \[\]"),
    ({"left": np.zeros(8), "right_side": np.zeros((8, 1)), "up": np.zeros(8)},
     r"Missing: \[\]; unknown: \['up'\]"),
    (np.zeros((8, 1)), "Labels must be a dict"),
])
def test_labels_that_disagree_with_the_tasks(labels, message):
    model = tf_mtl.MultiTaskModel(*_parts())
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=message):
        model.train_on_batch(_batch()[0], labels)


def test_encoder_output_the_heads_cannot_take():
    encoder = keras.layers.Reshape((2, 3))  # rank-3 output
    heads = {"a": keras.layers.Conv1D(2, 5)}  # needs length >= 5
    model = tf_mtl.MultiTaskModel(encoder, heads, {"a": "mse"})
    with pytest.raises(ValueError, match=r"Head 'a' cannot take.*shape \(4, 2, 3\)"):
        model(np.zeros((4, 6), "float32"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(heads={}), "non-empty dict"),
    (dict(per_task_gradients="pfor"), "Received: per_task_gradients='pfor'"),
    (dict(update="equal"), "Received: 'equal'"),
])
def test_bad_constructor_arguments(kwargs, message):
    encoder, heads, losses = _parts()
    args = {**dict(encoder=encoder, heads=heads, losses=losses), **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        tf_mtl.MultiTaskModel(**args)


@pytest.mark.parametrize("probes", [[], ["cosine"]])
def test_step_with_regularizer_matches_hand_gradient_with_or_without_a_probe(probes):
    """On measured steps the shared gradient is summed from per-task gradients."""
    keras.utils.set_random_seed(1)
    encoder = keras.Sequential([keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(0.1))])
    heads = {"a": keras.layers.Dense(1), "b": keras.layers.Dense(1)}
    model = tf_mtl.MultiTaskModel(
        encoder, heads, {"a": "mse", "b": "mse"}, loss_weights={"a": 0.25},
        probes=[tf_mtl.transference.Transference(every=1, method=m) for m in probes])
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = {"a": np.ones((8, 1), "float32"), "b": -np.ones((8, 1), "float32")}
    model(x)
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        total = (0.25 * keras.losses.MeanSquaredError()(y["a"], pred["a"])
                 + keras.losses.MeanSquaredError()(y["b"], pred["b"]) + tf.add_n(model.losses))
    grads = tape.gradient(total, model.trainable_variables)
    expected = [v.numpy() - g.numpy() for v, g in zip(model.trainable_variables, grads)]
    model.train_on_batch(x, y)
    for v, e in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)


def test_validation_loss_has_the_training_losss_terms():
    """evaluate's loss = weighted task losses + regularization, as the training loss."""
    keras.utils.set_random_seed(2)
    encoder = keras.Sequential([keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(0.3))])
    model = tf_mtl.MultiTaskModel(encoder, {"a": keras.layers.Dense(1), "b": keras.layers.Dense(1)},
                                  {"a": "mse", "b": "mse"}, loss_weights={"b": 3.0})
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = {"a": np.ones((8, 1), "float32"), "b": -np.ones((8, 1), "float32")}
    train = model.train_on_batch(x, y, return_dict=True)  # lr 0: weights unchanged.
    val = model.evaluate(x, y, return_dict=True, verbose=0)
    pred = model(x)
    mse = keras.losses.MeanSquaredError()
    penalty = 0.3 * float(np.sum(encoder.layers[0].kernel.numpy() ** 2))
    expected = float(mse(y["a"], pred["a"])) + 3.0 * float(mse(y["b"], pred["b"])) + penalty
    assert val["loss"] == pytest.approx(expected, rel=1e-5)
    assert train["loss"] == pytest.approx(val["loss"], rel=1e-5)  # No BN/dropout: same terms.


class _GlobalNoise(keras.layers.Layer):
    """Draws from Keras's global seed generator (no seed of its own)."""

    def call(self, x, training=None):
        return x + keras.random.normal(keras.ops.shape(x)) if training else x


class _Counter(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = keras.metrics.Sum(name="seen")

    def call(self, x):
        self.seen.update_state(keras.ops.ones(keras.ops.shape(x)[:1]))
        return x


@pytest.mark.parametrize("probes", [[], ["exact"]])
def test_train_step_state_advances_as_in_any_keras_step(probes):
    """BatchNorm statistics, layer seeds, global-seed noise and in-layer metrics move each step."""
    keras.utils.set_random_seed(3)
    dense = keras.layers.Dense(4)
    encoder = keras.Sequential([dense, keras.layers.BatchNormalization(momentum=0.9),
                                keras.layers.Dropout(0.5), _GlobalNoise(), _Counter()])
    model = tf_mtl.MultiTaskModel(
        encoder, {"a": keras.layers.Dense(1)}, {"a": "mse"},
        probes=[tf_mtl.transference.Transference(every=1, method=m) for m in probes])
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # Weights stay; state must not.
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = {"a": np.ones((8, 1), "float32")}
    model(x)
    bn = encoder.layers[1]
    dropout_seed = encoder.layers[2].seed_generator.state.numpy().copy()
    batch_mean = (x @ dense.kernel.numpy() + dense.bias.numpy()).mean(0)
    losses = []
    for _ in range(3):
        model.reset_metrics()  # Keras 3.10's train_on_batch does not; later ones do.
        losses.append(float(model.train_on_batch(x, y, return_dict=True)["loss"]))
    # moving_mean <- 0.9 moving_mean + 0.1 batch mean, from 0, three times.
    np.testing.assert_allclose(bn.moving_mean.numpy(), (1 - 0.9 ** 3) * batch_mean, rtol=1e-5)
    assert not np.array_equal(encoder.layers[2].seed_generator.state.numpy(), dropout_seed)
    assert len(set(losses)) == 3  # Fresh dropout masks and noise every step.
    assert float(encoder.layers[4].seen.result()) == 8.0  # One forward per step counted.


def test_loss_scaling_is_refused():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tf_mtl.MultiTaskModel(*_parts())
        with pytest.raises(ValueError, match="Received: optimizer of type LossScaleOptimizer"):
            model.compile(optimizer=keras.optimizers.SGD(0.1))
    finally:
        keras.config.set_dtype_policy("float32")


def test_noise_from_the_global_seed_generator_is_fresh_every_step():
    keras.utils.set_random_seed(4)
    model = tf_mtl.MultiTaskModel(keras.Sequential([keras.layers.Dense(4), _GlobalNoise()]),
                                  {"a": keras.layers.Dense(1)}, {"a": "mse"})
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x = np.ones((8, 3), "float32")
    y = {"a": np.ones((8, 1), "float32")}
    assert len({float(model.train_on_batch(x, y, return_dict=True)["loss"]) for _ in range(3)}) == 3
