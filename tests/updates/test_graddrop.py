import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.updates.small_model import TASKS
from tests.updates.small_model import batch as _batch
from tests.updates.small_model import flat as _flat
from tests.updates.small_model import model as _model
from tf_mtl.updates.graddrop import GradDrop, graddrop_masks, uniform


def test_same_signs_keep_every_gradient():
    rng = np.random.default_rng(0)
    sign = np.where(rng.random(500) < 0.5, 1.0, -1.0)
    signed = np.abs(rng.standard_normal((3, 500))) * sign          # one sign per element
    masks = graddrop_masks(tf.constant(signed, tf.float32), uniform(0, 1, [500])).numpy()
    np.testing.assert_array_equal(masks, np.ones_like(masks))


@pytest.mark.parametrize("positive, negative", [(3.0, -1.0), (1.0, -4.0)])
def test_positive_entries_are_kept_with_probability_purity(positive, negative):
    n = 20000
    signed = np.stack([np.full(n, positive), np.full(n, negative)]).astype("float32")
    purity = 0.5 * (1 + (positive + negative) / (abs(positive) + abs(negative)))
    masks = graddrop_masks(tf.constant(signed), uniform(3, 0, [n])).numpy()
    assert abs(masks[0].mean() - purity) < 0.015
    assert abs(masks[1].mean() - (1 - purity)) < 0.015
    assert np.all(masks[0] + masks[1] == 1)        # exactly one sign survives per element


def test_uniform_draws_are_reproducible_and_move_with_the_counter():
    a, b, c = uniform(1, 5, [4, 8]), uniform(1, 5, [4, 8]), uniform(1, 6, [4, 8])
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), c.numpy())
    u = uniform(2, 0, [10000]).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.02


def _expected_step(model, x, y, leak, draw, seed=0):
    """The masked cotangent at Z, from tape gradients, back-propagated through the encoder."""
    with tf.GradientTape(persistent=True) as tape:
        z = model.encoder(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], model.heads[t](z)) for t in TASKS]
    c = np.stack([tape.gradient(loss, z).numpy() for loss in losses])               # [m, B, f]
    signed = (np.sign(z.numpy())[None] * c).sum(1)                            # [m, f]
    purity = 0.5 * (1 + signed.sum(0) / (np.abs(signed).sum(0) + 1e-7))
    u = uniform(seed, draw, z.shape[1:]).numpy()
    masks = (purity > u) * (signed > 0) + (purity < u) * (signed < 0)
    cotangent = ((leak + (1 - leak) * masks)[:, None] * c).sum(0)
    grads = tape.gradient(z, model.shared_variables,
                          output_gradients=tf.constant(cotangent, tf.float32))
    return np.concatenate([g.numpy().ravel() for g in grads]), masks


@pytest.mark.parametrize("leak", [0.0, 0.3])
def test_train_steps_apply_the_masked_gradient(leak):
    model = _model(GradDrop(leak=leak))
    dropped = 0
    for draw in range(3):
        x, y = _batch_unscaled(draw)
        model.build_for(x)
        expected, masks = _expected_step(model, x, y, leak, draw)
        dropped += np.sum(masks == 0)
        before = _flat(model)
        model.train_on_batch(x, y)
        np.testing.assert_allclose(_flat(model), before - 0.1 * expected, rtol=1e-4, atol=1e-6)
    assert dropped > 0   # the batches have conflicting signs: something was dropped


def test_leak_one_is_the_plain_sum():
    model, plain = _model(GradDrop(leak=1.0)), _model(None)
    x, y = _batch_unscaled(4)
    model.train_on_batch(x, y)
    plain.train_on_batch(x, y)
    np.testing.assert_allclose(_flat(model), _flat(plain), rtol=1e-5, atol=1e-6)


def test_needs_the_features():
    class Subclassed(tf_mtl.MultiTaskModel):  # an overridden call: no features recorded
        def call(self, x, training=None):
            return super().call(x, training=training)

    keras.utils.set_random_seed(0)
    model = Subclassed(keras.Sequential([keras.layers.Dense(3)]),
                       {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
                       update=GradDrop())
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="Received: a step without features"):
        model.train_on_batch(*_batch_unscaled(0))


def test_config_round_trip_and_save_load_keep_the_counter(tmp_path):
    rule = GradDrop(leak=0.25, seed=4)
    assert GradDrop.from_config(rule.get_config()).get_config() == rule.get_config()
    model = _model(rule)
    model.train_on_batch(*_batch_unscaled(1))
    model.train_on_batch(*_batch_unscaled(2))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").update
    assert loaded.leak == 0.25 and loaded.seed == 4 and int(loaded.steps.numpy()) == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"leak": 1.5}, "Received: leak=1.5"),
    ({"leak": -0.1}, "Received: leak=-0.1"),
    ({"seed": 0.5}, "Received: seed=0.5"),
    ({"weighting": 3}, "Received: weighting=3"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradDrop(**kwargs)


def _batch_unscaled(seed):
    return _batch(seed, scaled=False)
