"""The batched per-task forward equals T separate forwards, one per task path (values
and gradients), for routing layers and for per-task inputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.routing import task_paths
from tf_mtl.routing.masks import TaskRouting
from tf_mtl.routing.task_norm import TaskBatchNormalization

T = 3


class Routed(keras.layers.Layer):
    """conv -> per-chunk BN -> task mask -> relu -> global average pool."""

    def __init__(self, masks=True, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)
        self.bn = TaskBatchNormalization(momentum=0.7)
        self.mask = TaskRouting(T, 0.5, seed=3) if masks else None

    def build(self, shape):
        self.conv.build(shape)
        shape = self.conv.compute_output_shape(shape)
        self.bn.build(shape)
        if self.mask is not None:
            self.mask.build(shape)

    def call(self, x, training=None):
        h = self.bn(self.conv(x), training=training)
        if self.mask is not None:
            h = self.mask(h)
        return tf.reduce_mean(tf.nn.relu(h), axis=[1, 2])


def reference(enc, x, task, training):
    """Task ``task``'s forward written out with plain ops (its own batch statistics)."""
    h = tf.nn.conv2d(x, enc.conv.kernel, 1, "SAME")
    if training:
        mean, var = tf.nn.moments(h, [0, 1, 2])
    else:
        mean, var = enc.bn.moving_mean, enc.bn.moving_variance
    h = (h - mean) * tf.math.rsqrt(var + enc.bn.epsilon) * enc.bn.gamma + enc.bn.beta
    if enc.mask is not None:
        h = h * tf.convert_to_tensor(enc.mask.masks)[task]
    return tf.reduce_mean(tf.nn.relu(h), axis=[1, 2])


def make(masks=True):
    heads = {t: keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(seed=i))
             for i, t in enumerate("abc")}
    model = tf_mtl.MultiTaskModel(Routed(masks), heads, {t: "mse" for t in "abc"})
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def data(sizes=(5, 5, 5), shapes=((6, 6, 2),) * 3, seed=0):
    rng = np.random.default_rng(seed)
    x = {t: rng.normal(size=(n, *s)).astype("float32") for t, n, s in zip("abc", sizes, shapes)}
    y = {t: rng.normal(size=(n, 1)).astype("float32") for t, n in zip("abc", sizes)}
    return x, y


def reference_losses_and_grads(model, xs, y):
    """Per task: its loss and gradient from its own forward (plain ops)."""
    out = []
    for i, t in enumerate(model.tasks):
        with tf.GradientTape() as tape:
            pred = model.heads[t](reference(model.encoder, xs[i], i, True))
            loss = tf.reduce_mean(tf.square(pred - y[t]))
        out.append((loss, tape.gradient(loss, [v.value for v in model.encoder.trainable_variables],
                                        unconnected_gradients="zero")))
    return out


def batched_losses_and_grads(model, x, y):
    with tf.GradientTape(persistent=True) as tape:
        losses = model.task_loss_list(y, model(x, training=True))
    grads = [tape.gradient(losses[i], [v.value for v in model.encoder.trainable_variables],
                           unconnected_gradients="zero") for i in range(T)]
    return losses, grads


@pytest.mark.parametrize("per_task", [False, True])
def test_routed_forward_equals_separate_forwards(per_task):
    model = make()
    x, y = data(sizes=(4, 6, 3) if per_task else (5, 5, 5))
    xb = x if per_task else x["a"]
    yb = y if per_task else {t: y["a"] * (i + 1) for i, t in enumerate("abc")}
    model.build_for(xb)
    xs = [x[t] for t in "abc"] if per_task else [x["a"]] * T
    masks = model.encoder.mask.masks.numpy()
    assert not np.all(masks == masks[0]), "masks must differ between tasks for this test"
    losses, grads = batched_losses_and_grads(model, xb, yb)
    for i, (loss, ref) in enumerate(reference_losses_and_grads(model, xs, yb)):
        np.testing.assert_allclose(losses[i], loss, rtol=1e-5)
        for g, r in zip(grads[i], ref):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
        # A channel task i does not use gets no gradient from task i.
        kernel_grad = grads[i][0].numpy()
        assert np.all(kernel_grad[..., masks[i] == 0] == 0)
    preds = model(xb, training=False)
    for i, t in enumerate("abc"):
        np.testing.assert_allclose(preds[t], model.heads[t](reference(model.encoder, xs[i], i, False)),
                                   rtol=1e-5, atol=1e-6)


def test_moving_statistics_move_as_separate_forwards_in_task_order():
    model = make()
    x, _ = data()
    model.build_for(x["a"])
    bn = model.encoder.bn
    mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    model(x["a"], training=True)
    for i in range(T):  # the plain BN update, once per task forward
        h = tf.nn.conv2d(x["a"], model.encoder.conv.kernel, 1, "SAME")
        m, v = tf.nn.moments(h, [0, 1, 2])
        mean, var = mean * 0.7 + 0.3 * m.numpy(), var * 0.7 + 0.3 * v.numpy()
    np.testing.assert_allclose(bn.moving_mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, var, rtol=1e-5, atol=1e-6)


def test_per_task_inputs_of_different_shapes_run_per_task():
    model = make()
    x, y = data(sizes=(2, 3, 4), shapes=((6, 6, 2), (5, 5, 2), (4, 7, 2)))
    model.build_for(x)
    losses, grads = batched_losses_and_grads(model, x, y)
    xs = [x[t] for t in "abc"]
    for i, (loss, ref) in enumerate(reference_losses_and_grads(model, xs, y)):
        np.testing.assert_allclose(losses[i], loss, rtol=1e-5)
        for g, r in zip(grads[i], ref):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


def test_per_task_inputs_without_routing_layers():
    model = make(masks=False)
    x, y = data(sizes=(2, 5, 3))
    model.build_for(x)
    losses, grads = batched_losses_and_grads(model, x, y)
    for i, (loss, ref) in enumerate(reference_losses_and_grads(model, [x[t] for t in "abc"], y)):
        np.testing.assert_allclose(losses[i], loss, rtol=1e-5)


def test_train_step_uses_the_batched_forward_and_no_head_cotangent_shortcut():
    model = make()
    x, y = data()
    model.build_for(x["a"])
    features, _ = model.recorded_forward(x["a"], training=False)
    assert features is None
    ref = [w.numpy() for w in model.encoder.trainable_variables]
    yb = {t: y["a"] * (i + 1) for i, t in enumerate("abc")}
    grads = [sum(g) for g in zip(*[r for _, r in reference_losses_and_grads(model, [x["a"]] * T, yb)])]
    model.fit(x["a"], yb, batch_size=5, epochs=1, verbose=0, shuffle=False)
    for w, r, g in zip(model.encoder.trainable_variables, ref, grads):
        np.testing.assert_allclose(w, r - 0.1 * g.numpy(), rtol=1e-4, atol=1e-6)


def test_per_task_inputs_bad_keys_and_routing_outside_a_per_task_forward():
    model = make()
    x, _ = data()
    with pytest.raises(ValueError, match="Received: x with keys"):
        model({"a": x["a"], "b": x["b"]})
    with pytest.raises(ValueError, match="Received: x with keys"):
        model({"a": x["a"], "b": x["b"], "c": x["c"], "features": x["a"]})
    layer = TaskRouting(T, 0.5)
    with pytest.raises(ValueError, match="outside a per-task forward"):
        layer(tf.ones([2, 4]))
    with task_paths.path_of(0, 2):
        with pytest.raises(ValueError, match="num_tasks=3"):
            layer(tf.ones([2, 4]))
    with task_paths.path_of(1, T):
        layer(tf.ones([2, 4]))
        with pytest.raises(ValueError, match="channel count cannot change"):
            layer(tf.ones([2, 5]))


@pytest.mark.parametrize("execution", ["sequential", "vectorized"])
def test_lookahead_forwards_run_each_task_path(execution):
    model = make()
    x, y = data()
    model.build_for(x["a"])
    yb = {t: y["a"] * (i + 1) for i, t in enumerate("abc")}
    shared = model.shared_variables
    candidate = [tf.stack([tf.convert_to_tensor(v) * 1.1]) for v in shared]
    losses = tf.function(lambda: tf_mtl.lookahead.evaluate_losses(
        model, candidate, x["a"], yb, execution=execution))()
    for v, w in zip(shared, candidate):
        v.assign(w[0])
    ref = [loss for loss, _ in reference_losses_and_grads(model, [x["a"]] * T, yb)]
    np.testing.assert_allclose(losses[0], ref, rtol=1e-5)


class PerTaskStats(keras.layers.Layer):
    """mask -> conv -> TaskBatchNormalization(num_tasks) -> mask: chunks differ in a
    tiled forward, so each task's statistics differ."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mask_in = TaskRouting(T, 0.5, seed=1)
        self.conv = keras.layers.Conv2D(5, 3, padding="same", use_bias=False)
        self.bn = TaskBatchNormalization(num_tasks=T, momentum=0.7)
        self.mask = TaskRouting(T, 0.5, seed=3)

    def build(self, shape):
        self.mask_in.build(shape)
        self.conv.build(shape)
        shape = self.conv.compute_output_shape(shape)
        self.bn.build(shape)
        self.mask.build(shape)

    def call(self, x, training=None):
        h = self.bn(self.conv(self.mask_in(x)), training=training)
        return tf.reduce_mean(tf.nn.relu(self.mask(h)), axis=[1, 2])


def test_per_task_moving_statistics_in_training_and_inference():
    """Training moves row t with task t's chunk only; inference of the batched forward
    equals T separate forwards, each normalized with its own task's row."""
    heads = {t: keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(seed=i))
             for i, t in enumerate("abc")}
    model = tf_mtl.MultiTaskModel(PerTaskStats(), heads, {t: "mse" for t in "abc"})
    x = (np.random.default_rng(0).normal(size=(5, 6, 6, 4)) + np.arange(4)).astype("float32")
    model.build_for(x)
    enc = model.encoder
    m_in, m_out = enc.mask_in.masks.numpy(), enc.mask.masks.numpy()
    assert len({tuple(r) for r in m_in}) == T, "input masks must differ between tasks"
    mean, var = np.zeros((T, 5)), np.ones((T, 5))
    for _ in range(2):
        model(x, training=True)
        for i in range(T):  # task i's own forward moves its own row
            m, v = tf.nn.moments(tf.nn.conv2d(x * m_in[i], enc.conv.kernel, 1, "SAME"), [0, 1, 2])
            mean[i], var[i] = 0.7 * mean[i] + 0.3 * m.numpy(), 0.7 * var[i] + 0.3 * v.numpy()
    np.testing.assert_allclose(enc.bn.task_moving_mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc.bn.task_moving_variance, var, rtol=1e-5, atol=1e-6)
    preds = model(x, training=False)

    def separate(i, row):
        h = tf.nn.conv2d(x * m_in[i], enc.conv.kernel, 1, "SAME")
        h = (h - mean[row]) / np.sqrt(var[row] + enc.bn.epsilon) * enc.bn.gamma + enc.bn.beta
        return heads["abc"[i]](tf.reduce_mean(tf.nn.relu(h * m_out[i]), axis=[1, 2]))

    for i, t in enumerate("abc"):
        np.testing.assert_allclose(preds[t], separate(i, i), rtol=1e-4, atol=1e-5)
        assert not np.allclose(preds[t], separate(i, (i + 1) % T), rtol=1e-3)  # a swapped row
    clone = TaskBatchNormalization.from_config(enc.bn.get_config())
    assert clone.num_tasks == T
    with pytest.raises(ValueError, match="num_tasks=0"):
        TaskBatchNormalization(num_tasks=0)
