import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.updates import PCGrad, UncertaintyWeights, pcgrad_combination


def _reference(grads, order):
    """PCGrad written from Yu et al. Alg. 1 on explicit vectors: each g_i projected
    against the other tasks' *original* gradients in ``order``; the results summed."""
    out = []
    for i, g in enumerate(grads):
        pc = g.astype(np.float64).copy()
        for j in order:
            if j == i:
                continue
            dot = pc @ grads[j]
            if dot < 0:
                pc = pc - dot / (grads[j] @ grads[j]) * grads[j]
        out.append(pc)
    return np.sum(out, axis=0)


def _via_gram(grads, order):
    g = np.stack(grads)
    w = pcgrad_combination(tf.constant(g @ g.T, tf.float32), tf.constant(order, tf.int32))
    return w.numpy() @ g


def test_two_tasks_hand_worked():
    g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])
    # <g1, g2> = -1: g1 - (-1/2) g2 = (0.5, 0.5); g2 - (-1/1) g1 = (0, 1); sum (0.5, 1.5).
    np.testing.assert_allclose(_via_gram([g1, g2], [0, 1]), [0.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(_via_gram([g1, g2], [1, 0]), [0.5, 1.5], atol=1e-6)


def test_no_conflict_is_the_plain_sum():
    g = [np.array([1.0, 0.2, 0.0]), np.array([0.5, 1.0, 0.1]), np.array([0.0, 0.3, 1.0])]
    np.testing.assert_allclose(_via_gram(g, [2, 0, 1]), np.sum(g, axis=0), atol=1e-6)


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_three_conflicting_tasks_match_the_algorithm(order):
    g = [np.array([1.0, 0.0, 0.5]), np.array([-0.8, 1.0, 0.0]), np.array([-0.2, -0.9, 0.3])]
    np.testing.assert_allclose(_via_gram(g, order), _reference(g, order), rtol=1e-5, atol=1e-6)


def test_order_matters_for_three_tasks_and_projections_use_original_gradients():
    g = [np.array([1.0, 0.0]), np.array([-1.0, 0.2]), np.array([0.3, -1.0])]
    a, b = _via_gram(g, [1, 2, 0]), _via_gram(g, [2, 1, 0])
    assert not np.allclose(a, b)
    np.testing.assert_allclose(a, _reference(g, [1, 2, 0]), atol=1e-6)
    np.testing.assert_allclose(b, _reference(g, [2, 1, 0]), atol=1e-6)


def _model(update, seed=0):
    keras.utils.set_random_seed(seed)
    enc = keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in "ab"},
                                  {t: "mse" for t in "ab"}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _batch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 4)).astype("float32")
    a = x[:, :1] + 0.1 * rng.standard_normal((12, 1)).astype("float32")
    return x, {"a": a, "b": -3.0 * a}  # opposite targets: the task gradients conflict


@pytest.mark.parametrize("weighted", [False, True])
def test_step_applies_pcgrad_of_the_real_task_gradients(weighted):
    """Plain SGD: the encoder moves by -lr * PCGrad(w_a g_a, w_b g_b) (reference on
    flattened tape gradients); with UW the w are ½e^{-s} = ½ at the start."""
    model = _model(PCGrad(weighting=UncertaintyWeights() if weighted else None))
    x, y = _batch()
    model.build_for(x)
    model.heads["b"].set_weights(model.heads["a"].get_weights())  # same head, opposite targets
    with tf.GradientTape(persistent=True) as tape:
        pred = model(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"]
    scale = 0.5 if weighted else 1.0
    flat = [scale * np.concatenate([g.numpy().ravel() for g in tape.gradient(
        loss, model.shared_variables)]) for loss in losses]
    expected = _reference(flat, [0, 1])
    assert flat[0] @ flat[1] < 0  # the batch makes the two tasks conflict
    before = np.concatenate([v.numpy().ravel() for v in model.shared_variables])
    model.train_on_batch(x, y)
    after = np.concatenate([v.numpy().ravel() for v in model.shared_variables])
    np.testing.assert_allclose(after, before - 0.1 * expected, rtol=1e-4, atol=1e-6)


def test_order_is_seeded_and_advances():
    rule = PCGrad(seed=3)
    rule.build_tasks(["a", "b", "c", "d"])
    orders = [tuple(rule.order().numpy()) for _ in range(6)]
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    assert len(set(orders)) > 1
    again = PCGrad(seed=3)
    again.build_tasks(["a", "b", "c", "d"])
    assert [tuple(again.order().numpy()) for _ in range(6)] == orders
    assert int(rule.draws.numpy()) == 6


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": 1.5}, "Received: seed=1.5"),
    ({"weighting": "uw"}, "Received: weighting='uw'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PCGrad(**kwargs)
