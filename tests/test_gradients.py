"""Per-task shared gradients from ``record_step`` equal each task's loss differentiated alone.

The reference is a fresh tape around the model's own call, one task's loss at a
time: the train step's shortcut (a task's gradient starting from its own head's
cotangent at the encoder's output) must give it for every encoder output and
head the model accepts, and fall back where the shortcut does not hold.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.gradients import record_step

TASKS = ["a", "b"]


class _Head(keras.layers.Layer):
    """Reads every floating-point leaf of the encoder's output."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, features):
        leaves = [tf.cast(f, "float32") for f in tf.nest.flatten(features)
                  if f.dtype.is_floating]
        return self.dense(tf.concat(leaves, axis=-1))


def _list_encoder():  # Two outputs, the second computed from the first.
    inputs = keras.Input((5,))
    h = keras.layers.Dense(4, activation="tanh")(inputs)
    return keras.Model(inputs, [h, keras.layers.Dense(3)(h)])


class _Repeated(keras.layers.Layer):  # One tensor under two keys.
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        h = self.dense(x)
        return {"p": h, "q": h}


class _WithMask(keras.layers.Layer):  # A float tensor and an integer one.
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        h = self.dense(x)
        return h, tf.cast(h > 0, "int32")


class _TiedHead(keras.layers.Layer):  # Uses an encoder layer's weights itself.
    def __init__(self, tied, **kwargs):
        super().__init__(**kwargs)
        self.tied, self.out = tied, keras.layers.Dense(1)

    def call(self, features):
        return self.out(features + self.tied(features))


class _ZeroedInputs(tf_mtl.MultiTaskModel):  # A subclass with its own call.
    def call(self, x, training=None):
        return super().call(x * 0.5 + 1.0, training=training)


def _model(case):
    keras.utils.set_random_seed(0)
    heads = {t: _Head() for t in TASKS}
    cls = tf_mtl.MultiTaskModel
    if case == "tensor":
        encoder = keras.Sequential([keras.layers.Dense(4), keras.layers.BatchNormalization(),
                                    keras.layers.ReLU()])
    elif case == "list":
        encoder = _list_encoder()
    elif case == "repeated":
        encoder = _Repeated()
    elif case == "with_mask":
        encoder = _WithMask()
    elif case == "tied":
        tied = keras.layers.Dense(4)
        encoder = keras.Sequential([keras.layers.Dense(4, activation="tanh"), tied])
        heads = {t: _TiedHead(tied) for t in TASKS}
    else:
        encoder, cls = keras.Sequential([keras.layers.Dense(4, activation="tanh")]), _ZeroedInputs
    model = cls(encoder, heads, {t: "mse" for t in TASKS}, loss_weights={"a": 0.5})
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype("float32")
    return tf.constant(x), {t: tf.constant(rng.standard_normal((8, 1)).astype("float32"))
                            for t in TASKS}


def _alone(model, x, y, task):
    with tf.GradientTape() as tape:
        loss = model.task_losses[task](y[task], model(x, training=True)[task])
    return [g.numpy() for g in tape.gradient(loss, model.shared_variables)]


@pytest.mark.parametrize("case", ["tensor", "list", "repeated", "with_mask", "tied",
                                  "subclass"])
@pytest.mark.parametrize("per_task", ["loop", "jacobian"])
def test_per_task_gradient_is_the_tasks_loss_differentiated_alone(case, per_task):
    model = _model(case)
    x, y = _batch()
    model(x)
    expected = [_alone(model, x, y, t) for t in TASKS]
    got = record_step(model, x, y, per_task=per_task).per_task()
    for i in range(len(TASKS)):
        for g, e in zip(got, expected[i]):
            np.testing.assert_allclose(g[i].numpy(), e, rtol=1e-5, atol=1e-6)


def test_the_head_cotangent_shortcut_is_taken_only_where_it_holds():
    x, _ = _batch()
    for case, shortcut in [("tensor", True), ("list", False), ("repeated", False),
                           ("with_mask", False), ("tied", False), ("subclass", False)]:
        model = _model(case)
        model(x)
        features, _ = model.recorded_forward(x, training=True)
        assert (features is not None) == shortcut, case
