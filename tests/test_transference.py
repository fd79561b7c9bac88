import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl import transference

TASKS = ["a", "b", "c"]


def _model(optimizer, seed=0, losses=None, loss_weights=None, encoder=None, probes=None,
           **model_kwargs):
    keras.utils.set_random_seed(seed)
    encoder = encoder or keras.Sequential([
        keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.Dense(4, activation="tanh")])
    model = tf_mtl.MultiTaskModel(encoder, {t: keras.layers.Dense(1) for t in TASKS},
                                  losses or {t: "mse" for t in TASKS},
                                  loss_weights=loss_weights, probes=probes, **model_kwargs)
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


def _task_losses(model, x, y, sw=None):
    """Each task's batch-mean loss, written out with the Keras loss objects."""
    pred = model(x, training=True)
    return np.array([float(model.task_losses[t](y[t], pred[t],
                                                sample_weight=None if sw is None else sw[t]))
                     for t in model.tasks])


def _stepped_copy_losses(model, x, y, subset, sw=None, weights=None):
    """Really steps a copy (weights + optimizer state) of the encoder along
    ``sum_{i in subset} w_i grad L_i`` plus the regularizers' gradient."""
    clone, opt = copy_model(model, x)
    weights = weights or model.loss_weights
    with tf.GradientTape() as tape:
        pred = clone(x, training=True)
        target = tf.add_n([weights[t] * clone.task_losses[t](
            y[t], pred[t], sample_weight=None if sw is None else sw[t]) for t in subset]
            + list(clone.losses))
    grads = tape.gradient(target, clone.shared_variables)
    before = _task_losses(clone, x, y, sw)
    opt.apply(grads, clone.shared_variables)
    return before, _task_losses(clone, x, y, sw)


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
    probe = transference.Transference(every=1, log_pairs=True)
    model = tf_mtl.MultiTaskModel(model.encoder, model.heads, losses, probes=[probe])
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["transference/skipped"] == 4  # 4 sources x target b
    # Never measured: NaN in the logs and None in the scores, never a 0.0 that reads as a value.
    assert np.isnan(logs["transference/a>b"]) and probe.scores()["a"]["b"] is None
    assert np.isfinite(logs["transference/a|b|c>c"])
    assert logs["transference/self"] == pytest.approx(np.mean([probe.scores()[t][t]
                                                               for t in ("a", "c")]))


def test_probe_in_fit_logs_epoch_means_every_n_steps():
    ds, _ = tf_mtl.data.synthetic("train", num_tasks=3, num_groups=3, num_examples=160,
                                  batch_size=16)
    tasks = ["t0", "t1", "t2"]
    probe = transference.Transference(order=1, every=3, method="first_order", log_pairs=True)
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
    assert logs["cos/self"][0] == pytest.approx(1.0, abs=1e-5)


def test_default_logs_are_a_summary_and_pairs_come_back_with_log_pairs():
    x, y = _batch()
    for log_pairs in (False, True):
        probe = transference.Transference(every=1, order=1, log_pairs=log_pairs)
        model = _model(keras.optimizers.SGD(0.05), probes=[probe])
        logs = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
        keys = sorted(k for k in logs if k.startswith("transference/"))
        summary = ["transference/cross", "transference/self", "transference/skipped",
                   "transference/steps"]
        pairs = [f"transference/{s}>{t}" for s in ["a", "b", "c", "a|b|c"] for t in TASKS]
        assert keys == sorted(summary + (pairs if log_pairs else []))
        scores = probe.scores()
        assert logs["transference/self"][0] == pytest.approx(
            np.mean([scores[t][t] for t in TASKS]), rel=1e-5)
        assert logs["transference/cross"][0] == pytest.approx(
            np.mean([scores[s][t] for s in TASKS for t in TASKS if s != t]), rel=1e-5)
        assert logs["transference/steps"] == [2.0]


def test_an_epoch_without_a_measured_step_logs_nan_not_zero():
    x, y = _batch(n=12)
    probe = transference.Transference(every=7, log_pairs=True)
    model = _model(keras.optimizers.SGD(0.05), probes=[probe])
    logs = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    assert logs["transference/steps"] == [1.0, 0.0]   # steps 0..2 measure 0; 3..5 none
    for key in ("transference/self", "transference/cross", "transference/a>b"):
        assert np.isfinite(logs[key][0]) and np.isnan(logs[key][1]), key
    assert all(v is None for row in probe.scores().values() for v in row.values())


def test_measure_reflects_the_optimizer_state_of_each_call():
    """A trace made before training (zero momentum) must not be reused after it."""
    model = _model(keras.optimizers.SGD(0.05, momentum=0.9))
    x, y = _batch()
    first = transference.measure(model, x, y)
    before, after = _stepped_copy_losses(model, x, y, ["a"])
    assert first["a"]["b"] == pytest.approx(1 - after[1] / before[1], rel=1e-4, abs=1e-6)
    _train(model)
    z = transference.measure(model, x, y)
    transference._MEASURE_FNS.pop(model)  # A fresh trace must agree.
    fresh = transference.measure(model, x, y)
    for source in z:
        before, after = _stepped_copy_losses(model, x, y, source.split("|"))
        for j, t in enumerate(TASKS):
            assert z[source][t] == pytest.approx(fresh[source][t], rel=1e-6, abs=1e-7)
            assert z[source][t] == pytest.approx(1 - after[j] / before[j], rel=1e-4, abs=1e-6)
    assert abs(z["a"]["b"] - first["a"]["b"]) > 1e-3  # Momentum changed the answer.
    # Re-compiled with another optimizer: measured with the new one, before and after it steps.
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    for steps in (0, 2):
        _train(model, steps)
        z = transference.measure(model, x, y)
        for source in ("a", "a|b|c"):
            before, after = _stepped_copy_losses(model, x, y, source.split("|"))
            for j, t in enumerate(TASKS):
                assert z[source][t] == pytest.approx(1 - after[j] / before[j], rel=1e-4,
                                                     abs=1e-6)


@pytest.mark.parametrize("method", transference.METHODS)
def test_measure_changes_no_variable(method):
    encoder = keras.Sequential([keras.layers.Dense(8), keras.layers.BatchNormalization(),
                                keras.layers.Dropout(0.3), keras.layers.Dense(4)])
    model = _model(keras.optimizers.Adam(0.01), encoder=encoder)
    _train(model, 2)
    x, y = _batch()
    variables = model.variables + model.optimizer.variables + model.metrics_variables
    state = [np.array(v.numpy(), copy=True) for v in variables]
    transference.measure(model, x, y, order=-1, method=method, update_heads=True)
    for v, s in zip(variables, state):
        np.testing.assert_array_equal(v.numpy(), s, err_msg=v.path)


def test_lookahead_uses_the_same_dropout_masks_and_batch_statistics():
    """With a zero learning rate nothing moves, so every loss ratio is exactly 1."""
    encoder = keras.Sequential([keras.layers.Dense(16), keras.layers.BatchNormalization(),
                                keras.layers.Dropout(0.5), keras.layers.Dense(4)])
    model = _model(keras.optimizers.SGD(0.0), encoder=encoder)
    x, y = _batch()
    z = transference.measure(model, x, y, order=1)
    assert all(v == 0.0 for row in z.values() for v in row.values())


def test_all_tasks_source_is_the_models_own_step():
    """Unequal loss weights, per-task sample weights and a regularizer: Z[a|b|c]
    is the step the model's own train step takes (heads held fixed, or stepped
    too with update_heads=True)."""
    encoder = keras.Sequential([
        keras.layers.Dense(8, kernel_regularizer=keras.regularizers.L2(0.05)),
        keras.layers.BatchNormalization(), keras.layers.Dense(4, activation="tanh")])
    weights = {"a": 0.25, "b": 2.0, "c": 1.0}
    model = _model(keras.optimizers.SGD(0.05, momentum=0.9), loss_weights=weights,
                   encoder=encoder)
    _train(model, 2)
    x, y = _batch()
    rng = np.random.default_rng(5)
    sw = {t: rng.uniform(0, 2, len(x)).astype("float32") for t in TASKS}
    for update_heads in (False, True):
        z = transference.measure(model, x, y, sample_weight=sw, update_heads=update_heads)
        clone, _ = copy_model(model, x)
        before = _task_losses(clone, x, y, sw)
        heads = [v.numpy() for v in clone.head_variables]
        clone.train_on_batch(x, y, sample_weight=sw)  # The model's own step.
        if not update_heads:
            for v, h in zip(clone.head_variables, heads):
                v.assign(h)
        after = _task_losses(clone, x, y, sw)
        for j, t in enumerate(TASKS):
            assert z["a|b|c"][t] == pytest.approx(1 - after[j] / before[j], rel=1e-4, abs=1e-6)
    # Single sources carry their task's weight (and the regularizer) too.
    z = transference.measure(model, x, y, sample_weight=sw)
    before, after = _stepped_copy_losses(model, x, y, ["b"], sw)
    for j, t in enumerate(TASKS):
        assert z["b"][t] == pytest.approx(1 - after[j] / before[j], rel=1e-4, abs=1e-6)
    # A swapped weight must show: unweighted sources give other values.
    _, unweighted = _stepped_copy_losses(model, x, y, ["b"], sw, weights={t: 1.0 for t in TASKS})
    assert abs((1 - unweighted[0] / before[0]) - z["b"]["a"]) > 1e-4


@pytest.mark.parametrize("method", ["exact", "first_order"])
def test_chunked_sources_give_the_same_values(method):
    model = _model(keras.optimizers.Adam(0.01))
    _train(model, 2)
    x, y = _batch()
    whole = transference.measure(model, x, y, order=-1, method=method)
    for chunk_size in (1, 3):
        chunked = transference.measure(model, x, y, order=-1, method=method,
                                       chunk_size=chunk_size)
        for source in whole:
            for t in TASKS:
                assert chunked[source][t] == pytest.approx(whole[source][t], rel=1e-5, abs=1e-7)


def _conv_encoder():
    # A convolution whose filter differs per candidate (TensorFlow's vectorizer
    # loops over it) next to layers it batches (Dense, BatchNormalization).
    return keras.Sequential([
        keras.layers.Reshape((5, 1, 1)), keras.layers.Conv2D(3, (2, 1)),
        keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.Flatten(),
        keras.layers.Dense(4, activation="tanh")])


@pytest.mark.parametrize("execution", ["sequential", "unrolled", "vectorized"])
def test_every_lookahead_execution_equals_really_stepping_a_copy(execution, monkeypatch):
    model = _model(keras.optimizers.Adam(0.01), encoder=_conv_encoder(),
                   lookahead_execution=execution)
    _train(model, 2)
    x, y = _batch()
    calls = {"map_fn": 0, "vectorized_map": 0}  # Counted while measure() traces.
    for name in calls:
        original = getattr(tf, name)
        monkeypatch.setattr(tf, name, (lambda n, f: lambda *a, **k: (
            calls.__setitem__(n, calls[n] + 1), f(*a, **k))[1])(name, original))
    z = transference.measure(model, x, y, order=-1, chunk_size=3)  # Chunks of 3, 3, 1.
    # The chunks are one map_fn; "sequential" adds one inside it, "vectorized" its own map.
    assert calls == {"sequential": {"map_fn": 2, "vectorized_map": 0},
                     "unrolled": {"map_fn": 1, "vectorized_map": 0},
                     "vectorized": {"map_fn": 1, "vectorized_map": 1}}[execution], calls
    for source, row in z.items():
        before, after = _stepped_copy_losses(model, x, y, source.split("|"))
        for j, t in enumerate(TASKS):
            np.testing.assert_allclose(row[t], 1 - after[j] / before[j], rtol=1e-4, atol=1e-6)


def test_lookahead_execution_is_validated_resolved_and_serialized():
    with pytest.raises(ValueError, match=r"`lookahead_execution`.*Received: "
                                         r"lookahead_execution='batched'"):
        _model(keras.optimizers.SGD(0.1), lookahead_execution="batched")
    model = _model(keras.optimizers.SGD(0.1), lookahead_execution="unrolled")
    assert tf_mtl.MultiTaskModel.from_config(
        model.get_config()).lookahead_execution == "unrolled"
    assert tf_mtl.lookahead.resolve_execution("vectorized") == "vectorized"
    # "auto" is the mode README's benchmark found fastest or tied in every case.
    assert tf_mtl.lookahead.resolve_execution("auto") == "unrolled"
    with pytest.raises(ValueError, match="Received: lookahead_execution=None"):
        tf_mtl.lookahead.resolve_execution(None)


def test_probe_in_fit_equals_measure_on_the_same_weights_state_and_batch():
    """The probe measures before the optimizer applies: its value is measure() taken just
    before that step (measuring after apply would differ)."""
    probe = transference.Transference(every=1, order=1, method="exact", update_heads=True)
    model = _model(keras.optimizers.SGD(0.05, momentum=0.9), probes=[probe])
    _train(model, 2)
    x, y = _batch()
    expected = transference.measure(model, x, y, update_heads=True)
    model.reset_metrics()
    model.train_on_batch(x, y)  # One measured step.
    measured = probe.scores()
    after_apply = transference.measure(model, x, y, update_heads=True)
    for source in expected:
        for t in TASKS:
            assert measured[source][t] == pytest.approx(expected[source][t], rel=1e-5, abs=1e-7)
    assert abs(after_apply["a"]["b"] - expected["a"]["b"]) > 1e-4


@pytest.mark.parametrize("kwargs, message", [
    (dict(chunk_size=0), "Received: chunk_size=0"),
    (dict(chunk_size=2.5), "Received: chunk_size=2.5"),
])
def test_bad_chunk_size(kwargs, message):
    with pytest.raises(ValueError, match=message):
        transference.Transference(**kwargs)


def test_first_order_with_stepped_heads_approaches_exact():
    """update_heads=True: the heads' first-order term is needed for the remainder to vanish."""
    x, y = _batch()
    errors = []
    for lr in (1e-1, 1e-2, 1e-3):
        model = _model(keras.optimizers.SGD(lr))
        kw = dict(order=1, scale_by_lr=True, update_heads=True)
        ex = transference.measure(model, x, y, method="exact", **kw)
        fo = transference.measure(model, x, y, method="first_order", **kw)
        errors.append(max(abs(ex[s][t] - fo[s][t]) for s in ex for t in TASKS))
    assert errors[0] > 5 * errors[1] > 25 * errors[2]


def test_measure_follows_changed_settings_of_the_same_optimizer_and_frozen_layers():
    opt = keras.optimizers.SGD(0.05, momentum=0.9)
    model = _model(opt)
    _train(model, 2)
    x, y = _batch()
    transference.measure(model, x, y)  # Traced with the current settings.

    def check():
        z = transference.measure(model, x, y)
        before, after = _stepped_copy_losses(model, x, y, ["a"])
        for j, t in enumerate(TASKS):
            assert z["a"][t] == pytest.approx(1 - after[j] / before[j], rel=1e-4, abs=1e-6)

    opt.clipnorm = 1e-3  # Same object, new setting.
    model.compile(optimizer=opt)
    check()
    model.encoder.layers[0].trainable = False  # Fewer shared variables.
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    _train(model, 1)
    check()


def test_measure_keeps_no_model_alive():
    import gc
    import weakref
    model = _model(keras.optimizers.SGD(0.1))
    x, y = _batch()
    transference.measure(model, x, y)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_cosine_has_no_learning_rate_to_divide_by():
    with pytest.raises(ValueError, match="method='cosine' with scale_by_lr=True"):
        transference.Transference(method="cosine", scale_by_lr=True)


@pytest.mark.parametrize("method", ["exact", "first_order", "cosine"])
@pytest.mark.parametrize("chunk_size", [None, 1])
def test_directions_score_as_the_rows_they_equal(method, chunk_size):
    """A precomputed direction equal to a row's gradient gets that row's transference,
    after the rows, in the same chunks (with an L2 regularizer: its gradient is added once)."""
    from tf_mtl.gradients import combine, record_step
    encoder = keras.Sequential([keras.layers.Dense(8, kernel_regularizer="l2"),
                                keras.layers.Dense(4, activation="tanh")])
    model = _model(keras.optimizers.SGD(0.05, momentum=0.9), encoder=encoder)
    _train(model, 2)
    x, y = _batch()
    rows = tf.constant([[1.0, 0.0, 0.0], [0.5, -1.0, 2.0], [1.0, 1.0, 1.0]])

    @tf.function
    def both():
        step = record_step(model, x, y, stateless=True)
        whole = transference.compute(model, step, rows, method=method, chunk_size=chunk_size)
        directions = combine(step.per_task(), rows[1:])
        mixed = transference.compute(model, step, rows[:1], method=method,
                                     chunk_size=chunk_size, directions=directions)
        return whole, mixed

    (z, valid), (z2, valid2) = both()
    assert z2.shape == (3, 3)
    np.testing.assert_array_equal(valid.numpy(), valid2.numpy())
    np.testing.assert_allclose(z2.numpy(), z.numpy(), rtol=1e-5, atol=1e-7)
