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


def make(every):
    keras.utils.set_random_seed(0)
    tasks = ["t0", "t1", "t2"]
    probes = [] if every is None else [tf_mtl.transference.Transference(every=every)]
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([8, 4]),
                                  {t: keras.layers.Dense(1) for t in tasks},
                                  {t: "mse" for t in tasks}, probes=probes)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def main():
    x, y, _ = tf_mtl.data.synthetic_arrays(num_tasks=3, num_groups=3, num_examples=64)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    for every in (None, 1):
        with strategy.scope():
            mirrored = make(every)
        h_mirrored = mirrored.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        single = make(every)
        h_single = single.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        np.testing.assert_allclose(h_mirrored["loss"], h_single["loss"], rtol=1e-5)
        for a, b in zip(mirrored.get_weights(), single.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        if every:  # Same global gradients, same lookahead, same affinities.
            for key in ("transference/t0>t1", "transference/t0|t1|t2>t2"):
                np.testing.assert_allclose(h_mirrored[key], h_single[key], rtol=1e-3, atol=1e-6)
    with strategy.scope():
        every_two = make(2)
    try:
        every_two.fit(x, y, batch_size=16, epochs=1, verbose=0)
    except ValueError as e:
        assert "use every=1" in str(e), e
    else:
        raise AssertionError("every=2 under MirroredStrategy should be refused")
    print("distributed check passed")


if __name__ == "__main__":
    sys.exit(main())
