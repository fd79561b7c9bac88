"""Multi-domain batches: one sub-batch per task, the epoch ends with the shortest dataset."""

import numpy as np
import pytest
import tensorflow as tf

import tf_mtl


def _domain(n, offset):
    x = np.arange(n, dtype=np.float32)[:, None] + offset
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n, dtype=np.int32) + offset))


def test_one_sub_batch_per_task_and_shortest_ends_the_epoch():
    ds = tf_mtl.data.multi_domain({"b": _domain(7, 100), "a": _domain(11, 0)}, batch_size=3)
    batches = list(ds)
    assert len(batches) == 2 and int(ds.cardinality()) == 2   # 7 // 3 full batches of "b".
    for i, (x, y) in enumerate(batches):
        assert sorted(x) == sorted(y) == ["a", "b"]
        np.testing.assert_array_equal(y["a"], np.arange(3 * i, 3 * i + 3))
        np.testing.assert_array_equal(y["b"], np.arange(3 * i, 3 * i + 3) + 100)
        np.testing.assert_array_equal(x["b"][:, 0], y["b"])      # Inputs stay with their labels.
    # Repeating the short domain lets the longest set the epoch.
    longer = tf_mtl.data.multi_domain({"a": _domain(11, 0), "b": _domain(7, 100).repeat()}, 3)
    assert len(list(longer)) == 3


def test_shuffle_is_seeded_and_keeps_pairs():
    make = lambda seed: tf_mtl.data.multi_domain({"a": _domain(12, 0), "b": _domain(12, 50)},
                                                  batch_size=4, shuffle=12, seed=seed)
    first = [y["a"].numpy() for _, y in make(1)]
    assert [y["a"].numpy().tolist() for _, y in make(1)] == [f.tolist() for f in first]
    assert sorted(np.concatenate(first).tolist()) == list(range(12))
    assert np.concatenate(first).tolist() != list(range(12))
    for x, y in make(2):
        np.testing.assert_array_equal(x["b"][:, 0], y["b"])


@pytest.mark.parametrize("args, message", [
    (([],), "non-empty dict.*Received: list"),
    (({"a": np.zeros(3)},), r"`datasets\['a'\]` must be a tf.data.Dataset.*Received: ndarray"),
    (({"a": tf.data.Dataset.range(3)},), r"`datasets\['a'\]` must yield \(x, y\)"),
    (({"a": _domain(3, 0)}, 0), "Received: batch_size=0"),
    (({"a": _domain(3, 0)}, 2, -1), "Received: shuffle=-1"),
])
def test_bad_input(args, message):
    args = args + (4,) if len(args) == 1 else args
    kwargs = {"shuffle": args[2]} if len(args) == 3 else {}
    with pytest.raises(ValueError, match=message):
        tf_mtl.data.multi_domain(args[0], args[1], **kwargs)


# ----------------------------------------------- multi-domain models (per-task inputs)
import keras  # noqa: E402

from tests.model_copies import copy_model  # noqa: E402

TASKS = ("a", "b")


def _model(update=None, seed=0):
    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential([keras.layers.Dense(6, activation="tanh"),
                                keras.layers.Dense(4, activation="tanh")])
    model = tf_mtl.MultiTaskModel(
        encoder, {"a": keras.layers.Dense(3), "b": keras.layers.Dense(2)},
        {t: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in TASKS},
        loss_weights={"a": 0.7, "b": 1.3}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


def _domains(seed=0):
    """Two domains whose inputs differ (the same rows fed to both tasks would hide a swap)."""
    rng = np.random.default_rng(seed)
    data = {}
    for i, (t, classes) in enumerate((("a", 3), ("b", 2))):
        x = (rng.normal(size=(24, 5)) + 2.0 * i).astype(np.float32)
        data[t] = tf.data.Dataset.from_tensor_slices((x, rng.integers(0, classes, 24)))
    return tf_mtl.data.multi_domain(data, batch_size=6)


def _separate_losses(model, x, y, training=False):
    """Each task's loss from its own forward on its own inputs."""
    return {t: model.task_losses[t](y[t], model.heads[t](model.encoder(x[t], training=training)))
            for t in TASKS}


def test_multi_domain_forward_equals_separate_forwards():
    model = _model()
    x, y = next(iter(_domains()))
    out = model(x)
    for t in TASKS:
        np.testing.assert_allclose(out[t], model.heads[t](model.encoder(x[t])), rtol=1e-6)
    with pytest.raises(ValueError, match="Received: x with keys"):
        model({"a": x["a"], "c": x["b"]})


@pytest.mark.parametrize("update", [None, lambda: tf_mtl.updates.UncertaintyWeights(form="log1p"),
                                    tf_mtl.updates.CoV])
def test_multi_domain_train_step_equals_stepping_a_copy(update):
    model = _model(update() if update else None)
    batches = list(_domains())
    # Two steps first: momentum, and CoV weights past their first two (uniform) steps.
    model.fit(tf.data.Dataset.from_tensors(batches[0]).concatenate(
        tf.data.Dataset.from_tensors(batches[2])), epochs=1, verbose=0)
    x, y = batches[1]
    clone, opt = copy_model(model, x)
    weights = {t: w for t, w in zip(model.tasks, model.update.current_weights().numpy())} \
        if update else {t: 1.0 for t in TASKS}
    if update is tf_mtl.updates.CoV:
        assert abs(weights["a"] - weights["b"]) > 1e-3     # Not the uniform weights.
    rule_vars = list(clone.update.trainable_variables)
    with tf.GradientTape() as tape:
        losses = _separate_losses(clone, x, y, training=True)
        if update and rule_vars:   # UW: the weights come from the variables being trained.
            w = clone.update.current_weights()
            objective = tf.add_n([w[i] * clone.loss_weights[t] * losses[t]
                                  for i, t in enumerate(clone.tasks)]) + clone.update.penalty()
        else:
            objective = tf.add_n([weights[t] * clone.loss_weights[t] * losses[t] for t in TASKS])
    variables = clone.shared_variables + clone.head_variables + rule_vars
    opt.apply(tape.gradient(objective, variables), variables)
    model.train_on_batch(x, y)
    for got, want in zip(model.shared_variables + model.head_variables
                         + list(model.update.trainable_variables), variables):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_transference_on_a_multi_domain_model_equals_stepping_a_copy():
    model = _model()
    batches = list(_domains())
    model.fit(tf.data.Dataset.from_tensors(batches[0]), epochs=1, verbose=0)   # Momentum state.
    x, y = batches[1]
    z = tf_mtl.transference.measure(model, x, y, order=1, method="exact")
    assert sorted(z) == ["a", "a|b", "b"]
    for source, row in z.items():
        clone, opt = copy_model(model, x)
        with tf.GradientTape() as tape:
            before = _separate_losses(clone, x, y, training=True)
            target = tf.add_n([clone.loss_weights[t] * before[t] for t in source.split("|")])
        opt.apply(tape.gradient(target, clone.shared_variables), clone.shared_variables)
        after = _separate_losses(clone, x, y, training=True)
        for t in TASKS:    # Each task's loss before and after on its own inputs.
            assert row[t] == pytest.approx(1.0 - float(after[t]) / float(before[t]), rel=1e-4,
                                           abs=1e-6)
    assert z["a"]["b"] != pytest.approx(z["b"]["a"], rel=1e-3)


def test_itmtl_on_a_multi_domain_model_applies_the_best_candidate_as_a_copy_would():
    model = _model(tf_mtl.updates.ITMTL(["a", "b", "all"]))
    batches = list(_domains())
    model.fit(tf.data.Dataset.from_tensors(batches[0]), epochs=1, verbose=0)   # Momentum state.
    x, y = batches[1]
    z = tf_mtl.transference.measure(model, x, y, order=1, method="exact")
    totals = [sum(z[s].values()) for s in ("a", "b", "a|b")]
    best = int(np.argmax(totals))
    clone, opt = copy_model(model, x)
    with tf.GradientTape(persistent=True) as tape:
        losses = _separate_losses(clone, x, y, training=True)
        objective = tf.add_n([clone.loss_weights[t] * losses[t] for t in TASKS])
        source = tf.add_n([clone.loss_weights[t] * losses[t] for t in ("a", "b", TASKS)[best]])
    variables = clone.shared_variables + clone.head_variables
    grads = (tape.gradient(source, clone.shared_variables)
             + tape.gradient(objective, clone.head_variables))
    opt.apply(grads, variables)
    model.train_on_batch(x, y)
    assert int(model.update.last_choice.numpy()) == best
    np.testing.assert_allclose(model.update.last_scores.numpy(), totals, rtol=1e-4, atol=1e-6)
    for got, want in zip(model.shared_variables + model.head_variables, variables):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_dict_inputs_that_are_not_the_tasks_are_refused():
    model = _model()
    x, y = next(iter(_domains()))
    other = {"c": x["a"], "d": x["b"]}     # No key is a task: not a shared input either.
    with pytest.raises(ValueError, match=r"tasks \['a', 'b'\].*Received: x with keys \['c', 'd'\]"):
        model(other)
    with pytest.raises(ValueError, match=r"Received: x with keys \['c', 'd'\]"):
        _model().fit(tf.data.Dataset.from_tensors((other, y)), verbose=0)
    # A functional encoder's named inputs are one input shared by the tasks.
    inputs = {"f1": keras.Input((2,), name="f1"), "f2": keras.Input((3,), name="f2")}
    encoder = keras.Model(inputs, keras.layers.Concatenate()([inputs["f1"], inputs["f2"]]))
    shared = tf_mtl.MultiTaskModel(encoder, {"a": keras.layers.Dense(1), "b": keras.layers.Dense(1)},
                                   {"a": "mse", "b": "mse"})
    features = {"f1": np.ones((4, 2), np.float32), "f2": np.zeros((4, 3), np.float32)}
    out = shared(features)
    np.testing.assert_allclose(out["a"], shared.heads["a"](encoder(features)), rtol=1e-6)


def test_resnet_batch_norm_multi_domain_forward_in_training_equals_separate_forwards():
    keras.utils.set_random_seed(0)
    encoder = tf_mtl.encoders.ResNetCifar(depth=8, width=0.25, norm="batch", activation="relu")
    model = tf_mtl.MultiTaskModel(encoder, {"a": keras.layers.Dense(3), "b": keras.layers.Dense(2)},
                                  {t: "mse" for t in TASKS})
    rng = np.random.default_rng(1)
    x = {"a": rng.normal(size=(4, 8, 8, 3)).astype(np.float32),      # Other statistics per
         "b": (3.0 + 2.0 * rng.normal(size=(5, 8, 8, 3))).astype(np.float32)}  # domain.
    out = model(x, training=True)
    for t in TASKS:
        np.testing.assert_allclose(out[t], model.heads[t](encoder(x[t], training=True)),
                                   rtol=1e-4, atol=1e-5)


def test_coupled_weight_decay_is_added_to_the_gradient_before_momentum():
    """PyTorch's SGD (000): b <- mu b + (g + wd w); w <- w - lr b, written out by hand."""
    from tf_mtl.interference.protocol import coupled_weight_decay
    lr, mu, wd = 0.1, 0.9, 0.05
    model = _model()
    batches = list(_domains())
    coupled_weight_decay(model, batches[0][0], wd)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=mu))
    variables = model.shared_variables + model.head_variables
    w = [v.numpy().astype(np.float64) for v in variables]
    b = [np.zeros_like(v) for v in w]
    for x, y in batches[:2]:
        with tf.GradientTape() as tape:   # The loss alone, without any regularization term.
            losses = _separate_losses(model, x, y, training=True)
            objective = tf.add_n([model.loss_weights[t] * losses[t] for t in TASKS])
        grads = tape.gradient(objective, variables)
        b = [mu * b_i + g.numpy() + wd * w_i for b_i, g, w_i in zip(b, grads, w)]
        w = [w_i - lr * b_i for w_i, b_i in zip(w, b)]
        model.train_on_batch(x, y)
        for got, want in zip(variables, w):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Received: weight_decay=-1"):
        coupled_weight_decay(model, batches[0][0], -1)
