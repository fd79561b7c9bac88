"""ETR-NLP (``004``): nothing trainable in the primitive block, parameter counts that follow
the ratio, each chunk through its own task's branch, and the bad arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.routing import task_paths
from tf_mtl.routing.etr_nlp import ETRNLP, PRIMITIVES

T = 3


def reference(layer, x, task):
    """Task ``task``'s output from the primitive features with plain matmuls."""
    h = layer.primitive_features(x)
    return tf.concat([tf.einsum("nhwc,cd->nhwd", h, layer.shared_kernel),
                      tf.einsum("nhwc,cd->nhwd", h, layer.task_kernels[task])], axis=-1)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_only_the_branches_train_and_counts_follow_the_ratio(ratio):
    layer = ETRNLP(T, filters=8, shared_ratio=ratio, primitives=PRIMITIVES, seed=1)
    layer.build((None, 5, 5, 4))
    k_c = 4 * len(PRIMITIVES)
    shared = round(ratio * 8)
    assert [w.name for w in layer.trainable_weights] == ["shared_branch", "task_branches"]
    assert int(np.prod(layer.shared_kernel.shape)) == k_c * shared
    assert int(np.prod(layer.task_kernels.shape)) == T * k_c * (8 - shared)
    assert sorted(w.name for w in layer.non_trainable_weights) == ["fixed_conv", "noise", "shift"]


def test_primitives_compute_what_table_s1_names():
    layer = ETRNLP(T, 4, primitives=("max_pool", "shift"), seed=2)
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    layer.build(x.shape)
    h = layer.primitive_features(x).numpy()
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    pooled = np.max([padded[:, i:i + 5, j:j + 6] for i in range(3) for j in range(3)], axis=0)
    np.testing.assert_allclose(h[..., :3], np.maximum(pooled, 0), rtol=1e-6)
    kernel = layer.shift_kernel.numpy()[..., 0]
    zero = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    for c in range(3):  # channel c moved by one pixel to its drawn neighbour (or kept)
        (i,), (j,) = np.nonzero(kernel[:, :, c])
        np.testing.assert_allclose(h[..., 3 + c], np.maximum(zero[:, i:i + 5, j:j + 6, c], 0))


def test_avg_pool_conv_and_noise_primitives_against_numpy():
    layer = ETRNLP(T, 4, primitives=("avg_pool", "conv", "noise"), seed=4)
    x = np.random.default_rng(5).normal(size=(2, 5, 6, 3)).astype("float32")
    layer.build(x.shape)
    h = layer.primitive_features(x).numpy()
    nan = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=np.nan)
    windows = np.stack([nan[:, i:i + 5, j:j + 6] for i in range(3) for j in range(3)])
    np.testing.assert_allclose(h[..., :3], np.maximum(np.nanmean(windows, axis=0), 0),
                               rtol=1e-5, atol=1e-6)  # SAME: the mean over in-image pixels
    kernel = layer.fixed_kernel.numpy()  # [3, 3, 3, 3], fixed: read, not recomputed
    zero = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    conv = sum(np.einsum("nhwc,cd->nhwd", zero[:, i:i + 5, j:j + 6], kernel[i, j])
               for i in range(3) for j in range(3))
    np.testing.assert_allclose(h[..., 3:6], np.maximum(conv, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h[..., 6:9], np.maximum(x + layer.noise.numpy()[None], 0),
                               rtol=1e-6)


@pytest.mark.parametrize("per_task", [False, True])
def test_each_chunk_goes_through_its_tasks_branch(per_task):
    layer = ETRNLP(T, 6, shared_ratio=0.5, seed=3)
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(n, 4, 4, 2)).astype("float32") for n in ((2, 4, 3) if per_task else (3,) * T)]
    if not per_task:
        xs = [xs[0]] * T
    sizes = [len(x) for x in xs]
    layout = task_paths.Layout(T, range(T), sizes, equal_chunks=not per_task)
    w = tf.random.stateless_normal([sum(sizes), 4, 4, 6], [0, 1])
    with tf.GradientTape(persistent=True) as tape:
        with task_paths.scope(layout):
            out = layer(np.concatenate(xs))
        batched = tf.reduce_sum(out * w)
        chunks = tf.split(w, sizes)
        ref = tf.add_n([tf.reduce_sum(reference(layer, x, t) * c)
                        for t, (x, c) in enumerate(zip(xs, chunks))])
    np.testing.assert_allclose(out, tf.concat([reference(layer, x, t) for t, x in enumerate(xs)], 0),
                               rtol=1e-5, atol=1e-5)
    for g, r in zip(tape.gradient(batched, layer.trainable_weights),
                    tape.gradient(ref, layer.trainable_weights)):
        np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(r),
                                   rtol=1e-4, atol=1e-4)


def test_etrnlp_network_trains_and_serializes():
    encoder = tf_mtl.encoders.ETRNLPNet(num_tasks=T, widths=(4, 6), shared_ratio=0.5)
    model = tf_mtl.MultiTaskModel(encoder, {t: keras.layers.Dense(1) for t in "abc"},
                                  {t: "mse" for t in "abc"})
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    y = {t: rng.normal(size=(4, 1)).astype("float32") for t in "abc"}
    model.build_for(x)
    fixed = [w.numpy().copy() for w in model.encoder.non_trainable_weights if "fixed" in w.name]
    model.train_on_batch(x, y)
    after = [w.numpy() for w in model.encoder.non_trainable_weights if "fixed" in w.name]
    assert len(fixed) == 2
    for a, b in zip(fixed, after):
        np.testing.assert_array_equal(a, b)
    clone = tf_mtl.MultiTaskModel.from_config(model.get_config())
    clone.build_for(x)
    assert clone.encoder.get_config() == model.encoder.get_config()


@pytest.mark.parametrize("kwargs, match", [
    ({"primitives": ("avg_pool", "blur")}, "primitives="),
    ({"primitives": ()}, "primitives="),
    ({"shared_ratio": 1.2}, "shared_ratio=1.2"),
    ({"filters": 0}, "filters=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ETRNLP(**{"num_tasks": T, "filters": 4, **kwargs})


def test_channel_count_cannot_change_after_build():
    layer = ETRNLP(T, 4, primitives=("avg_pool",))
    with task_paths.path_of(0, T):
        layer(tf.ones([1, 3, 3, 2]))
        with pytest.raises(ValueError, match="cannot change after build"):
            layer(tf.ones([1, 3, 3, 5]))
