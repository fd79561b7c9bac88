"""Run by tests/test_distribute_updates.py in a fresh process: update rules under two
logical CPU replicas (set before TensorFlow initialises its devices) train exactly as
on one device: same logs, weights and rule state."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_mtl  # noqa: E402
from tf_mtl import updates  # noqa: E402

TASKS = ["t0", "t1", "t2"]
RULES = {
    "uw_pcgrad": lambda: updates.PCGrad(weighting=updates.UncertaintyWeights(), seed=2),
    "mgda_ub": lambda: updates.MGDA(normalization="loss+"),
    # CoV and DWA keep state from global losses as GradNorm does (its L_i(0)): left out
    # to keep this check near half a minute.
    "gradnorm": lambda: updates.GradNorm(learning_rate=0.1),
    "it_uw_pcgrad": lambda: updates.ITMTL(["t0", "all", updates.PCGrad()],
                                          weighting=updates.UncertaintyWeights()),
    "itmtl_first_order": lambda: updates.ITMTL(["t0", "t1|t2", "all"], lookahead="first_order"),
    # The later family: Gram-based solvers, a stateful Gram rule, a loss weighting drawing
    # random weights, a direction rule with per-task gradient state, elementwise masks.
    "cagrad_uw": lambda: updates.CAGrad(weighting=updates.UncertaintyWeights()),
    "nash_mtl": lambda: updates.NashMTL(update_weights_every=2),
    "upgrad": updates.UPGrad,
    "gradvac": lambda: updates.GradVac(beta=0.5),
    "rlw_pcgrad": lambda: updates.PCGrad(weighting=updates.RLW()),
    "dbmtl": updates.DBMTL,
    "graddrop": updates.GradDrop,
    "it_famo_cagrad": lambda: updates.ITMTL(["all", updates.CAGrad()],
                                            weighting=updates.FAMO()),
}


def make(rule):
    """Regularized encoder, unequal loss weights, SGD momentum."""
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([
        keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
        keras.layers.Dense(4, activation="tanh")])
    model = tf_mtl.MultiTaskModel(
        encoder, {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
        loss_weights={"t0": 0.5, "t1": 2.0}, update=RULES[rule]())
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def main():
    x, y, _ = tf_mtl.data.synthetic_arrays(num_tasks=3, num_groups=3, num_examples=64)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for rule in sorted(RULES):
        with strategy.scope():
            mirrored = make(rule)
        h_mirrored = mirrored.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        single = make(rule)
        h_single = single.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        assert set(h_mirrored) == set(h_single), (rule, set(h_mirrored) ^ set(h_single))
        for key in h_single:
            np.testing.assert_allclose(h_mirrored[key], h_single[key], rtol=2e-4, atol=1e-6,
                                       err_msg=f"{rule}: {key}")
        for a, b in zip(mirrored.get_weights() + [v.numpy() for v in mirrored.update.variables],
                        single.get_weights() + [v.numpy() for v in single.update.variables]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=rule)
        print(rule, "ok", flush=True)
    print("distributed updates check passed")


if __name__ == "__main__":
    sys.exit(main())
