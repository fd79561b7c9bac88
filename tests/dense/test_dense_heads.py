"""Dense heads: the Conv3x3 -> Conv1x1 chain against NumPy, each kind's output map,
parameter counts and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.dense.heads import DenseHead, dense_head


def _numpy_head(head, x):
    """Conv3x3 (zero padding 1, bias) then Conv1x1 (bias), from the weights."""
    k3, b3 = (np.asarray(v) for v in head.hidden.weights)
    k1, b1 = (np.asarray(v) for v in head.output_conv.weights)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    h, w = x.shape[1:3]
    hidden = sum(padded[:, dy:dy + h, dx:dx + w, :] @ k3[dy, dx]
                 for dy in range(3) for dx in range(3)) + b3
    return hidden @ k1[0, 0] + b1


def test_each_kind_against_numpy():
    x = np.random.default_rng(0).standard_normal((2, 6, 8, 5)).astype("float32")
    for kind, channels in [("segmentation", 4), ("depth", 1), ("normal", 3), ("binary", 1)]:
        head = dense_head(kind, channels)
        out = np.asarray(head(x))
        raw = _numpy_head(head, x.astype("float64"))
        assert out.shape == (2, 6, 8, channels)
        if kind == "segmentation":
            raw = raw - np.log(np.exp(raw).sum(-1, keepdims=True))
        if kind == "normal":
            raw = raw / np.linalg.norm(raw, axis=-1, keepdims=True)
        np.testing.assert_allclose(out, raw, rtol=1e-4, atol=1e-5)
    logits = DenseHead("segmentation", 4, log_softmax=False)
    assert not np.allclose(np.exp(np.asarray(logits(x))).sum(-1), 1.0)


def test_parameters_and_init():
    head = dense_head("segmentation", 13)
    head.build((None, 8, 8, 64))
    assert sum(int(np.prod(v.shape)) for v in head.trainable_variables) == (
        9 * 64 * 64 + 64) + (64 * 13 + 13)
    assert all(not np.asarray(b).any() for b in (head.hidden.bias, head.output_conv.bias))
    # Xavier-normal, untruncated: std sqrt(2 / (fan_in + fan_out)) = sqrt(2 / (2 * 9 * 64)).
    kernel = np.asarray(head.hidden.kernel)
    assert abs(kernel.std() / np.sqrt(2 / (18 * 64)) - 1) < 0.05
    assert np.abs(kernel).max() > 2.5 * np.sqrt(2 / (18 * 64))   # not truncated at 2 std


def test_zero_normals_stay_finite_and_config():
    head = dense_head("normal")
    head.build((None, 4, 4, 2))
    for v in head.trainable_variables:
        v.assign(tf.zeros_like(v))
    assert np.isfinite(np.asarray(head(tf.ones((1, 4, 4, 2))))).all()
    clone = DenseHead.from_config(DenseHead("segmentation", 7, log_softmax=False).get_config())
    assert (clone.kind, clone.channels, clone.log_softmax) == ("segmentation", 7, False)


@pytest.mark.parametrize("args, match", [
    (("edges", 1), "Received: kind='edges'"),
    (("depth", 0), "Received: channels=0"),
    (("normal", 2), "Received: channels=2"),
    (("segmentation", 1), "Received: channels=1"),
])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        DenseHead(*args)
    with pytest.raises(ValueError, match="Received: channels=None"):
        dense_head("segmentation")
    with pytest.raises(ValueError, match="Received: log_softmax"):
        DenseHead("segmentation", 3, log_softmax="yes")


def test_batch_norm_uses_pytorchs_defaults_in_segnet_and_mtan():
    from tf_mtl.dense.mtan import SegNetMTAN
    from tf_mtl.keras_internals import nested_layers
    mtan = SegNetMTAN(["a"], filters=[4, 4])
    mtan.build((None, 8, 8, 3))
    norms = [l for l in nested_layers(mtan) if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all((n.epsilon, n.momentum) == (1e-5, 0.9) for n in norms)
