import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.updates import MGDA, min_norm_weights


def _solve(vectors, **kw):
    g = np.stack(vectors).astype(np.float64)
    return min_norm_weights(tf.constant(g @ g.T, tf.float32), **kw).numpy()


def _brute_force(vectors, step=0.0025):
    """min over a grid of the simplex of ||sum a_i v_i||: the definition, no solver."""
    g = np.stack(vectors).astype(np.float64)
    best, arg = np.inf, None
    ticks = np.arange(0, 1 + 1e-9, step)
    a1, a2 = np.meshgrid(ticks, ticks, indexing="ij")
    keep = a1 + a2 <= 1 + 1e-9
    alphas = np.stack([a1[keep], a2[keep], 1 - a1[keep] - a2[keep]], 1)
    norms = np.linalg.norm(alphas @ g, axis=1)
    i = np.argmin(norms)
    return norms[i], alphas[i]


@pytest.mark.parametrize("g1, g2", [
    ([1.0, 0.0], [0.0, 1.0]),          # orthogonal: gamma = 1/2
    ([2.0, 0.0], [-1.0, 1.0]),         # conflicting, interior
    ([1.0, 0.0], [3.0, 1.0]),          # g1 is the min-norm point itself: vertex
])
def test_two_tasks_closed_form(g1, g2):
    g1, g2 = np.array(g1), np.array(g2)
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1)
    np.testing.assert_allclose(_solve([g1, g2]), [gamma, 1 - gamma], atol=1e-6)


@pytest.mark.parametrize("vectors", [
    [[1.0, 0.0, 0.2], [-0.5, 1.0, 0.0], [0.1, -0.7, 1.0]],   # interior optimum
    [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]],                    # on an edge
    [[1.0, 1.0], [2.0, 0.5], [0.6, 0.5]],                    # a vertex
])
def test_three_tasks_match_brute_force(vectors):
    vectors = [np.array(v) for v in vectors]
    alpha = _solve(vectors)
    assert alpha.min() >= -1e-7 and abs(alpha.sum() - 1) < 1e-5
    norm, _ = _brute_force(vectors)
    got = np.linalg.norm(alpha @ np.stack(vectors))
    assert got <= norm + 1e-4  # at least as good as the finest grid point
    assert got >= norm - 5e-3  # and the grid's resolution bounds the gap


def _model(update):
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in "ab"},
                                  {t: "mse" for t in "ab"}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _batch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 4)).astype("float32")
    return x, {t: rng.standard_normal((10, 1)).astype("float32") for t in "ab"}


@pytest.mark.parametrize("upper_bound", [True, False])
@pytest.mark.parametrize("normalization", ["none", "l2", "loss", "loss+"])
def test_step_is_the_closed_form_weighted_update(upper_bound, normalization):
    """Plain SGD: encoder moves by -lr (γ g_a + (1-γ) g_b), γ from the closed form on
    d_i = grad of L_i w.r.t. the encoder output (UB) or the shared parameters, normalised."""
    model = _model(MGDA(upper_bound=upper_bound, normalization=normalization))
    x, y = _batch()
    model.build_for(x)
    with tf.GradientTape(persistent=True) as tape:
        z = model.encoder(x, training=True)
        tape.watch(z)
        pred = {t: model.heads[t](z) for t in "ab"}
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"]
    shared = [np.concatenate([g.numpy().ravel() for g in tape.gradient(l, model.shared_variables)])
              for l in losses]
    d = [tape.gradient(l, z).numpy().ravel() for l in losses] if upper_bound else shared
    scale = {"none": [1, 1], "l2": [np.linalg.norm(v) for v in d],
             "loss": [float(l) for l in losses],
             "loss+": [float(l) * np.linalg.norm(v) for l, v in zip(losses, d)]}[normalization]
    d1, d2 = d[0] / scale[0], d[1] / scale[1]
    gamma = np.clip((d2 - d1) @ d2 / ((d1 - d2) @ (d1 - d2)), 0, 1)
    before = np.concatenate([v.numpy().ravel() for v in model.shared_variables])
    model.train_on_batch(x, y)
    after = np.concatenate([v.numpy().ravel() for v in model.shared_variables])
    expected = before - 0.1 * (gamma * shared[0] + (1 - gamma) * shared[1])
    np.testing.assert_allclose(after, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"normalization": "l1"}, "Received: normalization='l1'"),
    ({"upper_bound": "yes"}, "Received: upper_bound='yes'"),
    ({"max_iter": 0}, "Received: max_iter=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MGDA(**kwargs)


def test_upper_bound_needs_the_recorded_encoder_output():
    class Subclassed(tf_mtl.MultiTaskModel):  # an overridden call: no features recorded
        def call(self, x, training=None):
            return super().call(x, training=training)

    keras.utils.set_random_seed(0)
    model = Subclassed(keras.Sequential([keras.layers.Dense(3)]),
                       {t: keras.layers.Dense(1) for t in "ab"}, {t: "mse" for t in "ab"},
                       update=MGDA(upper_bound=True))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="Received: a step without features"):
        model.train_on_batch(*_batch())
