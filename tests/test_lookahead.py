import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl import lookahead

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "nesterov": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "sgd_wd_clipnorm": lambda: keras.optimizers.SGD(0.05, momentum=0.5, weight_decay=0.1,
                                                    clipnorm=0.5),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "amsgrad": lambda: keras.optimizers.Adam(0.01, amsgrad=True),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.05),
    "adam_clipvalue": lambda: keras.optimizers.Adam(0.01, clipvalue=0.3),
    "schedule": lambda: keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5), momentum=0.9),
}


def _variables(seed):
    rng = np.random.default_rng(seed)
    return [keras.Variable(rng.standard_normal(s).astype("float32"), name=f"v{i}")
            for i, s in enumerate([(3, 4), (4,)])]


def _grads(rng, variables):
    return [tf.constant(rng.standard_normal(v.shape).astype("float32")) for v in variables]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("steps_before", [0, 4])
def test_simulated_update_equals_apply(name, steps_before):
    """Golden: next_weights == what optimizer.apply really does, incl. step 0."""
    rng = np.random.default_rng(1)
    variables = _variables(0)
    opt = OPTIMIZERS[name]()
    for _ in range(steps_before):
        opt.apply(_grads(rng, variables), variables)
    grads = _grads(rng, variables)
    before = [v.numpy().copy() for v in variables + list(opt.variables)]
    simulated = lookahead.next_weights(opt, [g[None] for g in grads], variables)
    for v, b in zip(variables + list(opt.variables), before):  # Nothing written.
        np.testing.assert_array_equal(v.numpy(), b)
    opt.apply(grads, variables)
    for s, v, b in zip(simulated, variables, before):
        assert not np.allclose(b, v.numpy())
        np.testing.assert_allclose(s[0].numpy(), v.numpy(), rtol=1e-5, atol=1e-6)


def test_each_batched_candidate_equals_really_applying_it():
    """Three candidates at once: candidate i is what apply() does with gradient i,
    each on its own copy of the weights and optimizer state."""
    rng = np.random.default_rng(2)
    variables = _variables(3)
    opt = keras.optimizers.Adam(0.01, clipnorm=1.0)
    opt.apply(_grads(rng, variables), variables)
    cands = [[g * s for g in _grads(rng, variables)] for s in (0.5, 1.0, 3.0)]
    batched = lookahead.next_weights(opt, [tf.stack(c) for c in zip(*cands)], variables)
    for i, c in enumerate(cands):
        copies = [keras.Variable(v.numpy()) for v in variables]
        copy_opt = keras.optimizers.Adam.from_config(opt.get_config())
        copy_opt.build(copies)
        for dst, src in zip(copy_opt.variables, opt.variables):
            dst.assign(src)
        copy_opt.apply(c, copies)
        for b, v in zip(batched, copies):
            np.testing.assert_allclose(b[i].numpy(), v.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(batched[0][0].numpy(), batched[0][2].numpy())


def test_chunks_cover_every_row_in_order():
    rows = tf.constant(np.arange(21, dtype="float32").reshape(7, 3))
    for size in (1, 2, 3, 7, 10):
        out = lookahead.map_chunks(lambda r: r * 2.0, rows, size)
        np.testing.assert_array_equal(out.numpy(), rows.numpy() * 2)


def test_weight_decay_exclusion_is_respected():
    variables = _variables(4)
    opt = keras.optimizers.AdamW(0.01, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[variables[1]])
    grads = _grads(np.random.default_rng(5), variables)
    simulated = lookahead.next_weights(opt, [g[None] for g in grads], variables)
    opt.apply(grads, variables)
    for s, v in zip(simulated, variables):
        np.testing.assert_allclose(s[0].numpy(), v.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make, message", [
    (lambda: keras.optimizers.RMSprop(0.1), "SGD, Adam, AdamW"),
    (lambda: keras.optimizers.Nadam(0.1), "Received: optimizer of type Nadam"),
    (lambda: keras.optimizers.SGD(0.1, global_clipnorm=1.0), "global_clipnorm=1.0"),
    (lambda: keras.optimizers.SGD(0.1, gradient_accumulation_steps=2),
     "gradient_accumulation_steps=2"),
    (lambda: keras.optimizers.SGD(0.1, use_ema=True), "use_ema=True"),
    (lambda: keras.optimizers.Adam(0.1, loss_scale_factor=128.0), "loss_scale_factor=128.0"),
])
def test_unsupported_optimizers_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        lookahead.check_optimizer(make())


def test_losses_at_touches_no_variable():
    encoder = keras.Sequential([keras.layers.Dense(4), keras.layers.BatchNormalization()])
    model = tf_mtl.MultiTaskModel(encoder, {"a": keras.layers.Dense(1)}, {"a": "mse"})
    x = tf.random.normal((8, 3))
    y = {"a": tf.random.normal((8, 1))}
    model(x)
    state = [v.numpy().copy() for v in model.variables]
    shifted = [tf.convert_to_tensor(v) + 1.0 for v in encoder.trainable_variables]
    loss = lookahead.losses_at(model, shifted, x, y)
    for v, s in zip(model.variables, state):
        np.testing.assert_array_equal(v.numpy(), s)
    # Same value as really assigning the shifted weights and running training=True.
    for v, w in zip(encoder.trainable_variables, shifted):
        v.assign(w)
    expected = keras.losses.MeanSquaredError()(y["a"], model(x, training=True)["a"])
    np.testing.assert_allclose(loss.numpy()[0], expected.numpy(), rtol=1e-5)
