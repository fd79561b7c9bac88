"""The small three-task model the stateful-rule tests step by hand (DB-MTL, MoCo,
ExcessMTL, GradDrop): MSE heads on a tanh encoder, plain SGD, and its quantities in NumPy."""

import keras
import numpy as np
import tensorflow as tf

import tf_mtl

TASKS = ["a", "b", "c"]


def model(update, seed=0, lr=0.1):
    keras.utils.set_random_seed(seed)
    enc = keras.Sequential([keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)])
    net = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in TASKS},
                                {t: "mse" for t in TASKS}, update=update)
    net.compile(optimizer=keras.optimizers.SGD(lr))
    return net


def batch(seed, scaled=True):
    """Targets of task k scaled by k + 1 (``scaled``), so the losses differ in size."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype("float32")
    return x, {t: (k + 1.0 if scaled else 1.0) * rng.standard_normal((8, 1)).astype("float32")
               for k, t in enumerate(TASKS)}


def task_gradients(net, x, y):
    """Losses ``[m]`` and flattened shared gradients ``[m, P]`` by a plain tape (float64)."""
    with tf.GradientTape(persistent=True) as tape:
        pred = net(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in TASKS]
    grads = [np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, net.shared_variables)])
             for loss in losses]
    return np.array([float(loss) for loss in losses]), np.stack(grads).astype(np.float64)


def flat(net):
    return np.concatenate([v.numpy().ravel() for v in net.shared_variables])
