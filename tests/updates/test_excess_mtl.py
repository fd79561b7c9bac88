import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.updates.small_model import batch as _batch
from tests.updates.small_model import flat as _flat
from tests.updates.small_model import model as _model
from tests.updates.small_model import task_gradients as _task_gradients
from tf_mtl.updates.excess_mtl import ExcessMTL
from tf_mtl.updates.itmtl import ITMTL


def test_four_steps_follow_the_authors_update_by_hand():
    """G_i += g_i²; r_i = Σ g_i²/sqrt(G_i + 1e-7); step 1 records r⁰, keeps w = 1; later
    w_i ← w_i exp(η r_i/r⁰_i), normalized to sum m; the encoder steps along Σ w_i g_i."""
    eta = 0.5
    rule = ExcessMTL(robust_step_size=eta)
    model = _model(rule)
    squares, w, initial = 0.0, np.ones(3), None
    for t in range(1, 5):
        x, y = _batch(t)
        model.build_for(x)
        g = _task_grads(model, x, y)
        squares = squares + g ** 2
        risk = np.sum(g ** 2 / np.sqrt(squares + 1e-7), axis=1)
        if initial is None:
            initial = risk
        else:
            w = w * np.exp(eta * risk / initial)
            w = w / w.sum() * 3
        before = _flat(model)
        model.train_on_batch(x, y)
        np.testing.assert_allclose(_flat(model), before - 0.1 * w @ g, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(rule.task_weights.numpy(), w, rtol=1e-5)
    assert not np.allclose(w, 1.0)


def test_heads_get_the_weights_of_the_step_before():
    rule = ExcessMTL(robust_step_size=0.5)
    model = _model(rule)
    for t in range(2):
        model.train_on_batch(*_batch(t))
    x, y = _batch(5)
    w = rule.task_weights.numpy()
    head = model.heads["c"]
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = w[2] * keras.losses.MeanSquaredError()(y["c"], pred["c"])
    grads = tape.gradient(loss, head.trainable_variables)
    expected = [v.numpy() - 0.1 * g.numpy() for v, g in zip(head.trainable_variables, grads)]
    model.train_on_batch(x, y)
    for v, e in zip(head.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-4, atol=1e-6)


def test_config_round_trip_and_save_load_keep_the_state(tmp_path):
    rule = ExcessMTL(robust_step_size=0.3)
    assert ExcessMTL.from_config(rule.get_config()).get_config() == rule.get_config()
    model = _model(rule)
    for t in range(3):
        model.train_on_batch(*_batch(t))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").update
    assert loaded.robust_step_size == 0.3
    for a, b in zip(rule.variables, loaded.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(loaded.task_weights.numpy(), 1.0)
    assert not np.allclose(loaded.task_state("squares")[0].numpy(), 0.0)


def test_itmtl_candidate_runs():
    rule = ITMTL(["all", ExcessMTL()])
    model = _model(rule)
    logs = model.train_on_batch(*_batch(1), return_dict=True)
    assert np.all(np.isfinite(rule.last_scores.numpy()))
    assert "itmtl/choice" in logs


@pytest.mark.parametrize("value", [0.0, -1.0, "a", None])
def test_bad_step_size(value):
    with pytest.raises(ValueError, match=f"Received: robust_step_size={value!r}"):
        ExcessMTL(robust_step_size=value)


def _task_grads(model, x, y):
    return _task_gradients(model, x, y)[1]
