import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.updates.small_model import batch as _batch
from tests.updates.small_model import flat as _flat
from tests.updates.small_model import model as _model
from tests.updates.small_model import task_gradients as _task_gradients
from tf_mtl.updates.dbmtl import DBMTL


@pytest.mark.parametrize("beta, gamma", [(0.9, 0.0), (0.6, 0.5)])
def test_three_steps_follow_the_update_by_hand(beta, gamma):
    """ĝ_i ← β_t ĝ_i + (1-β_t) g_i/(L_i+ε), β_t = β/t^γ; d = max||ĝ|| Σ ĝ_i/||ĝ_i||; SGD."""
    rule = DBMTL(beta=beta, gamma=gamma)
    model = _model(rule)
    average = 0.0
    for t in range(1, 4):
        x, y = _batch(t)
        model.build_for(x)
        losses, grads = _task_gradients(model, x, y)
        beta_t = beta / t ** gamma
        average = beta_t * average + (1 - beta_t) * grads / (losses[:, None] + 1e-8)
        size = np.linalg.norm(average, axis=1)
        direction = (size.max() / (size + 1e-8)) @ average
        before = _flat(model)
        model.train_on_batch(x, y)
        np.testing.assert_allclose(_flat(model), before - 0.1 * direction, rtol=1e-4, atol=1e-6)
        state = np.concatenate([v.numpy().reshape(3, -1) for v in rule.task_state("average")], 1)
        np.testing.assert_allclose(state, average, rtol=1e-4, atol=1e-7)
    assert int(rule.steps.numpy()) == 3


def test_heads_get_the_log_loss_gradient():
    model = _model(DBMTL())
    x, y = _batch(0)
    model.build_for(x)
    head = model.heads["b"]
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = tf.math.log(keras.losses.MeanSquaredError()(y["b"], pred["b"]) + 1e-8)
    grads = tape.gradient(loss, head.trainable_variables)
    expected = [w.numpy() - 0.1 * g.numpy() for w, g in zip(head.trainable_variables, grads)]
    model.train_on_batch(x, y)
    for w, e in zip(head.trainable_variables, expected):
        np.testing.assert_allclose(w.numpy(), e, rtol=1e-4, atol=1e-6)


def test_config_round_trip_and_save_load_keep_the_averages(tmp_path):
    rule = DBMTL(beta=0.8, gamma=0.25, name="db")
    again = DBMTL.from_config(rule.get_config())
    assert again.get_config() == rule.get_config()
    model = _model(rule)
    model.train_on_batch(*_batch(1))
    model.train_on_batch(*_batch(2))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.update, DBMTL) and loaded.update.beta == 0.8
    for a, b in zip(rule.variables, loaded.update.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(loaded.update.steps.numpy()) == 2
    assert not np.allclose(loaded.update.task_state("average")[0].numpy(), 0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": 1.0}, "Received: beta=1.0"),
    ({"beta": -0.1}, "Received: beta=-0.1"),
    ({"beta": "x"}, "Received: beta='x'"),
    ({"gamma": -1}, "Received: gamma=-1"),
    ({"gamma": True}, "Received: gamma=True"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DBMTL(**kwargs)


def test_state_is_made_by_build_for_and_must_fit_the_model():
    rule = DBMTL()
    model = _model(rule)
    x, y = _batch(1)
    model.build_for(x)                                 # calls rule.build_for_variables
    assert [tuple(v.shape) for v in rule.task_state("average")] == [
        (3, *v.shape) for v in model.shared_variables]  # one [m, *shape] per shared variable
    count = len(model.variables)
    rule.build_for_variables(model.shared_variables)   # again: nothing new
    model.train_on_batch(x, y)                         # uses (and keeps) that state
    assert len(model.variables) == count
    with pytest.raises(ValueError, match="Received: shared variables of shapes"):
        rule.build_for_variables(model.shared_variables[:2])
