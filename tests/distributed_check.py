"""Run by tests/test_distribute.py in a fresh process: two logical CPU replicas
must be configured before TensorFlow initialises its devices."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_mtl  # noqa: E402

TASKS = ["t0", "t1", "t2"]


def make(probes, clipnorm=None):
    """Regularized encoder, unequal loss weights, SGD momentum with per-variable clipping."""
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([
        keras.layers.Dense(8, activation="relu",
                           kernel_regularizer=keras.regularizers.L2(0.01)),
        keras.layers.Dense(4, activation="tanh")])
    model = tf_mtl.MultiTaskModel(
        encoder, {t: keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.02))
                  for t in TASKS},
        {t: "mse" for t in TASKS}, loss_weights={"t0": 0.5, "t1": 2.0}, probes=probes)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, clipnorm=clipnorm))
    return model


def probes():
    return [tf_mtl.transference.Transference(every=1, update_heads=True, log_pairs=True,
                                             name="exact"),
            tf_mtl.transference.Transference(every=1, method="first_order",
                                             update_heads=True, name="first_order"),
            tf_mtl.transference.Transference(every=1, method="cosine", name="cosine")]


def make_synchronized(execution):
    """Synchronized BatchNormalization: batch statistics over the global batch, as one device."""
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.layers.Dense(8),
                                keras.layers.BatchNormalization(synchronized=True),
                                keras.layers.ReLU(), keras.layers.Dense(4)])
    model = tf_mtl.MultiTaskModel(
        encoder, {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
        probes=[tf_mtl.transference.Transference(every=1, log_pairs=True)],
        lookahead_execution=execution)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def check_synchronized_batch_norm(strategy, x, y):
    """Unrolled lookahead forwards (no loop) synchronize like the step; a loop is refused."""
    single = make_synchronized("auto").fit(x, y, batch_size=16, epochs=1, shuffle=False,
                                           verbose=0).history
    with strategy.scope():
        mirrored = make_synchronized("auto")
    h_mirrored = mirrored.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
    for key in single:
        np.testing.assert_allclose(h_mirrored[key], single[key], rtol=2e-4, atol=1e-6,
                                   err_msg=key)
    with strategy.scope():
        looped = make_synchronized("sequential")
    try:
        looped.fit(x, y, batch_size=16, epochs=1, verbose=0)
    except ValueError as e:
        assert "synchronize across replicas" in str(e) and "batch_normalization" in str(e) \
            and "Received: lookahead_execution='sequential'" in str(e), e
    else:
        raise AssertionError("a synchronized layer in a lookahead loop should be refused")


def fit(model, x, y, sw):
    val = (x[:32], {t: v[:32] for t, v in y.items()})  # val_loss includes regularization.
    return model.fit(x, y, sample_weight=sw, batch_size=16, epochs=2, shuffle=False,
                     validation_data=val, verbose=0).history


def main():
    x, y, _ = tf_mtl.data.synthetic_arrays(num_tasks=3, num_groups=3, num_examples=64)
    rng = np.random.default_rng(0)
    sw = {t: rng.uniform(0.0, 2.0, len(x)).astype("float32") for t in TASKS}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    # clipnorm=0.05 clips nearly every gradient: per-replica clipping would show.
    for make_probes, clipnorm in ((list, None), (probes, None), (probes, 0.05)):
        with strategy.scope():
            mirrored = make(make_probes(), clipnorm)
        h_mirrored = fit(mirrored, x, y, sw)
        single = make(make_probes(), clipnorm)
        h_single = fit(single, x, y, sw)
        assert set(h_mirrored) == set(h_single) and "val_loss" in h_single
        for key in h_single:  # Losses (regularization included), counters, affinities.
            np.testing.assert_allclose(h_mirrored[key], h_single[key], rtol=2e-4, atol=1e-6,
                                       err_msg=key)
        for a, b in zip(mirrored.get_weights(), single.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        if make_probes is probes:
            assert h_mirrored["exact/steps"] == [4.0, 4.0], h_mirrored["exact/steps"]  # 4 steps an epoch
            assert h_mirrored["exact/skipped"] == [0.0, 0.0]
            assert "exact/t0|t1|t2>t1" in h_single  # Every exact pair is compared above.
    # measure() runs on one device: refused inside the scope, right outside it.
    with strategy.scope():
        try:
            tf_mtl.transference.measure(mirrored, x[:16], {t: v[:16] for t, v in y.items()})
        except ValueError as e:
            assert "outside `strategy.scope()`" in str(e), e
        else:
            raise AssertionError("measure() inside strategy.scope() should be refused")
    batch = (x[:16], {t: v[:16] for t, v in y.items()})
    z_mirrored = tf_mtl.transference.measure(mirrored, *batch)
    z_single = tf_mtl.transference.measure(single, *batch)
    for source, row in z_single.items():
        np.testing.assert_allclose([z_mirrored[source][t] for t in TASKS],
                                   [row[t] for t in TASKS], rtol=2e-4, atol=1e-6)
    check_synchronized_batch_norm(strategy, x, y)
    print("distributed check passed")


if __name__ == "__main__":
    sys.exit(main())
