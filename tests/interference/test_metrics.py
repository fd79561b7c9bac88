"""000's sample-wise metrics (Eq. 2-3) and linear CKA, against hand counts and a direct HSIC."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl import metrics


def test_hand_made_vectors():
    # 10 samples: the single model solves the first 6; the multi model keeps 4 of them
    # (forgets samples 1 and 4) and gains 3 of the 4 others (samples 6, 7, 9).
    single = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], bool)
    multi = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], bool)
    r = metrics.interference_transfer(single, multi)
    assert (r["n"], r["single_correct"], r["kept"], r["gained"]) == (10, 6, 4, 3)
    assert r["perf_gain"] == pytest.approx(10.0)          # (4 + 3 - 6) / 10
    assert r["interference"] == pytest.approx(100 * 2 / 6)
    assert r["transfer"] == pytest.approx(75.0)
    # Swapping the arguments asks another question: asymmetric answers.
    s = metrics.interference_transfer(multi, single)
    assert (s["kept"], s["gained"]) == (4, 2) and s["transfer"] == pytest.approx(100 * 2 / 3)


def test_identities_on_random_vectors():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 60))
        single, multi = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        if single.all() or not single.any():
            continue
        r = metrics.interference_transfer(single, multi)
        k, k2 = int(np.sum(single & multi)), int(np.sum(~single & multi))
        # 000 Eq. 2 as written, and PerfGain as the accuracy difference.
        assert r["perf_gain"] == pytest.approx(100 * (k + k2 - single.sum()) / n)
        assert r["perf_gain"] == pytest.approx(100 * (multi.mean() - single.mean()))
        # PerfGain = (transfer |D_incorrect| - interference |D_correct|) / |D|.
        assert r["perf_gain"] == pytest.approx(
            (r["transfer"] * (~single).sum() - r["interference"] * single.sum()) / n)


def test_undefined_cases_are_nan_not_errors():
    all_right = metrics.interference_transfer(np.ones(4, bool), np.array([1, 0, 1, 1], bool))
    assert np.isnan(all_right["transfer"]) and all_right["interference"] == 25.0
    assert all_right["perf_gain"] == -25.0
    all_wrong = metrics.interference_transfer(np.zeros(4, bool), np.array([1, 0, 0, 0], bool))
    assert np.isnan(all_wrong["interference"]) and all_wrong["transfer"] == 25.0
    assert metrics.UNDEFINED != metrics.UNDEFINED   # NaN, as documented.


@pytest.mark.parametrize("single, multi, message", [
    (np.ones(3, bool), np.ones(4, bool), "same samples. Received: lengths 3 and 4"),
    (np.ones(3), np.ones(3, bool), "`single_correct` must hold booleans.*dtype float64"),
    (np.ones(3, bool), [1, 0, 1], "`multi_correct` must hold booleans.*dtype int"),
    (np.ones((2, 2), bool), np.ones((2, 2), bool), r"1-D.*Received: single_correct of shape"),
    (np.ones(0, bool), np.ones(0, bool), r"non-empty.*shape \(0,\)"),
])
def test_bad_correctness_vectors(single, multi, message):
    with pytest.raises(ValueError, match=message):
        metrics.interference_transfer(single, multi)


def _hsic_cka(x, y):
    """CKA from its kernel definition: HSIC(K, L) = tr(K H L H) / (n - 1)^2."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h) / (n - 1) ** 2
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def test_linear_cka_matches_hsic_and_is_invariant():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 7))
    y = x[:, :5] @ rng.normal(size=(5, 9)) + 0.5 * rng.normal(size=(40, 9)) + 3.0
    value = metrics.linear_cka(x, y)
    assert 0.0 < value < 1.0
    assert value == pytest.approx(_hsic_cka(x, y), rel=1e-10)
    assert metrics.linear_cka(y, x) == pytest.approx(value, rel=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    assert metrics.linear_cka(x, 4.5 * y @ q) == pytest.approx(value, rel=1e-10)
    assert metrics.linear_cka(x, x) == pytest.approx(1.0)
    assert metrics.linear_cka(x, 0.1 * x + 2.0) == pytest.approx(1.0)
    # Wider than long (the Gram branch), and trailing dimensions flattened.
    wide_x, wide_y = rng.normal(size=(6, 2, 10)), rng.normal(size=(6, 30))
    assert metrics.linear_cka(wide_x, wide_y) == pytest.approx(
        _hsic_cka(wide_x.reshape(6, -1), wide_y), rel=1e-10)
    assert np.isnan(metrics.linear_cka(np.ones((5, 3)), x[:5]))


@pytest.mark.parametrize("x, y, message", [
    (np.ones((4, 2)), np.ones((5, 2)), "same samples.*Received: 4 and 5 rows"),
    (np.ones((1, 3)), np.ones((1, 3)), r"at least 2 samples.*X of shape \(1, 3\)"),
    (np.ones(4), np.ones((4, 2)), r"\[samples, features...\].*X of shape \(4,\)"),
    (np.ones((4, 2)), np.array([["a", "b"]] * 4), "`Y` must be real numbers"),
])
def test_linear_cka_bad_input(x, y, message):
    with pytest.raises(ValueError, match=message):
        metrics.linear_cka(x, y)


def _classifier(seed, classes=3):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(classes)])


def test_models_on_a_dataset():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(21, 4)).astype(np.float32)
    y = rng.integers(0, 3, 21)
    single = _classifier(0)
    multi = tf_mtl.MultiTaskModel(
        tf_mtl.encoders.MLP([5]), {"a": keras.layers.Dense(3), "b": keras.layers.Dense(2)},
        {"a": "mse", "b": "mse"})
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": y, "b": y % 2})).batch(8)
    got_single = metrics.correct_predictions(single, (x, y))
    np.testing.assert_array_equal(got_single, single(x).numpy().argmax(-1) == y)
    _, outputs = multi.forward(x)
    np.testing.assert_array_equal(metrics.correct_predictions(multi, ds, task="a"),
                                  outputs["a"].numpy().argmax(-1) == y)
    one_hot = tf.data.Dataset.from_tensor_slices((x, np.eye(3)[y])).batch(5)
    np.testing.assert_array_equal(metrics.correct_predictions(single, one_hot), got_single)
    r = metrics.evaluate_interference_transfer(single, multi, ds, task="a")
    assert r["single_accuracy"] == pytest.approx(100 * got_single.mean())
    assert r["kept"] == int(np.sum(got_single & (outputs["a"].numpy().argmax(-1) == y)))
    with pytest.raises(ValueError, match="say which with `task`. Received: task=None"):
        metrics.correct_predictions(multi, (x, y))
    with pytest.raises(ValueError, match=r"tf.data.Dataset of \(x, y\) batches.*Received: ndarray"):
        metrics.correct_predictions(single, x)


def test_task_similarity_matrix():
    rng = np.random.default_rng(3)
    probe = rng.normal(size=(30, 4)).astype(np.float32)
    a, b = _classifier(0, 6), _classifier(1, 5)
    mtl = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([8]), {"t": keras.layers.Dense(2)},
                                {"t": "mse"})
    sim = metrics.task_similarity({"a": a, "b": b, "m": mtl},
                                  tf.data.Dataset.from_tensor_slices(probe).batch(7))
    assert sim.shape == (3, 3) and np.allclose(np.diag(sim), 1) and np.allclose(sim, sim.T)
    assert sim[0, 1] == pytest.approx(_hsic_cka(a(probe).numpy().astype(np.float64),
                                                b(probe).numpy().astype(np.float64)), rel=1e-5)
    features = mtl.forward(probe)[0].numpy().astype(np.float64)   # The encoder's output.
    assert sim[1, 2] == pytest.approx(_hsic_cka(b(probe).numpy().astype(np.float64),
                                                features), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 models. Received: 1"):
        metrics.task_similarity([a], probe)


def test_task_similarity_diagonal_is_self_cka_and_nan_without_variance():
    probe = np.random.default_rng(4).normal(size=(10, 4)).astype(np.float32)
    constant = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, kernel_initializer="zeros", bias_initializer="ones")])
    sim = metrics.task_similarity([_classifier(0), constant], probe)
    assert sim[0, 0] == pytest.approx(1.0) and np.isnan(sim[1, 1]) and np.isnan(sim[0, 1])


def test_representations_refuses_routed_models():
    from tf_mtl.routing.masks import TaskRouting
    encoder = keras.Sequential([keras.layers.Dense(6), TaskRouting(2, 0.5, seed=1)])
    routed = tf_mtl.MultiTaskModel(encoder, {"a": keras.layers.Dense(2),
                                             "b": keras.layers.Dense(2)}, {"a": "mse", "b": "mse"})
    with pytest.raises(ValueError, match="routing layers.*Received: model"):
        metrics.representations(routed, np.zeros((4, 3), np.float32))
