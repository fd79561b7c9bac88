"""SegNet: 2x2 max-pooling with positions and max-unpooling against NumPy, shapes,
parameters counted by hand, routing masks, and one MultiTaskModel train step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.dense.heads import dense_head
from tf_mtl.dense.losses import DepthL1, NormalCosine, SegmentationCrossEntropy, validity_weights
from tf_mtl.dense.segnet import SegNet, max_pool_2x2, max_unpool_2x2

SMALL = [4, 6, 8, 8, 8]


def _numpy_pool_unpool(x):
    """Max-unpooling of 2x2 max-pooling, from the definition: each window's first
    maximum (row-major) keeps its value, every other position becomes 0."""
    b, h, w, c = x.shape
    pooled = np.zeros((b, h // 2, w // 2, c), x.dtype)
    out = np.zeros_like(x)
    for n in range(b):
        for i in range(h // 2):
            for j in range(w // 2):
                for k in range(c):
                    window = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k].reshape(-1)
                    p = int(np.argmax(window))   # NumPy: the first maximum
                    pooled[n, i, j, k] = window[p]
                    out[n, 2 * i + p // 2, 2 * j + p % 2, k] = window[p]
    return pooled, out


def test_unpooling_equals_numpy_with_ties_batch_and_xla():
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(3, 6, 8, 5)).astype("float32")   # many ties
    pooled, unpooled = _numpy_pool_unpool(x)
    p, pos = max_pool_2x2(tf.constant(x))
    np.testing.assert_array_equal(p.numpy(), pooled)
    np.testing.assert_array_equal(max_unpool_2x2(p, pos).numpy(), unpooled)
    roundtrip = tf.function(lambda t: max_unpool_2x2(*max_pool_2x2(t)), jit_compile=True)
    np.testing.assert_array_equal(roundtrip(tf.constant(x)).numpy(), unpooled)


def test_unpooling_equals_max_pool_with_argmax_and_scatter():
    """The public-TF route: MaxPoolWithArgmax, then scatter to the flat argmax."""
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 3)).astype("float32")  # no ties
    pooled, argmax = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID", include_batch_in_index=True)
    scattered = tf.reshape(tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(pooled, [-1]),
                                         [x.size]), x.shape)
    np.testing.assert_array_equal(max_unpool_2x2(*max_pool_2x2(tf.constant(x))).numpy(),
                                  scattered.numpy())


def test_gradient_goes_to_each_windows_first_maximum():
    x = tf.constant(np.random.default_rng(2).integers(0, 2, (2, 4, 4, 3)).astype("float32"))
    w = np.random.default_rng(3).standard_normal((2, 4, 4, 3)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(max_unpool_2x2(*max_pool_2x2(x)) * w)
    grad = tape.gradient(y, x).numpy()
    _, chosen = _numpy_pool_unpool(np.asarray(x) + 10.0)   # positions: first max, nonzero
    np.testing.assert_allclose(grad, np.where(chosen != 0, w, 0.0), rtol=1e-6)


def _conv_bn(cin, cout):
    return 9 * cin * cout + cout + 2 * cout   # kernel, bias, BN gamma and beta


def test_parameter_count_by_hand():
    encoder = [_conv_bn(3, 64) + _conv_bn(64, 64),                   # stage 0: 2 convs
               _conv_bn(64, 128) + _conv_bn(128, 128),               # stage 1: 2
               _conv_bn(128, 256) + 2 * _conv_bn(256, 256),          # stage 2: 3
               _conv_bn(256, 512) + 2 * _conv_bn(512, 512),          # stage 3: 3
               3 * _conv_bn(512, 512)]                               # stage 4: 3
    decoder = [3 * _conv_bn(512, 512),                               # unpool to 1/16: 3 convs
               _conv_bn(512, 256) + 2 * _conv_bn(256, 256),          # 1/8: 3
               _conv_bn(256, 128) + 2 * _conv_bn(128, 128),          # 1/4: 3
               _conv_bn(128, 64) + _conv_bn(64, 64),                 # 1/2: 2
               2 * _conv_bn(64, 64)]                                 # full size: 2
    segnet = SegNet()
    segnet.build((None, 32, 32, 3))
    got = sum(int(np.prod(v.shape)) for v in segnet.trainable_variables)
    assert got == sum(encoder) + sum(decoder) == 24_943_296
    # MTAN divides its counts by 24,981,069: this SegNet plus one 13-class head
    # (Conv3x3 64->64 with bias, Conv1x1 64->13 with bias).
    assert got + (9 * 64 * 64 + 64) + (64 * 13 + 13) == 24_981_069
    assert len(segnet.trainable_variables) == 26 * 4


def test_output_shape_and_bad_input():
    segnet = SegNet(SMALL)
    out = segnet(tf.random.uniform((2, 64, 96, 3)), training=True)
    assert out.shape == (2, 64, 96, 4)
    assert segnet.compute_output_shape((2, 64, 96, 3)) == (2, 64, 96, 4)
    with pytest.raises(ValueError, match="multiples of 32. Received"):
        SegNet(SMALL)(tf.zeros((1, 48, 64, 3)))
    with pytest.raises(ValueError, match="Received: filters"):
        SegNet([4, 0])
    clone = SegNet.from_config(segnet.get_config())
    assert clone.filters == SMALL and clone.routing is None


def _dense_model(encoder):
    heads = {"segmentation": dense_head("segmentation", 3), "depth": dense_head("depth"),
             "normal": dense_head("normal")}
    losses = {"segmentation": SegmentationCrossEntropy(), "depth": DepthL1(),
              "normal": NormalCosine()}
    model = tf_mtl.MultiTaskModel(encoder, heads, losses, update=tf_mtl.updates.EqualWeights())
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def _dense_batch(rng, b=2, h=32, w=32):
    x = rng.uniform(size=(b, h, w, 3)).astype("float32")
    labels = rng.integers(-1, 3, size=(b, h, w)).astype("int32")
    depth = rng.uniform(0.5, 3, size=(b, h, w, 1)).astype("float32")
    depth[:, :8] = 0.0                                               # invalid rows
    normal = rng.standard_normal((b, h, w, 3)).astype("float32")
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    normal[:, :, :5] = 0.0                                           # invalid columns
    y = {"segmentation": labels, "depth": depth, "normal": normal}
    kinds = {"segmentation": "segmentation", "depth": "depth", "normal": "normal"}
    return x, y, {t: np.asarray(v) for t, v in validity_weights(y, kinds).items()}


def _numpy_losses(y, pred):
    seg_valid = y["segmentation"] >= 0
    logp = pred["segmentation"] - np.log(np.exp(pred["segmentation"]).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, np.maximum(y["segmentation"], 0)[..., None], -1)[..., 0]
    d_valid = y["depth"].sum(-1) != 0
    n_valid = y["normal"].sum(-1) != 0
    return {"segmentation": -picked[seg_valid].mean(),
            "depth": np.abs(pred["depth"] - y["depth"])[..., 0][d_valid].mean(),
            "normal": 1 - (pred["normal"] * y["normal"]).sum(-1)[n_valid].mean()}


def test_multitask_model_with_segnet_trains_one_step_with_valid_pixel_means():
    keras.utils.set_random_seed(0)
    model = _dense_model(SegNet(SMALL))   # the 5 stages: 26 convs
    x, y, sw = _dense_batch(np.random.default_rng(0))
    pred = {t: np.asarray(v) for t, v in model(x, training=True).items()}
    expected = _numpy_losses(y, pred)
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    for t in model.tasks:
        np.testing.assert_allclose(logs[f"{t}_loss"], expected[t], rtol=1e-4)
    # Every kernel moves (a conv bias before BatchNorm gets no gradient: BN removes it).
    moved = {v.path: not np.allclose(a, v.numpy())
             for a, v in zip(before, model.trainable_variables) if "kernel" in v.path}
    assert len(moved) == 26 + 2 * 3 and all(moved.values()), moved


def test_routed_segnet_masks_every_conv_after_bn_and_trains():
    routing = {"kind": "task_routing", "num_tasks": 3, "sharing_ratio": 0.5, "seed": 1}
    keras.utils.set_random_seed(0)
    encoder = SegNet([4, 4, 4], routing=routing)   # 7 + 7 convs: a shorter trace
    model = _dense_model(encoder)
    x, y, sw = _dense_batch(np.random.default_rng(1))
    logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert len(tf_mtl.routing.routing_layers(encoder)) == 14
    for stage in encoder.encoder_stages + encoder.decoder_stages:
        kinds = [type(layer).__name__ for layer in stage.blocks[:4]]
        assert kinds == ["Conv2D", "TaskBatchNormalization", "TaskRouting", "ReLU"]
    assert SegNet.from_config(encoder.get_config()).routing == routing


def test_segnet_and_mtan_gradients_under_xla_equal_eager():
    from tf_mtl.dense.mtan import SegNetMTAN
    keras.utils.set_random_seed(0)
    x = tf.random.uniform((2, 32, 32, 3))
    for layer in (SegNet([4, 4]), SegNetMTAN(["a", "b"], filters=[4, 4])):
        layer(x, training=True)

        def grads(x, layer=layer):
            with tf.GradientTape() as tape:
                out = tf.nest.flatten(layer(x, training=True))
                value = tf.add_n([tf.reduce_sum(tf.square(o)) for o in out])
            return tape.gradient(value, layer.trainable_variables)

        eager = grads(x)
        xla = tf.function(grads, jit_compile=True)(x)
        assert all(g is not None for g in eager)
        # Biases before BatchNorm have a zero gradient up to float noise: absolute
        # tolerance relative to the largest gradient.
        scale = max(float(tf.reduce_max(tf.abs(g))) for g in eager)
        for a, b in zip(eager, xla):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=2e-3, atol=1e-4 * scale)


def test_model_with_segnet_heads_and_losses_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(
        SegNet([4, 4]), {"s": dense_head("segmentation", 3), "d": dense_head("depth")},
        {"s": SegmentationCrossEntropy(ignore_index=-1), "d": DepthL1()})
    model.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 8, 8, 3)).astype("float32")
    y = {"s": rng.integers(-1, 3, (2, 8, 8)), "d": rng.uniform(size=(2, 8, 8, 1)).astype("float32")}
    model.train_on_batch(x, y)
    model.save(str(tmp_path / "dense.keras"))
    loaded = keras.models.load_model(str(tmp_path / "dense.keras"))
    assert isinstance(loaded.task_losses["s"], SegmentationCrossEntropy)
    for t, out in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[t], out, rtol=1e-5, atol=1e-6)
