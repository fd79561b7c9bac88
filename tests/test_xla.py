"""The train step with probes under XLA (jit_compile=True) equals the step without it."""

import keras
import numpy as np
import pytest

import tf_mtl

TASKS = ["a", "b", "c"]


def _fit(jit_compile, probes, **model_kwargs):
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([
        keras.layers.Conv2D(4, 3, use_bias=False), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.Flatten(),
        keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(0.01))])
    model = tf_mtl.MultiTaskModel(encoder, {t: keras.layers.Dense(1) for t in TASKS},
                                  {t: "mse" for t in TASKS}, loss_weights={"a": 0.5},
                                  probes=probes, **model_kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, clipnorm=0.5),
                  jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 6, 2)).astype("float32")
    y = {t: rng.standard_normal((32, 1)).astype("float32") for t in TASKS}
    traces = []
    for probe in probes:
        measure = probe.measure
        probe.measure = (lambda m: lambda *a: (traces.append(1), m(*a))[1])(measure)
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    # Traced with the step (8 steps over 2 epochs): once per branch it is in,
    # never per step, with or without XLA.
    assert 1 <= len(traces) <= 2 * len(probes) * (1 + (len(probes) > 1))
    return history, model.get_weights()


def _probes(vectorized):
    if vectorized:  # Every step: no branches, so one compiled graph.
        return [tf_mtl.transference.Transference(every=1, update_heads=True, log_pairs=True)]
    # Measured on a schedule: the step branches (tf.switch_case) and the chunked
    # lookahead loops (tf.map_fn); the cosine probe measures every other step.
    return [tf_mtl.transference.Transference(every=2, order=-1, update_heads=True,
                                             chunk_size=3, log_pairs=True),
            tf_mtl.transference.Transference(every=1, method="cosine", name="cosine")]


@pytest.mark.parametrize("model_kwargs", [
    {},  # "auto": unrolled chunks.
    {"lookahead_execution": "sequential"},
    {"per_task_gradients": "jacobian", "lookahead_execution": "vectorized"},
])
def test_xla_step_equals_the_step_without_it(model_kwargs):
    vectorized = "per_task_gradients" in model_kwargs
    plain_logs, plain_weights = _fit(False, _probes(vectorized), **model_kwargs)
    xla_logs, xla_weights = _fit(True, _probes(vectorized), **model_kwargs)
    assert set(xla_logs) == set(plain_logs) and "transference/a|b|c>b" in xla_logs
    for key, values in plain_logs.items():
        np.testing.assert_allclose(xla_logs[key], values, rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(xla_weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


RULES = {
    "it_pcgrad_uw": lambda: tf_mtl.updates.ITMTL(
        ["all", tf_mtl.updates.PCGrad(seed=3)],
        weighting=tf_mtl.updates.UncertaintyWeights()),
    "mgda_ub": lambda: tf_mtl.updates.MGDA(),
    "gradnorm": lambda: tf_mtl.updates.GradNorm(),
    "pcgrad_dwa": lambda: tf_mtl.updates.PCGrad(weighting=tf_mtl.updates.DWA(), seed=1),
    "cov": lambda: tf_mtl.updates.CoV(),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_xla_update_rules_equal_the_step_without_them(rule):
    """Every rule's state (PCGrad's random order included) evolves the same under XLA."""
    results = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        model = tf_mtl.MultiTaskModel(
            keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(4)]),
            {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
            update=RULES[rule]())
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                      jit_compile=jit_compile)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((24, 5)).astype("float32")
        y = {t: rng.standard_normal((24, 1)).astype("float32") * (i + 1)
             for i, t in enumerate(TASKS)}
        logs = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
        results.append((logs, model.get_weights() + [v.numpy() for v in model.update.variables]))
    (plain_logs, plain_state), (xla_logs, xla_state) = results
    assert set(xla_logs) == set(plain_logs)
    for key, values in plain_logs.items():
        np.testing.assert_allclose(xla_logs[key], values, rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(xla_state, plain_state):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
