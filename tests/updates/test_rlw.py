import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.pcgrad import PCGrad
from tf_mtl.updates.rlw import DISTRIBUTIONS, RLW, standard_normals

TASKS = ["a", "b", "c"]
LOSS_WEIGHTS = np.array([2.0, 1.0, 1.0])


# ------------------------------------------------- an independent NumPy reference of the draws
def _hash(x):
    """lowbias32 (C. Wellons) on uint32, written from its definition."""
    x = np.uint32(x)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    return x


def _uniforms(seed, draw, stream, n):
    with np.errstate(over="ignore"):
        key = _hash(_hash(_hash(np.uint32(seed % 2**32)) + np.uint32(draw)) + np.uint32(stream))
        bits = np.array([_hash(key + np.uint32(k)) >> np.uint32(8) for k in range(n)], np.float64)
    return (bits + 0.5) / 2**24


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _reference(distribution, seed, draw, m):
    """RLW's weights of one draw: Lin et al.'s distributions on the hashed uniforms."""
    if distribution == "normal":
        u = _uniforms(seed, draw, 0, 2 * m)
        return _softmax(np.sqrt(-2 * np.log(u[:m])) * np.cos(2 * np.pi * u[m:]))
    if distribution == "uniform":
        return _softmax(_uniforms(seed, draw, 0, m))
    if distribution == "dirichlet":
        e = -np.log(_uniforms(seed, draw, 0, m))
        return _softmax(e / e.sum())
    if distribution == "bernoulli":
        attempt = 1
        while True:
            w = (_uniforms(seed, draw, attempt, m) < 0.5).astype(np.float64)
            if w.sum() > 0:
                return w
            attempt += 1
    return np.eye(m)[min(int(_uniforms(seed, draw, 0, 1)[0] * m), m - 1)]


def _draws(rule, n, jit_compile=False):
    """``n`` successive weights of ``rule`` through its own state (one compiled loop)."""
    def run():
        out = tf.TensorArray(tf.float32, n)
        for i in tf.range(n):
            out = out.write(i, rule.current_weights())
            rule.update_state(None, None)
        return out.stack()
    return tf.function(run, jit_compile=jit_compile)().numpy()


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_draws_follow_the_reference_sequence(distribution):
    rule = RLW(distribution=distribution, seed=7)
    rule.build_tasks(["a", "b", "c", "d"])
    got = _draws(rule, 40)
    want = np.stack([_reference(distribution, 7, n, 4) for n in range(40)])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
    assert int(rule.draws.numpy()) == 40


def test_box_muller_normals_are_standard_normal():
    z = standard_normals(tf.constant(3), tf.constant(0), 0, 20000).numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.03 and abs(z.var() - 1) < 0.04


def _numpy_samples(distribution, rng, n, m):
    if distribution == "normal":
        return np.apply_along_axis(_softmax, 1, rng.standard_normal((n, m)))
    if distribution == "uniform":
        return np.apply_along_axis(_softmax, 1, rng.uniform(size=(n, m)))
    if distribution == "dirichlet":
        return np.apply_along_axis(_softmax, 1, rng.dirichlet(np.ones(m), size=n))
    raise AssertionError(distribution)


@pytest.mark.parametrize("distribution", ["normal", "uniform", "dirichlet"])
def test_softmax_weights_match_the_distribution(distribution):
    """Marginals by a two-sample KS test against NumPy's own sampler; softmax weights sum
    to 1 and have mean 1/m."""
    m, n = 3, 3000
    rule = RLW(distribution=distribution, seed=11)
    rule.build_tasks(TASKS)
    got = _draws(rule, n)
    ref = _numpy_samples(distribution, np.random.default_rng(0), 20000, m)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)
    for i in range(m):
        assert stats.ks_2samp(got[:, i], ref[:, i]).pvalue > 1e-3, i
        assert abs(got[:, i].mean() - 1 / m) < 4 * ref[:, i].std() / np.sqrt(n)
        assert abs(got[:, i].var() / ref[:, i].var() - 1) < 0.1


def test_bernoulli_is_uniform_over_non_empty_subsets():
    m, n = 3, 3500
    rule = RLW(distribution="bernoulli", seed=2)
    rule.build_tasks(TASKS)
    got = _draws(rule, n)
    assert set(np.unique(got)) <= {0.0, 1.0} and got.sum(1).min() >= 1
    codes = (got @ (2 ** np.arange(m))).astype(int)          # 1 .. 2^m - 1
    counts = np.bincount(codes, minlength=2 ** m)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:]).pvalue > 1e-3
    np.testing.assert_allclose(got.mean(0), 2 ** (m - 1) / (2 ** m - 1), atol=0.04)


def test_constrained_bernoulli_picks_one_task_uniformly():
    rule = RLW(distribution="constrained_bernoulli", seed=5)
    rule.build_tasks(["a", "b", "c", "d"])
    got = _draws(rule, 4000)
    np.testing.assert_array_equal(got.sum(1), 1.0)
    assert set(np.unique(got)) == {0.0, 1.0}
    assert stats.chisquare(got.sum(0)).pvalue > 1e-3   # each task 1/4 of the time


def test_a_seed_repeats_another_differs_and_xla_draws_the_same():
    def draws(seed, jit=False):
        rule = RLW(seed=seed)
        rule.build_tasks(TASKS)
        return _draws(rule, 20, jit)
    np.testing.assert_array_equal(draws(4), draws(4))
    assert not np.allclose(draws(4), draws(5))
    np.testing.assert_allclose(draws(4, jit=True), draws(4), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kwargs, match", [
    ({"distribution": "gaussian"}, "Received: distribution='gaussian'"),
    ({"seed": 1.5}, "Received: seed=1.5"),
    ({"seed": True}, "Received: seed=True"),
    ({"seed": 2**31}, "Received: seed=2147483648"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RLW(**kwargs)


def _model(update):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(
        keras.Sequential([keras.layers.Dense(6, activation="tanh")]),
        {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
        loss_weights={"a": float(LOSS_WEIGHTS[0])}, update=update)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in TASKS}


@pytest.mark.parametrize("distribution", ["normal", "bernoulli"])
def test_train_steps_equal_stepping_a_copy_with_the_reference_weights(distribution):
    model = _model(RLW(distribution=distribution, seed=9))
    x, _ = _batch(0)
    model.build_for(x)
    clone, opt = copy_model(model, x)
    for step in range(3):
        x, y = _batch(step)
        w = _reference(distribution, 9, step, 3)
        with tf.GradientTape() as tape:
            pred = clone(x, training=True)
            objective = tf.reduce_sum(tf.constant(w * LOSS_WEIGHTS, tf.float32) * tf.stack(
                [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in TASKS]))
        opt.apply(tape.gradient(objective, clone.trainable_variables), clone.trainable_variables)
        logs = model.train_on_batch(x, y, return_dict=True)
        np.testing.assert_allclose([logs[f"rlw/{t}"] for t in TASKS], w * LOSS_WEIGHTS, rtol=1e-5)
        for a, b in zip(model.trainable_variables, clone.trainable_variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_pcgrad_with_rlw_runs_a_step():
    model = _model(PCGrad(weighting=RLW(seed=1)))
    x, y = _batch(1)
    model.build_for(x)
    before = [w.copy() for w in model.get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    assert int(model.update.weighting.draws.numpy()) == 1


def test_config_round_trip_and_a_reloaded_rule_continues_the_sequence(tmp_path):
    rule = RLW(distribution="dirichlet", seed=3, name="random")
    again = RLW.from_config(rule.get_config())
    assert again.get_config() == rule.get_config() and again.name == "random"
    assert RLW().name == "rlw"
    model = _model(RLW(seed=6))
    for i in range(3):
        model.train_on_batch(*_batch(i))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.update.get_config() == model.update.get_config()
    assert int(loaded.update.draws.numpy()) == 3
    np.testing.assert_allclose(loaded.update.current_weights().numpy(),
                               _reference("normal", 6, 3, 3), rtol=1e-5)
