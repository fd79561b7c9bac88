import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl import transference

TASKS = ["a", "b", "c"]


def _model(optimizer, seed=0, losses=None):
    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential([keras.layers.Dense(8), keras.layers.BatchNormalization(),
                                keras.layers.ReLU(), keras.layers.Dense(4, activation="tanh")])
    model = tf_mtl.MultiTaskModel(encoder, {t: keras.layers.Dense(1) for t in TASKS},
                                  losses or {t: "mse" for t in TASKS})
    model.compile(optimizer=optimizer)
    return model


def _batch(seed=1, n=16):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype("float32")
    y = {t: rng.standard_normal((n, 1)).astype("float32") for t in TASKS}
    return x, y


def _train(model, steps=3):
    for i in range(steps):
        model.train_on_batch(*_batch(10 + i))


def _stepped_copy_losses(model, x, y, subset):
    """Really steps a copy (weights + optimizer state) on `subset`'s encoder gradient."""
    clone = tf_mtl.MultiTaskModel.from_config(model.get_config())
    clone(x)
    clone.set_weights(model.get_weights())
    opt = model.optimizer.from_config(model.optimizer.get_config())
    opt.build(clone.trainable_variables)
    for dst, src in zip(opt.variables, model.optimizer.variables):
        dst.assign(src)
    with tf.GradientTape() as tape:
        losses = clone.compute_task_losses(y, clone(x, training=True))
        target = tf.add_n([losses[clone.tasks.index(t)] for t in subset])
    grads = tape.gradient(target, clone.shared_variables)
    before = losses.numpy()
    opt.apply(grads, clone.shared_variables)
    after = clone.compute_task_losses(y, clone(x, training=True)).numpy()
    return before, after


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    lambda: keras.optimizers.Adam(0.01),
])
def test_exact_equals_really_stepping_a_copy(optimizer):
    model = _model(optimizer())
    _train(model)
    x, y = _batch()
    z = transference.measure(model, x, y, order=-1, method="exact")
    assert len(z) == 7 and "a|b|c" in z and "a|c" in z
    for source, row in z.items():
        before, after = _stepped_copy_losses(model, x, y, source.split("|"))
        for j, t in enumerate(TASKS):
            np.testing.assert_allclose(row[t], 1 - after[j] / before[j], rtol=1e-4, atol=1e-6)


def test_tag_notebook_parity_momentum_scale_by_lr():
    """(1 - L'/L)/lr with theta' = theta + (mu m - lr g) on the encoder, heads fixed."""
    model = _model(keras.optimizers.SGD(0.02, momentum=0.9))
    _train(model)
    x, y = _batch()
    z = transference.measure(model, x, y, order=1, method="exact", scale_by_lr=True)
    lr, mu = 0.02, 0.9
    opt = model.optimizer
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_task_losses(y, model(x, training=True))
        losses = [losses[i] for i in range(3)]  # Sliced inside the tape.
    for i, t in enumerate(TASKS):
        grads = tape.gradient(losses[i], model.shared_variables)
        new = [v.numpy() + mu * opt.momentums[opt._get_variable_index(v)].numpy() - lr * g.numpy()
               for v, g in zip(model.shared_variables, grads)]
        after, _ = model.encoder.stateless_call(
            new, [v.numpy() for v in model.encoder.non_trainable_variables], x, training=True)
        for j, u in enumerate(TASKS):
            pred = model.heads[u](after)
            l_after = keras.losses.MeanSquaredError()(y[u], pred).numpy()
            np.testing.assert_allclose(z[t][u], (1 - l_after / losses[j].numpy()) / lr,
                                       rtol=1e-3, atol=1e-5)


def test_first_order_approaches_exact_as_lr_shrinks():
    x, y = _batch()
    errors = []
    for lr in (3e-1, 3e-2, 3e-3):
        model = _model(keras.optimizers.SGD(lr))
        kw = dict(order=1, scale_by_lr=True)
        ex = transference.measure(model, x, y, method="exact", **kw)
        fo = transference.measure(model, x, y, method="first_order", **kw)
        scale = max(abs(fo[s][t]) for s in fo for t in TASKS)
        errors.append(max(abs(ex[s][t] - fo[s][t]) for s in ex for t in TASKS) / scale)
    # The remainder is second order: about 10x smaller per 10x smaller lr.
    assert errors[0] > 3 * errors[1] > 9 * errors[2]
    assert errors[2] < 1e-2


def test_first_order_plain_sgd_is_lr_inner_product_over_loss():
    model = _model(keras.optimizers.SGD(0.1))
    x, y = _batch()
    z = transference.measure(model, x, y, order=1, method="first_order")
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_task_losses(y, model(x, training=True))
        losses = [losses[i] for i in range(3)]  # Sliced inside the tape.
    g = [np.concatenate([w.numpy().ravel() for w in tape.gradient(losses[i], model.shared_variables)])
         for i in range(3)]
    for i, t in enumerate(TASKS):
        for j, u in enumerate(TASKS):
            np.testing.assert_allclose(z[t][u], 0.1 * g[i] @ g[j] / losses[j].numpy(), rtol=1e-4)
        np.testing.assert_allclose(z["a|b|c"][t], 0.1 * sum(g) @ g[i] / losses[i].numpy(),
                                   rtol=1e-4)


def test_cosine_matches_hand_computation():
    model = _model(keras.optimizers.SGD(0.1))
    x, y = _batch()
    z = transference.measure(model, x, y, order=-1, method="cosine")
    with tf.GradientTape(persistent=True) as tape:
        losses = model.compute_task_losses(y, model(x, training=True))
        losses = [losses[i] for i in range(3)]  # Sliced inside the tape.
    g = {t: np.concatenate([w.numpy().ravel() for w in tape.gradient(losses[i], model.shared_variables)])
         for i, t in enumerate(TASKS)}
    for source, row in z.items():
        gs = sum(g[t] for t in source.split("|"))
        for t in TASKS:
            expected = gs @ g[t] / np.linalg.norm(gs) / np.linalg.norm(g[t])
            np.testing.assert_allclose(row[t], expected, rtol=1e-4, atol=1e-6)
    assert z["a"]["a"] == pytest.approx(1.0, abs=1e-5)


class _ZeroLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(y_pred * 0.0, axis=-1)


def test_zero_loss_is_skipped_and_counted_not_nan():
    losses = {"a": "mse", "b": _ZeroLoss(name="zero"), "c": "mse"}
    model = _model(keras.optimizers.SGD(0.1), losses=losses)
    x, y = _batch()
    z = transference.measure(model, x, y, method="exact")
    assert all(z[s]["b"] is None for s in z)
    assert z["a"]["c"] is not None and np.isfinite(z["a"]["c"])
    probe = transference.Transference(every=1)
    model = tf_mtl.MultiTaskModel(model.encoder, model.heads, losses, probes=[probe])
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["transference/skipped"] == 4  # 4 sources x target b
    assert logs["transference/a>b"] == 0.0 and np.isfinite(logs["transference/a|b|c>c"])


def test_probe_in_fit_logs_epoch_means_every_n_steps():
    ds, _ = tf_mtl.data.synthetic("train", num_tasks=3, num_groups=3, num_examples=160,
                                  batch_size=16)
    tasks = ["t0", "t1", "t2"]
    probe = transference.Transference(order=1, every=3, method="first_order")
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([8, 4]),
                                  {t: keras.layers.Dense(1) for t in tasks},
                                  {t: "mse" for t in tasks}, probes=[probe])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    traces = []
    measure = probe.measure
    probe.measure = lambda *a: (traces.append(1), measure(*a))[1]  # Runs only when traced.
    history = model.fit(ds, epochs=2, verbose=0)
    # Measured in 7 of 20 steps, traced at most twice (Keras may retrace once with
    # relaxed shapes): no re-trace and no Python work per step.
    assert 1 <= len(traces) <= 2
    # Steps 0, 3, 6, 9 in epoch 1 (10 steps); 12, 15, 18 in epoch 2.
    assert history.history["transference/steps"] == [4.0, 3.0]
    assert len([k for k in history.history if ">" in k]) == 4 * 3
    scores = probe.scores()
    assert set(scores) == {"t0", "t1", "t2", "t0|t1|t2"}
    assert scores["t0"]["t0"] == pytest.approx(history.history["transference/t0>t0"][-1], rel=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="second_order"), "Received: method='second_order'"),
    (dict(order=2), "Received: order=2"),
    (dict(every=0), "Received: every=0"),
])
def test_bad_probe_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        transference.Transference(**kwargs)


def test_measure_needs_a_compiled_supported_optimizer():
    x, y = _batch()
    model = _model(keras.optimizers.RMSprop(0.1))
    with pytest.raises(ValueError, match="SGD, Adam, AdamW"):
        transference.measure(model, x, y)
    model = tf_mtl.MultiTaskModel(keras.layers.Dense(3), {"a": keras.layers.Dense(1)},
                                  {"a": "mse"})
    with pytest.raises(ValueError, match="compile"):
        transference.measure(model, x, {"a": y["a"]})


def test_two_probes_measure_in_their_own_branches():
    """Per-task gradients built inside one probe's tf.cond are not reused by another."""
    exact = transference.Transference(every=2, method="exact", name="exact")
    cosine = transference.Transference(every=3, method="cosine", name="cos")
    model = tf_mtl.MultiTaskModel(_model(keras.optimizers.SGD(0.1)).encoder,
                                  {t: keras.layers.Dense(1) for t in TASKS},
                                  {t: "mse" for t in TASKS}, probes=[exact, cosine])
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _batch()
    logs = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    assert logs["exact/steps"] == [2.0] and logs["cos/steps"] == [2.0]  # 0, 2 and 0, 3
    assert logs["cos/a>a"][0] == pytest.approx(1.0, abs=1e-5)
